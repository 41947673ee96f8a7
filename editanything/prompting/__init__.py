"""Prompt expansion: a few words → a prompt written for the target image model, plus a negative prompt.

Expanders implement one protocol, `expand(words, target, seed) -> Expansion`, and return what they
did (the prompt, the negative prompt, their name, their model file's sha256, the seed), which the
recipe records so `replay` never needs the expander again:

- `rules` (rules.py): weight-free, deterministic, instant; a documented rule set, not a language model.
- `smollm2-135m-instruct`, `smollm2-360m-instruct` (local.py): small instruct models through
  transformers, int8 on the CPU;
  `magicprompt-sd`: MagicPrompt, a GPT-2 that continues the words into Stable Diffusion tags.
- `openai` (openai.py): OpenAI's Responses API; only the words leave the machine.
- `auto`: the local model when its weights are on disk, else `rules`; never a paid service.

Importing this package loads neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ..registry import Registry
from .types import MAX_WORDS_CHARS, TARGETS, Expansion, Target, check_words, get_target

@runtime_checkable
class Expander(Protocol):
    """Words → an Expansion for `target`; the same words, target and seed give the same expansion
    (except `openai`, whose service takes no seed)."""

    name: str

    def expand(self, words: str, target: str | Target, seed: int) -> Expansion: ...

    def describe(self) -> str: ...


def _rules(**_: Any) -> Expander:
    from .rules import RulesExpander

    return RulesExpander()


def _local(model: str) -> Callable[..., Expander]:
    def build(**options: Any) -> Expander:
        from .local import LocalExpander

        return LocalExpander.from_model(model, **{k: v for k, v in options.items()
                                                  if k in ("max_new_tokens", "precision")})

    return build


def _openai(**options: Any) -> Expander:
    from .openai import OpenAIExpander

    return OpenAIExpander(**{k: v for k, v in options.items() if k in ("model", "base_url")})


# "auto" tries them in this order (the default, fastest first), then the rules; never a paid service
LOCAL_MODELS = ("smollm2-135m-instruct", "smollm2-360m-instruct")

EXPANDERS: Registry[Expander] = Registry(
    # magicprompt-sd writes tags only, so auto (which serves every target) never picks it
    "expander", {"rules": _rules, **{m: _local(m) for m in LOCAL_MODELS}, "magicprompt-sd": _local("magicprompt-sd"),
                 "openai": _openai},
    backends={"causal-lm": _local}, order=LOCAL_MODELS,
    none_found=lambda registry, **options: registry["rules"](**options),
)
"""Expander name → builder taking the backend's settings (unknown settings are ignored by each)."""
EXPANDER_NAMES = tuple(EXPANDERS.names())


def get_expander(name: str = "auto", **options: Any) -> Expander:
    """Build an expander by name; "auto" is the local model when on disk, else rules."""
    return EXPANDERS.get(name, **options)


def target_for(generator: Any) -> str:
    """The target that suits a generator: FLUX.2 klein, SDXL, a hosted service, else Stable Diffusion 1.5."""
    from ..generate.flux2 import Flux2Generator
    from ..generate.remote.base import RemoteGenerator
    from ..generate.sdxl import SDXLGenerator

    if isinstance(generator, Flux2Generator):
        return "flux2-klein"
    if isinstance(generator, SDXLGenerator):
        return "sdxl"
    if isinstance(generator, RemoteGenerator) and generator.name in TARGETS:
        return generator.name
    return "sd15"


def expand(words: str, *, target: str = "sd15", seed: int = 0, expander: str | Expander = "auto",
           **options: Any) -> Expansion:
    """Expand `words` for `target` with `expander` (a name or an instance)."""
    built = get_expander(expander, **options) if isinstance(expander, str) else expander
    return built.expand(words, target, seed)


__all__ = ["EXPANDERS", "EXPANDER_NAMES", "Expander", "Expansion", "MAX_WORDS_CHARS", "TARGETS", "Target",
           "check_words", "expand", "get_expander", "get_target", "target_for"]
