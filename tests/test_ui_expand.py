"""The Edit tab's Expand button, through gradio's API as a client calls it (`/expand`): the prompt box's words
become a prompt for where the edit runs, a typed negative prompt is kept, the words stay shown, bad input is
one message, and no paid service is called."""

from __future__ import annotations

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from editanything.pipeline import Editor  # noqa: E402
from test_ui_api import running  # noqa: E402


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
