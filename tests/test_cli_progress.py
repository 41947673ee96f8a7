"""What the CLI shows while it generates: a step bar on a terminal, one line per photo in a log,
nothing under -q; Ctrl-C (or a cancel) mid-generation stops with one line, exit 130, and no file.

The generation loop is OpenCV's fill made to report three steps, as the diffusion loops do
(`editanything.progress.report`), so the CLI's side is tested without a diffusion model.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMOS
from editanything.cli import main, progress_bar
from editanything.errors import Cancelled
from editanything.generate.classical import ClassicalGenerator
from editanything.progress import Step, listening, report

STEPS = 3
SPOON = ["--box", "318,62,428,330", "--segmenter", "grabcut", "--remove", "--model", "classical"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stepping(monkeypatch):
    """OpenCV's fill reports STEPS steps per image; `stepping.fail` = (step, exception) raises at that step.
    `stepping.bars` records whether a library imported now would draw its bars (see the subprocess test)."""
    original = ClassicalGenerator.inpaint

    class Control:
        fail = None
        bars: list[bool] = []

    def inpaint(self, image, mask, params=None):
        Control.bars.append(os.environ.get("TQDM_DISABLE") != "1" and not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"))
        for step in range(STEPS):
            if Control.fail is not None and Control.fail[0] == step:
                raise Control.fail[1]
            report(Step(0, 1, step, STEPS))
        return original(self, image, mask, params)

    monkeypatch.setattr(ClassicalGenerator, "inpaint", inpaint)
    return Control


def test_the_step_bar_shows_steps_seconds_per_step_and_time_left():
    times = iter([100.0, 102.0, 104.0, 106.0, 200.0, 201.0])
    stream = Terminal()
    bar = progress_bar.StepBar(stream, clock=lambda: next(times))
    with listening(bar):
        for step in range(4):  # one image of 4 steps, 2 s each after the first
            report(Step(0, 1, step, 4))
            if step == 2:
                shown = stream.getvalue().split("\r")[-1]
                assert "generating: step 3/4 |" in shown and "2.00 s/step, 0:02 left" in shown
    assert stream.getvalue().startswith("\rgenerating: step 1/4 |") and "timing…" in stream.getvalue()
    assert stream.getvalue().endswith("\r")  # wiped after the last step: the next line starts clean
    assert stream.getvalue().split("\r")[-2].strip() == ""
    with listening(bar):  # a new call: its first step (after loading) is not timed
        report(Step(0, 2, 0, 1))
        assert "image 1/2, step 1/1" in stream.getvalue().split("\r")[-1] and "timing…" in stream.getvalue()
        report(Step(1, 2, 0, 1))
    assert "\x1b" not in stream.getvalue()


def test_on_a_terminal_edit_draws_the_step_bar(stepping, tmp_path, capsys, monkeypatch):
    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(progress_bar, "on_terminal", lambda stream=None: True)
    assert main(["edit", str(DEMOS / "coffee.jpg"), *SPOON, "-o", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    for step in range(1, STEPS + 1):
        assert f"\rgenerating: step {step}/{STEPS} |" in err
    assert stepping.bars == [True]  # a terminal keeps the libraries' loading bars


def test_in_a_log_each_photo_is_one_line_and_no_bar(stepping, tmp_path, capsys):
    photos = [str(DEMOS / "coffee.jpg"), str(DEMOS / "chelsea.jpg")]
    assert main(["edit", *photos, "--box", "50,50,200,200", *SPOON[2:], "-o", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err and "generating" not in err
    lines = [line for line in err.splitlines() if line.startswith("edit ")]
    assert len(lines) == 2 and lines[0].startswith("edit 1/2: ") and lines[0].endswith(" s)")
    assert "coffee.jpg done" in lines[0] and "chelsea.jpg done" in lines[1]
    assert stepping.bars == [False, False]  # diffusers' bars would be raw carriage returns in a log


def test_quiet_shows_neither_bar_nor_lines(stepping, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress_bar, "on_terminal", lambda stream=None: True)
    assert main(["edit", str(DEMOS / "coffee.jpg"), *SPOON, "-o", str(tmp_path), "-q"]) == 0
    captured = capsys.readouterr()
    assert "generating" not in captured.err and "edit 1/1" not in captured.err and "\r" not in captured.err


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Cancelled("cancelled")])
def test_ctrl_c_mid_generation_stops_with_one_line_exit_130_and_no_file(stepping, tmp_path, capsys, stop):
    stepping.fail = (1, stop)
    out = tmp_path / "out"
    photos = [str(DEMOS / "coffee.jpg"), str(DEMOS / "chelsea.jpg")]
    assert main(["edit", *photos, "--box", "50,50,200,200", *SPOON[2:], "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "failed" not in err and "done" not in err
    assert len(stepping.bars) == 1  # the second photo never started
    assert list(out.iterdir()) == []  # no output, no half-written temp file


def test_libraries_imported_after_the_switch_draw_no_loading_bars():
    # What the CLI does in a log, in a fresh process as a command runs: diffusers and transformers are
    # imported lazily, after the switch, and their loading bars must write nothing.
    code = ("from editanything.cli import library_bars_off\n"
            "with library_bars_off():\n"
            "    from diffusers.utils import logging\n"
            "    list(logging.tqdm(range(3), desc='Loading pipeline components...'))\n"
            "    from transformers.utils import logging as tlogging\n"
            "    list(tlogging.tqdm(range(3), desc='Loading checkpoint shards'))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Loading" not in done.stderr and "\r" not in done.stderr
    # and without the switch they would have drawn (so the check above can fail)
    plain = code.replace("with library_bars_off():", "if True:")
    done = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert "Loading pipeline components" in done.stderr


def test_worker_processes_draw_no_loading_bars_even_on_a_terminal(tmp_path, monkeypatch):
    """Two workers' diffusers and transformers bars would interleave on one terminal: in a worker they are off."""
    from editanything.batch import plan_jobs, run_batch
    from worker_env import bar_switches

    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)  # as on a terminal: the parent keeps its bars
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        (photos / f"p{i}.jpg").write_bytes((DEMOS / "coffee.jpg").read_bytes())
    jobs, _ = plan_jobs([photos], tmp_path / "out", "png")
    report = run_batch(jobs, bar_switches, workers=2, progress=False)
    assert len(report.done) == 4
    assert {p.read_text() for p in (tmp_path / "out").glob("*.png")} == {"1 1"}
    assert os.environ.get("TQDM_DISABLE") is None  # and the parent's own switches are untouched
