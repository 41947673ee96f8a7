"""Load a transformers model and its processor from a local `save_pretrained` folder (never the hub)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, ModelNotFound, first_line, require
from .device import pick_device, pick_dtype


@contextlib.contextmanager
def _quiet(transformers: Any):
    """No "Loading weights" progress bar from library code; the user's setting comes back afterwards."""
    logging = transformers.utils.logging
    was_enabled = logging.is_progress_bar_enabled()
    verbosity = logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()  # its many-line load report; a mismatch becomes one line below
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if was_enabled:
            logging.enable_progress_bar()


def model_folder(name: str, backend: str, what: str) -> Path:
    """The local folder of manifest model `name`, which must be for `backend` (else InvalidInputError saying
    it is not `what`); ModelNotFound names the download command when its files are missing."""
    from . import get_spec, resolve  # the package imports this module's siblings; import at call time

    spec = get_spec(name)
    if spec.loader.get("backend") != backend:
        raise InvalidInputError(f"model {name!r} is a {spec.kind}, not {what}")
    return resolve(name).folder


def load_pretrained(folder: str | Path, model_class: str, *, extra: str, device: str, dtype: Any,
                    processor_class: str = "AutoProcessor", image_processor_class: str | None = None) -> tuple[Any, Any]:
    """`model_class` (a transformers class name) and its processor, on `device` in `dtype`.

    Local files only: a folder without config.json is ModelNotFound, a broken one or one that lacks
    weights of `model_class` InvalidInputError.
    With `image_processor_class` (the SAM family), `processor_class` is built around the folder's saved
    image processor, or, in a folder without processor files, around that image processor's defaults
    (the SAM 2.1 and SAM 3 releases use them: 1024/1008 px, ImageNet statistics).
    """
    transformers = require("transformers", extra)
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"{folder} is not a transformers model folder (config.json expected)")
    for option, value in (("model_class", model_class), ("processor_class", processor_class),
                          ("image_processor_class", image_processor_class)):
        if value is not None and not hasattr(transformers, value):  # a manifest's word, not a given
            raise InvalidInputError(f"{folder}: the manifest's {option} {value!r} names no class of transformers "
                                    f"{transformers.__version__}; check its spelling")
    has_processor = any((folder / f).is_file() for f in ("preprocessor_config.json", "processor_config.json"))
    try:
        with _quiet(transformers):
            model, info = getattr(transformers, model_class).from_pretrained(
                str(folder), local_files_only=True, dtype=dtype, output_loading_info=True)
            processor_cls = getattr(transformers, processor_class)
            if image_processor_class is None:
                processor = processor_cls.from_pretrained(str(folder), local_files_only=True)
            elif has_processor:
                # The folder's processor may be another one around the same image processor (SAM 3's folder
                # saves the text-prompt Sam3Processor; clicks need Sam3TrackerProcessor): keep its settings.
                saved = transformers.AutoProcessor.from_pretrained(str(folder), local_files_only=True)
                processor = processor_cls(getattr(saved, "image_processor", saved))
            else:
                processor = processor_cls(getattr(transformers, image_processor_class)())
    except RuntimeError as exc:  # tensors whose shapes differ from config.json
        raise InvalidInputError(
            f"{folder}: its weights do not fit {folder / 'config.json'} (tensor shapes differ); the folder mixes "
            f"files of different models: download it again") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{folder} does not hold a loadable {model_class} ({first_line(exc)}); download it again"
        ) from exc
    if info["missing_keys"]:
        # transformers would run with those weights random: the folder holds another architecture.
        missing = sorted(info["missing_keys"])
        raise InvalidInputError(
            f"{folder} lacks {len(missing)} weights of {model_class} (first: {missing[0]}); "
            "it holds another model: download it again"
        )
    return model.eval().to(device), processor


class FolderModel:
    """A backend over one transformers model and its processor, built from a local `save_pretrained` folder
    or from a manifest model of its `backend`.

    A subclass names `model_class` and `processor_class` (transformers class names), the manifest `backend`
    and its `default_model`, the pip `extra` a missing library points to, the `family` that `describe` names
    and what it runs as (`doing`), and `what` a model of another backend is not (default "a transformers
    <family>"). Its constructor takes (model, processor, **settings, name, source) and calls `_bind`.
    """

    model_class = ""
    processor_class = "AutoProcessor"
    backend = ""
    default_model = ""
    extra = ""
    family = ""
    doing = "transformers"
    what = ""

    def _bind(self, model: Any, processor: Any, name: str, source: str) -> None:
        self.model = model.eval()
        self.processor = processor
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.name = name
        self.source = source

    @classmethod
    def _dtype(cls, device: str) -> Any:
        """The dtype the model loads in on `device`."""
        return pick_dtype(device)

    @classmethod
    def from_folder(cls, folder: str | Path, *, device: str | None = None, **settings: Any):
        """A local `save_pretrained` folder (model + processor); never downloads."""
        device = pick_device(device)
        model, processor = load_pretrained(folder, cls.model_class, extra=cls.extra, device=device,
                                           dtype=cls._dtype(device), processor_class=cls.processor_class)
        settings.setdefault("source", Path(folder).name)
        return cls(model, processor, **settings)

    @classmethod
    def from_model(cls, name: str | None = None, **settings: Any):
        """A model of the manifest; ModelNotFound (with the download command) when its files are absent."""
        name = name or cls.default_model
        settings.setdefault("name", name)
        return cls.from_folder(model_folder(name, cls.backend, cls.what or f"a transformers {cls.family}"), **settings)

    def describe(self) -> str:
        source = f" ({self.source})" if self.source and self.source != self.name else ""
        return f"{self.family} {self.name}{source} on {self.device} ({self.doing})"
