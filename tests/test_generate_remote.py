"""`generate --generator stability|openai`: hosted text to image (and image to image) against the local fake
of the services' documented generation endpoints (tests/fake_image_apis.py). No test reaches the network."""

import json
import logging

import cv2
import numpy as np
import pytest

from fake_image_apis import OPENAI_KEY, STABILITY_KEY, colour_for
from fake_image_apis import fake, server  # noqa: F401 (fixtures)
from editanything import read_image
from editanything.cli import main
from editanything.errors import InvalidInputError
from editanything.generate import GenerationParams
from editanything.generate.remote import DryRun, StabilityGenerator
from editanything.generation import GenerateRequest
from editanything.imageio import read_png_text
from editanything.pipeline import Editor
from editanything.recipe import read_recipe


def run(*argv) -> int:
    return main([str(a) for a in argv])


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error")]


@pytest.mark.parametrize("model, route, sent_model, credits", [
    ("core", "core", None, 3), ("ultra", "ultra", None, 8), ("sd3", "sd3", "sd3.5-large", 6.5),
    ("sd3.5-large-turbo", "sd3", "sd3.5-large-turbo", 4)])
def test_stability_generate_sends_each_endpoints_fields_and_saves_what_came_back(server, tmp_path, capsys, model,
                                                                                  route, sent_model, credits):
    out = tmp_path / "out"
    assert run("generate", "a tiger drinking from a river", "--generator", "stability", "--remote-model", model,
               "--negative", "blurry", "--seed", 7, "--batch-size", 2, "--width", 1344, "--height", 768,
               "-o", out, "-q") == 0, capsys.readouterr().err
    assert "the prompt goes to 127.0.0.1" in capsys.readouterr().err
    assert [r["path"] for r in server.log] == [f"/v2beta/stable-image/generate/{route}"] * 2
    expected = {"prompt": "a tiger drinking from a river", "negative_prompt": "blurry", "aspect_ratio": "16:9",
                "output_format": "png", **({"model": sent_model, "mode": "text-to-image"} if sent_model else {})}
    for request, seed in zip(server.log, (7, 8)):  # one request per seed: each image replays alone
        assert request["fields"] == {**expected, "seed": str(seed)} and request["files"] == {}
        assert request["headers"]["Authorization"] == f"Bearer {STABILITY_KEY}"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a-tiger-drinking-from-a-river-7.png", "a-tiger-drinking-from-a-river-8.png"]
    image = read_image(out / names[1])
    assert image.shape == (768, 1344, 3)  # the size the service chose for 16:9
    colour = colour_for(f"a tiger drinking from a river|blurry|{route}|{sent_model}", 8)
    assert (image[-1, -1] == colour).all()
    recipe = read_recipe(out / names[1])
    info = recipe.models["generator"]
    assert recipe.seed == 8 and info["remote"] and info["endpoint"] == f"generate/{route}"
    assert info["options"]["model"] == model and info["requests"][0]["request_id"].startswith("req_")
    assert [r["fields"]["seed"] for r in info["requests"]] == [7, 8]  # the batch's requests, in every image's recipe
    assert info["requests"][1]["answer_size"] == [1344, 768]
    text = read_png_text(out / names[1])["parameters"]
    assert f"Seed: 8, Size: 1344x768, Model: stability generate/{route}" in text
    assert "Steps" not in text and "Sampler" not in text  # the service ran no sampler of ours
    with pytest.raises(DryRun, match=f"{credits:g} credits per image x 1 = {credits:g} credits"):
        Editor(generator="stability", generator_options={"model": model, "dry_run": True}).generate(
            GenerateRequest(GenerationParams(prompt="x", seed=1)))


