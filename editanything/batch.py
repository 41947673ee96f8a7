"""Folder jobs: many inputs → many outputs, in parallel, resumable, one bad file never stops the batch.

`run_batch` is generic (any picklable `work(source, output, **options)` function); `sketch_folder`
is the photo-to-sketch job on top of it.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Sequence

from .engines import Engine, get_engine
from .engines.priority import batch_nice
from .errors import CHECK_FAILED, NOT_ANSWERING, CheckFailed, InvalidInputError
from .imageio import IMAGE_SUFFIXES, PARTIAL_SUFFIX, check_writable_folder, limit_size
from .multipart import remove_left_behind
from .storage import (Location, RemotePath, check_uris, is_uri, list_images, location, present, same_file,
                      stale_partials, unreadable_key)
from .threads import usable_cores

OUTPUT_FORMATS = ("png", "jpg")
log = logging.getLogger(__name__)


NAME_MAX = 255  # bytes in one file name on every common file system


@dataclass(frozen=True)
class Job:
    """One input and what it writes: `output`, and for `count` > 1 also `name-1.png` … `name-{count-1}.png`.
    Paths are RemotePaths where the user gave URIs (`editanything.storage`)."""

    source: Location
    output: Location
    count: int = 1

    @property
    def outputs(self) -> tuple[Location, ...]:
        return (self.output, *(numbered_output(self.output, i) for i in range(1, self.count)))


def numbered_output(output: Location, index: int) -> Location:
    """Where image `index` of a job goes: the output itself for 0, else `name-INDEX.ext` beside it."""
    return output if index == 0 else output.with_name(f"{output.stem}-{index}{output.suffix}")


@dataclass
class BatchReport:
    """What a batch did. `failed` holds (file, one-line reason)."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_check(self) -> list[tuple[Path, str]]:
        """The photos whose edit was written but failed its check (see `CheckFailed`)."""
        return [(path, reason) for path, reason in self.failed if reason.startswith(CHECK_FAILED)]

    def summary(self, images_per_job: int = 1) -> str:
        """The totals; with `images_per_job` > 1 (an edit's --batch-size/--batch-count) the images too."""
        images = f" ({len(self.done) * images_per_job} images)" if images_per_job > 1 and self.done else ""
        checked = len(self.failed_check)
        return (f"{len(self.done)} done{images}, {len(self.skipped)} skipped (already done), "
                f"{len(self.failed) - checked} failed" + (f", {checked} failed the check" if checked else ""))

    def failure_lines(self) -> list[str]:
        """One `FILE: reason` line per failure, naming the file once (errors name their file already);
        photos not sent because their service stopped answering are counted in one line per service."""
        lines, not_sent = [], Counter()
        for path, reason in self.failed:
            prefix = f"{path}: "
            service, down, _ = reason.removeprefix(prefix).partition(NOT_ANSWERING)
            if down and ": " not in service:
                not_sent[service] += 1
                continue
            lines.append(reason if reason.startswith(prefix) else prefix + reason)
        lines += [f"{service}{NOT_ANSWERING}{n} photo{'s' * (n > 1)} not sent (a re-run sends them)"
                  for service, n in not_sent.items()]
        return lines


