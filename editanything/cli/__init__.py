"""`editanything …`: the command line. The only place that prints messages and picks exit codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import warnings
from typing import Iterator, Sequence

from ..errors import EditAnythingError

# Each module adds one subcommand: register(subparsers) and run(args) -> exit status.
_COMMANDS = ("edit_cmd", "segment_cmd", "sketch_cmd", "models_cmd", "ui_cmd", "prompt_cmd")


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
        with quiet(getattr(args, "quiet", False)):
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


# Read when the libraries are first imported, here or in worker processes (they inherit it).
_QUIET_ENV = {"PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}


@contextlib.contextmanager
def quiet(enabled: bool) -> Iterator[None]:
    """`-q`: no library warnings, log lines or progress bars while a command runs."""
    if not enabled:
        yield
        return
    saved_env = {k: os.environ.get(k) for k in _QUIET_ENV}
    os.environ.update(_QUIET_ENV)
    loggers = [logging.getLogger(name) for name in ("transformers", "diffusers", "huggingface_hub", "timm")]
    saved_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    # Libraries imported already have read the environment: switch their bars off directly.
    bars = [sys.modules[m] for m in ("transformers.utils.logging", "diffusers.utils.logging") if m in sys.modules]
    saved_bars = [b.is_progress_bar_enabled() for b in bars]
    for b in bars:
        b.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for logger, level in zip(loggers, saved_levels):
            logger.setLevel(level)
        for b, was_on in zip(bars, saved_bars):
            if was_on:
                b.enable_progress_bar()


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
