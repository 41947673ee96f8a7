"""A tiny random-weight FLUX.2 [klein] pipeline, saved like black-forest-labs/FLUX.2-klein-4B.

The same component classes as the real model: a `Flux2Transformer2DModel`, an `AutoencoderKLFlux2`
with four blocks (so sides are multiples of 16, as with the real VAE), a `Qwen3ForCausalLM` text
encoder deep enough for the hidden layers 9, 18 and 27 the pipeline reads, a byte-level Qwen2
tokenizer with a chat template, and the flow-matching Euler scheduler with dynamic shifting.
`save_klein(folder)` writes the Hub repo's layout: `model_index.json` naming `Flux2KleinPipeline`
with `is_distilled`, the text encoder in two shards with its index, the transformer and VAE as
single `diffusion_pytorch_model.safetensors` files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_sd import SEED, _byte_chars

TEXT_WIDTH = 8  # Qwen3 hidden size; the transformer reads 3 of its layers side by side
# The Qwen3 chat template's shape for one user turn with thinking off, which is what the pipeline asks for.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def build_tokenizer():
    """Byte-level BPE over single bytes (no merges): it tokenizes any text, as Qwen's does."""
    from transformers import Qwen2TokenizerFast

    vocab = {c: i for i, c in enumerate(_byte_chars())}
    tokenizer = Qwen2TokenizerFast(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"],
                                   model_max_length=512)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_pipeline(distilled: bool = True):
    import torch
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(SEED)
    tokenizer = build_tokenizer()
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=16, num_hidden_layers=28,
        num_attention_heads=2, num_key_value_heads=1, head_dim=4, max_position_embeddings=512,
        tie_word_embeddings=True))
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=3 * TEXT_WIDTH, timestep_guidance_channels=16, axes_dims_rope=(2, 2, 2, 2),
        guidance_embeds=False)
    vae = AutoencoderKLFlux2(block_out_channels=(16, 16, 16, 16), layers_per_block=1, latent_channels=4,
                             norm_num_groups=8, sample_size=64)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True)
    return Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=distilled)


def save_klein(folder: Path, distilled: bool = True) -> Path:
    """The tiny pipeline in the Hub repo's file layout (the text encoder in two shards)."""
    folder = Path(folder)
    pipe = build_pipeline(distilled)
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "text_encoder" / "model.safetensors").unlink()
    total = sum(p.numel() * p.element_size() for p in pipe.text_encoder.state_dict().values())
    pipe.text_encoder.save_pretrained(folder / "text_encoder", max_shard_size=total * 6 // 10)
    shards = sorted(p.name for p in (folder / "text_encoder").glob("model-*.safetensors"))
    if shards != ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]:
        raise AssertionError(f"the tiny text encoder should save as the Hub's two shards; got {shards}")
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(_byte_chars())}))
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    return folder
