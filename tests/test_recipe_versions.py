"""The library versions a recipe records are read from package metadata once per process."""

from __future__ import annotations

from importlib import metadata

from editanything import recipe


def test_versions_are_read_once_and_each_caller_gets_its_own_copy(monkeypatch):
    first = recipe.library_versions()
    assert first["numpy"] == metadata.version("numpy")
    calls = []
    monkeypatch.setattr(recipe.metadata, "version", lambda dist: calls.append(dist) or "re-read")
    second = recipe.library_versions()
    assert calls == []  # no metadata read again
    assert second == first and second is not first
    second["numpy"] = "changed"
    assert recipe.library_versions() == first
