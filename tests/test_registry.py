"""The one registry type behind detectors, segmenters, captioners, generators and removers."""

import dataclasses
from dataclasses import dataclass, field

import pytest

from editanything.caption import CAPTIONERS
from editanything.detect import DETECTORS
from editanything.errors import InvalidInputError, ModelNotFound
from editanything.generate import GENERATORS
from editanything.generate.removal import REMOVERS
from editanything.models import MODELS
from editanything.prompting import EXPANDERS
from editanything.registry import Registry, for_model
from editanything.segment import SEGMENTERS


@dataclass
class Thing:
    model: str
    settings: dict = field(default_factory=dict)
    note: str = ""


def things(**rules) -> Registry[Thing]:
    builders = {n: for_model(lambda model, **kw: Thing(model, kw))(n) for n in ("a", "b", "c")}
    return Registry("thing", builders, **rules)


def test_every_stage_is_one_registry_type():
    assert all(isinstance(r, Registry) for r in (DETECTORS, SEGMENTERS, CAPTIONERS, GENERATORS, REMOVERS, EXPANDERS))
    assert "grabcut" in SEGMENTERS and "lama" in GENERATORS and list(REMOVERS) == ["lama", "migan"]


def test_names_settings_and_register():
    reg = things()
    assert reg.get("b", x=1) == Thing("b", {"x": 1})
    reg.register("d", lambda **kw: Thing("dee", kw))
    assert reg.get("d").model == "dee" and reg.names() == ["auto", "a", "b", "c", "d"] and "d" in reg


def test_one_error_for_an_unknown_name_lists_what_is_known():
    with pytest.raises(InvalidInputError, match=r"unknown thing 'z'; known: auto, a, b, c$"):
        things().get("z")
    with pytest.raises(InvalidInputError, match="unknown detector 'z'; known: auto, grounding-dino-tiny.*backends "
                                                "groundingdino"):
        DETECTORS.get("z")
    with pytest.raises(InvalidInputError, match="unknown generator 'z'.*or the path of a checkpoint"):
        GENERATORS.get("z")


def test_auto_takes_the_first_usable_in_order_with_its_settings_adapted():
    reg = things(order=lambda device: ("c", "b") if device == "cpu" else ("a", "b"),
                 usable=lambda name: name != "c", adapt=lambda name, kw: {k: v for k, v in kw.items() if k != "device"})
    assert reg.get(device="cpu") == Thing("b", {})
    assert reg.get(device="cuda").model == "a"
    assert reg.pick("cpu") == "b" and reg.candidates("cpu") == ("c", "b")


def test_auto_with_none_usable_falls_back_or_names_the_download(isolated_models):
    fallback = things(order=("a",), usable=lambda name: False, none_found=lambda reg, **kw: Thing("fallback", kw))
    assert fallback.get(x=2) == Thing("fallback", {"x": 2})
    # the default: the first candidate's files are missing, and the message says how to fetch them
    missing = Registry("segmenter", order=("sam-vit-b", "sam-vit-l"))
    with pytest.raises(ModelNotFound, match="editanything models download sam-vit-b"):
        missing.get()


def test_a_partly_present_candidate_names_what_it_lacks(isolated_models):
    spec = MODELS["groundingdino-swint-ogc"]
    with open(isolated_models / spec.files[0].path, "wb") as f:  # the checkpoint (sparse), not its BERT
        f.truncate(spec.files[0].size)
    with pytest.raises(ModelNotFound, match="models download bert-base-uncased"):
        Registry("detector", order=("grounding-dino-tiny", "groundingdino-swint-ogc")).get()


def test_choose_replaces_the_order_and_says_why():
    reg = things(choose=lambda settings: ("c", "asked for" if settings else "default"))
    assert reg.get() == Thing("c", {}, "default") and reg.get(y=1).note == "asked for"


def test_a_manifest_model_of_a_known_backend_is_built_by_its_name(monkeypatch):
    spec = MODELS["sam-vit-b"]
    monkeypatch.setitem(MODELS, "my-sam", dataclasses.replace(spec, name="my-sam"))
    reg = things(backends={"sam": for_model(lambda model, **kw: Thing(f"sam:{model}", kw))})
    assert reg.get("my-sam", k=3) == Thing("sam:my-sam", {"k": 3})
    with pytest.raises(InvalidInputError, match="backends sam"):
        reg.get("sd15")  # in the manifest, but of a backend this registry does not build


def test_fallback_claims_names_the_rest_refuse(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"")
    reg = things(fallback=lambda name: (lambda **kw: Thing(str(name), kw)) if str(name).endswith(".bin") else None)
    assert reg.get(tmp_path / "model.bin").model == str(tmp_path / "model.bin")
    with pytest.raises(InvalidInputError, match="or the path of a checkpoint file or folder"):
        reg.get("other.txt")
