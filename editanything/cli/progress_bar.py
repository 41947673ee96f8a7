"""What the CLI shows while it works: a step bar on a terminal, one line per finished photo in a log.

`StepBar` listens to the generation loops (`editanything.progress`) and redraws one terminal line:
steps done of total, seconds per step, time left. `photo_lines` is the batch's progress callback
where stderr is no terminal (a log, a pipe): one plain line per finished photo, no bar, no escapes.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from ..progress import Step, listening


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class StepBar:
    """A `progress.listening` listener drawing `generating 12/25 |######    | 3.4 s/step, 0:44 left` on `stream`.

    Seconds per step come from the time between consecutive steps of one call (never from its first
    step, which follows model loading and selection). The line is wiped after the call's last step,
    so whatever prints next starts on a clean line.
    """

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self._last: float | None = None
        self._seconds = 0.0
        self._timed = 0
        self._drawn = 0

    def __call__(self, step: Step) -> None:
        now = self.clock()
        if step.image == 0 and step.step == 0:  # a new call: its first step also held loading and selection
            self._last, self._seconds, self._timed = None, 0.0, 0
        elif self._last is not None:
            self._seconds += now - self._last
            self._timed += 1
        self._last = now
        total = max(step.images * step.steps, 1)
        done = min(step.image * step.steps + step.step + 1, total)
        self._draw(self._line(step, done, total))
        if done == total:
            self.clear()

    def _line(self, step: Step, done: int, total: int) -> str:
        width = shutil.get_terminal_size((80, 24)).columns
        what = f"image {step.image + 1}/{step.images}, step" if step.images > 1 else "step"
        if self._timed:
            per = self._seconds / self._timed
            rate = f"{per:.2f} s/step, {_clock(per * (total - done))} left"
        else:
            rate = "timing…"
        head, tail = f"generating: {what} {step.step + 1}/{step.steps} |", f"| {rate}"
        cells = max(width - 1 - len(head) - len(tail), 0)
        filled = cells * done // total
        return (head + "#" * filled + " " * (cells - filled) + tail)[: width - 1]

    def _draw(self, line: str) -> None:
        self.stream.write("\r" + line + " " * max(self._drawn - len(line), 0))
        self.stream.flush()
        self._drawn = len(line)

    def clear(self) -> None:
        """Wipe the bar's line (after the last step, or when the job stops)."""
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def photo_lines(desc: str, stream: TextIO | None = None) -> Callable[[int, int, Any, str | None, float], None]:
    """The batch's progress callback for a log: `edit 3/10: photo.jpg done (4.2 s)` per finished photo."""
    out = stream if stream is not None else sys.stderr

    def finished(index: int, total: int, source: Any, error: str | None, seconds: float) -> None:
        status = "done" if error is None else "failed (the reason follows at the end)"
        print(f"{desc} {index}/{total}: {source} {status} ({seconds:.1f} s)", file=out, flush=True)

    return finished


@contextlib.contextmanager
def step_bar(enabled: bool) -> Iterator[None]:
    """Inside this block, the generation steps of this process draw a `StepBar` on stderr (when `enabled`:
    a terminal, no -q, and the work runs in this process, not in workers whose lines would interleave)."""
    if not enabled:
        yield
        return
    bar = StepBar()
    try:
        with listening(bar):
            yield
    finally:
        bar.clear()  # Ctrl-C or an error mid-call: the next line starts clean


def batch_progress(quiet: bool, desc: str) -> bool | Callable[..., None]:
    """What a batch shows: nothing under -q, a bar on a terminal, one line per finished photo in a log."""
    if quiet:
        return False
    return True if on_terminal() else photo_lines(desc)
