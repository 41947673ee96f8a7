"""`editanything models needs JOB …`: the models a job takes on this device, what runs without each,
their sizes, and one command for what is missing; its choices are the stages' own "auto" orders."""

from __future__ import annotations

import itertools

import pytest

from editanything.cli import main
from editanything.generate import auto
from editanything.needs import job_needs


def _run(capsys, *args):
    assert main(["models", "needs", *args]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    return out


def test_edit_select_prompt_on_a_cpu(isolated_models, capsys):
    out = _run(capsys, "edit", "--select", "--prompt", "--device", "cpu")
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert out.startswith("edit --select --prompt on cpu:")
    assert rows["detector"].split()[1:4] == ["grounding-dino-tiny", "689", "MB"] and "the job stops" in rows["detector"]
    assert rows["segmenter"].split()[1] == "edgetam" and "GrabCut" in rows["segmenter"]
    assert rows["generator"].split()[1] == "sd15-inpainting" and "2.1 GB  missing" in rows["generator"]
    assert "captioner" not in rows  # a prompt is given: nothing has to write one
    assert "missing: 3 models, about 2.8 GB" in out
    assert out.rstrip().endswith("editanything models download grounding-dino-tiny edgetam sd15-inpainting")


def test_a_model_on_disk_is_the_one_used_and_is_not_fetched(isolated_models, capsys):
    (isolated_models / "migan").mkdir()
    (isolated_models / "migan" / "migan_pipeline_v2.onnx").write_bytes(b"onnx")
    out = _run(capsys, "edit", "--point", "--remove", "--device", "cpu")
    remover = next(line for line in out.splitlines() if line.startswith("remover"))
    assert remover.split()[1] == "migan" and "  yes  " in remover and "OpenCV's fill" in remover
    assert "alternatives, in the order auto tries them here: lama" in out
    assert out.rstrip().endswith("editanything models download edgetam")


def test_a_gpu_prefers_other_models(isolated_models):
    needs = {n.stage: n for n in job_needs("edit", device="cuda", clicks=True)}
    assert needs["segmenter"].pick == "sam2.1-hiera-large" and needs["generator"].pick == "flux2-klein-4b"
    assert [n.stage for n in job_needs("edit", device="cuda", clicks=True, recolor=True)] == ["segmenter"]
    ui = job_needs("ui", device="cpu")  # every tool, each with a way to run without its models
    assert [n.stage for n in ui] == ["detector", "segmenter", "matting", "generator", "remover"]
    assert all(n.without for n in ui)


def test_sketch_styles_and_a_long_download_command(isolated_models, capsys):
    assert "no model" in _run(capsys, "sketch", "--style", "pencil")
    out = _run(capsys, "sketch", "--style", "sd-lineart")
    assert "editanything models download sd15 controlnet-lineart hed" in out
    out = _run(capsys, "edit", "--select", "--controlnet", "canny", "--lcm", "--device", "cpu")
    # without --prompt a captioner writes it; the command continues over lines with a backslash
    assert "captioner" in out and "controlnet-canny" in out and "lcm-lora-sd15" in out
    command = out[out.index("editanything models download"):].replace("\\\n", " ").split()
    assert command[3:] == ["grounding-dino-tiny", "edgetam", "sd15-inpainting", "controlnet-canny",
                           "lcm-lora-sd15", "florence-2-base"]  # on a CPU the light captioner comes first


def test_matte_names_vitmatte_when_it_would_run_and_nothing_for_a_weight_free_backend(isolated_models, capsys):
    out = _run(capsys, "edit", "--point", "--recolor", "--matte", "--matte-backend", "vitmatte-small")
    assert "--matte --matte-backend vitmatte-small on" in out.splitlines()[0]
    matting = next(line for line in out.splitlines() if line.startswith("matting"))
    assert matting.split()[1:5] == ["vitmatte-small", "103", "MB", "missing"] and "the job stops" in matting
    assert out.rstrip().endswith("editanything models download edgetam vitmatte-small")
    # auto: ViTMatte when it is on disk, else pymatting-fast, which needs nothing
    out = _run(capsys, "segment", "--select", "--matte")
    matting = next(line for line in out.splitlines() if line.startswith("matting"))
    assert matting.split()[1] == "vitmatte-small" and "pymatting-fast (weight-free)" in matting
    assert out.rstrip().endswith("editanything models download grounding-dino-tiny edgetam vitmatte-small")
    for backend in ("pymatting-fast", "pymatting"):
        out = _run(capsys, "edit", "--point", "--recolor", "--matte", "--matte-backend", backend)
        assert not any(line.startswith("matting") for line in out.splitlines()) and "vitmatte" not in out
        assert out.rstrip().endswith("editanything models download edgetam")
    needs = {n.stage: n for n in job_needs("edit", clicks=True, recolor=True, matte="auto")}
    assert needs["matting"].candidates == ("vitmatte-small",)
    assert "matting" not in {n.stage for n in job_needs("edit", clicks=True, recolor=True)}


@pytest.mark.parametrize("args", [
    ["edit", "--point", "--remove", "--matte"], ["edit", "--point", "--matte"], ["sketch", "--matte"],
    ["edit", "--point", "--recolor", "--matte-backend", "pymatting"],
    ["edit", "--point", "--recolor", "--matte", "--matte-backend", "nope"]])
def test_matte_options_a_job_would_refuse(args, isolated_models, capsys):
    assert main(["models", "needs", *args]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "matte" in err and "Traceback" not in err


@pytest.mark.parametrize("cuda", [False, True])
def test_the_generator_order_is_the_one_auto_picks_by(cuda, monkeypatch):
    import editanything.models as models

    names = ("sd15-inpainting", "sdxl-inpainting", "flux2-klein-4b")
    for present in itertools.chain.from_iterable(itertools.combinations(names, k) for k in range(4)):
        monkeypatch.setattr(models, "find_model", lambda name, present=present: object() if name in present else None)
        monkeypatch.setattr(models, "pick_device", lambda: "cuda" if cuda else "cpu")
        first = next((m for m in auto.order(cuda) if m in present), "classical")
        assert auto.pick()[0] == first, present
