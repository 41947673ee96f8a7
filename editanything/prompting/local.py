"""A local instruct model writes the prompt: transformers' `AutoModelForCausalLM` with its chat template.

The default is SmolLM2-135M-Instruct (Apache-2.0, 269 MB; see the manifest), SmolLM2-360M-Instruct the
larger choice. Sampling is seeded (temperature 0.7, top-p 0.9) under a private RNG state, so the same
words, target, seed and precision give the same prompt on the same machine and library versions, and
the global torch RNG is left as it was.

What it costs on a CPU is bounded three ways (benchmarks/prompt_expand.py measures each):
- precision: on a CPU the Linear layers run in int8 (`quantize_dynamic`: int8 weights per output channel,
  activations quantized on the fly), about 4x less memory traffic per token than float32 and a slightly
  different answer; `precision="float32"` is the unquantized model. On CUDA the model runs in float16.
- new tokens: at most `max_new_tokens` (by default 80 for tags, 160 for sentences and prose), and
  generation stops where more could not change the prompt (stopping.py): the first paragraph break, or
  for tags the end of CLIP's 75-token chunk;
- the instructions are short (shaping.py): the model reads them before every answer.
The expansion records the precision and the bounds it ran at (`Expansion.options`). The answer goes
through shaping.py: keywords kept, CLIP limit held, an empty answer an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, require
from ..models import pick_device
from .shaping import finish, instructions
from .stopping import answer_stop, clip_budget
from .types import Expansion, Target, check_words, get_target

DEFAULT_MODEL = "smollm2-135m-instruct"
MAX_NEW_TOKENS = {"tags": 80, "sentences": 160, "prose": 160}
TEMPERATURE, TOP_P = 0.7, 0.9
PRECISIONS = ("int8", "float32", "float16")
"""int8: dynamic int8 Linear layers (CPU only); float16: CUDA only (half precision is slow or missing on CPUs)."""


def check_precision(precision: str | None, device: str) -> str:
    """The precision a model runs at on `device`: `precision`, or int8 on a CPU and float16 on CUDA."""
    if precision is None:
        return "int8" if device == "cpu" else "float16"
    if precision not in PRECISIONS:
        raise InvalidInputError(f"unknown precision {precision!r} for a local language model; choose one of: "
                                f"{', '.join(PRECISIONS)}")
    if precision == "int8" and device != "cpu":
        raise InvalidInputError(f"int8 runs on the CPU only, not on {device}; use --llm-precision float16 or "
                                "float32 there")
    if precision == "float16" and device == "cpu":
        raise InvalidInputError("float16 is for CUDA; on a CPU use --llm-precision int8 (fast) or float32")
    return precision


def _at_precision(model: Any, precision: str) -> Any:
    torch = require("torch", "prompt")
    if precision == "float16":
        return model.half()
    model = model.float()
    if precision == "int8":
        # torch.ao's eager quantization warns that it moves to torchao (not a dependency here): the user
        # can do nothing about it, so it is not shown; the quantized layers are torch's own.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantized tensor).*")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            # one scale per output row, not one per matrix: rows of small weights keep their precision
            model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return model


class LocalExpander:
    """Expands with a loaded causal LM and its tokenizer (which must have a chat template)."""

    chat = True  # the words go in a chat turn under the target's instructions (False: the model continues them)
    forms = ("tags", "sentences", "prose")  # the target forms it can write

    default_precision: str | None = None  # None: int8 on a CPU, float16 on CUDA

    def __init__(self, model: Any, tokenizer: Any, *, name: str, sha256: str | None = None,
                 max_new_tokens: int | None = None, device: str | None = None, precision: str | None = None) -> None:
        if max_new_tokens is not None and (isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int)
                                           or not 1 <= max_new_tokens <= 1024):
            raise InvalidInputError(f"max_new_tokens must be an int in 1..1024; got {max_new_tokens!r}")
        if self.chat and not getattr(tokenizer, "chat_template", None):
            raise InvalidInputError(f"the tokenizer of {name} has no chat template; an instruct model is needed")
        self.device = pick_device(device)
        self.precision = check_precision(precision or self.default_precision, self.device)
        self.model = _at_precision(model.to(self.device).eval(), self.precision)
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

        torch = require("torch", "prompt")
        folder = Path(folder)
        device = pick_device(settings.pop("device", None))
        precision = check_precision(settings.pop("precision", None) or cls.default_precision, device)
        model, tokenizer = load_pretrained(folder, "AutoModelForCausalLM", extra="prompt", device=device,
                                           dtype=torch.float16 if precision == "float16" else torch.float32,
                                           processor_class="AutoTokenizer")
        if sha256 is None:
            weights = sorted(folder.glob("*.safetensors"))
            sha256 = cached_sha256(weights[0]) if len(weights) == 1 else None
        return cls(model, tokenizer, name=name or folder.name, sha256=sha256, device=device, precision=precision,
                   **settings)

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
        return f"{self.name} (a local language model, {self.precision} on {self.device})"

    def options(self, target: Target) -> dict[str, Any]:
        """What shapes the answer besides the model and the seed: the precision and the bounds."""
        budget = clip_budget(target)
        return {"precision": self.precision, "max_new_tokens": self.max_new_tokens or MAX_NEW_TOKENS[target.form],
                "stop": f"first paragraph, {budget} CLIP tokens" if budget else "first paragraph"}

    def stopping_criteria(self, prompt_length: int, target: Target) -> list[Any]:
        """Where generation ends besides the eos token and the token bound (stopping.py)."""
        return [answer_stop(self.tokenizer, prompt_length, target)]

    def generate(self, words: str, target: str | Target, seed: int) -> tuple[str, int]:
        """The model's raw answer to `words` for `target`, and how many new tokens it took."""
        torch = require("torch", "prompt")
        target = get_target(target)
        if target.form not in self.forms:
            raise InvalidInputError(f"{self.name} writes {' or '.join(self.forms)}, not the {target.form} "
                                    f"{target.label} reads; use --expander rules or {DEFAULT_MODEL}")
        if self.chat:
            messages = [{"role": "system", "content": instructions(target)}, {"role": "user", "content": words}]
            inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                        return_dict=True)
        else:
            inputs = self.tokenizer(words, return_tensors="pt")
        inputs = inputs.to(self.device)
        stop = self.tokenizer.eos_token_id
        limit = self.max_new_tokens or MAX_NEW_TOKENS[target.form]
        prompt_length = inputs["input_ids"].shape[1]
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else [self.device]), torch.inference_mode():
            torch.manual_seed(seed)
            out = self.model.generate(**inputs, do_sample=True, temperature=TEMPERATURE, top_p=TOP_P, top_k=0,
                                      max_new_tokens=limit, pad_token_id=stop if stop is not None else 0,
                                      eos_token_id=stop, use_cache=True,
                                      stopping_criteria=self.stopping_criteria(prompt_length, target))
        new = out[0, prompt_length:]
        answer = self.tokenizer.decode(new, skip_special_tokens=True)
        # a continuation model's answer goes on from the words: the prompt is both
        return (answer if self.chat else words + answer), int(new.numel())

    def expand(self, words: str, target: str | Target, seed: int) -> Expansion:
        text = check_words(words)
        target = get_target(target)
        answer, _ = self.generate(text, target, seed)
        prompt, negative, notes = finish(text, answer, target, self.name)
        return Expansion(words=text, prompt=prompt, negative_prompt=negative, expander=self.name, target=target.name,
                         seed=seed, model_sha256=self.sha256, model=self.name, notes=notes,
                         options=self.options(target))


CONTINUATION_MODELS = ("magicprompt-sd",)


class ContinuationExpander(LocalExpander):
    """A prompt model that continues the words instead of answering them: MagicPrompt (GPT-2 fine-tuned on
    Stable Diffusion prompts, as sd-dynamic-prompts' "Magic Prompt" runs it). It writes tags only."""

    chat = False
    forms = ("tags",)
    default_precision = "float32"  # GPT-2's layers are Conv1D, not Linear: int8 would reach only its LM head
