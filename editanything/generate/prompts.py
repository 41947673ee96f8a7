"""Prompts as the Stable Diffusion WebUI reads them: attention weights, long prompts, saved styles.

- `(word)` multiplies the attention to `word` by 1.1, `[word]` divides it by 1.1, `(word:1.3)` sets
  the factor; brackets nest and multiply; `\\(` `\\)` `\\[` `\\]` are literal brackets; unclosed
  brackets apply up to the end; `BREAK` starts a new 75-token chunk.
- A prompt is cut into chunks of 75 tokens, each encoded by CLIP as BOS + 75 tokens + EOS
  (77 positions) and the hidden states concatenated along the sequence axis, so prompts longer
  than CLIP's 77 tokens are not truncated. The negative prompt is padded with empty chunks to
  the same length (the UNet needs equal lengths for classifier-free guidance).
- Weights multiply each token's hidden state, then the whole chunk is rescaled to its original
  mean, as the WebUI does.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import InvalidInputError

CHUNK_TOKENS = 75
ROUND_FACTOR = 1.1
MAX_WEIGHT = 100.0  # far above any useful weight; larger ones drown the prompt and can overflow half precision
BREAK = ("BREAK", -1.0)  # marker fragment: start a new chunk here

_TOKEN = re.compile(
    r"""
    (?P<escaped>\\[\\()\[\]])
  | (?P<weight>:\s*(?P<value>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\))
  | (?P<open>[(\[])
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+|[\\:])
    """,
    re.VERBOSE,
)
_BREAK_SPLIT = re.compile(r"\s*\bBREAK\b\s*")


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) fragments; equal neighbours are merged.

    `BREAK` appears as the fragment `("BREAK", -1.0)`. An empty prompt gives `[("", 1.0)]`.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"a prompt must be a string; got {type(text).__name__}")
    res: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for item in res[start:]:
            if item[1] is not None:
                item[1] *= factor

    def add_text(piece: str) -> None:
        parts = _BREAK_SPLIT.split(piece)
        for i, part in enumerate(parts):
            if i:
                res.append([BREAK[0], None])
            if part:
                res.append([part, 1.0])

    for m in _TOKEN.finditer(text):
        if m.group("escaped"):
            res.append([m.group("escaped")[1], 1.0])
        elif m.group("weight"):
            if round_open:
                scale(round_open.pop(), float(m.group("value")))
            else:
                add_text(m.group("weight"))
        elif m.group("open"):
            (round_open if m.group("open") == "(" else square_open).append(len(res))
        elif m.group("close"):
            stack, factor = (round_open, ROUND_FACTOR) if m.group("close") == ")" else (square_open, 1 / ROUND_FACTOR)
            if stack:
                scale(stack.pop(), factor)
            else:
                add_text(m.group("close"))
        else:
            add_text(m.group("text"))
    for start in round_open:
        scale(start, ROUND_FACTOR)
    for start in square_open:
        scale(start, 1 / ROUND_FACTOR)

    merged: list[tuple[str, float]] = []
    for piece, weight in res:
        if weight is not None and not abs(weight) <= MAX_WEIGHT:
            raise InvalidInputError(f"prompt weight {weight:g} on {piece.strip()!r} is out of range (at most "
                                    f"{MAX_WEIGHT:g}; usual weights are 0.5 to 1.5): check the brackets")
        if weight is None:
            merged.append(BREAK)
        elif merged and merged[-1] != BREAK and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged or [("", 1.0)]


def has_weights(text: str) -> bool:
    """Whether any part of `text` has a weight other than 1, e.g. `(word:1.3)` (a BREAK is not a weight)."""
    return any(weight not in (1.0, BREAK[1]) for _, weight in parse_prompt_attention(text))


@dataclass
class Chunk:
    """77 token ids (BOS, up to 75 prompt tokens, EOS, padding) and one weight per position."""

    ids: list[int]
    weights: list[float]

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for w in self.weights)


@dataclass
class _Builder:
    tokenizer: object
    chunks: list[Chunk] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def flush(self) -> None:
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        n_pad = CHUNK_TOKENS - len(self.tokens)
        self.chunks.append(Chunk([tok.bos_token_id, *self.tokens, tok.eos_token_id] + [pad_id] * n_pad,
                                 [1.0, *self.weights, 1.0] + [1.0] * n_pad))
        self.tokens, self.weights = [], []


def tokenize_weighted(tokenizer, text: str, convert: Callable[[str], str] | None = None) -> list[Chunk]:
    """The prompt's chunks. `convert` rewrites each fragment first (textual-inversion multi-vector tokens)."""
    if tokenizer.model_max_length < CHUNK_TOKENS + 2:
        raise InvalidInputError(
            f"the tokenizer holds {tokenizer.model_max_length} tokens; prompts need {CHUNK_TOKENS + 2}")
    build = _Builder(tokenizer)
    for piece, weight in parse_prompt_attention(text):
        if (piece, weight) == BREAK:
            build.flush()
            continue
        if convert is not None:
            piece = convert(piece)
        ids = tokenizer(piece, add_special_tokens=False, truncation=False).input_ids
        for token in ids:
            if len(build.tokens) == CHUNK_TOKENS:
                build.flush()
            build.tokens.append(token)
            build.weights.append(weight)
    if build.tokens or not build.chunks:
        build.flush()
    return build.chunks


def _encode_chunks(text_encoder, chunks: list[Chunk], device, dtype):
    import torch

    out = []
    for chunk in chunks:
        ids = torch.tensor([chunk.ids], dtype=torch.long, device=device)
        z = text_encoder(ids)[0]
        if chunk.weighted:
            z = z.float()
            original_mean = z.mean()
            z = z * torch.tensor(chunk.weights, dtype=z.dtype, device=z.device)[None, :, None]
            z = z * (original_mean / z.mean())
        out.append(z.to(dtype=dtype))
    return torch.cat(out, dim=1)


def encode_prompts(pipe, prompt: str, negative_prompt: str = "", device=None):
    """`(prompt_embeds, negative_prompt_embeds)` for a diffusers Stable Diffusion pipeline, shape (1, 77·k, dim)."""
    import torch

    convert = None
    if hasattr(pipe, "maybe_convert_prompt"):
        def convert(piece: str) -> str:
            return pipe.maybe_convert_prompt(piece, pipe.tokenizer)

    pos = tokenize_weighted(pipe.tokenizer, prompt, convert)
    neg = tokenize_weighted(pipe.tokenizer, negative_prompt, convert)
    empty = tokenize_weighted(pipe.tokenizer, "")[0]
    n = max(len(pos), len(neg))
    pos += [empty] * (n - len(pos))
    neg += [empty] * (n - len(neg))
    device = device or pipe._execution_device
    dtype = pipe.text_encoder.dtype
    with torch.no_grad():
        return (_encode_chunks(pipe.text_encoder, pos, device, dtype),
                _encode_chunks(pipe.text_encoder, neg, device, dtype))


@dataclass(frozen=True)
class Style:
    """A saved style: a prompt and negative prompt merged into the user's (`{prompt}` marks where)."""

    name: str
    prompt: str = ""
    negative_prompt: str = ""


def _merge(style_text: str, text: str) -> str:
    if "{prompt}" in style_text:
        return style_text.replace("{prompt}", text)
    return ", ".join(p for p in (text.strip(), style_text.strip()) if p)


def apply_styles(prompt: str, negative_prompt: str, styles: Iterable[Style]) -> tuple[str, str]:
    """The prompt and negative prompt with each style merged in, in order."""
    for style in styles:
        prompt = _merge(style.prompt, prompt)
        negative_prompt = _merge(style.negative_prompt, negative_prompt)
    return prompt, negative_prompt


def load_styles(path: str | Path) -> dict[str, Style]:
    """Styles by name from the WebUI's `styles.csv` (name, prompt, negative_prompt) or a JSON file.

    JSON: a list of `{"name", "prompt", "negative_prompt"}` objects, or an object mapping names
    to `{"prompt", "negative_prompt"}`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInputError(f"cannot read styles file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise InvalidInputError(f"{path}: not a styles file (a binary file, not UTF-8 text); pass the WebUI's "
                                "styles.csv or a JSON file")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            rows = [{"name": k, **v} for k, v in data.items()] if isinstance(data, dict) else data
        else:
            rows = list(csv.DictReader(text.splitlines()))
        styles = [Style(str(r["name"]), str(r.get("prompt") or ""), str(r.get("negative_prompt") or "")) for r in rows]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, csv.Error) as exc:
        raise InvalidInputError(
            f"{path}: not a styles file (CSV with name,prompt,negative_prompt columns or JSON); "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return {s.name: s for s in styles if s.name}


def pick_styles(styles: dict[str, Style], names: Iterable[str]) -> list[Style]:
    """The named styles, or InvalidInputError listing the known names."""
    picked = []
    for name in names:
        if name not in styles:
            raise InvalidInputError(f"unknown style {name!r}; known styles: {', '.join(sorted(styles)) or '(none)'}")
        picked.append(styles[name])
    return picked
