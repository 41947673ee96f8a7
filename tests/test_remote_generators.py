"""The hosted generators (Stability AI, OpenAI) against a local fake of their documented APIs on 127.0.0.1.

No test reaches the network: both backends are pointed at the fake through their base-URL variables.
"""

import json
import logging
import socket
import time

import cv2
import numpy as np
import pytest

from conftest import DEMOS, edit_output
from fake_image_apis import OPENAI_KEY, STABILITY_KEY, colour_for, decode, start
from fake_image_apis import fake, server  # noqa: F401 (fixtures)
from editanything import masks, read_image
from editanything.batch import edit_folder
from editanything.cli import main
from editanything.errors import InvalidInputError, RemoteServiceError
from editanything.generate import WEBUI_DEFAULTS, GenerationParams, get_generator
from editanything.generate.remote import ContentRefused, DryRun, OpenAIGenerator, StabilityGenerator
from editanything.generate.remote import http
from editanything.pipeline import Editor, EditRequest
from editanything.recipe import decode_mask, read_recipe

BOX = (180, 20, 410, 270)  # the cup in coffee.jpg


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def box_mask(shape, box=BOX):
    mask = np.zeros(shape[:2], bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    return mask


def edit(image, mask, generator, mode="replace", prompt="a corgi", seed=42, **kw):
    params = GenerationParams(prompt=prompt, seed=seed, **kw.pop("params", {}))
    return Editor(generator=generator).edit(image, EditRequest(mode=mode, mask=mask, params=params, **kw))


def outside_identical(before, after, mask, grow=8.0):
    outside = ~masks.grow(mask, grow + 1)
    return np.array_equal(before[outside], after[outside])


def test_stability_inpaint_edits_the_crop_only_and_keeps_outside_pixels_bit_exact(server, coffee):
    mask = box_mask(coffee.shape)
    result = edit(coffee, mask, "stability", seed=42)
    assert outside_identical(coffee, result.images[0], mask)
    inside = masks.shrink(mask, 20)
    assert np.abs(result.images[0][inside].astype(int) - colour_for("a corgi", 42)).max() <= 2
    (request,) = server.log
    assert request["path"] == "/v2beta/stable-image/edit/inpaint"
    assert request["headers"]["Authorization"] == f"Bearer {STABILITY_KEY}"
    assert request["headers"]["Accept"] == "application/json"
    assert request["fields"] == {"prompt": "a corgi", "grow_mask": "5", "seed": "42", "output_format": "png"}
    sent = decode(request["files"]["image"])
    assert sent.shape[0] < coffee.shape[0] and sent.shape[1] < coffee.shape[1]  # only the crop left the machine
    info = result.recipe.models["generator"]
    assert info["service"] == "Stability AI" and info["endpoint"] == "inpaint" and info["honours_seed"]
    (sent_request,) = info["requests"]
    assert sent_request["request_id"].startswith("req_") and sent_request["fields"]["seed"] == "42"
    assert sent_request["seed_used"] == 42 and sent_request["finish_reason"] == "SUCCESS"
    parameters = result.png_text()["parameters"]
    assert "Seed: 42" in parameters and "Model: stability inpaint" in parameters and "Steps" not in parameters


def test_each_endpoint_gets_the_mask_encoding_it_documents(server, coffee):
    mask = box_mask(coffee.shape)
    edit(coffee, mask, "stability")
    stability_mask = decode(server.log[-1]["files"]["mask"])
    assert stability_mask.ndim == 2 and set(np.unique(stability_mask)) == {0, 255}  # grey, white = edit
    edit(coffee, mask, OpenAIGenerator(model="gpt-image-1"))
    request = server.log[-1]
    openai_mask, image = decode(request["files"]["mask"]), decode(request["files"]["image"])
    assert openai_mask.shape[2] == 4 and openai_mask.shape[:2] == image.shape[:2]
    edited = openai_mask[:, :, 3] == 0  # transparent = edit
    assert 0 < edited.mean() < 1 and set(np.unique(openai_mask[:, :, 3])) == {0, 255}
    # on a square crop both masks mark the selected pixels (OpenAI's scaled up to 1024x1024)
    crop, selected = coffee[:200, :200], np.zeros((200, 200), bool)
    selected[50:120, 30:90] = True
    _, files = StabilityGenerator().for_edit(EditRequest(mask=selected))._uploads(crop, selected, "inpaint")
    assert np.array_equal(decode(files["mask"].data) == 255, selected)
    _, files = OpenAIGenerator()._uploads(crop, selected)
    alpha = decode(files["mask"].data)[:, :, 3]
    transparent = cv2.resize(alpha, (200, 200), interpolation=cv2.INTER_NEAREST) == 0
    assert transparent[selected].all() and not transparent[~masks.grow(selected, 2)].any()  # scaling blurs an edge

def test_openai_edit_with_gpt_image_and_dalle2(server, coffee):
    mask = box_mask(coffee.shape)
    result = edit(coffee, mask, OpenAIGenerator(model="gpt-image-1"), params={"batch_size": 2})
    assert len(result.images) == 2 and all(outside_identical(coffee, im, mask) for im in result.images)
    request = server.log[-1]
    assert request["path"] == "/v1/images/edits" and request["headers"]["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert request["fields"]["model"] == "gpt-image-1" and request["fields"]["n"] == "2"
    assert request["fields"]["size"] in ("1024x1024", "1536x1024", "1024x1536") and "seed" not in request["fields"]
    assert result.recipe.models["generator"]["requests"][0]["request_id"].startswith("req_")
    edit(coffee, mask, OpenAIGenerator(model="dall-e-2"))
    assert server.log[-1]["fields"]["response_format"] == "b64_json"


def test_size_limits_are_met_before_sending(server, coffee):
    # a thin crop (sides < 64 px, aspect beyond 2.5:1) is padded and scaled into Stability's limits
    thin = np.zeros(coffee.shape[:2], bool)
    thin[200:210, 40:560] = True
    result = edit(coffee, thin, "stability", grow=2, feather=2)
    assert outside_identical(coffee, result.images[0], thin, 2)
    h, w = decode(server.log[-1]["files"]["image"]).shape[:2]
    assert min(h, w) >= 64 and 1 / 2.5 <= w / h <= 2.5
    # a 3.6-megapixel full-image edit of noise: its PNG would pass 10 MiB, so it is sent smaller
    noise = np.random.default_rng(0).integers(0, 256, (1400, 2600, 3), np.uint8)
    everything = np.ones(noise.shape[:2], bool)
    result = edit(noise, everything, "stability", full_image=True)
    assert result.images[0].shape == noise.shape and server.log[-1]["length"] < 10 * 1024 * 1024
    # dall-e-2 takes squares of 256, 512 or 1024 px: the smallest that holds the crop, else 1024
    for side, expected in ((150, "256x256"), (300, "512x512"), (900, "1024x1024")):
        square = np.zeros(noise.shape[:2], bool)
        square[200:200 + side, 300:300 + side] = True
        result = edit(noise, square, OpenAIGenerator(model="dall-e-2"), grow=0, feather=0)
        assert server.log[-1]["fields"]["size"] == expected and outside_identical(noise, result.images[0], square, 0)
    # GPT image models take three sizes: a tall crop goes as 1024x1536
    tall = np.zeros(coffee.shape[:2], bool)
    tall[10:460, 300:400] = True
    edit(coffee, tall, OpenAIGenerator(model="gpt-image-1"))
    assert server.log[-1]["fields"]["size"] == "1024x1536"


def test_429_with_retry_after_then_success(server, coffee):
    mask = box_mask(coffee.shape)
    server.script.append((429, {"Retry-After": "3"}, {"id": "x", "name": "rate_limit_exceeded",
                                                      "errors": ["You have exceeded the rate limit"]}))
    result = edit(coffee, mask, "stability")
    assert len(server.log) == 2 and server.waits == [3.0]
    assert outside_identical(coffee, result.images[0], mask)
    server.script.append((429, {"retry-after-ms": "250"}, {"error": {"message": "Rate limit reached", "type": "requests",
                                                                     "param": None, "code": "rate_limit_exceeded"}}))
    edit(coffee, mask, OpenAIGenerator())
    assert server.waits == [3.0, 0.25]
    # asking for more than the cap on waiting fails at once, saying so
    server.script.append((429, {"Retry-After": "600"}, {"id": "x", "name": "rate_limit_exceeded", "errors": ["slow"]}))
    with pytest.raises(RemoteServiceError, match="asked to wait 600 s.*cap on waiting is 60 s"):
        edit(coffee, mask, "stability")


def test_quota_errors_are_not_retried(server, coffee):
    server.script.append((429, {}, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                              "param": None, "code": "insufficient_quota"}}))
    with pytest.raises(RemoteServiceError, match="insufficient_quota.*add credit"):
        edit(coffee, box_mask(coffee.shape), OpenAIGenerator())
    assert len(server.log) == 1 and server.waits == []


