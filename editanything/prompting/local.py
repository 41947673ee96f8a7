"""A local instruct model writes the prompt: transformers' `AutoModelForCausalLM` with its chat template.

The default is SmolLM2-360M-Instruct (Apache-2.0, 724 MB; see the manifest): small enough for a CPU.
Sampling is seeded (temperature 0.7, top-p 0.9) under a private RNG state, so the same words, target
and seed give the same prompt on the same machine and library versions, and the global torch RNG is
left as it was. The number of new tokens is bounded (`max_new_tokens`, by default 80 for tags and
160 for sentences). The answer goes through shaping.py: keywords kept, CLIP limit held, an empty
answer an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, require
from ..models import pick_device, pick_dtype
from .shaping import finish, instructions
from .types import Expansion, Target, check_words, get_target

DEFAULT_MODEL = "smollm2-360m-instruct"
MAX_NEW_TOKENS = {"tags": 80, "sentences": 160, "prose": 160}
TEMPERATURE, TOP_P = 0.7, 0.9


class LocalExpander:
    """Expands with a loaded causal LM and its tokenizer (which must have a chat template)."""

    chat = True  # the words go in a chat turn under the target's instructions (False: the model continues them)
    forms = ("tags", "sentences", "prose")  # the target forms it can write

    def __init__(self, model: Any, tokenizer: Any, *, name: str, sha256: str | None = None,
                 max_new_tokens: int | None = None, device: str | None = None) -> None:
        if max_new_tokens is not None and (isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int)
                                           or not 1 <= max_new_tokens <= 1024):
            raise InvalidInputError(f"max_new_tokens must be an int in 1..1024; got {max_new_tokens!r}")
        if self.chat and not getattr(tokenizer, "chat_template", None):
            raise InvalidInputError(f"the tokenizer of {name} has no chat template; an instruct model is needed")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.sha256 = sha256
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, name: str | None = None, sha256: str | None = None,
                        **settings: Any) -> "LocalExpander":
        """A local `save_pretrained` folder (model + tokenizer); never downloads. Without `sha256`, the
        weights file is hashed (once; the hash is cached by path, size and time)."""
        from ..models.store import cached_sha256
        from ..models.transformers_folder import load_pretrained

        folder = Path(folder)
        device = pick_device(settings.pop("device", None))
        model, tokenizer = load_pretrained(folder, "AutoModelForCausalLM", extra="prompt", device=device,
                                           dtype=pick_dtype(device), processor_class="AutoTokenizer")
        if sha256 is None:
            weights = sorted(folder.glob("*.safetensors"))
            sha256 = cached_sha256(weights[0]) if len(weights) == 1 else None
        return cls(model, tokenizer, name=name or folder.name, sha256=sha256, device=device, **settings)

    @classmethod
    def from_model(cls, name: str = DEFAULT_MODEL, **settings: Any) -> "LocalExpander":
        """A manifest model by name; ModelNotFound names the download command when it is not on disk. The
        recipe gets the sha256 of the weights file on disk, as for every model (a damaged file is what it is)."""
        from ..models.transformers_folder import model_folder

        if name in CONTINUATION_MODELS and cls is LocalExpander:
            cls = ContinuationExpander
        return cls.from_pretrained(model_folder(name, "causal-lm", "a language model for prompts"), name=name,
                                   **settings)

    def describe(self) -> str:
        return f"{self.name} (a local language model, on {self.device})"

    def generate(self, words: str, target: str | Target, seed: int) -> tuple[str, int]:
        """The model's raw answer to `words` for `target`, and how many new tokens it took."""
        torch = require("torch", "prompt")
        target = get_target(target)
        if target.form not in self.forms:
            raise InvalidInputError(f"{self.name} writes {' or '.join(self.forms)}, not the {target.form} "
                                    f"{target.label} reads; use --expander rules or smollm2-360m-instruct")
        if self.chat:
            messages = [{"role": "system", "content": instructions(target)}, {"role": "user", "content": words}]
            inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                        return_dict=True)
        else:
            inputs = self.tokenizer(words, return_tensors="pt")
        inputs = inputs.to(self.device)
        stop = self.tokenizer.eos_token_id
        limit = self.max_new_tokens or MAX_NEW_TOKENS[target.form]
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else [self.device]), torch.inference_mode():
            torch.manual_seed(seed)
            out = self.model.generate(**inputs, do_sample=True, temperature=TEMPERATURE, top_p=TOP_P, top_k=0,
                                      max_new_tokens=limit, pad_token_id=stop if stop is not None else 0,
                                      eos_token_id=stop)
        new = out[0, inputs["input_ids"].shape[1]:]
        answer = self.tokenizer.decode(new, skip_special_tokens=True)
        # a continuation model's answer goes on from the words: the prompt is both
        return (answer if self.chat else words + answer), int(new.numel())

    def expand(self, words: str, target: str | Target, seed: int) -> Expansion:
        text = check_words(words)
        target = get_target(target)
        answer, _ = self.generate(text, target, seed)
        prompt, negative, notes = finish(text, answer, target, self.name)
        return Expansion(words=text, prompt=prompt, negative_prompt=negative, expander=self.name, target=target.name,
                         seed=seed, model_sha256=self.sha256, model=self.name, notes=notes)


CONTINUATION_MODELS = ("magicprompt-sd",)


class ContinuationExpander(LocalExpander):
    """A prompt model that continues the words instead of answering them: MagicPrompt (GPT-2 fine-tuned on
    Stable Diffusion prompts, as sd-dynamic-prompts' "Magic Prompt" runs it). It writes tags only."""

    chat = False
    forms = ("tags",)
