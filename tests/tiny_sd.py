"""Tiny random-weight Stable Diffusion inpainting models, saved in the formats users have.

- `build_components()`: UNet (9 input channels), 2-block VAE, CLIP text encoder with a local
  byte-level tokenizer, DDIM scheduler — the parts of `StableDiffusionInpaintPipeline`.
- `save_diffusers(dir)`: a diffusers folder laid out like `sd15-inpainting/` in checkpoints/.
- `save_single_file(path, components)`: one `.safetensors`/`.ckpt` in the original (LDM) key layout
  that WebUI/Civitai checkpoints use (`model.diffusion_model.*`, `first_stage_model.*`,
  `cond_stage_model.transformer.*`).
- `save_original_config(path)`: the tiny model as an original LDM yaml; `fake_clip_cache(hf_home, …)`
  puts its text-encoder config and tokenizer where the HF cache keeps openai/clip-vit-large-patch14.
- `save_sd15_base(dir)`: the text-to-image SD 1.5 layout (4-channel UNet, fp16) of checkpoints/sd15/.
- `build_controlnet()` / `save_controlnet(dir)`, `save_kohya_lora(path, unet)` (the Civitai LoRA key
  layout), `save_embedding(path)` (a WebUI textual-inversion `.safetensors`).
- `image_and_mask(size)`: a smooth test image and a centred square mask.

2 steps at 64x64 take a fraction of a second on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEED = 0
HIDDEN = 32  # CLIP width = UNet cross-attention width
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_chars() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the 256 byte values (GPT-2/CLIP scheme)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tokenizer_files(folder: Path) -> Path:
    """A CLIP vocabulary of single bytes (with and without `</w>`) and no merges: it tokenizes any text."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab[BOS], vocab[EOS] = 512, 513
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def build_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77,
                         bos_token=BOS, eos_token=EOS, pad_token=EOS, unk_token=EOS)


