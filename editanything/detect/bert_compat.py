"""groundingdino-py 0.4.0 under transformers 5: a replacement for its `BertModelWarper`.

groundingdino wraps the BERT text encoder in `BertModelWarper`, which calls
`BertModel.get_extended_attention_mask` and `get_head_mask`; transformers 5 removed both, so
building the detector fails with AttributeError. `BertWarper` does the same computation with
what transformers 5 still has: embeddings (with groundingdino's per-phrase position ids), then the
encoder with an additive attention mask, 3-D (one row per token: tokens attend only inside their
own phrase) or 2-D (padding). tests/test_grounding_dino.py checks it against the original class run
under transformers 4 on the same weights.

`patched_bert_warper()` installs it only while a model is being built, so importing editanything
changes nothing in groundingdino.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

_PATCH_LOCK = threading.Lock()


def additive_attention_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1/True = attend, 0/False = ignore → 0 / most negative value, shaped (B, 1, Lq, Lk) for every head."""
    if mask.dim() == 3:
        mask = mask[:, None, :, :]
    elif mask.dim() == 2:
        mask = mask[:, None, None, :]
    else:
        raise ValueError(f"attention mask must be (batch, tokens) or (batch, tokens, tokens); got {tuple(mask.shape)}")
    mask = mask.to(dtype)
    return (1.0 - mask) * torch.finfo(dtype).min


class BertWarper(nn.Module):
    """What groundingdino's `BertModelWarper` computes, on transformers 5's `BertModel` parts.

    Keeps the submodule names (`embeddings`, `encoder`, `pooler`) so official checkpoints'
    `bert.*` keys load unchanged. Only the encoder path Grounding DINO uses is supported:
    no cross-attention, no key/value cache, no head mask.
    """

    def __init__(self, bert_model: nn.Module):
        super().__init__()
        self.config = bert_model.config
        self.embeddings = bert_model.embeddings
        self.encoder = bert_model.encoder
        self.pooler = bert_model.pooler

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **unused,
    ):
        from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions

        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if attention_mask is None:
            attention_mask = torch.ones(reference.shape, device=reference.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros(reference.shape, dtype=torch.long, device=reference.device)

        embedded = self.embeddings(
            input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds
        )
        # The original builds the mask in the model's parameter dtype (fp32 here, fp16 for a half model).
        dtype = next(self.encoder.parameters()).dtype
        encoded = self.encoder(embedded, attention_mask=additive_attention_mask(attention_mask, dtype))
        hidden = encoded.last_hidden_state
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPoolingAndCrossAttentions(last_hidden_state=hidden, pooler_output=pooled)


@contextmanager
def patched_bert_warper() -> Iterator[None]:
    """While active, groundingdino builds its text encoder with `BertWarper` (restored on exit)."""
    from groundingdino.models.GroundingDINO import groundingdino as gd_module

    with _PATCH_LOCK:
        original = gd_module.BertModelWarper
        gd_module.BertModelWarper = BertWarper
        try:
            yield
        finally:
            gd_module.BertModelWarper = original
