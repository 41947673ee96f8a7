"""Generation jobs through the batch machinery (`batch.run_batch`): resumable, parallel, failures collected.

- `generate_prompts`: a prompts file (one prompt a line, or a CSV with `prompt,negative,seed` columns),
  one job per line, written as `NNNN-<slug>.png` (the line number, so a re-run finds what is done);
- `generate_folder`: img2img over photos (files, folders, URIs), written as `<photo>.png`.
Each job writes every image of its batch (`name-1.png` … first, `name.png` last, as edits do).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from .batch import BatchReport, Job, Progress, _editor, _engine_options, numbered_output, plan_jobs, run_batch
from .engines import Engine
from .engines.priority import batch_nice
from .errors import InvalidInputError
from .types import MAX_SEED, GenerationParams
from .imageio import check_writable_folder
from .storage import check_uris, location

MAX_PROMPTS_BYTES = 16 * 1024 * 1024
CSV_COLUMNS = ("prompt", "negative", "seed")


def slug(prompt: str, limit: int = 60) -> str:
    """A file-name form of a prompt: lowercase words joined by '-', at most `limit` characters."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    out = "-".join(words)[:limit].rstrip("-")
    return out or "image"


@dataclass(frozen=True)
class PromptLine:
    """One line of a prompts file: what a job generates. `negative`/`seed` None: the command's."""

    file: str
    number: int
    prompt: str
    negative: str | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        return f"{Path(self.file).name}:{self.number}"

    def __str__(self) -> str:
        return f"{self.file}:{self.number}"

    def params(self, base: GenerationParams) -> GenerationParams:
        return dataclasses.replace(
            base, prompt=self.prompt,
            negative_prompt=base.negative_prompt if self.negative is None else self.negative,
            seed=base.seed if self.seed is None else self.seed)


