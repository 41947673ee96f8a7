"""Counting CLIP tokens, the unit Stable Diffusion's 75-token prompt chunks are measured in.

The tokenizer comes from the first of these on disk:
- `clip-tokenizer`: CLIP's BPE merges (`bpe_simple_vocab_16e6.txt.gz`, the file OpenAI's CLIP and
  open_clip ship; 1.3 MB from the open-clip-torch wheel, MIT), turned once into the `vocab.json` +
  `merges.txt` a transformers `CLIPTokenizer` reads (vocabulary: the 256 byte characters, each again
  with `</w>`, the merged pairs, then the start and end tokens: 49,408 entries);
- the tokenizer folder of a Stable Diffusion model on disk (sd15, sd15-inpainting, sdxl-inpainting).
Without either, tokens are estimated (see `estimate_tokens`) and the expansion says so.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
from pathlib import Path
from typing import Any, Callable

from ..generate.prompts import BREAK, parse_prompt_attention

TOKENIZER_MODEL = "clip-tokenizer"
SD_MODELS = ("sd15", "sd15-inpainting", "sdxl-inpainting")
VOCAB_SIZE = 49408
_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _byte_characters() -> list[str]:
    """GPT-2's byte-to-character table, in vocabulary order: printable bytes as themselves, then the rest
    mapped above U+00FF (so BPE never sees whitespace or control characters)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def write_tokenizer_files(bpe_gz: Path, folder: Path) -> Path:
    """`vocab.json` and `merges.txt` for a CLIPTokenizer, from CLIP's gzipped merges list."""
    lines = gzip.decompress(Path(bpe_gz).read_bytes()).decode("utf-8").split("\n")
    merges = lines[1:VOCAB_SIZE - 256 * 2 - 2 + 1]
    chars = _byte_characters()
    vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m.split()) for m in merges),
             "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def _tokenizer_folder() -> tuple[Path, str] | None:
    from ..models import find_model
    from ..models.store import cache_dir

    found = find_model(TOKENIZER_MODEL)
    if found is not None:
        bpe = next(iter(found.files.values()))
        folder = cache_dir() / "clip-tokenizer" / f"{bpe.stat().st_size}-{int(bpe.stat().st_mtime)}"
        if not (folder / "merges.txt").is_file():
            write_tokenizer_files(bpe, folder)
        return folder, TOKENIZER_MODEL
    for name in SD_MODELS:
        found = find_model(name)
        if found is not None and (found.folder / "tokenizer" / "vocab.json").is_file():
            return found.folder / "tokenizer", f"{name}'s tokenizer"
    return None


def clip_tokenizer() -> tuple[Any, str] | None:
    """A CLIPTokenizer and where it came from, or None when no CLIP vocabulary is on disk (or no transformers)."""
    located = _tokenizer_folder()
    if located is None:
        return None
    folder, source = located
    with _lock:
        if str(folder) not in _loaded:
            try:
                from transformers import CLIPTokenizer
            except ImportError:
                return None
            # no length cap: counting a prompt longer than one chunk is the point, not an error
            _loaded[str(folder)] = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                                 model_max_length=10**6)
        return _loaded[str(folder)], source


_WORDISH = re.compile(r"[^\W\d_]+|\d|[^\w\s]", re.UNICODE)


def estimate_tokens(text: str) -> int:
    """An over-estimate of CLIP tokens without its vocabulary: a digit or a punctuation mark is one token
    (CLIP splits them so), a run of letters one token per 5 letters, rounded up (common words are one
    token; rare long ones split)."""
    return sum(math.ceil(len(m) / 5) if m[0].isalpha() else 1 for m in _WORDISH.findall(text.lower()))


def token_counter() -> tuple[Callable[[str], int], str]:
    """A function counting a prompt's CLIP tokens as the WebUI does (weight brackets are syntax, not
    tokens), and what counts: the tokenizer's source, or "estimated"."""
    loaded = clip_tokenizer()

    def pieces(text: str) -> list[str]:
        return [p for p, w in parse_prompt_attention(text) if (p, w) != BREAK]

    if loaded is None:
        return (lambda text: sum(estimate_tokens(p) for p in pieces(text))), "estimated"
    tokenizer, source = loaded
    return (lambda text: sum(len(tokenizer(p, add_special_tokens=False, truncation=False).input_ids)
                             for p in pieces(text))), source
