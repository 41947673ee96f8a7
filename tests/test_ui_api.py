"""The web UI's named API endpoints, called through gradio_client against a server on 127.0.0.1.

The app runs the weight-free backends (GrabCut, OpenCV inpainting) and, in one module fixture, a tiny
random-weight SAM. Results are checked against the library called directly on the same input (the
UI must add no logic), plus geometry on a real photo.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
import gradio as gr  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from editanything import EditAnythingError, InvalidInputError, masks  # noqa: E402
from editanything.generate import ClassicalGenerator, GenerationParams  # noqa: E402
from editanything.imageio import read_image  # noqa: E402
from editanything.pipeline import EditRequest, Editor  # noqa: E402
from editanything.recipe import array_sha256, decode_mask, read_recipe  # noqa: E402
from editanything.replay import prepare_replay  # noqa: E402
from editanything.segment import GrabCutSegmenter, SamSegmenter  # noqa: E402
from editanything.sketch import sketch  # noqa: E402
from editanything.types import Prompt  # noqa: E402
from editanything.ui.app import Handlers, build_app, serve  # noqa: E402
from editanything.ui.uploads import unzip_images  # noqa: E402
from editanything.ui.state import CLICK_MODES, Session  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import build_tiny_sam  # noqa: E402

DEMOS = Path(__file__).resolve().parents[1] / "demos"
COFFEE = DEMOS / "coffee.jpg"
CUP_CLICKS = [(290, 60, 1), (290, 150, 1), (200, 250, 0)]
MAX_PIXELS = 1_000_000
MAX_FILE_SIZE = 2_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(editor: Editor, **options):
    """The app on 127.0.0.1 at a free port, closed afterwards."""
    demo = build_app(editor, max_pixels=MAX_PIXELS, **options)
    url = serve(demo, port=free_port(), block=False, quiet=True, max_file_size=MAX_FILE_SIZE)
    try:
        yield demo, url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("models")
    mp.setenv("EDITANYTHING_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("EDITANYTHING_HOME", str(root / "home"))
    mp.setenv("HF_HOME", str(root / "hf"))
    try:
        with running(Editor(segmenter="auto", detector="auto", generator="auto")) as (demo, url):
            yield demo, url
    finally:
        mp.undo()


@pytest.fixture
def client(app):
    return Client(app[1], verbose=False)


@pytest.fixture(scope="module")
def coffee():
    return read_image(COFFEE)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def cup_top(shape):
    region = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(region, (291, 112), (117, 95), 0, 0, 360, 1, -1)
    return region.astype(bool)


def segment(client, points, photo=COFFEE, boxes="[]", grow=8):
    return client.predict(handle_file(str(photo)) if photo else None, json.dumps(points), boxes, False, grow,
                          api_name="/segment_points")


def edit_args(chosen=(0,), prompt="", grow=8, feather=8, seed=1234, color="#ff0000"):
    return dict(photo=None, chosen=list(chosen), invert=False, grow=grow, feather=feather, prompt=prompt, negative="",
                sampler="Euler a", steps=20, cfg=7, seed=seed, strength=1, color=color)


def test_segment_points_gives_the_segmenters_mask_of_the_cup(client, coffee):
    canvas, mask_file, instances, points, boxes, info = segment(client, CUP_CLICKS)
    mask = read_image(mask_file, gray=True) > 127
    expected = GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS)).masks[0]
    assert np.array_equal(mask, expected)  # the UI adds nothing to the segmenter
    assert iou(mask, cup_top(coffee.shape)) > 0.85
    assert json.loads(points) == [list(p) for p in CUP_CLICKS] and json.loads(boxes) == []
    assert instances["choices"] == [["your selection", 0]] and instances["value"] == [0]
    assert "coffee.jpg" in info and "600×400" in info
    view = read_image(canvas).astype(int)
    assert view.shape == coffee.shape
    inside = masks.shrink(mask, 10)
    assert np.abs(view[inside] - coffee[inside]).mean() > 20  # the selection is tinted
    far = ~masks.grow(mask, 40)
    far[:40] = False  # the instance label is drawn above the box
    assert np.abs(view[far] - coffee[far]).mean() < 4  # the rest is the photo (JPEG view)


def test_a_further_click_refines_the_previous_mask_like_the_segmenter(client, coffee):
    first, more = CUP_CLICKS[:1], CUP_CLICKS[:2]
    segment(client, first)
    mask = read_image(segment(client, more, photo=None)[1], gray=True) > 127
    seg = GrabCutSegmenter()
    seed = seg.segment(coffee, Prompt(points=first)).refine_seed
    assert np.array_equal(mask, seg.segment(coffee, Prompt(points=more), refine=seed).masks[0])
    # Typed clicks that do not extend the last ones start afresh.
    mask = read_image(segment(client, CUP_CLICKS[1:2], photo=None)[1], gray=True) > 127
    assert np.array_equal(mask, GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS[1:2])).masks[0])


def test_remove_changes_pixels_only_inside_the_grown_mask(client, coffee, tmp_path):
    mask = read_image(segment(client, CUP_CLICKS)[1], gray=True) > 127
    result_file, compare, png, info, history = client.predict(**edit_args(grow=8, feather=8), api_name="/remove")
    result = read_image(result_file)
    changed = np.any(result != coffee, axis=2)
    assert not (changed & ~masks.grow(mask, 8)).any()
    assert changed[masks.shrink(mask, 10)].mean() > 0.9
    expected = Editor(segmenter="grabcut", generator="classical").edit(
        coffee, EditRequest(mode="remove", mask=mask, grow=8, feather=8, params=GenerationParams(seed=1234)))
    assert np.array_equal(result, expected.images[0])
    # The download is the PNG with the recipe; its pixels are the shown result (lossless).
    assert Path(png).suffix == ".png" and np.array_equal(read_image(png), result)
    recipe = read_recipe(png)
    assert recipe.operation == "edit:remove" and recipe.seed == 1234
    assert np.array_equal(decode_mask(recipe.parameters["mask"]), mask)
    assert recipe.parameters["selection"]["points"] == [list(map(float, p[:2])) + [p[2]] for p in CUP_CLICKS]
    # the upload is recorded by its name and pixels, not as a path under the server's working folder
    assert recipe.inputs == {"image": None, "name": "coffee.jpg", "sha256": array_sha256(coffee),
                             "size": [coffee.shape[1], coffee.shape[0]]}
    shutil.copy(png, tmp_path / "result.png")
    shutil.copy(COFFEE, tmp_path / "coffee.jpg")
    assert prepare_replay(tmp_path / "result.png").source == tmp_path / "coffee.jpg"  # found beside the result
    before, after = compare
    assert read_image(before).shape == read_image(after).shape == coffee.shape
    assert "remove done" in info and "seed" not in info  # OpenCV's fill draws no random numbers
    assert history[0]["caption"] == "remove"


def test_recolor_and_chosen_instances_and_invert(client, coffee):
    segment(client, CUP_CLICKS)
    result = read_image(client.predict(**edit_args(color="#00ff00", grow=0, feather=0), api_name="/recolor")[0])
    mask = GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS)).masks[0]
    changed = np.any(result != coffee, axis=2)
    assert not changed[~mask].any() and changed[mask].mean() > 0.5
    args = edit_args(chosen=())
    with pytest.raises(AppError, match="select something first"):
        client.predict(**args, api_name="/remove")
    args = edit_args(grow=0, feather=0)
    args["invert"] = True
    result = read_image(client.predict(**args, api_name="/recolor")[0])
    changed = np.any(result != coffee, axis=2)
    assert not changed[mask].any() and changed[~mask].mean() > 0.5


def sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_history_chains_edits_per_session_with_two_clients_interleaving(app, coffee):
    """A: remove the cup, continue from it, recolor the saucer. B, meanwhile: recolor the cup. Each sees its own."""
    a, b = Client(app[1], verbose=False), Client(app[1], verbose=False)
    saucer = [(250, 330, 1)]
    segment(a, CUP_CLICKS)
    segment(b, CUP_CLICKS)
    removed = a.predict(**edit_args(), api_name="/remove")
    recolored_b = b.predict(**edit_args(color="#00ff00", grow=0, feather=0), api_name="/recolor")
    photo, canvas, *_, info = a.predict(0, False, 8, api_name="/continue_editing")
    assert photo is None and "editing the result of remove" in info
    assert read_image(canvas).shape == coffee.shape
    assert np.abs(read_image(canvas).astype(int) - read_image(removed[0]).astype(int)).mean() < 3  # the result
    segment(a, saucer, photo=None)
    chained = a.predict(**edit_args(color="#0000ff", grow=0, feather=0), api_name="/recolor")

    # A's second edit started from its first result: the cup stays removed, the saucer turns blue.
    first, second = read_image(removed[2]), read_image(chained[2])
    changed = np.any(second != first, axis=2)
    assert changed.mean() > 0.02 and (np.argmax(second[changed], axis=1) == 2).mean() > 0.9  # blue
    cup = GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS)).masks[0]
    assert np.array_equal(second[masks.shrink(cup, 12)], first[masks.shrink(cup, 12)])
    # Each PNG keeps its own recipe; the second names the first's file as its parent.
    one, two = read_recipe(removed[2]), read_recipe(chained[2])
    assert one.operation == "edit:remove" and two.operation == "edit:recolor"
    assert "parent_sha256" not in one.inputs and two.inputs["parent_sha256"] == sha256(removed[2])
    assert two.parameters["color"] == "#0000ff"
    # The histories are per session, newest first, captioned with the operation (no seed: none was drawn).
    assert [e["caption"] for e in chained[4]] == ["recolor", "remove"]
    assert [e["caption"] for e in recolored_b[4]] == ["recolor"]
    assert "parent_sha256" not in read_recipe(recolored_b[2]).inputs
    # B never sees A's results, and asking for a result that is not there is a message.
    with pytest.raises(AppError, match="no result 1 in the history; there are 1"):
        b.predict(1, False, 8, api_name="/continue_editing")
    with pytest.raises(AppError, match="no result yet"):
        Client(app[1], verbose=False).predict(0, False, 8, api_name="/continue_editing")


class FixedDetector:
    """A detector that finds what it is told, where it is told (the cup's box), with a set score."""

    name = "fixed"

    def __init__(self, box, score) -> None:
        self.box, self.score = box, score

    def detect(self, image, text):
        from editanything.types import Detections

        return Detections(np.array([self.box], float), np.array([self.score]), [text])


def test_instances_are_labelled_by_what_was_found_or_as_your_selection(coffee):
    h = Handlers.create(Editor(segmenter="grabcut", detector=FixedDetector((170, 15, 415, 215), 0.82),
                               generator="classical"), max_pixels=MAX_PIXELS).selection
    session = Session()
    _, canvas, _, instances, *_ = h.select_text(session, str(COFFEE), "cup", False, 8)
    assert [c[0] for c in instances.choices] == ["cup 0.82"]
    found = read_image(canvas)
    _, canvas, _, instances, *_ = h.segment_points(session, None, json.dumps(CUP_CLICKS), "[]", False, 8)
    assert [c[0] for c in instances.choices] == ["your selection"]
    # The canvas labels the box as the list does: the longer label is a longer coloured tag above the box.
    tag = lambda view: (np.abs(view[:14].astype(int) - [230, 25, 75]).max(axis=2) < 40).sum()  # noqa: E731
    assert tag(found) < tag(read_image(canvas))


def test_overlay_labels_stay_inside_the_image():
    from editanything.overlay import overlay
    from editanything.types import Detections

    def text_pixels(box):  # the label's white letters on its coloured tag
        drawn = overlay(np.zeros((120, 300, 3), np.uint8), Detections(np.array([box], float), np.array([0.82]),
                                                                      ["person"]))
        return (drawn > 200).all(axis=2).sum()

    inside = text_pixels((10, 40, 60, 100))
    assert inside > 50
    for box in ((250, 40, 299, 100), (280, 0, 299, 20), (0, 110, 299, 119)):  # right edge, corner, bottom
        assert text_pixels(box) == inside, box  # every letter is drawn (cut off, some would be missing)


class Described:
    """A weight-free backend that describes itself as a deep one (what the banner shows is what describe says)."""

    def __init__(self, base, words: str) -> None:
        self.base, self.words = base, words

    def __getattr__(self, name):
        return getattr(self.base, name)

    def describe(self) -> str:
        return self.words


def test_the_banner_and_models_tab_say_what_each_task_runs_on_from_describe():
    editor = Editor(segmenter=Described(GrabCutSegmenter(), "edgetam (EdgeTAM on cpu)"),
                    detector=Described(FixedDetector((0, 0, 9, 9), 0.9), "grounding-dino-tiny (on cpu)"),
                    generator="classical", remover=Described(ClassicalGenerator(), "lama (big-lama.onnx on ONNX Runtime)"))
    h = Handlers.create(editor)
    banner = h.models.banner()
    assert "weight-free" not in banner
    described = editor.describe()
    assert set(described) == {"segmenter", "detector", "generator", "captioner", "remover"}
    for stage, words in described.items():
        assert words in banner, stage
    assert "- **Remove**: lama (big-lama.onnx on ONNX Runtime)" in banner.splitlines()
    assert "- **Click to select**: edgetam (EdgeTAM on cpu)" in banner.splitlines()
    assert "Replace and Background**: classical-telea" in banner and "models download sd15-inpainting" in banner
    stages, _ = h.models.models()
    assert "- **remover**: lama (big-lama.onnx on ONNX Runtime)" in stages.splitlines()


def test_weight_free_messages_are_the_librarys(client, app, coffee):
    mask = read_image(segment(client, CUP_CLICKS)[1], gray=True) > 127
    for mode in ("replace", "background"):
        with pytest.raises(EditAnythingError) as direct:
            Editor(segmenter="grabcut", generator="auto").edit(coffee, EditRequest(mode=mode, mask=mask,
                                                                                   params=GenerationParams(prompt="x")))
        with pytest.raises(AppError) as shown:
            client.predict(**edit_args(prompt="x"), api_name=f"/{mode}")
        assert str(shown.value) == str(direct.value)
    with pytest.raises(AppError, match="editanything models download grounding-dino-tiny"):
        client.predict(handle_file(str(COFFEE)), "cup", False, 8, api_name="/select_text")
    stages, table = client.predict(api_name="/models")
    assert "GrabCut (SAM weights not found — run `editanything models download edgetam`)" in stages
    assert "**auto** takes the first on disk: segmenter edgetam → sam2.1-hiera-tiny → sam2.1-hiera-large" in stages
    assert "; captioner florence-2-base → blip2-opt-2.7b" in stages  # the light one first on a CPU
    rows = {r[0]: r[4] for r in table["data"]}
    assert rows["sam-vit-b"] == "missing: editanything models download sam-vit-b"
    assert set(rows) >= {"sam-vit-h", "sd15-inpainting", "groundingdino-swint-ogc", "hed"}


def test_sketch_endpoint_draws_the_first_photo(client):
    photo = DEMOS / "chelsea.jpg"
    out, info = client.predict([handle_file(str(photo))], "ink", '{"block": 20}', api_name="/sketch")
    expected = sketch(read_image(photo, gray=True), "ink", block=20)
    assert np.array_equal(read_image(out, gray=True), expected)
    assert "chelsea.jpg" in info
    with pytest.raises(AppError, match="unknown parameter"):
        client.predict([handle_file(str(photo))], "ink", '{"blur": 2}', api_name="/sketch")


@pytest.mark.parametrize("endpoint", ["/sketch", "/sketch_all"])
def test_the_sketch_endpoints_refuse_the_style_the_dropdown_does_not_offer(client, endpoint):
    """A generative style would load a diffusion model outside the generation lock: gradio's Dropdown
    checks API values against its choices (no `allow_custom_value`), in one line."""
    with pytest.raises(AppError, match="Value: sd-lineart is not in the list of choices"):
        client.predict([handle_file(str(COFFEE))], "sd-lineart", "{}", api_name=endpoint)


def test_sketch_all_takes_files_and_a_zip_and_returns_a_zip(client, tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(DEMOS / "chelsea.jpg", "cats/chelsea.jpg")
        z.write(DEMOS / "rocket.jpg", "../../escape/rocket.jpg")
        z.writestr("notes.txt", "not a photo")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    uploads = [handle_file(str(p)) for p in (COFFEE, archive, broken)]
    gallery, zipped, info = client.predict(uploads, "pencil", '{"blur": 4}', api_name="/sketch_all")
    assert "3 done" in info and "1 failed" in info and len(gallery) == 3
    assert "- failed: broken.jpg: not an image" in info
    with zipfile.ZipFile(zipped) as z:
        names = sorted(z.namelist())
        assert names == ["cats/chelsea.png", "coffee.png", "escape/rocket.png"]
        drawn = cv2.imdecode(np.frombuffer(z.read("coffee.png"), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(drawn, sketch(read_image(COFFEE, gray=True), "pencil", blur=4))


def test_unzip_never_writes_outside_its_folder(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("../up.jpg", "/abs/root.png", "a/../../b.jpg", "ok/fine.jpg", "__MACOSX/._x.jpg"):
            z.writestr(name, b"data")
    dest = tmp_path / "out" / "dest"
    files = unzip_images(archive, dest, limit=10)
    assert sorted(p.relative_to(dest).as_posix() for p in files) == ["a/b.jpg", "abs/root.png", "ok/fine.jpg", "up.jpg"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(["evil.zip", "b.jpg", "root.png",
                                                                                 "fine.jpg", "up.jpg"])


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(client, app, tmp_path):
    import httpx

    text = tmp_path / "holiday.png"
    text.write_text("this is not an image")
    with pytest.raises(AppError, match=r"^holiday\.png: not an image"):
        segment(client, CUP_CLICKS, photo=text)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((1000, 1200, 3), np.uint8))  # 1.2 MP, a small file
    with pytest.raises(AppError, match=r"big\.png: 1200x1000 is 1,200,000 pixels, over the limit of 1,000,000"):
        segment(client, [(10, 10, 1)], photo=big)
    heavy = tmp_path / "heavy.png"
    cv2.imwrite(str(heavy), np.random.default_rng(0).integers(0, 255, (900, 900, 3), np.uint8))
    assert heavy.stat().st_size > MAX_FILE_SIZE
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client checks first
        segment(client, [(10, 10, 1)], photo=heavy)
    refused = httpx.post(f"{app[1]}gradio_api/upload", files=[("files", ("heavy.png", heavy.read_bytes()))])
    assert refused.status_code == 413 and "maximum allowed size" in refused.text
    with pytest.raises(AppError, match="clicks must be a JSON list"):
        client.predict(handle_file(str(COFFEE)), "[[1, 2", "[]", False, 8, api_name="/segment_points")
    # A path the user did not upload is never read.
    sent = httpx.post(f"{app[1]}gradio_api/call/segment_points",
                      json={"data": [{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}, "[[1, 1, 1]]",
                                     "[]", False, 8]})
    answer = httpx.get(f"{app[1]}gradio_api/call/segment_points/{sent.json()['event_id']}", timeout=30)
    assert "event: error" in answer.text and "hostname" not in answer.text.split("event: error")[1]
    mask = read_image(segment(client, CUP_CLICKS)[1], gray=True) > 127
    assert iou(mask, cup_top(mask.shape)) > 0.85


def test_safe_defaults(app):
    demo, url = app
    assert url.startswith("http://127.0.0.1:") and demo.server_name == "127.0.0.1" and not demo.share
    assert demo.max_file_size == MAX_FILE_SIZE and demo._queue.max_size == 16
    groups = {f.api_name: f.concurrency_id for f in demo.fns.values()}
    assert {groups[n] for n in ("load", "segment_points", "select_text")} == {"selection"}
    assert {groups[n] for n in ("replace", "remove", "background", "recolor")} == {"generation"}
    assert demo._queue.default_concurrency_limit == 1


def test_session_clicks_boxes_and_scaling():
    s = Session()
    s.set_image("photo.jpg", np.zeros((2000, 3000, 3), np.uint8), display_size=1000)
    assert s.display.shape == (667, 1000, 3) and s.to_image(500, 100) == (1500, 300)
    assert s.to_image(5000, -3) == (2999, 0)
    assert not s.click(100, 100, CLICK_MODES[2]) and s.corner == (100, 100)
    assert s.click(40, 300, CLICK_MODES[2]) and s.boxes == [(40, 100, 100, 300)] and s.corner is None
    s.click(50, 60, CLICK_MODES[1])
    assert s.prompt() == Prompt(points=[(50, 60, 0)], boxes=[(40, 100, 100, 300)])
    s.click(1, 1, CLICK_MODES[2])
    with pytest.raises(InvalidInputError, match="too thin"):
        s.click(200, 1.5, CLICK_MODES[2])
    # A click whose segmentation fails leaves the selection as the screen still shows it.
    before = (list(s.points), list(s.boxes), s.corner)
    with pytest.raises(RuntimeError), s.change():
        s.click(70, 80, CLICK_MODES[0])
        raise RuntimeError("segmenter failed")
    assert (s.points, s.boxes, s.corner) == before


@pytest.fixture(scope="module")
def sam_app():
    segmenter = SamSegmenter(build_tiny_sam(0), name="tiny-sam")
    calls = []
    encode = segmenter.predictor.set_image
    segmenter.predictor.set_image = lambda *a, **k: (calls.append(1), encode(*a, **k))[1]
    with running(Editor(segmenter=segmenter, detector=None, generator="classical")) as (demo, url):
        yield url, calls


def test_clicks_send_the_mask_file_only_while_the_mask_panel_is_open(coffee):
    h = Handlers.create(Editor(segmenter="grabcut", detector=None, generator="classical"), max_pixels=MAX_PIXELS,
                        display_size=512).selection
    session = Session()
    h.load(session, str(COFFEE), False, 8)
    clicked = SimpleNamespace(index=[290 * session.scale, 60 * session.scale])  # what gr.SelectData carries

    _, canvas, mask_file, *_ = h.click(session, None, CLICK_MODES[0], False, 8, False, clicked)
    assert mask_file == gr.skip() and Path(canvas).is_file()  # closed panel: the mask output is left alone
    shown, panel_mask = h.show_mask(session, [0], False)
    assert shown is True
    mask = read_image(panel_mask, gray=True) > 127
    assert mask.shape == coffee.shape[:2] and np.array_equal(mask, session.mask([0]))

    clicked = SimpleNamespace(index=[290 * session.scale, 150 * session.scale])
    _, _, mask_file, *_ = h.click(session, None, CLICK_MODES[0], False, 8, True, clicked)
    assert np.array_equal(read_image(mask_file, gray=True) > 127, session.mask())  # open panel: the new mask
    assert not np.array_equal(session.mask(), mask)


def test_sam_clicks_match_the_predictor_and_encode_the_photo_once(sam_app, coffee):
    from segment_anything import SamPredictor

    url, calls = sam_app
    client = Client(url, verbose=False)
    before = len(calls)  # other tests encode other photos (never this one)
    first = read_image(segment(client, CUP_CLICKS[:1])[1], gray=True) > 127
    second = read_image(segment(client, CUP_CLICKS[:2], photo=None)[1], gray=True) > 127
    third = read_image(segment(client, CUP_CLICKS, photo=COFFEE)[1], gray=True) > 127
    assert len(calls) == before + 1  # only the first click ran the image encoder

    predictor = SamPredictor(build_tiny_sam(0))
    predictor.set_image(coffee)
    pts = np.array(CUP_CLICKS, np.float32)
    m1, _, logits = predictor.predict(pts[:1, :2], pts[:1, 2].astype(int), multimask_output=False)
    m2, _, logits = predictor.predict(pts[:2, :2], pts[:2, 2].astype(int), mask_input=logits, multimask_output=False)
    m3, _, _ = predictor.predict(pts[:, :2], pts[:, 2].astype(int), mask_input=logits, multimask_output=False)
    for shown, expected in ((first, m1[0]), (second, m2[0]), (third, m3[0])):
        assert (shown != expected).mean() < 1e-4  # the app's decoder runs on ONNX Runtime: float rounding
    assert not np.array_equal(first, second)


CAT = DEMOS / "chelsea.jpg"
EYES_CLICKS = [(170, 115, 1), (315, 135, 1)]  # user A: one eye, then the other
BODY_CLICKS = [(230, 250, 1), (400, 250, 1)]  # user B: the body, then more of it


def mask_of(outputs) -> np.ndarray:
    return read_image(outputs[1], gray=True) > 127


@pytest.mark.parametrize("backend", ["grabcut", "sam"])
def test_two_sessions_clicking_on_one_photo_each_get_what_they_get_alone(request, backend):
    """Per-user refinement lives in the session: B's click never becomes the seed of A's next one."""
    url = request.getfixturevalue("app")[1] if backend == "grabcut" else request.getfixturevalue("sam_app")[0]

    def clicks(client, points, n):  # the n-th click refines the first n - 1
        return mask_of(segment(client, points[:n], photo=CAT if n == 1 else None))

    def alone(points):
        client = Client(url, verbose=False)
        return [clicks(client, points, n) for n in (1, 2)]

    a_alone, b_alone = alone(EYES_CLICKS), alone(BODY_CLICKS)
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    for n in (1, 2):
        np.testing.assert_array_equal(clicks(a, EYES_CLICKS, n), a_alone[n - 1])
        np.testing.assert_array_equal(clicks(b, BODY_CLICKS, n), b_alone[n - 1])
    assert not np.array_equal(a_alone[1], b_alone[1])  # they did select different things


class GatedGenerator(ClassicalGenerator):
    """OpenCV's fill that first waits at a gate: it stands for a long diffusion edit."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def inpaint(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(120), "the test never opened the gate"
        return super().inpaint(*args, **kwargs)


class ProbeSegmenter(GrabCutSegmenter):
    """GrabCut that counts being described while it segments (shared backends are not thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.gate = threading.Event(), threading.Event()
        self.gate.set()
        self.overlaps = 0

    def segment(self, *args, **kwargs):
        self.inside.set()
        try:
            assert self.gate.wait(120), "the test never opened the gate"
            return super().segment(*args, **kwargs)
        finally:
            self.inside.clear()

    def describe(self) -> str:
        self.overlaps += self.inside.is_set()
        return super().describe()


def test_a_long_edit_does_not_hold_up_other_users_and_page_loads_respect_the_model_locks(coffee):
    generator, segmenter = GatedGenerator(), ProbeSegmenter()
    with running(Editor(segmenter=segmenter, detector=None, generator=generator)) as (demo, url):
        a, b = Client(url, verbose=False), Client(url, verbose=False)
        segment(a, CUP_CLICKS)
        editing = a.submit(**edit_args(), api_name="/remove")
        assert generator.entered.wait(60)
        # While A's edit runs, B's clicks and the Models tab answer.
        clicked = b.submit(handle_file(str(COFFEE)), json.dumps(BODY_CLICKS[:1]), "[]", False, 8,
                           api_name="/segment_points")
        mask = mask_of(clicked.result(timeout=60))
        assert np.array_equal(mask, GrabCutSegmenter().segment(coffee, Prompt(points=BODY_CLICKS[:1])).masks[0])
        stages, _ = b.submit(api_name="/models").result(timeout=60)
        assert "**generator**: classical-telea" in stages
        assert not editing.done()

        # Page load describes the segmenter under its lock: never while it segments.
        page_load = next(f.fn for f in demo.fns.values() if any(t[1] == "load" for t in f.targets))
        segmenter.gate.clear()
        busy = b.submit(None, json.dumps(BODY_CLICKS), "[]", False, 8, api_name="/segment_points")
        assert segmenter.inside.wait(60)
        loaded = []
        loader = threading.Thread(target=lambda: loaded.append(page_load()))
        loader.start()
        loader.join(60)
        assert loaded and "**segmenter**: GrabCut" in loaded[0][0]
        segmenter.gate.set()
        busy.result(timeout=60)
        assert segmenter.overlaps == 0

        generator.gate.set()
        result = read_image(editing.result(timeout=60)[0])
    expected = Editor(segmenter="grabcut", generator="classical").edit(
        coffee, EditRequest(mode="remove", mask=GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS)).masks[0],
                            grow=8, feather=8, params=GenerationParams(seed=1234)))
    assert np.array_equal(result, expected.images[0])


class SteppingGenerator(ClassicalGenerator):
    """OpenCV's fill after `steps` reported steps, each let through by the test: a diffusion edit in slow motion."""

    def __init__(self, steps: int = 4) -> None:
        super().__init__()
        self.steps, self.started, self.gate, self.stepped = steps, threading.Event(), threading.Semaphore(0), []

    def inpaint(self, image, mask, params=None):
        from editanything.progress import Step, report

        self.started.set()
        for i in range(self.steps):
            assert self.gate.acquire(timeout=120), "the test never let the step through"
            self.stepped.append(i)
            report(Step(0, 1, i, self.steps))
        return super().inpaint(image, mask, params)


def wait_for(condition, what: str, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cancel_stops_the_sessions_running_edit_at_its_next_step_and_no_one_elses(coffee):
    generator = SteppingGenerator()
    with running(Editor(segmenter="grabcut", detector=None, generator=generator)) as (demo, url):
        a, b = Client(url, verbose=False), Client(url, verbose=False)
        segment(a, CUP_CLICKS)
        segment(b, CUP_CLICKS)
        edit_a = a.submit(**edit_args(), api_name="/remove")
        assert generator.started.wait(60)
        generator.gate.release()
        wait_for(lambda: generator.stepped == [0], "A's first step")
        wait_for(lambda: any((u.index, u.length, u.unit) == (1, 4, "steps")
                             for u in edit_a.status().progress_data or []), "A's step shown as its progress")
        edit_b = b.submit(**edit_args(), api_name="/remove")  # waits: one edit at a time
        assert a.predict(api_name="/cancel").startswith("Cancelled")
        generator.gate.release()  # A's second step: it stops there
        with pytest.raises(AppError, match="cancelled"):
            edit_a.result(timeout=60)
        for _ in range(generator.steps):
            generator.gate.release()
        result = read_image(edit_b.result(timeout=60)[0])
        assert generator.stepped == [0, 1, 0, 1, 2, 3]  # A stopped after its second step, B ran whole
        assert a.predict(api_name="/cancel") == "Nothing was running."
        # A's cancelled edit left nothing: its history is empty, so there is nothing to continue from.
        with pytest.raises(AppError, match="no result yet"):
            a.predict(0, False, 8, api_name="/continue_editing")
    mask = GrabCutSegmenter().segment(coffee, Prompt(points=CUP_CLICKS)).masks[0]
    expected = Editor(segmenter="grabcut", generator="classical").edit(
        coffee, EditRequest(mode="remove", mask=mask, grow=8, feather=8, params=GenerationParams(seed=1234)))
    assert np.array_equal(result, expected.images[0])


def test_an_edit_whose_browser_has_gone_is_cancelled(monkeypatch):
    from editanything.ui.jobs import Jobs

    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.2")  # the server notices a closed page this soon
    unloaded, cancel = threading.Event(), Jobs.cancel
    monkeypatch.setattr(Jobs, "cancel", lambda self, key: (n := cancel(self, key), n and unloaded.set())[0])
    generator = SteppingGenerator()
    with running(Editor(segmenter="grabcut", detector=None, generator=generator)) as (demo, url):
        gone = Client(url, verbose=False)
        segment(gone, CUP_CLICKS)
        edit = gone.submit(**edit_args(), api_name="/remove")
        assert generator.started.wait(60)
        generator.gate.release()
        wait_for(lambda: generator.stepped == [0], "the first step")
        gone.close()  # its heartbeat stops, as a closed tab's does: gradio's unload runs
        assert unloaded.wait(60), "closing the page did not cancel its job"
        generator.gate.release()
        with pytest.raises(AppError, match="cancelled"):
            edit.result(timeout=60)
        assert generator.stepped == [0, 1]


def test_with_low_memory_an_edit_also_holds_the_selection_models():
    """A low-memory edit frees the segmenter and detector, so no click may use them meanwhile."""
    from editanything.ui.locks import ModelLocks

    for low_memory in (False, True):
        locks = ModelLocks(Editor(segmenter="grabcut", detector=None, generator="classical", low_memory=low_memory))
        with locks.generating():
            assert locks.generation.locked() and locks.selection.locked() == low_memory
        assert not locks.generation.locked() and not locks.selection.locked()


def test_soft_edges_tint_only_the_band_and_the_cutout_is_an_rgba_png(client, coffee):
    pytest.importorskip("pymatting")
    from PIL import Image

    mask = read_image(segment(client, CUP_CLICKS)[1], gray=True) > 127
    args = edit_args(color="#00ff00", grow=0, feather=0)
    hard = read_image(client.predict(**args, api_name="/recolor")[0])
    png = client.predict(**args, soft_edges=True, api_name="/recolor")[2]
    soft, band = read_image(png), read_recipe(png).parameters["matte"]["band"]
    reach = masks.grow(mask, band)
    assert np.array_equal(soft[~reach], coffee[~reach]) and not np.array_equal(soft, hard)
    cutout, info = client.predict(photo=None, chosen=[0], invert=False, api_name="/cutout")
    with Image.open(cutout) as image:
        assert image.mode == "RGBA" and image.size == (600, 400)
        alpha = np.asarray(image)[..., 3]
    assert ((alpha > 0) & (alpha < 255)).any() and not alpha[~reach].any()
    assert "soft edges" in info
