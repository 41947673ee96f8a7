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

from .. import threads
from ..errors import Cancelled, EditAnythingError
from . import progress_bar

# Each module adds one subcommand: register(subparsers) and run(args) -> exit status.
_COMMANDS = ("edit_cmd", "generate_cmd", "segment_cmd", "sketch_cmd", "models_cmd", "ui_cmd", "serve_cmd", "prompt_cmd")


class _Parser(argparse.ArgumentParser):
    """argparse that prints what was wrong first (one `error:` line), then where to look, not the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n(see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    parser = _Parser(prog="editanything", description="Edit photos by segment and regenerate.")
    parser.add_argument("--version", action="version", version=f"editanything {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_negative_values(parser, argv))
    silent = getattr(args, "quiet", False)
    try:
        # In a log or a pipe the libraries' loading bars would be raw carriage returns and escapes.
        # The thread policy reaches torch through the environment it reads when it is first imported.
        with _environ(threads.process_env()), quiet(silent), (library_bars_off() if not silent and not progress_bar.on_terminal() else contextlib.nullcontext()):
            return int(args.run(args) or 0)
    except (KeyboardInterrupt, Cancelled):  # outputs are written atomically: nothing half-written is left
        print("interrupted", file=sys.stderr)
        return 130
    except EditAnythingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `editanything models list | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug, not bad input: still one line, the traceback on request
        if os.environ.get("EDITANYTHING_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set EDITANYTHING_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return 1


# Read when the libraries are first imported, here or in worker processes (they inherit it).
_BARS_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
_QUIET_ENV = {"PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def library_bars_off() -> Iterator[None]:
    """No progress bars from diffusers, transformers or the Hugging Face hub while a command runs."""
    # Libraries imported already have read the environment: switch their bars off directly.
    bars = [sys.modules[m] for m in ("transformers.utils.logging", "diffusers.utils.logging") if m in sys.modules]
    saved = [b.is_progress_bar_enabled() for b in bars]
    hub = sys.modules.get("huggingface_hub.utils")
    hub_was_on = hub is not None and not hub.are_progress_bars_disabled()
    for b in bars:
        b.disable_progress_bar()
    if hub_was_on:
        hub.disable_progress_bars()
    try:
        with _environ(_BARS_ENV):
            yield
    finally:
        for b, was_on in zip(bars, saved):
            if was_on:
                b.enable_progress_bar()
        if hub_was_on:
            hub.enable_progress_bars()


@contextlib.contextmanager
def quiet(enabled: bool) -> Iterator[None]:
    """`-q`: no library warnings, log lines or progress bars while a command runs."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("transformers", "diffusers", "huggingface_hub", "timm")]
    saved_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with _environ(_QUIET_ENV), library_bars_off(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, saved_levels):
            logger.setLevel(level)


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
