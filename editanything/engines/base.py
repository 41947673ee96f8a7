"""What every engine does around one job: run it, turn its failure into one line."""

from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import Cancelled, EditAnythingError


def attempt(work: Callable[..., Any], job: Any) -> str | None:
    """Run one job; return None on success or a one-line reason."""
    try:
        work(job.source, job.output)
        return None
    except Cancelled:
        raise  # the user stopped the batch: not one photo's failure, and the next must not start
    except EditAnythingError as exc:
        return str(exc)
    except MemoryError:
        return "out of memory; try --max-side or fewer --workers"
    except Exception as exc:  # a bug or an unforeseen file: report it, keep the batch going
        return f"{type(exc).__name__}: {exc}"


def limit_threads(threads: int) -> None:
    """One pool slot = `threads` OpenCV/BLAS threads: the pool already spreads over the cores, and
    oversubscription makes both slower. Set before torch is imported in a fresh worker process.
    Workers draw no loading bars either: several workers' bars would interleave on one terminal."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.update({"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"})
    import cv2

    cv2.setNumThreads(threads)
