"""The Models tab (which backend each stage uses; what is on disk) and the Edit tab's banner.

`summary` gives the tab's Markdown as a list of lines and `model_rows` its table: a new line
or column is one more entry there. Describing a stage may build its backend, so it holds that
stage's model lock (`locks.py`), on page load too; a stage whose lock is busy (a long edit) is
shown as last described rather than making the page wait.
"""

from __future__ import annotations

from ..detect import DETECTOR_MODELS
from ..models import download_command, find_model, list_models
from ..segment import auto_candidates
from .locks import ModelLocks

STAGES = ("segmenter", "detector", "generator", "captioner")
TABLE_HEADERS = ["model", "kind", "size", "license", "status"]


class ModelsHandlers:
    def __init__(self, locks: ModelLocks) -> None:
        self.locks = locks
        self._described: dict[str, str] = {}  # each stage's last description

    def describe(self) -> dict[str, str]:
        """Which backend each stage uses, in words; each stage described under its own lock."""
        for stage in STAGES:
            lock = self.locks.of_stage[stage]
            # Waiting only when there is nothing to show yet; a busy stage is shown as last described.
            if lock.acquire(blocking=stage not in self._described):
                try:
                    self._described[stage] = self.locks.editor.describe((stage,))[stage]
                finally:
                    lock.release()
        return {stage: self._described[stage] for stage in STAGES}

    def models(self) -> tuple[str, list[list[str]]]:
        """The tab's outputs: the stages' Markdown and the table of known models."""
        return "\n".join(summary(self.describe())), model_rows()

    def banner(self) -> str:
        """What runs without weights, and how to get the deep models."""
        d = self.describe()
        notes = []
        if "GrabCut" in d.get("segmenter", ""):
            notes.append(f"selection uses **{d['segmenter']}**")
        if d.get("generator", "").startswith("classical"):
            notes.append("Remove fills the selection from its surroundings with OpenCV inpainting and Recolor needs "
                         "no model; Replace and Background need Stable Diffusion: "
                         f"`{download_command('sd15-inpainting')}`")
        if d.get("detector", "").startswith("unavailable"):
            notes.append(f"text selection needs Grounding DINO: `{download_command(DETECTOR_MODELS[0])}`")
        if not notes:
            return "Models: " + " · ".join(f"{k}: {v}" for k, v in d.items() if v != "none")
        return "**Running with the weight-free backends.** " + "; ".join(notes) + "."


def summary(described: dict[str, str]) -> list[str]:
    """The tab's Markdown lines: one per stage, then the order in which `auto` takes models."""
    # On a CPU the fast segmenter leads; the first of each list that is on disk is the one used.
    auto = (f"- **auto** takes the first on disk: segmenter {' → '.join(auto_candidates())}; "
            f"detector {' → '.join(DETECTOR_MODELS)}")
    return [*(f"- **{stage}**: {text}" for stage, text in described.items()), auto]


def model_rows() -> list[list[str]]:
    """One table row per model in the manifest (TABLE_HEADERS' columns)."""
    rows = []
    for spec in list_models():
        found = find_model(spec.name)
        rows.append([spec.name, spec.kind, spec.size_hint, spec.license,
                     f"present ({found.root})" if found else f"missing: {download_command(spec.name)}"])
    return rows