def test_500s_then_a_failure_named_in_the_batch_report(server, coffee, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(photos / name), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "mask.png"), box_mask(coffee.shape).astype(np.uint8) * 255)
    server.script += [(500, {}, {"id": "e1", "name": "internal_error", "errors": ["An unexpected server error"]})] * 4
    status = main(["edit", str(photos), "--mask", str(tmp_path / "mask.png"), "--prompt", "a corgi",
                   "--generator", "stability", "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert status == 1
    assert [p.name.split(".")[0] for p in (tmp_path / "out").glob("*.png")] == ["b"]
    assert "a.png" in err and "HTTP 500 internal_error" in err and "gave up after 4 attempts" in err
    assert len(server.log) == 5 and len(server.waits) == 3


def test_content_filter_refusals_are_one_line_errors(server, coffee):
    mask = box_mask(coffee.shape)
    with pytest.raises(ContentRefused, match="content_moderation.*content filter refused") as refused:
        edit(coffee, mask, "stability", prompt="a forbidden thing")
    assert "\n" not in str(refused.value)
    with pytest.raises(ContentRefused, match="CONTENT_FILTERED"):
        edit(coffee, mask, "stability", prompt="blurme")
    with pytest.raises(ContentRefused, match="moderation_blocked.*safety system"):
        edit(coffee, mask, OpenAIGenerator(), prompt="a forbidden thing")
    assert len(server.log) == 3  # refusals are not retried


def test_a_timeout_is_a_one_line_error(server, coffee):
    server.delay = 1.0
    with pytest.raises(RemoteServiceError, match=r"did not answer within 0.3 s"):
        edit(coffee, box_mask(coffee.shape), StabilityGenerator(timeout=0.3))
    server.delay = 0.0


def test_a_missing_key_names_the_variable(server, coffee, monkeypatch, capsys):
    monkeypatch.delenv("STABILITY_API_KEY")
    with pytest.raises(InvalidInputError, match="STABILITY_API_KEY"):
        get_generator("stability")
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut",
                   "--prompt", "x", "--generator", "stability", "-o", "/tmp/unused-remote"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert status == 2 and len(errors) == 1 and "STABILITY_API_KEY" in errors[0]
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(InvalidInputError, match="OPENAI_API_KEY"):
        OpenAIGenerator()
    assert server.log == []


def test_unsupported_webui_settings_are_named(server, coffee):
    mask = box_mask(coffee.shape)
    with pytest.raises(InvalidInputError, match="inpaint endpoint has no steps, cfg_scale.*--steps, --cfg"):
        edit(coffee, mask, "stability", params={"steps": 30, "cfg_scale": 5.0})
    with pytest.raises(InvalidInputError, match="images/edits endpoint has no negative_prompt.*--negative"):
        edit(coffee, mask, OpenAIGenerator(), params={"negative_prompt": "blurry"})
    with pytest.raises(InvalidInputError, match="erase endpoint takes no prompt"):
        edit(coffee, mask, "stability", mode="remove", prompt="a corgi")
    with pytest.raises(InvalidInputError, match="cannot edit with a mask"):
        OpenAIGenerator(model="dall-e-3")
    assert server.log == []


@pytest.mark.parametrize("extra, message", [
    (["--search-and-replace"], "--search-and-replace go with --generator"),
    (["--dry-run"], "--dry-run go with --generator"),
    (["--generator", "stability", "--lora", "x.safetensors:1"], "--lora are for local Stable Diffusion"),
    (["--generator", "openai", "--search-and-replace"], "OpenAI has none"),
    (["--generator", "stability", "--remote-model", "dall-e-2"], "picks an OpenAI model"),
])
def test_hosted_options_that_do_not_fit_are_refused(server, tmp_path, capsys, extra, message):
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--prompt", "x",
                   "-o", str(tmp_path / "out"), *extra])
    assert status == 2 and message in capsys.readouterr().err and server.log == []


