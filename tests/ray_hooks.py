"""Runs in every Ray worker process of the test session (Ray's `worker_process_setup_hook`)."""

import os

LOAD_LOG_ENV = "EDITANYTHING_TEST_LOAD_LOG"


def count_generator_loads() -> None:
    """Log one line (this process's pid) each time the pipeline builds a generator (loads its model)."""
    from editanything import pipeline

    build = pipeline._BUILDERS["generator"]

    def counted(spec, **options):
        with open(os.environ[LOAD_LOG_ENV], "a") as log:
            log.write(f"{os.getpid()}\n")
        return build(spec, **options)

    pipeline._BUILDERS["generator"] = counted
