"""Tiny random-weight models that run the real upstream code paths on CPU in milliseconds.

A plain helper module (not a conftest): `from tiny_models import build_tiny_sam`.
"""

from __future__ import annotations

from pathlib import Path

TINY_SAM = "tiny"  # the SAM variant name under which the tiny architecture is registered


def build_tiny_sam(seed: int = 0):
    """A `segment_anything` Sam with SAM's structure at toy size: 256-px input, 16x16 embedding."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    return Sam(
        image_encoder=ImageEncoderViT(img_size=256, patch_size=16, embed_dim=32, depth=1, num_heads=1, out_chans=32,
                                      use_rel_pos=True, window_size=0, global_attn_indexes=()),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(16, 16), input_image_size=(256, 256),
                                     mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=32, mlp_dim=64, num_heads=1),
                                 transformer_dim=32, iou_head_depth=1, iou_head_hidden_dim=16),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def register_tiny_sam() -> str:
    """Make the tiny architecture loadable as `SamSegmenter.from_checkpoint(path, "tiny")`."""
    from editanything.segment.sam import register_sam_variant

    register_sam_variant(TINY_SAM, build_tiny_sam)
    return TINY_SAM


def save_tiny_sam_checkpoint(path: str | Path, seed: int = 0):
    """Write a tiny SAM as the official checkpoints are written (a bare `state_dict` via torch.save).

    Returns the model whose weights were saved.
    """
    import torch

    model = build_tiny_sam(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model
