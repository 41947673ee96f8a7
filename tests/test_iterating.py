"""Editing the same photo again: outputs are named by what was asked, so a new request writes a new file
and only the same request again counts as done; `replay` writes only where it is told."""

import re

import numpy as np
from conftest import DEMOS, edit_output

from editanything.cli import main
from editanything.imageio import read_image
from editanything.recipe import read_recipe

COFFEE = str(DEMOS / "coffee.jpg")
CUP = ["--box", "180,20,410,270", "--segmenter", "grabcut"]


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_second_edit_into_the_same_folder_writes_beside_the_first(isolated_models, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", COFFEE, *CUP, "--remove", "-o", str(out), "-q"]) == 0
    removed = edit_output(out, "coffee")
    assert re.fullmatch(r"coffee\.remove-[0-9a-f]{6}\.png", removed.name)
    capsys.readouterr()
    assert main(["edit", COFFEE, *CUP, "--recolor", "#2255cc", "-o", str(out), "-q"]) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out
    names = _names(out)
    assert len(names) == 2 and removed.name in names
    recolored = out / next(n for n in names if n != removed.name)
    assert re.fullmatch(r"coffee\.recolor-[0-9a-f]{6}\.png", recolored.name)
    assert read_recipe(recolored).operation == "edit:recolor" and read_recipe(removed).operation == "edit:remove"
    # another colour is another request: a third file
    assert main(["edit", COFFEE, *CUP, "--recolor", "red", "-o", str(out), "-q"]) == 0
    assert len(_names(out)) == 3


def test_the_same_request_again_is_done_at_once_and_overwrite_redoes_it(isolated_models, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["edit", COFFEE, *CUP, "--recolor", "#2255cc", "-o", str(out), "-q"]
    assert main(args) == 0
    first = edit_output(out, "coffee")
    stamp = first.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("nothing to do:") and first.name in captured.out
    assert first.stat().st_mtime_ns == stamp and _names(out) == [first.name]
    assert main([*args, "--overwrite"]) == 0
    assert "1 done" in capsys.readouterr().out and _names(out) == [first.name]
    # the order of options is not part of the request
    assert main(["edit", COFFEE, "--recolor", "#2255cc", "-o", str(out), "-q", *CUP]) == 0
    assert capsys.readouterr().out.startswith("nothing to do:")


def test_a_batch_of_images_is_numbered_after_the_first_and_counted_as_images(isolated_models, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", COFFEE, *CUP, "--remove", "--batch-count", "3", "-o", str(out), "-q"]) == 0
    first = edit_output(out, "coffee")
    assert _names(out) == sorted([first.name, first.stem + "-1.png", first.stem + "-2.png"])
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"1 done \(3 images\), 0 skipped \(already done\), 0 failed in [\d.]+ s "
                        r"\(models loaded in [\d.]+ s, then [\d.]+ img/s\); outputs in .*", summary), summary
    total, loading = (float(x) for x in re.findall(r"in ([\d.]+) s", summary))
    assert loading <= total


def test_a_removal_records_no_prompt_it_did_not_use(isolated_models, tmp_path):
    from editanything.recipe import read_png_text

    out = tmp_path / "out"
    assert main(["edit", COFFEE, *CUP, "--remove", "--prompt", "a lake", "--negative", "boats", "-o", str(out),
                 "-q"]) == 0
    result = edit_output(out, "coffee")
    generation = read_recipe(result).parameters["generation"]
    assert (generation["prompt"], generation["negative_prompt"]) == ("", "")
    parameters = read_png_text(result)["parameters"]
    assert "lake" not in parameters and "Negative prompt" not in parameters and "background" not in parameters


def test_replay_writes_only_where_asked(isolated_models, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", COFFEE, *CUP, "--remove", "-o", str(out), "-q"]) == 0
    result = edit_output(out, "coffee")
    capsys.readouterr()
    assert main(["replay", str(result)]) == 0
    said = capsys.readouterr().out
    assert "identical to the original" in said and "not saved" in said and _names(out) == [result.name]
    assert main(["replay", str(result), "--beside"]) == 0
    beside = out / f"{result.stem}.replay.png"
    assert _names(out) == sorted([result.name, beside.name])
    assert np.array_equal(read_image(beside), read_image(result))
    elsewhere = tmp_path / "again"
    elsewhere.mkdir()
    assert main(["replay", str(result), "-o", str(elsewhere)]) == 0
    assert _names(elsewhere) == [beside.name]
    new = tmp_path / "new"  # a name without a suffix is a folder, made as edit's -o makes one
    assert main(["replay", str(result), "-o", str(new)]) == 0
    assert _names(new) == [beside.name]
    capsys.readouterr()
    assert main(["replay", str(result), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "a replay is saved as .png" in capsys.readouterr().err
    assert main(["replay", str(result), "-o", str(result)]) == 2
    assert "that is the image being replayed" in capsys.readouterr().err
