"""Error types. Messages say what was wrong and what to do; the CLI turns them into one line."""


class EditAnythingError(Exception):
    """Base of every error this package raises on purpose."""


class ImageError(EditAnythingError):
    """A file could not be read or written as an image."""


class InvalidInputError(EditAnythingError, ValueError):
    """An argument has the wrong shape, type or value."""


class ModelNotFound(EditAnythingError):
    """A model's files are not on disk; the message holds the command that fetches them."""


class MissingDependency(EditAnythingError, ImportError):
    """An optional Python package is not installed; the message names the extra to install."""


class NothingFound(EditAnythingError):
    """A selection (text, clicks) matched nothing; editing an empty mask would silently do nothing."""


class BadOutput(EditAnythingError):
    """An edit's result is unusable (no pixel changed, or the model produced non-finite numbers): never "done"."""


class WorkerStartupError(EditAnythingError):
    """No worker process of a batch got as far as its first file (so no file is to blame)."""


class UnchangedOutput(BadOutput):
    """A generator gave back its input pixel for pixel; the Editor says why that may be (`pipeline._why_unchanged`)."""


class ChecksumMismatch(EditAnythingError):
    """A downloaded or stored model file does not have the expected sha256."""


def first_line(exc: BaseException, index: int = 0) -> str:
    """Line `index` of an exception's message (upstream libraries raise multi-line ones), for one-line errors."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    return lines[min(index, len(lines) - 1)][:200]


def require(module: str, extra: str):
    """Import an optional dependency or raise MissingDependency naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module} is not installed ({exc}); install it with: pip install 'editanything[{extra}]'"
        ) from exc


class RemoteServiceError(EditAnythingError):
    """A hosted image service refused or failed a request (after retries); the message names the service."""


NOT_ANSWERING = " is not answering; "


class ServiceDown(RemoteServiceError):
    """Requests to a service timed out or failed with 5xx several times in a row: the rest are not sent.

    The message starts with the service's name followed by NOT_ANSWERING, so a batch report can count them.
    """


CHECK_FAILED = "failed the check: "


class CheckFailed(EditAnythingError):
    """An edit was written, but the detector's second look failed: what a remove took away is still found,
    or what a replace put in is not. The message starts with CHECK_FAILED, so a batch report can count them."""


class Cancelled(EditAnythingError):
    """The user (Ctrl-C, the UI's Cancel, a closed browser tab) stopped a job; nothing half-made is kept."""
