"""The Edit tab's Expand button, through gradio's API as a client calls it (`/expand`): the prompt box's words
become a prompt for where the edit runs, a typed negative prompt is kept, the words stay shown, bad input is
one message, and no paid service is called; `/expand_generate` does it for the Generate tab, whose recipe then
keeps the words. From photo (`/prompt_from_photo`) does the same from the caption a
tiny BLIP-2 writes of the session's photo."""

from __future__ import annotations

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from editanything import read_image  # noqa: E402
from editanything.pipeline import Editor  # noqa: E402
from test_ui_api import COFFEE, DEMOS, running  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("models")
    mp.setenv("EDITANYTHING_CHECKPOINTS", str(root / "checkpoints"))  # no model: auto expands with the rules
    mp.setenv("EDITANYTHING_HOME", str(root / "home"))
    mp.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there: a call would fail the test
    try:
        with running(Editor(segmenter="grabcut", detector=None, generator="auto")) as (_, url):
            yield Client(url, verbose=False)
    finally:
        mp.undo()


def test_expand_fills_the_boxes_for_where_the_edit_runs(client):
    prompt, negative, note = client.predict(words="river, tiger", negative="", generator="This machine", seed=5,
                                            api_name="/expand")
    assert prompt.startswith("tiger, river,") and "lowres" in negative
    assert "river, tiger" in note and "rules" in note and "seed 5" in note
    again = client.predict(words="river, tiger", negative="", generator="This machine", seed=5, api_name="/expand")
    assert again[0] == prompt
    prose, kept, _ = client.predict(words="river, tiger", negative="people", generator="OpenAI (hosted)", seed=5,
                                    api_name="/expand")
    assert prose.startswith("A photograph of a tiger") and prose.endswith(".") and kept == "people"


def test_expand_bad_words_are_one_message(client):
    for words, says in (("", "nothing to expand"), ("x" * 2001, "at most 2000")):
        with pytest.raises(AppError, match=says) as info:
            client.predict(words=words, negative="", generator="This machine", seed=-1, api_name="/expand")
        assert "\n" not in str(info.value).strip()


# --- From photo: the photo's caption, expanded ---------------------------------------------------------------

@pytest.fixture(scope="module")
def captioning(tmp_path_factory):
    pytest.importorskip("torch")
    from tiny_detect_models import build_tiny_blip2

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("captioning")
    build_tiny_blip2(root / "checkpoints" / "blip2-opt-2.7b")
    mp.setenv("EDITANYTHING_CHECKPOINTS", str(root / "checkpoints"))  # a captioner, and no language model
    mp.setenv("EDITANYTHING_HOME", str(root / "home"))
    mp.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    try:
        with running(Editor(segmenter="grabcut", detector=None, generator="auto", captioner="auto")) as (demo, url):
            yield url
    finally:
        mp.undo()


def load(client: Client, photo) -> None:
    client.predict(handle_file(str(photo)), False, 8, api_name="/load")


def test_from_photo_fills_the_prompt_with_the_captions_expansion(captioning):
    from editanything.caption import get_captioner
    from editanything.prompting import expand

    client = Client(captioning, verbose=False)
    with pytest.raises(AppError, match="upload a photo first"):
        client.predict(negative="", generator="This machine", seed=5, api_name="/prompt_from_photo")
    load(client, COFFEE)
    prompt, negative, note = client.predict(negative="", generator="This machine", seed=5,
                                            api_name="/prompt_from_photo")
    caption = get_captioner("auto").caption(read_image(COFFEE))  # the UI's captioner, on the same photo
    expected = expand(caption, target="sd15", seed=5)
    assert caption.strip() and (prompt, negative) == (expected.prompt, expected.negative_prompt)
    assert "photo's caption" in note and "rules" in note and "seed 5" in note
    again = client.predict(negative="people", generator="This machine", seed=5, api_name="/prompt_from_photo")
    assert again[:2] == (prompt, "people")  # the same prompt again, the typed negative kept
    load(client, DEMOS / "astronaut.jpg")
    other = client.predict(negative="", generator="OpenAI (hosted)", seed=5, api_name="/prompt_from_photo")[0]
    assert other != prompt and other.endswith(".")  # another photo's caption, as prose for the hosted service