def read_prompts(path: str | os.PathLike) -> tuple[list[PromptLine], list[tuple[str, str]]]:
    """The lines of a prompts file, and the bad ones as (FILE:LINE, reason).

    A file whose first line is a CSV header naming a `prompt` column is read as CSV (`negative` and `seed`
    optional; an empty cell takes the command's value); otherwise each non-empty line not starting with
    `#` is one prompt."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"--prompts-file {path}: no such file")
    if path.stat().st_size > MAX_PROMPTS_BYTES:
        raise InvalidInputError(f"--prompts-file {path}: larger than {MAX_PROMPTS_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"--prompts-file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    header = [c.strip().lower() for c in next(csv.reader([first]), [])]
    if "prompt" in header:
        return _read_csv(path, text)
    lines, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(PromptLine(str(path), number, line.strip()))
    if not lines:
        raise InvalidInputError(f"--prompts-file {path}: no prompt in it (one prompt a line, or a CSV with "
                                f"columns {','.join(CSV_COLUMNS)})")
    return lines, bad


def _read_csv(path: Path, text: str) -> tuple[list[PromptLine], list[tuple[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    lines, bad = [], []
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            unknown = [c for c in header if c not in CSV_COLUMNS]
            if unknown:
                raise InvalidInputError(f"--prompts-file {path}: unknown column {unknown[0]!r}; the columns are "
                                        f"{', '.join(CSV_COLUMNS)} (prompt required)")
            continue
        where = f"{path}:{number}"
        if len(row) > len(header):
            bad.append((where, f"{len(row)} cells, the header has {len(header)} (quote a prompt holding commas)"))
            continue
        cells = dict(zip(header, (c.strip() for c in row)))
        if not cells.get("prompt"):
            bad.append((where, "no prompt in this line"))
            continue
        seed = cells.get("seed") or None
        if seed is not None:
            try:
                seed = int(seed)
            except ValueError:
                bad.append((where, f"seed {seed!r} is not a whole number"))
                continue
            if not -1 <= seed <= MAX_SEED:
                bad.append((where, f"seed {seed} is outside -1..{MAX_SEED}"))
                continue
        negative = cells.get("negative")
        lines.append(PromptLine(str(path), number, cells["prompt"], negative if negative else None, seed))
    if not lines and not bad:
        raise InvalidInputError(f"--prompts-file {path}: a header and no prompt")
    return lines, bad


def generate_line(line: PromptLine, output: Path, *, editor: dict[str, Any], params: GenerationParams) -> None:
    """One prompt of a prompts file: every image of its batch, `output` itself last."""
    from .generation import GenerateRequest

    result = _editor(editor).generate(GenerateRequest(line.params(params)))
    for i in range(len(result.images) - 1, -1, -1):
        result.save(numbered_output(output, i), i)


def generate_file(source: Path, output: Path, *, editor: dict[str, Any], params: GenerationParams) -> None:
    """img2img of one photo: every image of its batch, `output` itself last."""
    from .generation import GenerateRequest
    from .imageio import read_image

    result = _editor(editor).generate(GenerateRequest(params, image=read_image(source)), source=str(source))
    for i in range(len(result.images) - 1, -1, -1):
        result.save(numbered_output(output, i), i, inputs=(source,))


def plan_prompt_jobs(lines: Sequence[PromptLine], outdir: str | os.PathLike, count: int) -> list[Job]:
    """One job per line, named by its line number (stable across re-runs) and its prompt."""
    root = location(outdir)
    width = max(4, len(str(max(line.number for line in lines))))
    return [Job(line, root / f"{line.number:0{width}d}-{slug(line.prompt)}.png", count) for line in lines]


def generate_prompts(prompts_file: str | os.PathLike, outdir: str | os.PathLike, params: GenerationParams, *,
                     editor: dict[str, Any] | None = None, workers: int | None = None, overwrite: bool = False,
                     progress: bool | Progress = True, prebuilt: Any = None, engine: str | Engine = "local",
                     ray_address: str | None = None, gpus_per_worker: float | None = None,
                     cpus_per_worker: int | None = None, styled: Any = None, nice: int | None = None) -> BatchReport:
    """Generate every prompt of `prompts_file` into `outdir` with `params` (each line's own negative and
    seed win). `styled(prompt, negative) -> (prompt, negative)` applies saved styles to each line. `nice`:
    the workers' niceness (see `batch.run_batch`)."""
    options = _engine_options(engine, ray_address, gpus_per_worker, cpus_per_worker)
    nice = batch_nice(nice)
    lines, bad = read_prompts(prompts_file)
    if styled is not None:
        lines = [dataclasses.replace(line, **dict(zip(("prompt", "negative"), styled(
            line.prompt, line.params(params).negative_prompt)))) for line in lines]
    check_uris([outdir])
    check_writable_folder(outdir)
    jobs = plan_prompt_jobs(lines, outdir, params.n_images) if lines else []
    if prebuilt is not None:
        _editor(dict(editor or {}), prebuilt)
    work = partial(generate_line, editor=dict(editor or {}), params=params)
    report = run_batch(jobs, work, workers=1 if workers is None and engine == "local" else workers,
                       overwrite=overwrite, progress=progress, desc="generate", engine=engine, engine_options=options,
                       nice=nice)
    report.failed = [(Path(where), reason) for where, reason in bad] + report.failed
    return report


def generate_folder(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, params: GenerationParams, *,
                    editor: dict[str, Any] | None = None, workers: int | None = None, overwrite: bool = False,
                    progress: bool | Progress = True, prebuilt: Any = None, engine: str | Engine = "local",
                    ray_address: str | None = None, gpus_per_worker: float | None = None,
                    cpus_per_worker: int | None = None, nice: int | None = None) -> BatchReport:
    """img2img of every photo of `inputs` (files, folders, globs, URIs) into `outdir`, resumable (`nice`:
    the workers' niceness, see `batch.run_batch`)."""
    options = _engine_options(engine, ray_address, gpus_per_worker, cpus_per_worker)
    nice = batch_nice(nice)
    check_uris(inputs)
    check_writable_folder(outdir)
    jobs, problems = plan_jobs(inputs, outdir, "png", count=params.n_images)
    if prebuilt is not None:
        _editor(dict(editor or {}), prebuilt)
    work = partial(generate_file, editor=dict(editor or {}), params=params)
    report = run_batch(jobs, work, workers=1 if workers is None and engine == "local" else workers,
                       overwrite=overwrite, progress=progress, desc="generate", engine=engine, engine_options=options,
                       nice=nice)
    report.failed = problems + report.failed
    return report
