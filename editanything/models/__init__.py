"""Model registry: names → files on disk → loaded models on the right device."""

from .device import pick_device, pick_dtype
from .manifest import (MODELS, ModelFile, ModelSpec, find_spec, get_spec, list_models, load_manifest_file,
                       register_model)
from .store import ResolvedModel, bytes_on_disk, download_command, find_model, model_files, resolve, verified, verify_model

__all__ = [
    "MODELS", "ModelFile", "ModelSpec", "ResolvedModel", "bytes_on_disk", "download_command", "find_model", "find_spec", "get_spec",
    "list_models", "load_manifest_file", "model_files", "pick_device", "pick_dtype", "register_model", "resolve", "verified",
    "verify_model",
]