def build_components(workdir: Path, in_channels: int = 9) -> dict:
    """The components of a tiny inpainting pipeline (random weights, fixed seed)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN, attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"), up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=514, hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513, projection_dim=HIDDEN,
    ))
    with torch.no_grad():
        # Random LayerNorm gains and biases, as trained CLIP has: with the init (1, 0) the final hidden states
        # average to ~0 and the WebUI's mean-restoring weight rule would divide by ~0.
        for module in text_encoder.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.2, 0.3)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler,
            "tokenizer": build_tokenizer(Path(workdir) / "tokenizer-src"),
            "safety_checker": None, "feature_extractor": None}


def build_pipeline(workdir: Path, in_channels: int = 9):
    from diffusers import StableDiffusionInpaintPipeline

    return StableDiffusionInpaintPipeline(**build_components(workdir, in_channels), requires_safety_checker=False)


def save_diffusers(folder: Path, in_channels: int = 9, variant: str | None = None) -> Path:
    """A tiny pipeline saved as a diffusers folder (safetensors), like checkpoints/sd15-inpainting/.

    `variant="fp16"`: half-precision `*.fp16.safetensors` only, as the released SD 1.5 inpainting repo has.
    """
    import torch

    folder = Path(folder)
    pipe = build_pipeline(folder.parent / f"{folder.name}-work", in_channels)
    if variant == "fp16":
        pipe.to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True, variant=variant)
    # The released SD folders hold the slow tokenizer's vocab.json + merges.txt, not transformers 5's tokenizer.json.
    (folder / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    write_tokenizer_files(folder / "tokenizer")
    return folder


# ---- original (LDM) single-file layout -------------------------------------------------------

_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                  ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))


def _rename(key: str, pairs) -> str:
    for new, old in pairs:
        key = key.replace(f".{new}.", f".{old}.")
    return key


def unet_to_ldm(state: dict, layers_per_block: int) -> dict:
    """Diffusers UNet keys → the original `model.diffusion_model.*` keys."""
    per = layers_per_block + 1
    out = {}
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    up_has_attention: dict[int, bool] = {}
    for key in state:
        parts = key.split(".")
        if parts[0] == "up_blocks" and parts[2] == "attentions":
            up_has_attention[int(parts[1])] = True
    for key, value in state.items():
        parts = key.split(".")
        head, rest = ".".join(parts[:-1]), parts[-1]
        if head in top:
            new = f"{top[head]}.{rest}"
        elif parts[0] == "down_blocks":
            b, kind = int(parts[1]), parts[2]
            if kind == "downsamplers":
                new = f"input_blocks.{(b + 1) * per}.0.op." + ".".join(parts[5:])
            else:
                j = int(parts[3])
                slot = "0" if kind == "resnets" else "1"
                new = f"input_blocks.{1 + b * per + j}.{slot}." + ".".join(parts[4:])
        elif parts[0] == "mid_block":
            slot = {"resnets.0": 0, "attentions.0": 1, "resnets.1": 2}[f"{parts[1]}.{parts[2]}"]
            new = f"middle_block.{slot}." + ".".join(parts[3:])
        elif parts[0] == "up_blocks":
            b, kind = int(parts[1]), parts[2]
            if kind == "upsamplers":
                slot = 2 if up_has_attention.get(b) else 1
                new = f"output_blocks.{b * per + layers_per_block}.{slot}.conv." + ".".join(parts[5:])
            else:
                j = int(parts[3])
                slot = "0" if kind == "resnets" else "1"
                new = f"output_blocks.{b * per + j}.{slot}." + ".".join(parts[4:])
        else:
            raise KeyError(f"unexpected UNet key {key}")
        if ".resnets." in key:
            new = _rename(new, _RESNET_TO_LDM)
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(state: dict, n_blocks: int) -> dict:
    """Diffusers AutoencoderKL keys → the original `first_stage_model.*` keys."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        new = key
        if parts[0] in ("encoder", "decoder") and parts[1] in ("down_blocks", "up_blocks"):
            i = int(parts[2])
            level = i if parts[1] == "down_blocks" else n_blocks - 1 - i
            name = "down" if parts[1] == "down_blocks" else "up"
            if parts[3] in ("downsamplers", "upsamplers"):
                new = f"{parts[0]}.{name}.{level}.{'downsample' if name == 'down' else 'upsample'}." + ".".join(parts[5:])
            else:
                new = f"{parts[0]}.{name}.{level}.block.{parts[4]}." + ".".join(parts[5:])
        elif parts[0] in ("encoder", "decoder") and parts[1] == "mid_block":
            if parts[2] == "resnets":
                new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
            else:
                inner = ".".join(parts[4:])
                inner = {"group_norm.weight": "norm.weight", "group_norm.bias": "norm.bias",
                         "to_q.weight": "q.weight", "to_q.bias": "q.bias", "to_k.weight": "k.weight", "to_k.bias": "k.bias",
                         "to_v.weight": "v.weight", "to_v.bias": "v.bias",
                         "to_out.0.weight": "proj_out.weight", "to_out.0.bias": "proj_out.bias"}[inner]
                new = f"{parts[0]}.mid.attn_1.{inner}"
                if value.ndim == 2:  # the original attention projections are 1x1 convolutions
                    value = value[:, :, None, None]
        elif parts[0] in ("encoder", "decoder") and parts[1] == "conv_norm_out":
            new = f"{parts[0]}.norm_out.{parts[2]}"
        new = new.replace(".conv_shortcut.", ".nin_shortcut.")
        out["first_stage_model." + new] = value
    return out


def text_encoder_to_ldm(state: dict) -> dict:
    """transformers CLIPTextModel keys → the original `cond_stage_model.transformer.text_model.*` keys."""
    return {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v for k, v in state.items()}


def original_state_dict(components: dict) -> dict:
    unet, vae = components["unet"], components["vae"]
    sd = {}
    sd.update(unet_to_ldm(unet.state_dict(), unet.config.layers_per_block))
    sd.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    sd.update(text_encoder_to_ldm(components["text_encoder"].state_dict()))
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def save_single_file(path: Path, components: dict) -> Path:
    """The components as one WebUI-style checkpoint: `.safetensors`, or `.ckpt` ({"state_dict": …})."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    sd = original_state_dict(components)
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"state_dict": sd}, path)
    return path


# ---- ControlNet, LoRA, textual inversion ----------------------------------------------------

def build_controlnet():
    """A tiny ControlNet matching the tiny UNet; its zero-initialised output convolutions get random
    weights so that the control image actually changes the result."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(SEED + 1)
    cn = ControlNetModel(
        block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=HIDDEN, attention_head_dim=8,
        conditioning_embedding_out_channels=(16, 32),
    )
    with torch.no_grad():
        for module in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
            module.weight.normal_(0.0, 0.2)
            module.bias.normal_(0.0, 0.2)
    return cn


