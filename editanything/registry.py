"""One registry type for every pluggable stage: detectors, segmenters, captioners, generators, removers.

A `Registry[T]` maps a name to a builder (`builder(**settings) -> T`). A name it does not hold may
still be a model of the manifest whose backend (`loader["backend"]`) the registry knows: the
backend's factory makes its builder (`backends[backend](model) -> builder`), so a model added in
$EDITANYTHING_MANIFEST is usable by its name. Then `fallback(name)` may claim it (a generator's
path to a checkpoint); anything else is one `InvalidInputError` listing what is known.

"auto" takes the first name of `order` that is `usable` (by default: the model and every model it
requires are on disk); `none_found` says what happens when none is: by default the first candidate
is resolved, which raises ModelNotFound naming the download command. Stages whose choice is not a
plain order (the generator's depends on the device and on the options asked for) give `choose`,
which returns the name and why it was picked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Mapping, Sequence, TypeVar

from .errors import InvalidInputError

T = TypeVar("T")
Builder = Callable[..., T]
Order = Sequence[str] | Callable[[Any], Sequence[str]]


def on_disk(model: str) -> bool:
    """The model and every model it requires are on disk."""
    from .models import find_model, get_spec

    return all(find_model(m) is not None for m in (model, *get_spec(model).requires))


def name_missing(candidates: Sequence[str]) -> None:
    """Raise ModelNotFound for the first of `candidates` partly on disk (e.g. a checkpoint without the
    text encoder it requires), else for the first one: the message names the download command."""
    from .models import find_model, get_spec, resolve

    partial = [m for m in candidates if find_model(m) is not None]
    first = partial[0] if partial else candidates[0]
    for model in (first, *get_spec(first).requires):
        resolve(model)


@dataclass
class Registry(Mapping[str, Callable[..., T]], Generic[T]):
    """Name → builder of one kind of backend; see the module docstring for the lookup and "auto" rules.

    kind: the word for one backend ("detector"), used in messages. order: the names "auto" tries, or
    a function of the device ("cpu", "cuda", None for the default) giving them. usable: whether a
    candidate can be built here. none_found(registry, **settings): what "auto" gives when no candidate
    is usable (default: ModelNotFound for the first). adapt(name, settings): the settings "auto" passes
    to the backend it took. choose(settings) -> (name, why): replaces the order for "auto"; `why` is
    left on the built backend as its `note`. fallback(name): a builder for a name that is neither
    registered nor a model of the manifest, or None.
    """

    kind: str
    builders: dict[str, Callable[..., T]] = field(default_factory=dict)
    backends: dict[str, Callable[[str], Callable[..., T]]] = field(default_factory=dict)
    order: Order = ()
    usable: Callable[[str], bool] = on_disk
    none_found: Callable[..., T] | None = None
    adapt: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    choose: Callable[[dict[str, Any]], tuple[str, str]] | None = None
    fallback: Callable[[str], Callable[..., T] | None] | None = None

    # --- the mapping of registered names (a `dict` before, so `name in REGISTRY` and `REGISTRY[name]` keep working)
    def __getitem__(self, name: str) -> Callable[..., T]:
        return self.builders[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.builders)

    def __len__(self) -> int:
        return len(self.builders)

    def register(self, name: str, builder: Callable[..., T]) -> None:
        """Add (or replace) a backend: `builder(**settings)` returns one."""
        self.builders[name] = builder

    def register_backend(self, backend: str, factory: Callable[[str], Callable[..., T]]) -> None:
        """Models of the manifest with this `loader["backend"]` become backends by their name."""
        self.backends[backend] = factory

    def names(self) -> list[str]:
        """Every name `get` takes without the manifest: "auto" first, then the registered ones."""
        return ["auto", *self.builders]

    def candidates(self, device: str | None = None) -> tuple[str, ...]:
        """The names "auto" tries, in order."""
        return tuple(self.order(device) if callable(self.order) else self.order)

    def pick(self, device: str | None = None) -> str | None:
        """The first usable candidate, or None."""
        return next((n for n in self.candidates(device) if self.usable(n)), None)

    def builder(self, name: str) -> Callable[..., T]:
        """The builder of a registered name, of a manifest model of a known backend, or of the fallback."""
        if isinstance(name, str) and name in self.builders:
            return self.builders[name]
        if isinstance(name, str):
            from .models import find_spec

            spec = find_spec(name)
            factory = self.backends.get(spec.backend) if spec is not None else None
            if factory is not None:
                return factory(name)
        found = self.fallback(name) if self.fallback is not None else None
        if found is None:
            raise self.unknown(name)
        return found

    def unknown(self, name: Any) -> InvalidInputError:
        """The one error for a name no rule resolves."""
        backends = f", or a model of the manifest with one of the backends {', '.join(self.backends)}" \
            if self.backends else ""
        path = ", or the path of a checkpoint file or folder" if self.fallback is not None else ""
        return InvalidInputError(f"unknown {self.kind} {str(name)!r}; known: {', '.join(self.names())}{backends}{path}")

    def get(self, name: Any = "auto", **settings: Any) -> T:
        """Build a backend by name ("auto": see the module docstring); `settings` go to its builder."""
        if name != "auto":
            return self.builder(name)(**settings)
        if self.choose is not None:
            chosen, why = self.choose(settings)
            built = self.builder(chosen)(**settings)
            built.note = why
            return built
        picked = self.pick(settings.get("device"))
        if picked is None:
            if self.none_found is not None:
                return self.none_found(self, **settings)
            name_missing(self.candidates(settings.get("device")))
            raise InvalidInputError(f"no {self.kind} of {', '.join(self.candidates())} can be built here")
        return self.builder(picked)(**(self.adapt(picked, settings) if self.adapt else settings))


def for_model(factory: Callable[..., T] | str) -> Callable[[str], Callable[..., T]]:
    """`model -> builder` calling `factory(model, **settings)`: a manifest backend's builder factory.

    `factory` may be "package.module:name", imported only when a builder runs, so that registering
    a backend does not import torch, diffusers or onnxruntime.
    """
    def make(model: str) -> Callable[..., T]:
        def build(**settings: Any) -> T:
            if isinstance(factory, str):
                module, attr = factory.split(":")
                return getattr(importlib.import_module(module), attr)(model, **settings)
            return factory(model, **settings)

        return build

    return make
