"""editanything: edit photos by segment and regenerate.

The public API; the CLI, the web UI and the batch runner are thin layers over these names.
Heavy libraries (torch, diffusers, …) load only when a deep backend is used.
"""

from .errors import (ChecksumMismatch, EditAnythingError, ImageError, InvalidInputError, MissingDependency,
                     ModelNotFound, NothingFound)
from .batch import sketch_folder
from .imageio import read_image, write_image
from . import sketch  # a callable module: editanything.sketch(image, style=...) and editanything.sketch.STYLES
from .types import Detections, Prompt, Recipe

__version__ = "0.1.0"

__all__ = [
    "ChecksumMismatch", "Detections", "EditAnythingError", "ImageError", "InvalidInputError", "MissingDependency",
    "ModelNotFound", "NothingFound", "Prompt", "Recipe", "read_image", "sketch", "sketch_folder", "write_image",
]