def test_remove_erases_and_background_polls_the_async_relight(server, coffee):
    mask = box_mask(coffee.shape)
    result = edit(coffee, mask, "stability", mode="remove", prompt="")
    request = server.log[-1]
    assert request["path"].endswith("/erase") and "prompt" not in request["fields"] and "mask" in request["files"]
    assert outside_identical(coffee, result.images[0], mask)
    server.log.clear()
    result = edit(coffee, mask, "stability", mode="background", prompt="a beach")
    gid = result.recipe.models["generator"]["requests"][0]["generation_id"]
    assert [(r["method"], r["path"]) for r in server.log] == [
        ("POST", "/v2beta/stable-image/edit/replace-background-and-relight"),
        ("GET", f"/v2beta/results/{gid}"), ("GET", f"/v2beta/results/{gid}")]  # 202 in progress, then 200
    assert server.log[0]["fields"]["background_prompt"] == "a beach" and "subject_image" in server.log[0]["files"]
    assert np.array_equal(coffee[mask], result.images[0][mask])  # the subject is never repainted


def test_dry_run_prints_the_request_and_sends_nothing(server, coffee, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("STABILITY_API_KEY")  # a dry run needs no key
    out = tmp_path / "out"
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut",
                   "--prompt", "a corgi", "--seed", "7", "--batch-count", "2", "--generator", "stability",
                   "--dry-run", "-o", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and server.log == [] and not out.exists()
    assert "coffee.jpg: would POST " + server.url + "/v2beta/stable-image/edit/inpaint" in printed
    assert "prompt='a corgi'" in printed and "seed='7'" in printed and "grayscale PNG, white = edit" in printed
    assert "5 credits per image x 2 = 10 credits" in printed
    with pytest.raises(DryRun, match="not published in credits"):
        edit(coffee, box_mask(coffee.shape), OpenAIGenerator(dry_run=True))


def test_replay_resends_and_compares_only_where_the_seed_is_honoured(server, coffee, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "mask.png"), box_mask(coffee.shape).astype(np.uint8) * 255)
    for generator, verdict in (("stability", "same seed: identical to the original; a remote service may not"),
                               ("openai", "not compared: OpenAI takes no seed")):
        out = tmp_path / generator
        assert main(["edit", str(DEMOS / "coffee.jpg"), "--mask", str(tmp_path / "mask.png"), "--prompt", "a corgi",
                     "--seed", "5", "--generator", generator, "-o", str(out), "-q"]) == 0
        sent = len(server.log)
        assert main(["replay", str(edit_output(out, "coffee"))]) == 0
        assert len(server.log) == sent + 1  # re-sent
        assert verdict in capsys.readouterr().out


