"""`--help`, `--version`, argparse's own errors and `ui` on a taken port."""

import argparse
import socket

import pytest

from editanything import __version__
from editanything.cli import build_parser, main


def _commands(parser, path="editanything"):
    """(command path, parser) for the program and every command and subcommand."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def test_every_option_has_help_text():
    missing = [f"{path} {'/'.join(a.option_strings)}" for path, p in _commands(build_parser()) for a in p._actions
               if a.option_strings and not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert missing == []


def test_ui_and_edit_model_help_lists_todays_generators(capsys):
    from editanything.generate import list_generators

    for command in ("ui", "edit"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for name in list_generators():
            if name not in ("auto", "stability", "openai"):  # hosted ones are edit's --generator
                assert name in text, (command, name)


def test_sketch_help_lists_the_hed_runtimes(capsys):
    from editanything.edges.hed import RUNTIMES

    with pytest.raises(SystemExit):
        main(["sketch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"runtime (how HED's network runs) is one of auto, {', '.join(RUNTIMES)};" in text
    assert "onnx-int8" in RUNTIMES


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"editanything {__version__}"


def test_an_argparse_error_says_what_was_wrong_first(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["edit", "photo.jpg", "--remove"])
    err = capsys.readouterr().err.splitlines()
    assert exc.value.code == 2
    assert err[0] == "error: the following arguments are required: -o/--output"
    assert err[1:] == ["(see: editanything edit --help)"]


@pytest.mark.parametrize("command", ["ui", "serve"])
def test_a_server_on_a_taken_port_says_so_before_any_model_loads(isolated_models, capsys, monkeypatch, command):
    import editanything.pipeline

    def no_models(*args, **kwargs):
        raise AssertionError("an Editor was built before the port was checked")

    monkeypatch.setattr(editanything.pipeline, "Editor", no_models)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([command, "--port", str(port)]) == 2
    assert capsys.readouterr().err == f"error: port {port} is in use; pass --port N\n"