def test_stability_image_to_image_on_ultra_and_sd3_core_refused_before_sending(server, tmp_path, capsys):
    photo = np.full((300, 500, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "street.png"), photo)
    for model, extra in (("ultra", {}), ("sd3.5-medium", {"model": "sd3.5-medium", "mode": "image-to-image"})):
        out = tmp_path / f"{model}.png"
        assert run("generate", "pencil drawing of this street", "--image", tmp_path / "street.png", "--strength",
                   0.6, "--seed", 3, "--generator", "stability", "--remote-model", model, "-o", out, "-q") == 0, \
            capsys.readouterr().err
        request = server.log[-1]
        assert request["fields"] == {"prompt": "pencil drawing of this street", "strength": "0.6", "seed": "3",
                                     "output_format": "png", **extra}
        sent = cv2.imdecode(np.frombuffer(request["files"]["image"], np.uint8), cv2.IMREAD_COLOR)
        assert sent.shape == (616, 1024, 3)  # long side 1024, sides multiples of 8: as local img2img gets it
        recipe = read_recipe(out)
        assert recipe.operation == "generate:img2img" and recipe.inputs["size"] == [500, 300]
    server.log.clear()
    assert run("generate", "x", "--image", tmp_path / "street.png", "--generator", "stability",
               "-o", tmp_path / "core", "-q") == 2
    err = capsys.readouterr().err.strip()
    assert "Stable Image Core makes images from text only" in err and len(errors(err)) == 1
    assert server.log == [] and not (tmp_path / "core").exists()


def test_openai_generations_json_body_batches_of_ten_and_names_without_a_seed(server, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("generate", "a lighthouse at dawn", "--generator", "openai", "--remote-model", "gpt-image-1.5",
               "--batch-size", 12, "--width", 1536, "--height", 1024, "-o", out, "-q") == 0, capsys.readouterr().err
    assert [r["path"] for r in server.log] == ["/v1/images/generations"] * 2
    assert server.log[0]["headers"]["Content-Type"] == "application/json"
    assert [r["fields"] for r in server.log] == [
        {"model": "gpt-image-1.5", "prompt": "a lighthouse at dawn", "n": n, "size": "1536x1024",
         "output_format": "png"} for n in (10, 2)]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"a-lighthouse-at-dawn-{i}.png" for i in range(12))
    image = read_image(out / "a-lighthouse-at-dawn-3.png")
    assert image.shape == (1024, 1536, 3) and (image[0, 0] == colour_for("a lighthouse at dawn", 3)).all()
    recipe = read_recipe(out / "a-lighthouse-at-dawn-0.png")
    assert recipe.seed is None and recipe.models["generator"]["endpoint"] == "images/generations"
    assert "Seed" not in read_png_text(out / "a-lighthouse-at-dawn-0.png")["parameters"]  # OpenAI took none
    assert run("generate", "a lighthouse at dawn", "--generator", "openai", "-o", out, "-q") == 0
    assert (out / "a-lighthouse-at-dawn-12.png").exists()  # no seed to name it by: the next free number


