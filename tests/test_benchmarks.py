"""Every benchmark runs in smoke mode (tiny sizes, seconds) and prints its ratio line, so none rots.

A smoke run measures nothing: it checks that the script still runs through the real code path and
prints its table. The full runs are for an idle machine (see benchmarks/).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
# The line each benchmark ends on: the ratio its target is about.
RATIO_LINES = {
    "api_overhead.py": r"^API / Python = [\d.]+x",
    "batch_engines.py": r"^ray / pool = [\d.]+x",
    "batch_engines.py --scale 100": r"^ray / pool per-file overhead = [\d.]+x",
    "captioners.py": r"^BLIP-2 / Florence-2 = [\d.]+x",
    "click_latency.py": r"^cached / bare decoder = [\d.]+x",
    "edit_scaling.py": r"^\d+x\d+ / 512² = [\d.]+x",
    "first_click.py": r"first click \(cold\) [\d.]+ s: .* [\d.]+x faster than vit_b",
    "first_click.py --contention": r"^under contention the new defaults' first click is [\d.]+x faster than today's",
    "gpu_generate.py": r"^SD 1\.5: LCM \d+ steps / its default sampler \d+ steps = [\d.]+x",
    "matting.py": r"^pymatting / feathered SAD = [\d.]+ ",
    "pipeline_memory.py": r"^low-memory / default peak RSS: [\d.]+x",
    "pipeline_memory.py --step-cost": r"^per-layer upcast / upcast at load UNet step = [\d.]+x",
    "prompt_expand.py": r"^default / baseline = [\d.]+x faster",
    "remove_quality.py": r"^best / Telea: \S+, [+-][\d.]+ dB",
    "sketch_throughput.py": r"^pencil / naive = [\d.]+x",
    "sketch_throughput.py --hed-speed": r"^hed style: new default / today = ",
    "ui_click.py": r"^first / later click .*: [\d.]+x",
}
NEEDS = {"api_overhead.py": "uvicorn", "batch_engines.py": "ray", "gpu_generate.py": "diffusers",
         "captioners.py": "transformers",
         "pipeline_memory.py": "groundingdino",
         "click_latency.py": "segment_anything", "first_click.py": "transformers", "ui_click.py": "gradio_client",
         "edit_scaling.py": "diffusers", "prompt_expand.py": "transformers", "matting.py": "pymatting"}


def test_every_benchmark_has_a_smoke_check():
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(
        {n.split()[0] for n in RATIO_LINES})


@pytest.mark.parametrize("name", sorted(RATIO_LINES))
def test_benchmark_smoke_run_prints_its_ratio(name, tmp_path):
    script, *options = name.split()
    if script in NEEDS:
        pytest.importorskip(NEEDS[script])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "EDITANYTHING_HOME": str(tmp_path / "home"),
           "EDITANYTHING_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *options, "--smoke"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert re.search(RATIO_LINES[name], run.stdout, re.MULTILINE), run.stdout[-3000:]
    assert re.search(r"\[smoke\]|\(smoke\)|smoke run", run.stdout)  # it says its figures measure nothing
