"""`editanything …`: the command line. The only place that prints messages and picks exit codes."""

from __future__ import annotations

import argparse
import os
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
    args = parser.parse_args(argv)
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


def fail(message: str) -> int:
    """Print one error line and return the exit status for usage errors."""
    print(f"error: {message}", file=sys.stderr)
    return 2
