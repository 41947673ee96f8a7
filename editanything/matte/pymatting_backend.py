"""pymatting (MIT, weight-free): closed-form alpha matting (Levin et al.) on the trimap's unknown band.

Two settings of the same matting, as two backend names (a recipe names the one it used, so it replays
with it):
- `pymatting-fast` (the default): a better-conditioned Laplacian (epsilon 1e-6), a Jacobi preconditioner
  and a loose tolerance (1e-3), then blur-fusion foreground estimation (Forte & Pitié 2021: two box
  blurs of the subject's and the background's colours). On benchmarks/matting.py its alpha error was
  lower than the exact solve's, in a sixth of the time: the exact solve's incomplete Cholesky fails at
  shift 0 on most crops and its tight tolerance costs hundreds of iterations on striped backgrounds.
  The lower error is partly the early stop: conjugate gradients start from alpha 0 in the band, so
  stopping early leans towards background, which suits those composites' thin strands (starting at
  0.5 or at a ramp across the band did worse there); it is not a more exact solution.
- `pymatting`: pymatting's own defaults (epsilon 1e-7, incomplete Cholesky, tolerance 1e-7) and its
  multilevel foreground estimation: what --matte did before the fast one existed.
"""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np

from ..errors import require

# Blur-fusion's two radii: the wide pass finds each side's colour far into the band, the narrow one refines it.
BLUR_RADII = (90, 6)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours (uint8 RGB) under an alpha, by pymatting's multilevel foreground estimation:
    what every matting backend composites, so no halo of the old background comes along."""
    pymatting = require("pymatting", "matte")
    fg = pymatting.estimate_foreground_ml(np.asarray(image, np.float64) / 255.0, np.asarray(alpha, np.float64))
    return np.clip(np.rint(fg * 255.0), 0, 255).astype(np.uint8)


def estimate_foreground_blur(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours (uint8 RGB) by blur fusion: each pass takes the alpha-weighted local mean of
    the subject's and the background's colours and moves the subject's towards what explains the pixel."""
    rgb = np.asarray(image, np.float32) / 255.0
    a = np.asarray(alpha, np.float32)[..., None]
    fg = bg = rgb
    for radius in BLUR_RADII:
        size = (2 * radius + 1, 2 * radius + 1)
        blurred_a = cv2.blur(a[..., 0], size)[..., None]
        mean_fg = cv2.blur(fg * a, size) / (blurred_a + 1e-5)
        mean_bg = cv2.blur(bg * (1 - a), size) / (1 - blurred_a + 1e-5)
        fg = np.clip(mean_fg + a * (rgb - a * mean_fg - (1 - a) * mean_bg), 0.0, 1.0)
        bg = mean_bg
    return np.clip(np.rint(fg * 255.0), 0, 255).astype(np.uint8)


class PyMatting:
    """Closed-form matting: on our composites (benchmarks/matting.py) it beat pymatting's large-kernel
    matting on both error and time. `fast` picks the settings above."""

    def __init__(self, fast: bool = False):
        self.fast = fast
        self.name = "pymatting-fast" if fast else "pymatting"

    def describe(self) -> str:
        return f"pymatting (closed-form matting{', fast solve' if self.fast else ''}, no weights)"

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pymatting = require("pymatting", "matte")
        rgb = np.asarray(image, np.float64) / 255.0
        tri = np.asarray(trimap, np.float64) / 255.0
        if self.fast:
            settings = {"preconditioner": pymatting.jacobi, "laplacian_kwargs": {"epsilon": 1e-6},
                        "cg_kwargs": {"rtol": 1e-3}}
        else:
            settings = {}
        # The incomplete Cholesky prints a "PERFORMANCE WARNING" to stdout when it retries with a shift: the
        # solve still converges, and a CLI's stdout is for results.
        with contextlib.redirect_stdout(io.StringIO()):
            alpha = np.clip(pymatting.estimate_alpha_cf(rgb, tri, **settings), 0.0, 1.0)
        fg = estimate_foreground_blur(image, alpha) if self.fast else estimate_foreground(image, alpha)
        return alpha.astype(np.float32), fg
