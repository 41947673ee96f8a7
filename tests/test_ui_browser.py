"""The web UI in a real browser: headless Chromium driven by Playwright.

Upload a photo, click on the cup, see the mask overlay appear on the canvas, press Remove, and get
a result that differs from the photo inside the (grown) mask only. Screenshots of each step are
saved in the test's tmp folder. Runs the weight-free backends (GrabCut, OpenCV inpainting).
"""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium; `make test` does it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from editanything import masks  # noqa: E402
from editanything.imageio import read_image  # noqa: E402
from editanything.pipeline import Editor  # noqa: E402
from editanything.recipe import decode_mask, read_recipe  # noqa: E402
from editanything.ui.app import build_app, serve  # noqa: E402

DEMOS = Path(__file__).resolve().parents[1] / "demos"
COFFEE = DEMOS / "coffee.jpg"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("models")
    mp.setenv("EDITANYTHING_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("EDITANYTHING_HOME", str(root / "home"))
    demo = build_app(Editor(segmenter="auto", detector="auto", generator="auto"))
    try:
        yield serve(demo, port=free_port(), block=False, quiet=True)
    finally:
        demo.close()
        mp.undo()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    yield page
    context.close()


def fetch(page, src: str) -> np.ndarray:
    """The image the page shows at `src`, decoded as RGB."""
    body = page.request.get(src).body()
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def click_pixel(page, selector: str, x: float, y: float) -> None:
    """Click the shown image at its pixel (x, y), wherever and however large the browser draws it."""
    img = page.locator(selector)
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    nw, nh, fit = img.evaluate("e => [e.naturalWidth, e.naturalHeight, getComputedStyle(e).objectFit]")
    scale = min(box["width"] / nw, box["height"] / nh)
    if fit in ("scale-down", "none"):
        scale = min(scale, 1.0) if fit == "scale-down" else 1.0
    left = box["x"] + (box["width"] - nw * scale) / 2
    top = box["y"] + (box["height"] - nh * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def wait_new_src(page, selector: str, old: str | None) -> str:
    page.wait_for_function("([sel, old]) => { const e = document.querySelector(sel); return e && e.src && "
                           "e.complete && e.naturalWidth > 0 && e.src !== old; }", arg=[selector, old or ""])
    return page.locator(selector).get_attribute("src")


def test_click_to_mask_then_remove_in_a_browser(page, tmp_path):
    photo = read_image(COFFEE)
    page.locator("#photo input[type=file]").set_input_files(str(COFFEE))
    src = wait_new_src(page, "#canvas img", None)
    shown = fetch(page, src).astype(int)
    assert shown.shape == photo.shape and np.abs(shown - photo).mean() < 3  # the photo, as a JPEG view
    page.get_by_text("What runs here").wait_for()
    page.get_by_text("Remove: classical-telea (no LaMa or MI-GAN weights").wait_for()
    page.screenshot(path=tmp_path / "1-uploaded.png", full_page=True)

    # Remove before selecting anything: a readable message, no trace.
    page.click("#btn-remove")
    page.get_by_text("select something first").first.wait_for()
    assert page.get_by_text("Traceback").count() == 0
    page.wait_for_timeout(500)  # let the toast finish sliding in, for the screenshot
    page.screenshot(path=tmp_path / "2-message.png")
    page.locator("[data-testid=toast-close]").first.click()

    click_pixel(page, "#canvas img", 290, 60)
    src = wait_new_src(page, "#canvas img", src)
    page.get_by_text("1 click(s) +").wait_for()
    overlay = fetch(page, src).astype(int)
    changed = np.abs(overlay - shown).max(axis=2) > 40
    assert changed[30:200, 200:380].mean() > 0.3  # the cup is tinted
    assert changed[330:, :150].mean() < 0.01  # the table's corner is not
    page.locator("#canvas").screenshot(path=tmp_path / "3-overlay.png")

    page.click("#btn-remove")
    result_src = wait_new_src(page, "#result img", None)
    link = page.locator("#download a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    page.screenshot(path=tmp_path / "4-removed.png", full_page=True)

    result = fetch(page, result_src)
    assert np.array_equal(result, read_image(saved))  # lossless PNG on screen and in the download
    recipe = read_recipe(saved)
    mask, grow = decode_mask(recipe.parameters["mask"]), recipe.parameters["grow"]
    assert mask[60, 290] and mask.mean() > 0.05
    differs = np.any(result != photo, axis=2)
    assert not (differs & ~masks.grow(mask, grow)).any()  # nothing changed outside the grown mask
    assert differs[masks.shrink(mask, 10)].mean() > 0.9
    # The overlay showed this mask: it is tinted there, untouched well away from it.
    assert changed[masks.shrink(mask, 6)].mean() > 0.8
    far = ~masks.grow(mask, 30)
    far[:40] = False  # the instance label sits above the box
    assert changed[far].mean() < 0.01


def test_sketch_and_models_tabs(page, tmp_path):
    page.get_by_role("tab", name="Sketch").click()
    page.locator("#sketch-files input[type=file]").set_input_files(str(DEMOS / "chelsea.jpg"))
    page.get_by_text("Preview of").wait_for()
    page.screenshot(path=tmp_path / "5-sketch.png", full_page=True)
    # The pencil style's parameters by name and with their help, not raw names beside a JSON box.
    page.get_by_text("Dark offset", exact=True).wait_for()
    page.get_by_text("Added to both sides of the dodge division").wait_for()
    assert not any(t.is_visible() for t in page.get_by_text("dark_offset").all())
    page.get_by_role("tab", name="Models").click()
    page.locator("#models-stages").get_by_text("SAM weights not found").wait_for()
    page.locator("#models-table").get_by_text("editanything models download sd15-inpainting").wait_for()
    page.locator("#models-stages").get_by_text("remover").wait_for()
    page.set_viewport_size({"width": 1000, "height": 900})  # a laptop's window: the commands wrap, whole
    page.wait_for_timeout(500)
    page.screenshot(path=tmp_path / "6-models.png", full_page=True)
    table = page.locator("#models-table").bounding_box()
    commands = page.locator("#models-table").get_by_text("models download").all()
    assert len(commands) > 10
    for cell in commands:
        box = cell.bounding_box()
        assert box["x"] + box["width"] <= table["x"] + table["width"] + 1, cell.inner_text()


def test_box_by_two_clicks(page, tmp_path):
    page.locator("#photo input[type=file]").set_input_files(str(COFFEE))
    src = wait_new_src(page, "#canvas img", None)
    photo = fetch(page, src).astype(int)
    page.locator("#click-mode").get_by_text("box (2 clicks)").click()
    click_pixel(page, "#canvas img", 168, 10)
    src = wait_new_src(page, "#canvas img", src)
    page.get_by_text("click the opposite corner of the box").wait_for()
    click_pixel(page, "#canvas img", 416, 214)
    src = wait_new_src(page, "#canvas img", src)
    page.get_by_text("1 box(es)").wait_for()
    page.locator("#canvas").screenshot(path=tmp_path / "box.png")
    changed = np.abs(fetch(page, src).astype(int) - photo).max(axis=2) > 20  # the tint over the orange coffee
    assert changed[60:180, 220:360].mean() > 0.8  # inside the cup's rim: tinted
    assert changed[300:, :].mean() < 0.02  # the saucer's front and the table: not


def test_the_mask_panel_shows_the_mask_and_follows_clicks_while_open(page, tmp_path):
    page.locator("#photo input[type=file]").set_input_files(str(COFFEE))
    src = wait_new_src(page, "#canvas img", None)
    click_pixel(page, "#canvas img", 290, 60)
    src = wait_new_src(page, "#canvas img", src)

    page.get_by_text("Clicks, boxes and mask").click()
    mask_src = wait_new_src(page, "#mask-view img", None)
    first = fetch(page, mask_src)[..., 0] > 127
    assert first.shape == read_image(COFFEE).shape[:2] and first[60, 290] and not first[380, 40]

    page.locator("#click-mode").get_by_text("exclude (−)").click()
    click_pixel(page, "#canvas img", 250, 330)  # the saucer, which GrabCut may have joined to the cup
    wait_new_src(page, "#canvas img", src)
    mask_src = wait_new_src(page, "#mask-view img", mask_src)  # open panel: the click sent the new mask
    page.screenshot(path=tmp_path / "mask-panel.png", full_page=True)
    second = fetch(page, mask_src)[..., 0] > 127
    assert second[60, 290] and not second[330, 250]


def test_a_failed_edit_keeps_the_last_good_result(page, tmp_path):
    """Replace without a model is a one-line message; the Remove shown before stays, download included."""
    page.locator("#photo input[type=file]").set_input_files(str(COFFEE))
    src = wait_new_src(page, "#canvas img", None)
    click_pixel(page, "#canvas img", 290, 60)
    wait_new_src(page, "#canvas img", src)
    page.click("#btn-remove")
    result_src = wait_new_src(page, "#result img", None)
    page.locator("#download a").first.wait_for()

    page.click("#btn-replace")
    page.get_by_text("needs Stable Diffusion").first.wait_for()
    page.wait_for_timeout(1000)  # let the page settle on what the error leaves
    page.screenshot(path=tmp_path / "failed-replace.png", full_page=True)
    for shown in ("#result", "#compare", "#download"):
        assert page.locator(shown).get_by_text("Error", exact=True).count() == 0, shown
    assert page.locator("#result img").get_attribute("src") == result_src
    assert page.locator("#result img").is_visible() and page.locator("#download a").first.is_visible()


def test_history_continues_editing_from_a_result(page, tmp_path):
    photo = read_image(COFFEE)
    page.locator("#photo input[type=file]").set_input_files(str(COFFEE))
    src = wait_new_src(page, "#canvas img", None)
    click_pixel(page, "#canvas img", 290, 60)
    src = wait_new_src(page, "#canvas img", src)
    page.click("#btn-remove")
    result_src = wait_new_src(page, "#result img", None)
    removed = fetch(page, result_src)
    page.locator("#history").get_by_text("remove").first.wait_for()  # the thumbnail's caption
    page.locator("#history img").first.click()
    page.get_by_text("Picked result 0: remove").wait_for()
    page.click("#btn-continue")
    page.get_by_text("editing the result of remove").wait_for()
    src = wait_new_src(page, "#canvas img", src)
    shown = fetch(page, src).astype(int)
    assert np.abs(shown - removed.astype(int)).mean() < 3 and np.abs(shown - photo.astype(int)).mean() > 3
    page.screenshot(path=tmp_path / "continued.png", full_page=True)
    # The next edit starts from the result: recolor the saucer of the photo whose cup is gone.
    click_pixel(page, "#canvas img", 250, 330)
    wait_new_src(page, "#canvas img", src)
    page.get_by_text("editing the result of remove").wait_for()  # still the result, not the upload
    page.click("#btn-recolor")
    recolored = fetch(page, wait_new_src(page, "#result img", result_src)).astype(int)
    changed = np.abs(recolored - removed.astype(int)).max(axis=2) > 0
    assert changed[300:, :].mean() > 0.05 and changed.mean() < 0.5  # the saucer, not the whole photo
    page.locator("#history").get_by_text("recolor").first.wait_for()
    assert page.locator("#history img").count() == 2
    page.screenshot(path=tmp_path / "chained.png", full_page=True)


def test_generate_tab_then_send_to_edit(page, tmp_path, monkeypatch):
    """Generate at a hosted service (the local fake: no weights here), download the PNG, open it in the Edit tab."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_image_apis import colour_for, start

    fake = start("sk-stab-browser-0123456789", "sk-unused-0000000000")
    monkeypatch.setenv("STABILITY_API_KEY", "sk-stab-browser-0123456789")
    monkeypatch.setenv("STABILITY_BASE_URL", fake.url)
    try:
        page.get_by_role("tab", name="Generate").click()
        page.locator("#gen-prompt textarea").fill("a lighthouse at dawn")
        page.locator("#gen-generator input").click()
        page.get_by_role("option", name="Stability AI (hosted)").click()
        page.locator("#gen-seed input").fill("21")
        page.click("#btn-generate")
        page.get_by_text("1 image at 1024x1024").wait_for()
        src = wait_new_src(page, "#gen-gallery img", None)
        made = fetch(page, src)
        assert made.shape == (1024, 1024, 3)
        assert (made[-1, -1] == colour_for("a lighthouse at dawn||core|None", 21)).all()
        assert fake.log[-1]["fields"]["seed"] == "21" and fake.log[-1]["fields"]["prompt"] == "a lighthouse at dawn"
        with page.expect_download() as download:
            page.locator("#gen-download a").first.click()
        saved = tmp_path / "generated.png"
        download.value.save_as(saved)
        assert read_recipe(saved).operation == "generate:txt2img" and read_recipe(saved).seed == 21
        page.screenshot(path=tmp_path / "generate-tab.png", full_page=True)
        page.click("#btn-send-to-edit")
        page.get_by_text("generated-1.png 1024×1024 · editing the result of generate").wait_for()  # in the Edit tab
        shown = fetch(page, wait_new_src(page, "#canvas img", None)).astype(int)
        assert shown.shape == made.shape and np.abs(shown - made.astype(int)).mean() < 3
        page.locator("#history").get_by_text("generate · seed 21").first.wait_for()
        page.screenshot(path=tmp_path / "sent-to-edit.png", full_page=True)
    finally:
        fake.shutdown()
