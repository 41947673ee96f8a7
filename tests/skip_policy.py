"""`make test` installs every extra and fetches the browser and HED: there, a test skipped for a missing
dependency, browser or HED weights fails instead, so a broken install can't pass as green.

Set by `EDITANYTHING_REQUIRE_ALL=1` (the Makefile's test target). Skips for other reasons (real
weights a registry can't give, marked `slow`) stay skips; `-rs` lists every skip with its reason.
"""

from __future__ import annotations

import os

import pytest

# The reasons of pytest.importorskip ("could not import 'torch'") and of the skips for what `make test` provides.
PROVIDED_BY_MAKE_TEST = ("could not import", "is not installed", "HED weights not downloaded",
                         "CLIP tokenizer not downloaded")


def _reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[-1]) if isinstance(longrepr, tuple) else str(longrepr)


def _enforce(report) -> None:
    if os.environ.get("EDITANYTHING_REQUIRE_ALL") != "1" or not report.skipped:
        return
    reason = _reason(report)
    if any(marker in reason for marker in PROVIDED_BY_MAKE_TEST):
        report.outcome = "failed"
        report.longrepr = f"skipped, but `make test` provides this (EDITANYTHING_REQUIRE_ALL=1): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _enforce(outcome.get_result())