def test_search_and_replace_end_to_end_and_the_key_is_written_nowhere(deep, server, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    args = ["edit", str(DEMOS / "coffee.jpg"), "--select", "cup", "--box-threshold", "0.05", "--text-threshold",
            "0.05", "--prompt", "a corgi", "--seed", "3", "--generator", "stability", "-o", str(out)]
    assert main(args) == 0
    assert server.log[-1]["path"].endswith("/inpaint")
    out = tmp_path / "search"
    assert main(args[:-2] + ["--search-and-replace", "-o", str(out)]) == 0
    request = server.log[-1]
    assert request["path"].endswith("/search-and-replace") and request["fields"]["search_prompt"] == "cup"
    assert "mask" not in request["files"]
    recipe = read_recipe(edit_output(out, "coffee"))
    assert recipe.models["generator"]["endpoint"] == "search-and-replace"
    before, after = read_image(DEMOS / "coffee.jpg"), read_image(edit_output(out, "coffee"))
    assert outside_identical(before, after, decode_mask(recipe.parameters["mask"]), recipe.parameters["grow"])
    # failures that involve the key: a wrong OpenAI key (the service echoes part of it) and a refusal
    main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut", "--prompt",
          "a forbidden thing", "--generator", "stability", "-o", str(tmp_path / "refused")])
    wrong = "sk-wrong-SECRET-0123456789"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", wrong)
        assert main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut",
                     "--prompt", "x", "--generator", "openai", "-o", str(tmp_path / "wrong")]) == 1
    captured = capsys.readouterr()
    assert "invalid_api_key" in captured.err and "sk-***" in captured.err
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    texts = [captured.out, captured.err, caplog.text, json.dumps(recipe.to_json()), written.decode("latin-1")]
    assert any("request id" in r.getMessage() for r in caplog.records)  # the log was captured
    for key in (STABILITY_KEY, OPENAI_KEY, wrong, wrong[:8]):
        assert all(key not in text for text in texts), key


