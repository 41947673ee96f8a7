"""The Models tab (which backend each stage uses; what is on disk) and the Edit tab's banner.

Both say what runs from `Editor.describe()` (the words `editanything ui` prints at start), so
they cannot drift from what an edit uses. `summary` gives the tab's Markdown as a list of lines
and `model_rows` its table: a new line or column is one more entry there. Describing a stage may
build its backend, so it holds that stage's model lock (`locks.py`), on page load too; a stage
whose lock is busy (a long edit) is shown as last described rather than making the page wait.
"""

from __future__ import annotations

from ..caption import auto_candidates as captioner_candidates
from ..detect import DETECTOR_MODELS
from ..models import download_command, find_model, list_models
from ..segment import auto_candidates
from .locks import ModelLocks

STAGES = ("segmenter", "detector", "generator", "captioner")  # what `Editor.describe` takes
TABLE_HEADERS = ["model", "kind", "size", "license", "status"]
# What each stage does for the user, in the banner's words; Recolor needs no model.
TASKS = {"segmenter": "Click to select", "detector": "Select by text", "remover": "Remove",
         "generator": "Replace and Background", "captioner": "Prompt from the photo (caption)"}


class ModelsHandlers:
    def __init__(self, locks: ModelLocks) -> None:
        self.locks = locks
        self._described: dict[str, dict[str, str]] = {}  # each stage's last description

    def describe(self) -> dict[str, str]:
        """`Editor.describe()`, each stage under its own lock: the generator's entry brings the remover's."""
        for stage in STAGES:
            lock = self.locks.of_stage[stage]
            # Waiting only when there is nothing to show yet; a busy stage is shown as last described.
            if lock.acquire(blocking=stage not in self._described):
                try:
                    self._described[stage] = self.locks.editor.describe((stage,))
                finally:
                    lock.release()
        return {k: v for stage in STAGES for k, v in self._described[stage].items()}

    def models(self) -> tuple[str, list[list[str]]]:
        """The tab's outputs: the stages' Markdown and the table of known models."""
        return "\n".join(summary(self.describe())), model_rows()

    def banner(self) -> str:
        """What each task runs on now, and why (the Models tab's words, from `Editor.describe`)."""
        lines = ["**What runs here** (the Models tab lists every model and its download command):"]
        for stage, text in self.describe().items():
            if stage == "generator" and text.startswith("classical"):
                text += f"; they need Stable Diffusion: `{download_command('sd15-inpainting')}`"
            lines.append(f"- **{TASKS[stage]}**: {text}")
        lines.append("- **Recolor**: no model (the chosen colour, with the selection's own lightness and texture)")
        return "\n".join(lines)


def summary(described: dict[str, str]) -> list[str]:
    """The tab's Markdown lines: one per stage, then the order in which `auto` takes models."""
    # On a CPU the fast segmenter leads; the first of each list that is on disk is the one used.
    auto = (f"- **auto** takes the first on disk: segmenter {' → '.join(auto_candidates())}; "
            f"detector {' → '.join(DETECTOR_MODELS)}; captioner {' → '.join(captioner_candidates())}")
    return [*(f"- **{stage}**: {text}" for stage, text in described.items()), auto]


def model_rows() -> list[list[str]]:
    """One table row per model in the manifest (TABLE_HEADERS' columns)."""
    rows = []
    for spec in list_models():
        found = find_model(spec.name)
        rows.append([spec.name, spec.kind, spec.size_hint, spec.license,
                     f"present ({found.root})" if found else f"missing: {download_command(spec.name)}"])
    return rows
