"""`editanything …`: the command line. The only place that prints messages and picks exit codes."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Sequence

from ..errors import EditAnythingError

# Each module adds one subcommand: register(subparsers) and run(args) -> exit status.
_COMMANDS = ("edit_cmd", "segment_cmd", "sketch_cmd", "models_cmd", "ui_cmd")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="editanything", description="Edit photos by segment and regenerate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_negative_values(parser, argv))
    try:
        return int(args.run(args) or 0)
    except EditAnythingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `editanything models list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, the traceback on request
        if os.environ.get("EDITANYTHING_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set EDITANYTHING_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return 1


_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _attach_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--point -5,-5` → `--point=-5,-5`, so the value reaches its option and gets a real check
    ("outside the image", "must be finite") instead of argparse's "expected one argument"."""
    command = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    sub = command.choices.get(argv[0]) if command is not None and argv else None
    if sub is None:
        return argv
    out: list[str] = []
    for token in argv:
        action = sub._option_string_actions.get(out[-1]) if out else None
        if action is not None and action.nargs is None and _NEGATIVE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def fail(message: str) -> int:
    """Print one error line and return the exit status for usage errors."""
    print(f"error: {message}", file=sys.stderr)
    return 2