@pytest.mark.parametrize("argv, message", [
    (["--generator", "openai", "--negative", "fog"], "takes no negative prompt: leave out --negative"),
    (["--generator", "openai", "--steps", "30"], "has no steps: leave out --steps"),
    (["--generator", "stability", "--sampler", "Euler", "--cfg", "4"], "has no sampler, cfg_scale"),
    (["--generator", "openai", "--width", "512", "--height", "512"], "makes images of 1024x1024, 1536x1024"),
    (["--generator", "stability", "--width", "1000", "--height", "200"], "aspect ratios 1:1, 16:9"),
    (["--generator", "openai", "--remote-model", "dall-e-2"], "takes the GPT image models"),
    (["--generator", "stability", "--remote-model", "sdxl"], "no generation model 'sdxl'"),
    (["--generator", "openai", "--image", "photo.png"], "makes images from text only"),
    (["--generator", "stability", "--lora", "x.safetensors:1"], "--lora are for local models"),
    (["--remote-model", "core"], "--remote-model go with --generator"),
])
def test_settings_a_hosted_endpoint_cannot_take_are_refused_in_one_line_before_sending(server, tmp_path, capsys,
                                                                                       argv, message):
    (tmp_path / "photo.png").write_bytes(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes())
    argv = [str(tmp_path / a) if a == "photo.png" else a for a in argv]
    assert run("generate", "a fox", "-o", tmp_path / "out", *argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert server.log == [] and not (tmp_path / "out").exists()


def test_dry_run_prints_requests_and_cost_sends_and_writes_nothing_and_needs_no_key(server, tmp_path, monkeypatch,
                                                                                     capsys):
    monkeypatch.delenv("STABILITY_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    out = tmp_path / "out"
    assert run("generate", "a red fox", "--generator", "stability", "--remote-model", "ultra", "--seed", 4,
               "--batch-count", 3, "--dry-run", "-o", out) == 0
    printed = capsys.readouterr().out
    assert f"would POST {server.url}/v2beta/stable-image/generate/ultra (multipart form)" in printed
    assert "prompt='a red fox'" in printed and "aspect_ratio='1:1'" in printed and "seed=4" in printed
    assert "8 credits per image x 3 = 24 credits (1 credit = $0.01)" in printed
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\n\na blue heron\n")
    assert run("generate", "--prompts-file", prompts, "--generator", "openai", "--dry-run", "-o", out) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(": would POST ")[0] for line in printed] == [f"{prompts}:1", f"{prompts}:3"]
    assert f"{server.url}/v1/images/generations (JSON)" in printed[1] and "prompt='a blue heron'" in printed[1]
    assert "not published in credits" in printed[1]
    assert server.log == [] and not out.exists()
    assert run("generate", "a fox", "--expand", "--expander", "openai", "--generator", "openai", "--dry-run",
               "-o", out) == 2
    assert "would send the words to OpenAI" in capsys.readouterr().err
    assert run("generate", "a fox", "--expand", "--expander", "rules", "--generator", "stability", "--seed", 5,
               "--dry-run", "-o", out) == 0
    captured = capsys.readouterr()
    expanded = captured.err.split("expanded prompt (rules, for Stability AI, seed 5): ")[1].splitlines()[0]
    assert expanded != "a fox" and f"prompt={expanded!r}" in captured.out  # what would be sent is the expansion


def test_429_is_retried_after_the_wait_asked_5xx_gives_up_in_one_line_quota_is_not_retried(server, tmp_path, capsys):
    server.script[:] = [(429, {"Retry-After": "2"}, {"name": "rate_limited", "errors": ["slow down"]})]
    assert run("generate", "a fox", "--generator", "stability", "--seed", 1, "-o", tmp_path / "a.png", "-q") == 0
    assert server.waits == [2.0] and len(server.log) == 2
    server.log.clear()
    server.script[:] = [(500, {}, {"name": "server_error", "errors": ["boom"]})] * 4
    assert run("generate", "a fox", "--generator", "stability", "-o", tmp_path / "b.png", "-q") == 2
    err = capsys.readouterr().err.strip()
    assert len(server.log) == 4 and "Stability AI generate/core: HTTP 500 server_error: boom" in err
    assert "gave up after 4 attempts" in err and len(errors(err)) == 1
    server.log.clear()
    server.script[:] = [(429, {}, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                             "code": "insufficient_quota"}})]
    assert run("generate", "a fox", "--generator", "openai", "-o", tmp_path / "c.png", "-q") == 2
    err = capsys.readouterr().err
    assert len(server.log) == 1 and "insufficient_quota" in err and "add credit to the account" in err
    assert not any((tmp_path / n).exists() for n in ("b.png", "c.png"))


