"""Runs in every Ray worker process of the test session (Ray's `worker_process_setup_hook`): the test-only
hooks live here, not in the engine.

- Every generator the pipeline builds (loads its model) logs this process's pid to $EDITANYTHING_TEST_LOAD_LOG.
- Fault injection: the file at $EDITANYTHING_TEST_CRASH_SPEC holds comma-separated "NAME=MARKER" (the worker
  exits hard on its first attempt at the file called NAME; MARKER records the crash, so Ray's retry
  succeeds) or "NAME" (on every attempt). A test writes it before a run and empties it after; the
  workers were started with the session, so an environment variable set later would not reach them.
"""

import os

LOAD_LOG_ENV = "EDITANYTHING_TEST_LOAD_LOG"
CRASH_SPEC_ENV = "EDITANYTHING_TEST_CRASH_SPEC"


def setup() -> None:
    count_generator_loads()
    crash_on_named_files()


def count_generator_loads() -> None:
    """Log one line (this process's pid) each time the pipeline builds a generator (loads its model)."""
    from editanything import pipeline

    build = pipeline._BUILDERS["generator"]

    def counted(spec, **options):
        with open(os.environ[LOAD_LOG_ENV], "a") as log:
            log.write(f"{os.getpid()}\n")
        return build(spec, **options)

    pipeline._BUILDERS["generator"] = counted


def crash_on_named_files() -> None:
    """Make a Ray worker die (os._exit) on the files the crash spec names, before it works on them."""
    from editanything.engines import ray as engine

    attempt = engine.attempt

    def crashing(work, job):
        spec = _crash_spec()
        name = job.source.name
        if name in spec:
            marker = spec[name]
            try:
                if marker:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os._exit(1)
            except FileExistsError:
                pass  # crashed here before: this is the retry
        return attempt(work, job)

    engine.attempt = crashing


def _crash_spec() -> dict[str, str]:
    path = os.environ.get(CRASH_SPEC_ENV)
    try:
        text = open(path).read().strip() if path else ""
    except FileNotFoundError:
        return {}
    return dict(item.partition("=")[::2] for item in text.split(",")) if text else {}