def test_retry_after_accepts_an_http_date():
    assert http.retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert http.retry_after({"retry-after": "soon"}) is None
    assert http.retry_after({}) is None


def test_batch_goes_on_after_a_refusal(server, coffee, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(photos / name), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    server.script.append((403, {}, {"id": "m", "name": "content_moderation", "errors": ["flagged"]}))
    request = EditRequest(mask=box_mask(coffee.shape), params=GenerationParams(prompt="a corgi", seed=1))
    report = edit_folder([photos], tmp_path / "out", request, editor={"generator": "stability"}, progress=False)
    assert [p.name for p in report.done] == ["b.png"]
    ((failed, reason),) = report.failed
    assert failed.name == "a.png" and "content filter refused" in reason


def test_ui_generates_at_the_chosen_service_and_says_the_crop_leaves(server, coffee, isolated_models):
    gradio_client = pytest.importorskip("gradio_client")
    import httpx

    from editanything.ui.app import build_app, serve
    from editanything.ui.remote import PRIVACY_NOTE

    demo = build_app(Editor(segmenter="grabcut", generator="classical"))
    url = serve(demo, port=free_port(), block=False, quiet=True)
    try:
        client = gradio_client.Client(url, verbose=False)
        client.predict(gradio_client.handle_file(str(DEMOS / "coffee.jpg")), "[]", json.dumps([list(BOX)]), False, 8,
                       api_name="/segment_points")
        result, _, png, info, _ = client.predict(photo=None, chosen=[0], invert=False, grow=8, feather=8,
                                              prompt="a corgi", negative="", sampler=WEBUI_DEFAULTS["sampler"],
                                              steps=25, cfg=7, seed=42, strength=1, color="#ff0000",
                                              generator="Stability AI (hosted)", api_name="/replace")
        (request,) = server.log
        assert request["path"].endswith("/inpaint") and request["fields"]["seed"] == "42"
        recipe = read_recipe(png)
        assert recipe.models["generator"]["service"] == "Stability AI" and "with stability" in info
        assert outside_identical(coffee, read_image(result), decode_mask(recipe.parameters["mask"]), 8)
        page = httpx.get(url + "config", timeout=30).text
        assert PRIVACY_NOTE[:60] in page and STABILITY_KEY not in page and STABILITY_KEY not in info
    finally:
        demo.close()


# -- keys go only where the user sent them ------------------------------------------------------------


def test_a_redirect_to_another_origin_is_not_followed_and_never_sees_the_key(server, coffee):
    elsewhere = start("other-stability-key", "other-openai-key")
    try:
        target = elsewhere.url + "/v2beta/stable-image/edit/inpaint"
        server.script.append((302, {"Location": target}, {"moved": True}))
        with pytest.raises(RemoteServiceError, match=r"HTTP 302, a redirect to http://127\.0\.0\.1:\d+: not followed"):
            edit(coffee, box_mask(coffee.shape), "stability")
        server.script.append((307, {"Location": elsewhere.url + "/v1/images/edits"}, {"moved": True}))
        with pytest.raises(RemoteServiceError, match="HTTP 307.*not followed"):
            edit(coffee, box_mask(coffee.shape), OpenAIGenerator())
        # a redirect to the same origin is not followed either: the answer is refused, not retried
        server.script.append((301, {"Location": "/v2beta/stable-image/edit/inpaint"}, {}))
        with pytest.raises(RemoteServiceError, match="HTTP 301"):
            edit(coffee, box_mask(coffee.shape), "stability")
        assert elsewhere.log == [] and len(server.log) == 3
    finally:
        elsewhere.shutdown()


@pytest.mark.parametrize("bad", ["sk-live\nX-Injected: 1", "sk-with space", "sk-tab\there", "sk-ünïcode", "sk-\x00nul"])
def test_a_key_with_characters_no_key_has_is_refused_naming_the_variable_not_the_value(server, coffee, monkeypatch,
                                                                                      capsys, bad):
    monkeypatch.setenv("STABILITY_API_KEY", bad.replace("\x00", "\x01"))
    with pytest.raises(InvalidInputError, match="STABILITY_API_KEY holds characters") as refused:
        StabilityGenerator()
    assert "sk-" not in str(refused.value)
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut",
                   "--prompt", "x", "--generator", "stability", "-o", "/tmp/unused-remote"])
    captured = capsys.readouterr()
    assert status == 2 and "STABILITY_API_KEY" in captured.err and "sk-" not in captured.out + captured.err
    assert server.log == []