def test_refusals_are_one_line_and_a_prompts_file_goes_on_past_them(server, tmp_path, capsys):
    assert run("generate", "a forbidden thing", "--generator", "openai", "-o", tmp_path / "x.png", "-q") == 2
    err = capsys.readouterr().err.strip()
    assert "moderation_blocked" in err and "the safety system refused it" in err and len(errors(err)) == 1
    assert run("generate", "please blurme", "--generator", "stability", "-o", tmp_path / "y.png", "-q") == 2
    assert "CONTENT_FILTERED" in capsys.readouterr().err
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,seed\na red apple,3\na forbidden pear,4\na green plum,5\n")
    out = tmp_path / "out"
    assert run("generate", "--prompts-file", prompts, "--generator", "stability", "-o", out, "-q") == 1
    captured = capsys.readouterr()
    assert "prompts.csv:3" in captured.err + captured.out and "content filter refused it" in captured.err + captured.out
    assert sorted(p.name for p in out.iterdir()) == ["0002-a-red-apple.png", "0004-a-green-plum.png"]
    assert read_recipe(out / "0004-a-green-plum.png").seed == 5


def test_the_key_is_written_nowhere_and_an_echoed_key_is_scrubbed(server, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    assert run("generate", "a fox", "--generator", "stability", "--seed", 2, "-o", out) == 0
    assert run("generate", "a fox", "--generator", "openai", "-o", out) == 0
    wrong = "sk-wrong-SECRET-00112233445566"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", wrong)
        assert run("generate", "a fox", "--generator", "openai", "-o", tmp_path / "w.png") == 2
    captured = capsys.readouterr()
    assert "invalid_api_key" in captured.err and "sk-***" in captured.err
    assert any("request id" in r.getMessage() for r in caplog.records)  # the log was captured
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()).decode("latin-1")
    for key in (STABILITY_KEY, OPENAI_KEY, wrong, wrong[:8]):
        for text in (captured.out, captured.err, caplog.text, written):
            assert key not in text, key


def test_replay_resends_with_the_seed_where_the_service_takes_one(server, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("generate", "a fox", "--generator", "stability", "--remote-model", "sd3.5-medium", "--seed", 9,
               "-o", out / "fox.png", "-q") == 0
    assert run("generate", "a fox", "--generator", "openai", "-o", out / "oai.png", "-q") == 0
    server.log.clear()
    assert run("replay", out / "fox.png", "-o", tmp_path / "again.png", "-q") == 0
    assert "same seed: identical to the original" in capsys.readouterr().out
    assert server.log[0]["fields"]["seed"] == "9" and server.log[0]["fields"]["model"] == "sd3.5-medium"
    assert run("replay", out / "oai.png", "-o", tmp_path / "again2.png", "-q") == 0
    assert "not compared: OpenAI takes no seed" in capsys.readouterr().out
    assert len(server.log) == 2


def test_a_recipe_cannot_send_the_key_elsewhere(server, tmp_path, capsys):
    out = tmp_path / "fox.png"
    assert run("generate", "a fox", "--generator", "stability", "--seed", 9, "-o", out, "-q") == 0
    text = read_png_text(out)
    recipe = json.loads(text["editanything"])
    recipe["models"]["generator"]["options"]["base_url"] = "https://collector.example"
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text["parameters"])
    info.add_text("editanything", json.dumps(recipe))
    Image.open(out).save(tmp_path / "forged.png", pnginfo=info)
    server.log.clear()
    assert run("replay", tmp_path / "forged.png", "-o", tmp_path / "r.png") == 2
    err = capsys.readouterr().err
    assert "models.generator.options.base_url" in err and server.log == []


def test_python_api_returns_what_was_sent_and_keeps_nothing_on_the_generator(server):
    generator = StabilityGenerator(model="ultra")
    editor = Editor(generator=generator)
    result = editor.generate(GenerateRequest(GenerationParams(prompt="a heron", seed=11, batch_size=2)))
    requests = result.recipe.models["generator"]["requests"]
    assert [r["fields"]["seed"] for r in requests] == [11, 12] and len(result.images) == 2
    assert not hasattr(generator, "requests") and not hasattr(generator, "last_seeds")
    with pytest.raises(InvalidInputError, match="aspect ratios"):
        editor.generate(GenerateRequest(GenerationParams(prompt="a heron", width=1000, height=200)))
