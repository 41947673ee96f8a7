"""When a language model's answer is long enough: stop generating what shaping.py would throw away.

shaping.py keeps only the first paragraph of an answer, and for Stable Diffusion only the tags that fit
in CLIP's 75-token chunk (the user's keywords first, the model's own tags dropped from the end). So
generation stops
- at the first paragraph break after some text: nothing after it is read;
- for tags, once the answer alone holds more CLIP tokens than the chunk: every later tag would be
  dropped (a later tag that holds a keyword only changes where that keyword goes: a missing keyword is
  put first anyway).
Sampling draws the same tokens up to the stop, so a stopped answer is a prefix of the unstopped one.
Tokens are counted as fit_tags counts them (CLIP's tokenizer when on disk, else the over-estimate).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .clip_tokens import token_counter
from .shaping import clean
from .types import Target

_PARAGRAPH_END = re.compile(r"\S\s*?\n\s*\n")


def answer_complete(text: str, clip_budget: int | None, count: Callable[[str], int]) -> bool:
    """Whether more tokens after `text` cannot change the prompt made from it (see the module's note)."""
    if _PARAGRAPH_END.search(text):
        return True
    return clip_budget is not None and count(clean(text)) > clip_budget


def clip_budget(target: Target) -> int | None:
    """The CLIP tokens an answer for `target` can use: the chunk for tags, no bound for prose."""
    return target.clip_tokens if target.form == "tags" else None


def answer_stop(tokenizer: Any, prompt_length: int, target: Target) -> Any:
    """A transformers StoppingCriteria that ends generation once `answer_complete` holds for the answer
    decoded so far (the tokens after the first `prompt_length`)."""
    from transformers import StoppingCriteria

    budget = clip_budget(target)
    count = token_counter()[0] if budget is not None else len

    class AnswerStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            done = [answer_complete(tokenizer.decode(row[prompt_length:], skip_special_tokens=True), budget, count)
                    for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return AnswerStop()
