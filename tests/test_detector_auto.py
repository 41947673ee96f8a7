"""Which detector `auto` takes, for every combination of the catalogue's detectors on disk; what may be in that
order at all (pinned revisions, no non-commercial licence); and `models list` showing each one's licence."""

from __future__ import annotations

import itertools

import pytest

from editanything.cli import main
from editanything.detect import DETECTORS, get_detector
from editanything.errors import ModelNotFound
from editanything.matte import MATTERS
from editanything.models import MODELS, get_spec
from editanything.models.manifest import HfSource
from model_pins import pin_to_files

# By published zero-shot LVIS AP (README: which model auto takes), then as before for those without one.
ORDER = ("llmdet-tiny", "grounding-dino-tiny", "grounding-dino-base", "groundingdino-swint-ogc", "groundingdino-swinb",
         "sam3")
NEEDS_BERT = ("groundingdino-swint-ogc", "groundingdino-swinb")


def _place(root, name):
    """Stand-in files for a model's required files: enough for the models layer to call it on disk."""
    for f in get_spec(name).files:
        if not f.optional:
            path = root / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def _clear(root):
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()


def test_auto_takes_the_first_of_its_order_on_disk_for_every_combination(isolated_models):
    assert DETECTORS.candidates() == ORDER
    for bert in (False, True):
        for picked in itertools.chain.from_iterable(itertools.combinations(ORDER, k) for k in range(len(ORDER) + 1)):
            _clear(isolated_models)
            for name in picked + (("bert-base-uncased",) if bert else ()):
                _place(isolated_models, name)
            usable = [m for m in ORDER if m in picked and (bert or m not in NEEDS_BERT)]
            assert DETECTORS.pick() == (usable[0] if usable else None), (picked, bert)


@pytest.mark.parametrize("present,named", [((), "grounding-dino-tiny"),
                                           (("groundingdino-swint-ogc",), "bert-base-uncased")])
def test_with_none_usable_auto_names_what_to_download(isolated_models, monkeypatch, present, named):
    for name in present:
        _place(isolated_models, name)
    pin_to_files(monkeypatch, isolated_models, *present)  # the stand-ins pass the size check
    with pytest.raises(ModelNotFound, match=f"editanything models download {named}"):
        get_detector("auto", device="cpu")


def _non_commercial(licence: str) -> bool:
    text = licence.lower().replace("-", " ")
    return "non commercial" in text or "noncommercial" in text or "cc by nc" in text


@pytest.mark.parametrize("registry", [DETECTORS, MATTERS], ids=["detectors", "matting"])
def test_auto_holds_only_pinned_commercially_usable_models(registry):
    for name in registry.candidates():
        if name not in MODELS:
            continue  # weight-free
        spec = get_spec(name)
        assert not _non_commercial(spec.license), name
        for model in (name, *spec.requires):
            hub = [s for f in get_spec(model).files for s in f.sources if isinstance(s, HfSource)]
            assert all(s.pinned for s in hub), f"{model} follows a branch"


def test_unpinned_and_non_commercial_entries_stay_out_of_auto():
    unpinned = get_spec("mm-grounding-dino-tiny")
    assert unpinned.license == "Apache-2.0" and unpinned.backend == "mm-grounding-dino-hf"
    assert not all(s.pinned for f in unpinned.files for s in f.sources)
    assert "mm-grounding-dino-tiny" not in DETECTORS.candidates()
    assert _non_commercial("FLUX Non-Commercial License") and _non_commercial("CC-BY-NC-4.0")
    for spec in MODELS.values():
        if _non_commercial(spec.license):
            assert all(spec.name not in r.candidates() for r in (DETECTORS, MATTERS))


def test_an_unpinned_detector_is_usable_by_name(isolated_models):
    with pytest.raises(ModelNotFound, match="editanything models download mm-grounding-dino-tiny"):
        get_detector("mm-grounding-dino-tiny", device="cpu")


def test_models_list_shows_each_detectors_and_matters_licence(isolated_models, capsys):
    assert main(["models", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line and line[0] != " "}
    for spec in MODELS.values():
        if spec.kind in ("detector", "matter"):
            assert spec.license[:24].strip() in rows[spec.name], spec.name
