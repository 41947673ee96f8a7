"""pymatting (MIT, weight-free): closed-form alpha matting (Levin et al.), then multilevel foreground estimation."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from ..errors import require


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours (uint8 RGB) under an alpha, by pymatting's multilevel foreground estimation:
    what every matting backend composites, so no halo of the old background comes along."""
    pymatting = require("pymatting", "matte")
    fg = pymatting.estimate_foreground_ml(np.asarray(image, np.float64) / 255.0, np.asarray(alpha, np.float64))
    return np.clip(np.rint(fg * 255.0), 0, 255).astype(np.uint8)


class PyMatting:
    """Closed-form matting: on our composites (benchmarks/matting.py) it beat pymatting's large-kernel
    matting on both error and time."""

    name = "pymatting"

    def describe(self) -> str:
        return "pymatting (closed-form matting, no weights)"

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pymatting = require("pymatting", "matte")
        rgb = np.asarray(image, np.float64) / 255.0
        # Its preconditioner prints a "PERFORMANCE WARNING" to stdout when it retries with a shift: the
        # solve still converges, and a CLI's stdout is for results.
        with contextlib.redirect_stdout(io.StringIO()):
            alpha = np.clip(pymatting.estimate_alpha_cf(rgb, np.asarray(trimap, np.float64) / 255.0), 0.0, 1.0)
        return alpha.astype(np.float32), estimate_foreground(image, alpha)