def _echoes(key: str) -> list[tuple[int, dict, object]]:
    """Every kind of error body a service might send back, each quoting the key (whole or cut short)."""
    cut = key[:13]
    return [
        (400, {}, {"id": "e", "name": "bad_request", "errors": [f"authorization: Bearer {key} is malformed"]}),
        (400, {}, {"id": "e", "name": f"bad {key}", "errors": []}),
        (400, {}, {"message": f"the key {key} is wrong"}),
        (401, {}, {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
                             "param": None, "code": "invalid_api_key"}}),
        (400, {}, {"error": {"message": f"key {cut}", "type": "x", "param": None, "code": f"code-{cut}"}}),
        (400, {"Content-Type": "text/plain"}, ("x" * 180 + " " + key).encode()),  # cut off at 200 characters
        (400, {}, f"<html><body>Bearer {key}</body></html>".encode()),
        (418, {}, f"plain text {cut}".encode()),
        (500, {}, {"id": "e", "name": "internal", "errors": [key]}),
    ]


@pytest.mark.parametrize("service", ["stability", "openai"])
def test_error_bodies_echoing_the_key_are_quoted_without_it(server, coffee, service):
    key = STABILITY_KEY if service == "stability" else OPENAI_KEY
    generator = StabilityGenerator(attempts=1) if service == "stability" else OpenAIGenerator(attempts=1)
    messages = []
    for answer in _echoes(key):
        server.script.append(answer)
        with pytest.raises(RemoteServiceError) as failed:
            edit(coffee, box_mask(coffee.shape), generator)
        messages.append(str(failed.value))
    assert len(server.log) == len(messages)
    assert any("x" * 100 in m for m in messages)  # the bodies were quoted, so the scrubbing was tested
    for message in messages:
        assert key[:http.SCRUB_PREFIX] not in message, message


def test_scrub_removes_the_key_and_any_prefix_of_it():
    key = "sk-abcdefghijklmnop"
    assert http.scrub(f"a {key} b {key[:9]}| c {key[:5]}", key) == f"a *** b ***| c {key[:5]}"
    assert http.scrub("nothing here", key) == "nothing here"


@pytest.mark.parametrize("url, allowed", [
    ("https://api.example.com", True), ("http://127.0.0.1:9", True), ("http://localhost:9", True),
    ("http://[::1]:9", True), ("http://api.example.com", False), ("http://10.0.0.5:8080", False),
    ("file:///etc/passwd", False), ("ftp://example.com", False), ("https://user:pw@example.com", False),
])
def test_base_urls_that_would_expose_the_key_are_refused(server, monkeypatch, url, allowed):
    monkeypatch.setenv("STABILITY_BASE_URL", url)
    if allowed:
        StabilityGenerator()
    else:
        with pytest.raises(InvalidInputError, match="STABILITY_BASE_URL|plain http") as refused:
            StabilityGenerator()
        assert STABILITY_KEY not in str(refused.value)


