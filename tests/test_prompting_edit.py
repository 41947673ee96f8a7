"""`--expand` on `edit` and `sketch --style sd-lineart`: the prompt used is printed, the recipe keeps the user's
words and the expansion (expander, model hash, seed), sd-parsers reads the expanded prompt, and replay is
bit-exact with the language model gone. Tiny random-weight SD 1.5 and LM through the real loaders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402
from sd_parsers import ParserManager  # noqa: E402

from conftest import DEMOS, edit_output  # noqa: E402
from editanything import prompting  # noqa: E402
from editanything.cli import main  # noqa: E402
from editanything.imageio import read_image, read_png_text  # noqa: E402
from editanything.recipe import read_recipe  # noqa: E402
# tiny SD 1.5 and line-art ControlNet where their downloads go, beside the real HED, for sd-lineart
from test_sketch_generative import diffusers, models, tiny_root, torch  # noqa: E402,F401

LM = "smollm2-135m-instruct"  # the default local expander


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tiny_causal_lm import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm") / LM)


@pytest.fixture
def local_lm(deep, tiny_lm, tmp_path, monkeypatch):
    """The tiny LM where `models download smollm2-135m-instruct` puts the real one (the home model root)."""
    from model_pins import pin_to_files

    home = tmp_path / "home"
    shutil.copytree(tiny_lm, home / LM)
    pin_to_files(monkeypatch, home, LM)
    return home / LM


def _forbid_expanders(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("replay asked for an expander")

    monkeypatch.setattr(prompting, "get_expander", refuse)
    monkeypatch.setattr("editanything.cli.expand_opts.get_expander", refuse)


def test_edit_expand_records_the_expansion_and_replays_without_the_lm(local_lm, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = ["edit", str(DEMOS / "chelsea.jpg"), "--box", "100,40,330,260", "--prompt", "a fox, snow",
            "--expand", "--steps", "2", "--seed", "77", "--resolution", "64", "-o", str(out), "-q"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    recipe = read_recipe(edit_output(out, "chelsea"))
    expansion = recipe.parameters["prompt_expansion"]
    generation = recipe.parameters["generation"]
    assert expansion["words"] == "a fox, snow" and expansion["expander"] == LM and expansion["seed"] == 77
    assert expansion["target"] == "sd15" and len(expansion["model_sha256"]) == 64
    assert generation["prompt"] == expansion["prompt"] != "a fox, snow"
    assert generation["negative_prompt"] == expansion["negative_prompt"] != ""
    assert f"expanded prompt ({LM}, for Stable Diffusion 1.5, seed 77): {expansion['prompt']}" in err
    # sd-parsers still reads the parameters chunk: the prompt there is the one that generated
    result = edit_output(out, "chelsea")
    sampler = ParserManager().parse(Image.open(result)).samplers[0]
    assert [p.value for p in sampler.prompts] == [expansion["prompt"]]
    assert [p.value for p in sampler.negative_prompts] == [expansion["negative_prompt"]]
    assert sampler.parameters["seed"] == "77"
    text = read_png_text(result)["parameters"]
    assert expansion["options"] == {"precision": "int8", "max_new_tokens": 80,  # what shaped the answer
                                    "stop": "first paragraph, 75 CLIP tokens"}
    assert f'Prompt expander: {LM} int8 [{expansion["model_sha256"][:10]}]' in text
    assert 'Prompt words: "a fox, snow"' in text

    # How the words are expanded is part of the request: another expander is another edit, beside the first.
    assert main([*argv, "--expander", "rules"]) == 0
    assert len(list(out.glob("chelsea.replace-*.png"))) == 2
    shutil.rmtree(local_lm)  # replay needs no language model
    _forbid_expanders(monkeypatch)
    assert main(["replay", str(result), "-o", str(tmp_path / "again.png")]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert np.array_equal(read_image(result), read_image(tmp_path / "again.png"))
    assert read_recipe(tmp_path / "again.png").parameters["prompt_expansion"] == expansion
    # The same request again is done at once: its name comes from the words, not from the expansion.
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("nothing to do:")


def test_cheap_mistakes_are_found_before_the_language_model_loads(local_lm, tmp_path, capsys, monkeypatch):
    _forbid_expanders(monkeypatch)
    status = main(["edit", str(DEMOS / "no-such-photo.jpg"), "--box", "100,40,330,260", "--prompt", "a fox",
                   "--expand", "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and err == f"error: {DEMOS / 'no-such-photo.jpg'}: no such file or folder\n"


def test_background_expand_with_rules_and_a_style_after_it(deep, tmp_path, capsys):
    styles = tmp_path / "styles.csv"
    styles.write_text("name,prompt,negative_prompt\nwinter,\"{prompt}, winter\",summer\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--background", "beach, palm trees",
                 "--expand", "--expander", "rules", "--style", "winter", "--styles-file", str(styles),
                 "--negative", "people", "--steps", "2", "--seed", "3", "--resolution", "64", "-o", str(out),
                 "-q"]) == 0
    recipe = read_recipe(edit_output(out, "coffee"))
    expansion = recipe.parameters["prompt_expansion"]
    assert expansion["expander"] == "rules" and expansion["model_sha256"] is None
    assert recipe.parameters["generation"]["prompt"] == expansion["prompt"] + ", winter"
    assert expansion["negative_prompt"] == "people"  # the user's negative wins over the expander's
    assert recipe.parameters["generation"]["negative_prompt"] == "people, summer"


@pytest.mark.parametrize("argv, says", [
    (["--remove", "--expand"], "--expand writes the prompt"),
    (["--prompt", "", "--expand"], "nothing to expand"),
    (["--prompt", "x" * 2001, "--expand"], "at most 2000"),
    (["--prompt", "a fox", "--expander", "rules"], "go with --expand"),
    (["--prompt", "a fox", "--expand", "--expander", "openai", "--llm-model", "gpt 5"], "OpenAI model ID"),
    (["--prompt", "a fox", "--expand", "--expander", "openai", "--generator", "openai", "--dry-run"],
     "--dry-run sends nothing"),
])
def test_expand_bad_input_is_one_line(isolated_models, tmp_path, capsys, monkeypatch, argv, says):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", *argv, "-o", str(tmp_path / "o")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(err) == 1 and says in err[0], err


def test_a_tampered_expansion_is_one_line(local_lm, tmp_path, capsys):
    from editanything.imageio import write_image

    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--prompt", "a plant", "--expand",
                 "--expander", "rules", "--steps", "2", "--resolution", "64", "-o", str(out), "-q"]) == 0
    text = read_png_text(edit_output(out, "coffee"))
    text["editanything"] = text["editanything"].replace('"expander": "rules"', '"expander": 5')
    write_image(tmp_path / "bad.png", read_image(edit_output(out, "coffee")), text=text)
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "bad.png"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expander" in err[0]


def test_sketch_sd_lineart_expand_records_and_replays(models, tmp_path, capsys, monkeypatch):
    import json

    photo = tmp_path / "coffee.png"
    Image.fromarray(read_image(DEMOS / "coffee.jpg")).resize((72, 56)).save(photo)
    out = tmp_path / "out"
    assert main(["sketch", str(photo), "-o", str(out), "--style", "sd-lineart", "--prompt", "ink drawing, harbour",
                 "--expand", "--expander", "rules", "--seed", "9", "--param", "steps=2", "--param", "resolution=64",
                 "-q"]) == 0
    assert "expanded prompt (rules, for Stable Diffusion 1.5, seed 9): " in capsys.readouterr().err
    text = read_png_text(out / "coffee.png")
    recipe = json.loads(text["editanything"])
    expansion = recipe["parameters"]["prompt_expansion"]
    assert expansion["words"] == "ink drawing, harbour" and expansion["seed"] == 9
    assert recipe["parameters"]["sketch"]["prompt"] == expansion["prompt"] and "harbour" in expansion["prompt"]
    assert text["parameters"].startswith(expansion["prompt"] + "\nNegative prompt: " + expansion["negative_prompt"])
    assert 'Prompt words: "ink drawing, harbour"' in text["parameters"]
    _forbid_expanders(monkeypatch)
    capsys.readouterr()
    assert main(["replay", str(out / "coffee.png"), "-o", str(tmp_path / "again.png")]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert json.loads(read_png_text(tmp_path / "again.png")["editanything"])["parameters"]["prompt_expansion"] == expansion
    assert main(["sketch", str(photo), "-o", str(tmp_path / "p"), "--style", "pencil", "--expand",
                 "--prompt", "x"]) == 2
    assert "--expand writes a prompt for --style sd-lineart" in capsys.readouterr().err
