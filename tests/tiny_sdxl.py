"""A tiny random-weight SDXL inpainting pipeline, saved like diffusers/stable-diffusion-xl-1.0-inpainting-0.1.

Two CLIP text encoders (the second with a projection, giving the pooled embedding), a UNet with
9 input channels and SDXL's "text_time" added conditioning, a 2-block VAE and the byte-level
tokenizer of tiny_sd. `save_sdxl(folder)` writes the fp16 variant files the Hub repo ships
(`unet/diffusion_pytorch_model.fp16.safetensors`, `text_encoder/model.fp16.safetensors`, …).
"""

from __future__ import annotations

from pathlib import Path

from tiny_sd import HIDDEN, SEED, build_tokenizer, write_tokenizer_files

TIME_DIM = 8  # addition_time_embed_dim; SDXL inpainting conditions on 6 size/crop numbers


def build_pipeline(workdir: Path, in_channels: int = 9):
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=TIME_DIM, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * TIME_DIM + HIDDEN, cross_attention_dim=2 * HIDDEN,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    config = CLIPTextConfig(vocab_size=514, hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77, bos_token_id=512, eos_token_id=513,
                            pad_token_id=513, projection_dim=HIDDEN, hidden_act="gelu")
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    tokenizer = build_tokenizer(Path(workdir) / "tokenizer-src")
    return StableDiffusionXLInpaintPipeline(
        vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True,
    )


def save_sdxl(folder: Path, in_channels: int = 9) -> Path:
    """The tiny pipeline in fp16 with the Hub repo's fp16 variant file names."""
    import torch

    folder = Path(folder)
    pipe = build_pipeline(folder.parent / f"{folder.name}-work", in_channels).to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True, variant="fp16")
    for name in ("tokenizer", "tokenizer_2"):
        (folder / name / "tokenizer.json").unlink(missing_ok=True)
        write_tokenizer_files(folder / name)
    return folder


def save_sdxl_base(folder: Path) -> Path:
    """The tiny text-to-image SDXL (4-channel UNet) laid out like stabilityai/stable-diffusion-xl-base-1.0:
    fp16 variant files and a model_index naming `StableDiffusionXLPipeline`."""
    import json

    folder = save_sdxl(folder, in_channels=4)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionXLPipeline"
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def save_lora(folder: Path, unet, rank: int = 4) -> Path:
    """A random LoRA for `unet` in diffusers' own file layout (`pytorch_lora_weights.safetensors`), as LCM-LoRA ships."""
    import copy

    import torch
    from diffusers import StableDiffusionXLInpaintPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(SEED + 2)
    unet = copy.deepcopy(unet)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionXLInpaintPipeline.save_lora_weights(str(folder), unet_lora_layers=layers, safe_serialization=True)
    return Path(folder) / "pytorch_lora_weights.safetensors"