def test_plain_http_to_another_machine_needs_allow_insecure_and_the_dry_run_says_so(server, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.setenv("STABILITY_BASE_URL", "http://api.example.com")
    args = ["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--segmenter", "grabcut",
            "--prompt", "a corgi", "--generator", "stability", "--dry-run", "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "plain http to another machine" in err and "--allow-insecure" in err
    assert main(args + ["--allow-insecure"]) == 0
    assert "UNENCRYPTED" in capsys.readouterr().out
    monkeypatch.setenv(http.INSECURE_VARIABLE, "1")
    assert main(args) == 0 and "UNENCRYPTED" in capsys.readouterr().out
    assert server.log == []


# -- answers are bounded before they are decoded --------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """The start of a PNG claiming width x height (a decompression bomb's header; no pixel data needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1 << 16)))
            + chunk(b"IEND", b""))


def _answer(image_bytes: bytes) -> tuple[int, dict, object]:
    import base64

    return 200, {}, {"image": base64.b64encode(image_bytes).decode(), "finish_reason": "SUCCESS", "seed": 1}


def test_answers_that_are_too_big_or_the_wrong_size_are_refused_before_decoding(server, coffee):
    mask = box_mask(coffee.shape)
    server.script.append(_answer(_png_header(20000, 20000)))  # 400 MP
    with pytest.raises(RemoteServiceError, match="over the limit of .* pixels: a bad answer, not decoded"):
        edit(coffee, mask, "stability")
    server.script.append(_answer(cv2.imencode(".png", np.zeros((3, 7, 3), np.uint8))[1].tobytes()))
    with pytest.raises(RemoteServiceError, match=r"a 7x3 image for a \d+x\d+ request: a bad answer"):
        edit(coffee, mask, "stability")
    server.script.append((200, {"Content-Length": str(400 * 1024 * 1024)}, b"{}"))  # declared, not sent
    with pytest.raises(RemoteServiceError, match="answered with 419,430,400 bytes, over the cap of .* bytes for an"):
        edit(coffee, mask, "stability")
    server.script.append((200, {"Content-Length": None}, b" " * (4 * 1024 * 1024)))  # no length: read to the cap
    with pytest.raises(RemoteServiceError, match="answered with over the cap of .* bytes for an answer to POST"):
        edit(coffee, mask, OpenAIGenerator(model="dall-e-2"))
    server.script.append((200, {}, {"data": [{"b64_json": "not base64!"}]}))
    with pytest.raises(RemoteServiceError, match="not base64"):
        edit(coffee, mask, OpenAIGenerator(model="dall-e-2"))
    # a good answer records the size received
    result = edit(coffee, mask, "stability")
    (request,) = result.recipe.models["generator"]["requests"]
    assert request["answer_size"] == list(decode(server.log[-1]["files"]["image"]).shape[1::-1])


def test_the_timeout_is_per_answer_not_per_read(server, coffee):
    import time

    server.drip = 0.25  # one byte every 0.25 s: every read is quick, the answer never ends
    started = time.monotonic()
    try:
        with pytest.raises(RemoteServiceError, match=r"did not answer within 1 s"):
            edit(coffee, box_mask(coffee.shape), StabilityGenerator(timeout=1.0))
    finally:
        server.drip = 0.0
    assert time.monotonic() - started < 4


def test_a_service_that_stops_answering_fails_the_rest_of_the_batch_fast_and_a_rerun_resumes(server, coffee,
                                                                                            tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(7):
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "mask.png"), box_mask(coffee.shape).astype(np.uint8) * 255)
    args = ["edit", str(photos), "--mask", str(tmp_path / "mask.png"), "--prompt", "a corgi",
            "--generator", "stability", "-o", str(tmp_path / "out"), "-q"]
    server.script += [(503, {}, {"id": "e", "name": "unavailable", "errors": ["down"]})] * 4 * 3
    assert main(args) == 1
    err = "".join(capsys.readouterr())
    assert len(server.log) == 12  # three photos, four attempts each; the other four never sent
    assert err.count("HTTP 503") == 3 and "Stability AI is not answering; 4 photos not sent (a re-run" in err
    assert "0 done" in err and "7 failed" in err
    assert main(args) == 0  # the service is back: a re-run sends all seven
    assert "7 done" in "".join(capsys.readouterr()) and len(server.log) == 12 + 7


