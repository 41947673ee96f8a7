"""`editanything segment` and the selection options shared by segment/edit/caption."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import DEMOS
from editanything.cli import main
from editanything.imageio import read_image


def _run(capsys, *args):
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_segment_writes_masks_overlay_and_detections(isolated_models, tmp_path, capsys):
    out = tmp_path / "seg"
    status, stdout, stderr = _run(capsys, "segment", DEMOS / "coffee.jpg", "--box", "180,20,410,270",
                                  "--box", "320,200,410,330", "--feather", "4", "-o", out)
    assert status == 0
    assert stderr.strip().splitlines() == [
        "segmenter: GrabCut (SAM weights not found — run `editanything models download edgetam`)"]
    data = json.loads((out / "detections.json").read_text())
    assert data["size"] == [600, 400] and [d["index"] for d in data["instances"]] == [0, 1]
    masks = [read_image(out / f"mask_{i:02d}.png", gray=True) for i in range(2)]
    union = read_image(out / "mask.png", gray=True)
    assert np.array_equal(union, np.maximum(*masks))
    assert 0 < (masks[0] > 127).mean() < 0.5
    soft = np.unique(masks[0])
    assert len(soft) > 2  # feathered: values between 0 and 255
    photo, overlay = read_image(DEMOS / "coffee.jpg"), read_image(out / "overlay.png")
    assert overlay.shape == photo.shape and not np.array_equal(overlay, photo)
    far = np.zeros(union.shape, bool)  # left of and below the boxes and their labels: untouched
    far[:, :170] = far[340:] = True
    assert np.array_equal(overlay[far], photo[far])


def test_keep_selects_instances(isolated_models, tmp_path, capsys):
    out = tmp_path / "seg"
    status, _, _ = _run(capsys, "segment", DEMOS / "coffee.jpg", "--box", "180,20,410,270", "--box",
                        "320,200,410,330", "--keep", "1", "-o", out)
    assert status == 0
    instances = json.loads((out / "detections.json").read_text())["instances"]
    assert len(instances) == 1 and not (out / "mask_01.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--point", "900,10"], "outside the 600x400 image"),
    (["--box", "10,10,20,20", "--keep", "3"], "out of range"),
    ([], "needs clicks or boxes"),
])
def test_bad_selections_get_one_line_errors(isolated_models, tmp_path, capsys, args, message):
    status, _, stderr = _run(capsys, "segment", DEMOS / "coffee.jpg", *args, "-o", tmp_path / "seg")
    assert status == 2
    assert stderr.strip().splitlines()[-1].startswith("error:") and message in stderr
    assert "Traceback" not in stderr and not (tmp_path / "seg").exists()


def test_bad_point_syntax_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(DEMOS / "coffee.jpg"), "--point", "1;2", "-o", str(tmp_path)])
    assert exc.value.code == 2 and "--point expects" in capsys.readouterr().err


def test_select_without_detector_weights_names_the_command(isolated_models, tmp_path, capsys):
    status, _, stderr = _run(capsys, "segment", DEMOS / "coffee.jpg", "--select", "cup", "-o", tmp_path / "seg")
    assert status == 2 and "editanything models download grounding-dino-tiny" in stderr


def test_unreadable_mask_is_a_one_line_error(isolated_models, tmp_path, capsys):
    bad = tmp_path / "mask.png"
    bad.write_text("not a png")
    status, _, stderr = _run(capsys, "edit", DEMOS / "coffee.jpg", "--mask", bad, "--remove", "-o", tmp_path / "o")
    assert status == 2 and str(bad) in stderr and len(stderr.strip().splitlines()) == 1
    Image.new("L", (600, 400), 0).save(bad)
    status, _, stderr = _run(capsys, "edit", DEMOS / "coffee.jpg", "--mask", bad, "--remove", "-o", tmp_path / "o")
    assert status == 2 and "empty" in stderr


def test_caption_command_prints_the_captioner_text(isolated_models, capsys):
    from tiny_detect_models import build_tiny_blip2

    from editanything.caption import get_captioner

    build_tiny_blip2(isolated_models / "blip2-opt-2.7b")
    photo = read_image(DEMOS / "coffee.jpg")
    captioner = get_captioner("auto")
    status, stdout, _ = _run(capsys, "caption", DEMOS / "coffee.jpg")
    assert status == 0 and stdout.strip() == captioner.caption(photo).strip()
    status, stdout, _ = _run(capsys, "caption", DEMOS / "coffee.jpg", "--box", "180,20,410,270")
    from editanything import Prompt
    from editanything.segment import get_segmenter

    mask = get_segmenter("grabcut").segment(photo, Prompt(boxes=[(180, 20, 410, 270)])).masks[0]
    expected = captioner.caption_regions(photo, [mask])[0]
    assert status == 0 and stdout.splitlines() == [f" 0  {'box 0':24} {expected}"]


@pytest.mark.parametrize("existing", [False, True])
def test_segment_writes_its_files_all_or_nothing(isolated_models, tmp_path, capsys, monkeypatch, existing):
    import errno
    import os

    from editanything import imageio

    out = tmp_path / "seg"
    if existing:  # a folder with other files: they stay, and no new file appears
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    real_fsync, calls = os.fsync, []

    def disk_fills_up(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(imageio.os, "fsync", disk_fills_up)
    status, _, stderr = _run(capsys, "segment", DEMOS / "coffee.jpg", "--box", "180,20,410,270",
                             "--box", "320,200,410,330", "-o", out)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "disk is full" in errors[0] and str(out) in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == (["checkpoints", "seg"] if existing else ["checkpoints"])
    if existing:
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    monkeypatch.setattr(imageio.os, "fsync", real_fsync)
    status, _, _ = _run(capsys, "segment", DEMOS / "coffee.jpg", "--box", "180,20,410,270", "-o", out)
    names = sorted(p.name for p in out.iterdir())
    assert status == 0 and names == sorted(["detections.json", "mask.png", "mask_00.png", "overlay.png"]
                                           + (["notes.txt"] if existing else []))