def save_controlnet(folder: Path, variant: str | None = None) -> Path:
    """`variant="fp16"`: half-precision `diffusion_pytorch_model.fp16.safetensors`, as the manifest fetches ControlNet 1.1."""
    import torch

    net = build_controlnet()
    if variant == "fp16":
        net.to(torch.float16)
    net.save_pretrained(folder, safe_serialization=True, variant=variant)
    return Path(folder)


def save_sd15_base(folder: Path) -> Path:
    """A tiny text-to-image SD 1.5 (4-channel UNet) laid out like checkpoints/sd15/: fp16 files only, as the
    manifest fetches them, and a model_index naming `StableDiffusionPipeline` as the released one does."""
    folder = save_diffusers(folder, in_channels=4, variant="fp16")
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionPipeline"
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def save_kohya_lora(path: Path, unet, rank: int = 4, scale: float = 0.5) -> Path:
    """A LoRA for the tiny UNet's attention projections in the kohya/Civitai key layout
    (`lora_unet_<module>.lora_down.weight`, `.lora_up.weight`, `.alpha`)."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(SEED + 2)
    sd = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and ".attn" in name and name.rsplit(".", 2)[-2:][0] in (
                "attn1", "attn2", "to_out") and "transformer_blocks" in name:
            key = "lora_unet_" + name.replace(".", "_")
            sd[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=g) * scale
            sd[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=g) * scale
            sd[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(sd, str(path))
    return Path(path)


def save_embedding(path: Path, vectors: int = 2) -> Path:
    """A WebUI textual-inversion embedding (`emb_params`: vectors × CLIP width) as safetensors."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(SEED + 3)
    save_file({"emb_params": torch.randn(vectors, HIDDEN, generator=g)}, str(path))
    return Path(path)


def image_and_mask(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A smooth test image and a centred rectangular mask."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([x * 255 // max(size - 1, 1), y * 255 // max(size - 1, 1), (x + y) * 127 // max(size - 1, 1)], -1)
    mask = np.zeros((size, size), bool)
    mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    return image.astype(np.uint8), mask


def save_original_config(path: Path, in_channels: int = 9) -> Path:
    """The tiny model described in the original LDM yaml format (what `original_config=` takes)."""
    import yaml

    config = {"model": {"target": "ldm.models.diffusion.ddpm.LatentInpaintDiffusion", "params": {
        "linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000, "image_size": 32, "channels": 4,
        "conditioning_key": "hybrid", "scale_factor": 0.18215,
        "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
            "image_size": 32, "in_channels": in_channels, "out_channels": 4, "model_channels": 32,
            "attention_resolutions": [2], "num_res_blocks": 2, "channel_mult": [1, 2], "num_heads": 8,
            "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": HIDDEN, "legacy": False}},
        "first_stage_config": {"target": "ldm.models.autoencoder.AutoencoderKL", "params": {
            "embed_dim": 4, "ddconfig": {"double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3,
                                         "out_ch": 3, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
                                         "attn_resolutions": [], "dropout": 0.0}}},
        "cond_stage_config": {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"},
    }}}
    Path(path).write_text(yaml.safe_dump(config), encoding="utf-8")
    return Path(path)


def fake_clip_cache(hf_home: Path, components: dict) -> Path:
    """Put the tiny text encoder's config and tokenizer where the Hugging Face cache keeps
    openai/clip-vit-large-patch14, which diffusers reads when a single file comes with an original yaml."""
    repo = Path(hf_home) / "hub" / "models--openai--clip-vit-large-patch14"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text("0" * 40)
    components["text_encoder"].config.save_pretrained(snapshot)
    components["tokenizer"].save_pretrained(snapshot)
    return snapshot