def test_the_breaker_counts_timeouts_and_only_in_a_row(server, coffee):
    generator = StabilityGenerator(timeout=3.0)  # generous: the healthy answer must not time out
    mask = box_mask(coffee.shape)
    server.delay = 4.0
    for _ in range(2):
        with pytest.raises(RemoteServiceError, match="did not answer"):
            edit(coffee, mask, generator)
    server.delay = 0.0
    edit(coffee, mask, generator)  # an answer resets the count
    server.delay = 4.0
    for _ in range(3):
        with pytest.raises(RemoteServiceError, match="did not answer"):
            edit(coffee, mask, generator)
    server.delay = 0.0
    with pytest.raises(RemoteServiceError, match="Stability AI is not answering; not sent"):
        edit(coffee, mask, generator)
    assert len(server.log) == 6


def test_requests_go_through_the_proxy_the_environment_names(server, coffee, monkeypatch):
    import socketserver
    import threading

    tunnels = []

    class Connect(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            tunnels.append(line.split()[:2])
            host, port = line.split()[1].rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

            def pipe(a, b):
                while data := a.recv(65536):
                    b.sendall(data)
                b.shutdown(socket.SHUT_WR)

            threading.Thread(target=pipe, args=(upstream, self.connection), daemon=True).start()
            pipe(self.connection, upstream)

    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Connect)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for variable in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        result = edit(coffee, box_mask(coffee.shape), "stability")
        assert tunnels == [["CONNECT", server.url.removeprefix("http://")]] and len(server.log) == 1
        assert outside_identical(coffee, result.images[0], box_mask(coffee.shape))
    finally:
        proxy.shutdown()


@pytest.mark.parametrize("generator, smuggled", [
    ("stability", {"base_url": None}), ("openai", {"base_url": None}),
    ("stability", {"allow_insecure": True}), ("openai", {"timeout": 0.001}),
])
def test_replay_takes_no_url_or_other_setting_from_a_recipe(server, coffee, tmp_path, capsys, generator, smuggled):
    """A crafted PNG cannot send the key elsewhere: replay refuses every recipe option outside its allow-list,
    in one line, before anything is sent; the endpoint comes from STABILITY_BASE_URL / OPENAI_BASE_URL only."""
    from editanything.imageio import read_png_text, write_image
    from editanything.recipe import RECIPE_KEY
    from fake_image_apis import start

    cv2.imwrite(str(tmp_path / "mask.png"), box_mask(coffee.shape).astype(np.uint8) * 255)
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--mask", str(tmp_path / "mask.png"), "--prompt", "a corgi",
                 "--seed", "5", "--generator", generator, "-o", str(out), "-q"]) == 0
    elsewhere = start(STABILITY_KEY, OPENAI_KEY)  # where the crafted recipe would send the key
    try:
        edited = edit_output(out, "coffee")
        recipe = read_recipe(edited)
        options = recipe.models["generator"]["options"]
        options.update({k: elsewhere.url if v is None else v for k, v in smuggled.items()})
        crafted = tmp_path / "crafted.png"
        text = {**read_png_text(edited), RECIPE_KEY: recipe.to_json()}
        write_image(crafted, read_image(edited), text=text)
        capsys.readouterr()
        sent = len(server.log)
        assert main(["replay", str(crafted), "--image", str(DEMOS / "coffee.jpg"), "-o", str(tmp_path / "r.png")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"options.{next(iter(smuggled))}" in err
        assert elsewhere.log == [] and len(server.log) == sent  # nothing went anywhere
    finally:
        elsewhere.shutdown()