def test_from_photo_with_two_clients_interleaving_captions_each_ones_own_photo(captioning):
    """The captioner is shared, the photo is the session's: B's upload between A's upload and A's click
    does not change what A's prompt is written from."""
    from editanything.caption import get_captioner
    from editanything.prompting import expand

    a, b = Client(captioning, verbose=False), Client(captioning, verbose=False)
    photos = {"a": COFFEE, "b": DEMOS / "astronaut.jpg"}
    load(a, photos["a"])
    load(b, photos["b"])
    got = {name: client.predict(negative="", generator="This machine", seed=5, api_name="/prompt_from_photo")[0]
           for name, client in (("a", a), ("b", b))}
    captioner = get_captioner("auto")
    captions = {name: captioner.caption(read_image(photo)) for name, photo in photos.items()}
    assert captions["a"] != captions["b"]  # else the test could not tell the sessions apart
    for name in photos:
        assert got[name] == expand(captions[name], target="sd15", seed=5).prompt
    assert a.predict(negative="", generator="This machine", seed=5, api_name="/prompt_from_photo")[0] == got["a"]


def test_from_photo_without_a_captioner_names_the_download(client):
    load(client, COFFEE)
    with pytest.raises(AppError, match="models download florence-2-base") as info:
        client.predict(negative="", generator="This machine", seed=5, api_name="/prompt_from_photo")
    assert "\n" not in str(info.value).strip()


# --- the Generate tab's Expand: for the model that tab generates on, recorded by a generate from its prompt ---

@pytest.fixture(scope="module")
def generating(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    import tiny_sd

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("generating")
    sd15 = tiny_sd.save_sd15_base(root / "sd15")
    mp.setenv("EDITANYTHING_CHECKPOINTS", str(root / "checkpoints"))  # no language model: the rules expand
    mp.setenv("EDITANYTHING_HOME", str(root / "home"))
    mp.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    try:
        with running(Editor(generator=str(sd15), segmenter="grabcut", detector=None)) as (_, url):
            yield url
    finally:
        mp.undo()


def generate(client: Client, prompt: str, negative: str):
    return client.predict(prompt=prompt, negative=negative, sampler="Euler", steps=2, cfg=6, width=32, height=32,
                          seed=42, batch_size=1, generator="This machine", api_name="/generate")[1][0]


def test_generate_tabs_expand_fills_its_boxes_and_a_generate_records_the_words(generating):
    from editanything.prompting import expand
    from editanything.recipe import read_recipe

    client = Client(generating, verbose=False)
    prompt, negative, note = client.predict(words="river, tiger", negative="", generator="This machine", seed=5,
                                            api_name="/expand_generate")
    expected = expand("river, tiger", target="sd15", seed=5)
    assert (prompt, negative) == (expected.prompt, expected.negative_prompt) and prompt != "river, tiger"
    assert "river, tiger" in note and "rules" in note and "seed 5" in note
    recipe = read_recipe(generate(client, prompt, "people"))  # a typed negative wins, as with --negative
    assert recipe.parameters["generation"]["prompt"] == prompt
    assert recipe.parameters["generation"]["negative_prompt"] == "people"
    assert recipe.parameters["prompt_expansion"] == expected.to_dict()
    assert recipe.parameters["prompt_expansion"]["words"] == "river, tiger"
    # an edited prompt is no longer the expansion's: the recipe claims none
    edited = read_recipe(generate(client, prompt + ", moonlight", ""))
    assert "prompt_expansion" not in edited.parameters
    hosted, kept, _ = client.predict(words="river, tiger", negative="people", generator="OpenAI (hosted)", seed=5,
                                     api_name="/expand_generate")
    assert hosted == expand("river, tiger", target="openai", seed=5).prompt and hosted != prompt and kept == "people"


def test_generate_tabs_expand_without_a_model_on_disk_writes_sd15_tags(client):
    from editanything.prompting import expand

    prompt, negative, _ = client.predict(words="river, tiger", negative="", generator="This machine", seed=5,
                                         api_name="/expand_generate")
    expected = expand("river, tiger", target="sd15", seed=5)
    assert (prompt, negative) == (expected.prompt, expected.negative_prompt)
