"""Mistakes that cost nothing to find are found before any model loads: one usage line, exit 2.

"No model loads" is observed, not timed: an audit hook records every file opened under the (tiny)
checkpoints folder while the command runs, and a load opens its files there.
"""

import sys

import pytest
from conftest import DEMOS, edit_output

from editanything.cli import main

COFFEE = str(DEMOS / "coffee.jpg")
_OPENED: list[str] = []
_WATCH: list[str] = []


def _hook(event, args):
    if event == "open" and _WATCH and isinstance(args[0], (str, bytes)) and str(args[0]).startswith(_WATCH[0]):
        _OPENED.append(str(args[0]))


sys.addaudithook(_hook)  # audit hooks can't be removed: this one only records while a test watches


@pytest.fixture
def opened(deep):
    _OPENED.clear()
    _WATCH[:] = [str(deep)]
    yield _OPENED
    _WATCH.clear()


def _usage_error(capsys, argv, *words):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err
    return err


TEXT_EDIT = ["--select", "cup", "--box-threshold", "0.05", "--text-threshold", "0.05"]


@pytest.mark.parametrize("argv, words, env", [
    (["edit", COFFEE, *TEXT_EDIT, "--recolor", "#22zzcc"], ["unknown colour '#22zzcc'"], {}),
    (["edit", COFFEE, *TEXT_EDIT, "--prompt", "a corgi", "--generator", "stability", "--steps", "30"],
     ["no steps", "--steps"], {"STABILITY_API_KEY": "sk-test"}),
    (["edit", COFFEE, *TEXT_EDIT, "--prompt", "a corgi", "--generator", "openai"], ["OPENAI_API_KEY"], {}),
    (["edit", COFFEE, str(DEMOS / "no-such-photo.jpg"), *TEXT_EDIT, "--prompt", "a corgi"],
     ["no-such-photo.jpg: no such file or folder"], {}),
    (["edit", str(DEMOS / "*.nope"), *TEXT_EDIT, "--prompt", "a corgi"], ["no file matches this pattern"], {}),
    (["edit", COFFEE, *TEXT_EDIT, "--prompt-for", "cup=a mug", "--prompt-for", " =a bowl"], ["--prompt-for"], {}),
])
def test_cheap_mistakes_stop_before_any_model_loads(opened, tmp_path, capsys, monkeypatch, argv, words, env):
    monkeypatch.delenv("STABILITY_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _usage_error(capsys, [*argv, "-o", str(tmp_path / "out"), "-q"], *words)
    assert opened == []


def test_the_watch_sees_a_model_load(opened, tmp_path, capsys):
    """The check above can fail: the same edit with nothing wrong opens the models."""
    assert main(["edit", COFFEE, *TEXT_EDIT, "--prompt", "a mug", "--steps", "1", "--resolution", "64",
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    assert opened


def test_a_job_whose_outputs_are_all_there_says_so_at_once(opened, tmp_path, capsys):
    argv = ["edit", COFFEE, *TEXT_EDIT, "--prompt", "a mug", "--steps", "1", "--resolution", "64", "--batch-size",
            "2", "-o", str(tmp_path / "out"), "-q"]
    assert main(argv) == 0
    edit_output(tmp_path / "out", "coffee", 1)
    capsys.readouterr()
    opened.clear()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing to do:") and "--overwrite" in out
    assert opened == []


def test_a_sketch_parameter_out_of_range_is_a_usage_error(tmp_path, capsys):
    _usage_error(capsys, ["sketch", COFFEE, "--style", "pencil", "--param", "gamma=-3", "-o", str(tmp_path)],
                 "gamma=-3")
    assert not list(tmp_path.iterdir())