def collect_inputs(inputs: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
                   ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Expand files, folders (recursive) and glob patterns into (file, relative output path) pairs.

    Folders keep their inner structure in the relative path; single files and glob matches
    keep their name (glob matches: their path below the pattern's fixed part). `exclude` (the
    output folder) is left out of the folders and patterns it lies inside, so a re-run never
    takes the last run's outputs for inputs. Symlinks are followed; one that loops is reported.
    URIs (s3://…) are listed through pyarrow; glob patterns work on local paths only.
    """
    found: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    skip = _identity(Path(exclude)) if exclude is not None and not isinstance(exclude, RemotePath) else None
    for item in inputs:
        if is_uri(item) or isinstance(item, RemotePath):
            _collect_uri(location(item), exclude, found, problems)
            continue
        text = str(item)
        path = Path(text)
        if path.is_dir():
            files = _walk_images(path, skip, problems)
            found += [(p, p.relative_to(path)) for p in files]
        elif path.exists():
            found.append((path, Path(path.name)))
        elif glob.has_magic(text):
            base = _fixed_prefix(path)
            hits = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not hits:
                problems.append((path, "no file matches this pattern"))
            matches = []
            for m in hits:
                if skip is not None and _inside(m, skip, base):
                    continue
                if m.is_file():
                    matches.append(m)
                elif (why := _unreachable(m)) is not None:
                    problems.append((m, why))
            found += [(m, m.relative_to(base) if m.is_relative_to(base) else Path(m.name)) for m in matches]
        else:
            problems.append((path, _unreachable(path) or "no such file or folder"))
    return found, problems


def _collect_uri(root: RemotePath, exclude: Any, found: list, problems: list) -> None:
    """`collect_inputs` for one URI: a folder (recursive), or a file."""
    from pyarrow.fs import FileType

    kind = root.info().type
    if kind == FileType.Directory:
        for p in list_images(root, IMAGE_SUFFIXES, exclude):
            if unreadable_key(p.path):  # listed, but pyarrow would read another key (it normalises the path)
                problems.append((p, "an object key with an empty, '.' or '..' part (//, /./, /../) cannot be read "
                                    "by its exact name; rename the object"))
            else:
                found.append((p, PurePosixPath(p.path).relative_to(root.path)))
    elif kind == FileType.File:
        found.append((root, Path(root.name)))
    elif glob.has_magic(root.path):
        problems.append((root, "glob patterns work on local paths only; give the folder's URI"))
    else:
        problems.append((root, "no such file or folder"))


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing folder, the same whichever path or link leads to it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _inside(path: Path, folder: tuple[int, int], stop: Path) -> bool:
    """Whether `path` lies in the folder with identity `folder`, looking up to (not above) `stop`."""
    for parent in path.parents:
        if parent == stop or not parent.is_relative_to(stop):
            return False
        if _identity(parent) == folder:
            return True
    return False


def _unreachable(path: Path) -> str | None:
    """Why a symlink can't be followed (a loop, or a missing target); None when `path` is not such a link."""
    try:
        os.stat(path)
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop: following this link leads back to it; fix or remove the link"
        if os.path.islink(path):
            return f"broken symlink: it points to {os.readlink(path)}, which does not exist"
        return None


def _walk_images(root: Path, skip: tuple[int, int] | None, problems: list[tuple[Path, str]]) -> list[Path]:
    """Image files below `root`, sorted; follows links to folders, reports links that loop.

    `skip` is a folder identity left out (the output folder) unless it is `root` itself.
    """
    files: list[Path] = []
    ancestors = {_identity(root): root}

    def visit(folder: Path) -> None:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            problems.append((folder, f"cannot list this folder ({exc.strerror or exc})"))
            return
        for name in names:
            path = folder / name
            try:
                st = os.stat(path)
            except OSError:
                why = _unreachable(path)
                if why is not None and (path.suffix.lower() in IMAGE_SUFFIXES or why.startswith("symlink loop")):
                    problems.append((path, why))
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    problems.append((path, f"symlink loop: this folder leads back to {ancestors[key]}; "
                                           "its files are read once, from there"))
                elif key != skip:
                    ancestors[key] = path
                    visit(path)
                    del ancestors[key]
            elif stat.S_ISREG(st.st_mode) and path.suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                files.append(path)

    visit(root)
    return sorted(files)


def _fixed_prefix(pattern: Path) -> Path:
    """The folder part of a glob pattern before its first wildcard."""
    parts = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def plan_jobs(inputs: Iterable[str | os.PathLike], outdir: str | os.PathLike, fmt: str,
              suffix: str = "", count: int = 1) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Jobs for every input image, with output paths under `outdir`; and the inputs that can't be jobs.

    Every file a job writes (`count` per input) is reserved up front: a job is refused when one
    of its outputs would overwrite an input, have a name too long for the file system, or be
    written by another job too (then both are refused, each naming the other).
    """
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInputError(f"unsupported output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    outdir = location(outdir)
    inputs = list(inputs)
    folder = next((item for item in inputs if same_file(item, outdir)), None)
    if folder is not None:  # else every output lands among the photos, and a re-run reads them as inputs
        raise InvalidInputError(f"the output folder {outdir} is also an input folder ({folder}): outputs would "
                                "mix with the photos; choose another output folder (a subfolder of it works)")
    pairs, problems = collect_inputs(inputs, exclude=outdir)
    real = _Resolver()
    sources = {real(s) for s, _ in pairs}
    candidates: list[Job] = []
    claims: dict[Path, list[Job]] = {}
    for source, rel in pairs:
        job = Job(source, outdir / rel.with_name(rel.stem + suffix + "." + fmt), count)
        long = next((o for o in job.outputs if len(os.fsencode(o.name)) > NAME_MAX), None)
        keys = [real(o) for o in job.outputs]
        taken = next((o for o, key in zip(job.outputs, keys) if key in sources), None)
        if long is not None:
            problems.append((source, f"output name {long.name!r} is longer than {NAME_MAX} bytes; "
                                     "shorten the input's name"))
        elif taken is not None:
            problems.append((source, f"output {taken} would overwrite an input; choose another output folder"))
        else:
            candidates.append(job)
            for output, key in zip(job.outputs, keys):
                claims.setdefault(key, []).append((job, output))
    clashes: dict[Job, tuple[Path, Job]] = {}
    for claimants in claims.values():
        if len(claimants) > 1:
            for job, output in claimants:
                other = next(j for j, _ in claimants if j is not job)
                clashes.setdefault(job, (output, other))
    jobs = []
    for job in candidates:
        if job in clashes:
            output, other = clashes[job]
            problems.append((job.source, f"its output {output} would also be written for {other.source}; "
                                         "rename one of them or run them into different folders"))
        else:
            jobs.append(job)
    return jobs, problems


class _Resolver:
    """`path.resolve()` with each folder resolved once: an archive's 100,000 files share a few folders, and
    resolving each name walks every folder above it again (most of a 100k re-plan's time). A name that is
    itself a symlink still resolves in full."""

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}

    def __call__(self, path: Location) -> Location:
        if not isinstance(path, Path):
            return path.resolve()
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = path.parent.resolve()
        real = folder / path.name
        return real.resolve() if os.path.islink(real) else real


def remove_partials(outputs: Iterable[Path]) -> int:
    """Delete the temp files of writers that died (killed runs) in the output folders.

    Temp names carry the writer's pid (`.name.PID.xxxx.partial`); live writers' files are kept. On S3
    also the multipart uploads dead writers left (see multipart.py).
    """
    removed = 0
    for folder in {p.parent for p in outputs}:
        if isinstance(folder, RemotePath):
            removed += remove_left_behind(folder, PARTIAL_SUFFIX, _writer_alive)
            for stale in stale_partials(folder, PARTIAL_SUFFIX):
                if not _writer_alive(stale.name):
                    stale.fs.delete_file(stale.path)
                    removed += 1
        elif folder.is_dir():
            for stale in folder.glob(f".*{PARTIAL_SUFFIX}"):
                if not _writer_alive(stale.name):
                    stale.unlink(missing_ok=True)
                    removed += 1
    return removed


def _writer_alive(name: str) -> bool:
    pid = name[: -len(PARTIAL_SUFFIX)].split(".")[-2]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_workers() -> int:
    """The cores this process may use (its affinity, a container's CPU quota)."""
    return usable_cores()


# Called once per finished job with (its number, how many, its source, None or the reason it failed, seconds since
# the previous one finished): what a caller shows where no progress bar can be drawn (a log file, a pipe).
Progress = Callable[[int, int, Any, "str | None", float], None]


def pending(jobs: Sequence[Job]) -> list[Job]:
    """The jobs whose output is not there yet (a job writes its main output last, so it marks the job done)."""
    remote_outputs = [j.output for j in jobs if isinstance(j.output, RemotePath)]
    remote = present(remote_outputs) if remote_outputs else set()
    return [job for job in jobs
            if not (job.output in remote if isinstance(job.output, RemotePath) else job.output.exists())]


def run_batch(jobs: Sequence[Job], work: Callable[..., Any], *, workers: int | None = None,
              overwrite: bool = False, progress: bool | Progress = True, desc: str = "batch",
              engine: str | Engine = "local", engine_options: dict[str, Any] | None = None,
              nice: int | None = None) -> BatchReport:
    """Run `work(source, output)` for every job whose output does not exist yet (all with `overwrite`).

    `work` must be picklable (a module-level function or a functools.partial of one) and write
    its output atomically. `progress`: True draws a bar on a terminal (nothing elsewhere), a
    `Progress` callable hears of each finished job instead. `engine` runs the jobs (see `editanything.engines`): "local" (a process
    pool of `workers`), "ray" (with `engine_options` for its constructor), or an engine instance.
    Worker processes and Ray actors run at niceness `nice` (None: `EDITANYTHING_BATCH_NICE`, default 10;
    0: as this process), below interactive work; an engine instance keeps its own; jobs run in this
    process (one local worker) keep its priority.
    """
    report = BatchReport()
    remove_partials(j.output for j in jobs)
    todo = list(jobs) if overwrite else pending(jobs)
    waiting = {id(job) for job in todo}
    report.skipped = [job.source for job in jobs if id(job) not in waiting]
    if workers is not None and workers < 1:
        raise InvalidInputError(f"--workers must be at least 1; got {workers}")
    if engine == "local":
        workers = default_workers() if workers is None else workers
        engine = get_engine("local", workers=min(workers, max(1, len(todo))), cores=default_workers(), nice=nice)
    elif isinstance(engine, str):
        engine = get_engine(engine, workers=workers, nice=nice, **(engine_options or {}))
    bar = _bar(len(todo), desc, progress is True)
    last = time.perf_counter()
    try:
        for number, (job, error) in enumerate(engine.run(todo, work), 1):
            if error is None:
                report.done.append(job.source)
            else:
                report.failed.append((job.source, error))
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                now = time.perf_counter()
                progress(number, len(todo), job.source, error, now - last)
                last = now
    finally:
        if bar is not None:
            bar.close()
    return report


def _bar(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None)


def sketch_file(source: Path, output: Path, *, style: str, params: dict[str, Any], max_side: int | None,
                expansion: dict[str, Any] | None = None, max_pixels: int | None = None) -> None:
    """Read one photo (under `max_pixels`; None: the default limit), draw it, write the sketch atomically
    (PNG carries the style and parameters, and how the prompt was expanded, if it was)."""
    from .imageio import read_image, write_image
    from .recipe import RECIPE_KEY
    from .sketch import is_generative, needs_color, sketch, sketch_generated
    from .types import Recipe

    photo = read_image(source, gray=not needs_color(style), max_pixels=max_pixels)
    image = limit_size(photo, max_side)
    if is_generative(style):  # seeded: the recipe records the seed and threads it ran with, for replay
        from .sketch.generative import resolve_params
        from .sketch_recipe import generative_text, sketch_recipe

        params = resolve_params(params)
        drawn = sketch_generated(image, style, **params)
        drawing = drawn.images[0]
        meta = generative_text(sketch_recipe(style, params, source=source, photo=photo, drawn=drawn,
                                             max_side=max_side, expansion=expansion), drawing)
    else:
        from .sketch import drawing_models, resolve_params

        params = resolve_params(style, params)  # the recipe says how it was drawn (HED's runtime)
        drawing = sketch(image, style, **params)
        meta = {"Software": "editanything",
                RECIPE_KEY: Recipe(operation=f"sketch:{style}", parameters={"sketch": params},
                                   models=drawing_models(style)).to_json()}
    write_image(output, drawing, text=meta, inputs=(source,))


def sketch_folder(inputs: Sequence[str | os.PathLike] | str | os.PathLike, outdir: str | os.PathLike, *,
                  style: str = "pencil", params: dict[str, Any] | None = None, workers: int | None = None,
                  max_side: int | None = None, fmt: str = "png", overwrite: bool = False,
                  progress: bool | Progress = True, engine: str | Engine = "local", ray_address: str | None = None,
                  gpus_per_worker: float | None = None, cpus_per_worker: int | None = None,
                  expansion: dict[str, Any] | None = None, max_pixels: int | None = None,
                  nice: int | None = None) -> BatchReport:
    """Sketch every photo in `inputs` (files, folders, globs, URIs) into `outdir` (a folder or URI),
    keeping folder structure. `expansion` (a generative style's `prompting.Expansion.to_dict()`) goes into
    each recipe: how `params["prompt"]` was written. `max_pixels`: a tighter pixel limit (the web UI's
    for uploads) than the default.

    Finished outputs are skipped on re-run unless `overwrite`; failures are collected in the report.
    `engine="ray"` runs the jobs on a Ray cluster (`ray_address`; see `editanything.engines.ray`);
    CPU actors ask for `cpus_per_worker` CPUs each (default 1; 4 for a generative style).
    `nice`: the workers' niceness (see `run_batch`).
    """
    from .sketch import GENERATIVE_STYLES, check_values, style_params

    params = dict(params or {})
    known = style_params(style)  # raises InvalidInputError for an unknown style
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidInputError(f"style {style!r} has no parameter {unknown[0]!r}; it takes: {', '.join(known) or 'none'}")
    check_values(style, params)  # a value out of range stops here, not once per photo
    nice = batch_nice(nice)
    if max_side is not None and max_side < 16:
        raise InvalidInputError(f"--max-side must be at least 16 pixels; got {max_side}")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    check_uris(inputs)
    check_writable_folder(outdir)
    jobs, problems = plan_jobs(inputs, outdir, fmt)
    if style.startswith("hed"):
        from .models import resolve

        resolve("hed")  # fail once, up front, with the download command — not once per photo
    if style in GENERATIVE_STYLES:
        from .sketch.generative import check_ready

        check_ready(params)  # its settings, and every model it needs (one command for all), before any photo
        if workers is None and engine == "local":
            workers = 1  # the model takes every core (or the GPU); more workers each load their own copy
        if cpus_per_worker is None and engine == "ray":
            from .engines.ray import HEAVY_CPUS

            cpus_per_worker = HEAVY_CPUS  # likewise on Ray: one copy per few CPUs, not per CPU
    options = _engine_options(engine, ray_address, gpus_per_worker, cpus_per_worker)
    work = partial(sketch_file, style=style, params=params, max_side=max_side, expansion=expansion,
                   max_pixels=max_pixels)
    report = run_batch(jobs, work, workers=workers, overwrite=overwrite, progress=progress, desc=f"sketch:{style}",
                       engine=engine, engine_options=options, nice=nice)
    report.failed = problems + report.failed
    return report


def _engine_options(engine: str | Engine, ray_address: str | None, gpus_per_worker: float | None,
                    cpus_per_worker: int | None = None) -> dict[str, Any]:
    """The Ray engine's constructor options; refused for other engines, where they would do nothing."""
    if engine == "ray":
        return {"address": ray_address, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker}
    if ray_address or gpus_per_worker or cpus_per_worker:
        raise InvalidInputError("--ray-address, --gpus-per-worker and --cpus-per-worker need --engine ray")
    return {}


_EDITORS: dict[str, Any] = {}


def _editor(config: dict[str, Any], editor: Any = None):
    """One Editor per process and configuration, so models load once per worker (`editor`: use this one)."""
    from .pipeline import Editor

    key = repr(sorted(config.items()))
    if key not in _EDITORS or editor is not None:
        _EDITORS.clear()  # a new configuration: drop the old models first
        _EDITORS[key] = editor if editor is not None else Editor(**config)
    return _EDITORS[key]


def edit_file(source: Path, output: Path, *, editor: dict[str, Any], request: Any) -> None:
    """Edit one photo; write every result image (`name-1.png`, … first, `name.png` last, so its
    presence means the job is complete) with its recipe. `plan_jobs` kept every one of them off the
    batch's other inputs, so each write checks only its own source (not all N inputs: N² checks)."""
    from .imageio import read_image

    image = read_image(source)
    result = _editor(editor).edit(image, request, source=str(source))
    for note in result.notes:
        log.warning("%s: %s", source, note)
    for i in range(len(result.images) - 1, -1, -1):
        result.save(numbered_output(output, i), i, inputs=(source,))
    if result.failed_check:  # written, so the user can see it, but not counted as done
        tries = len(result.recipe.parameters["check"]["attempts"])
        raise CheckFailed(f"{CHECK_FAILED}{result.check.verdict()} ({tries} attempt{'s' * (tries > 1)})")


def edit_jobs(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, request: Any,
              editor: dict[str, Any] | None = None, tag: str | None = None) -> tuple[list[Job], list[tuple[Path, str]]]:
    """`plan_jobs` for an edit: outputs named by the input's stem and what was asked (see `edit_folder`)."""
    from .naming import output_tag

    tag = tag or output_tag(request, editor)
    return plan_jobs(inputs, outdir, "png", suffix=f".{tag}", count=request.params.n_images)


def edit_folder(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, request: Any, *,
                editor: dict[str, Any] | None = None, workers: int | None = None, overwrite: bool = False,
                progress: bool | Progress = True, prebuilt: Any = None, engine: str | Engine = "local",
                ray_address: str | None = None, gpus_per_worker: float | None = None,
                cpus_per_worker: int | None = None, tag: str | None = None, nice: int | None = None) -> BatchReport:
    """Run one EditRequest on every photo of `inputs` into `outdir` (paths or URIs; resumable, failures collected).

    Outputs are named `STEM.TAG.png` (`STEM.TAG-1.png`, … for more images per photo), `tag` being
    `naming.output_tag(request, editor)` by default: the same request again skips what is done, another
    one writes beside it.

    `editor` holds the Editor's keyword arguments (`prebuilt`: an Editor made from them, reused when
    the jobs run in this process). Deep models take all cores (and the GPU) in one process, so
    locally `workers` defaults to 1; weight-free backends scale with more. `engine="ray"` runs the
    jobs on Ray actors (default: one per CPU, or per `cpus_per_worker` CPUs, or per `gpus_per_worker`
    share of the cluster's GPUs). `nice`: the workers' niceness (see `run_batch`).
    """
    options = _engine_options(engine, ray_address, gpus_per_worker, cpus_per_worker)
    nice = batch_nice(nice)
    if workers is None and engine == "local":
        workers = 1
    check_uris(inputs)
    check_writable_folder(outdir)
    jobs, problems = edit_jobs(inputs, outdir, request, editor, tag)
    if prebuilt is not None:
        _editor(dict(editor or {}), prebuilt)
    work = partial(edit_file, editor=dict(editor or {}), request=request)
    report = run_batch(jobs, work, workers=workers, overwrite=overwrite, progress=progress, desc="edit",
                       engine=engine, engine_options=options, nice=nice)
    report.failed = problems + report.failed
    return report
