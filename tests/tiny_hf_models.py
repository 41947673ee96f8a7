"""Tiny random-weight transformers models (Grounding DINO, MM-Grounding-DINO, SAM 2.1, EdgeTAM, SAM 3, ViTMatte), saved with `save_pretrained`.

Each builder writes a folder laid out as the published hub repository (config.json,
model.safetensors, processor and tokenizer files) so the backends load it through their real
code paths. Random weights give nonsense boxes and masks; tests compare our backends with
transformers called directly on the same weights.
"""

from __future__ import annotations

from pathlib import Path

from tiny_detect_models import BERT_SPECIALS, BERT_WORDS
from tiny_sd import build_tokenizer


def build_tiny_grounding_dino_hf(folder: Path, seed: int = 0, *, family: str = "GroundingDino") -> Path:
    """A `<family>ForObjectDetection` + `GroundingDinoProcessor` folder (Swin + BERT, 1–2 layers each).

    family: "GroundingDino" or "MMGroundingDino" (MM-Grounding-DINO and LLMDet share that class and processor).
    """
    import torch
    import transformers
    from transformers import (BertConfig, BertTokenizer, GroundingDinoImageProcessor, GroundingDinoProcessor,
                              SwinConfig)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(BERT_SPECIALS + BERT_WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab))
    # The real processor resizes to 800/1333 px; 64/96 keeps the test fast and runs the same code.
    processor = GroundingDinoProcessor(GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
                                       tokenizer)
    backbone = SwinConfig(image_size=64, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(BERT_SPECIALS + BERT_WORDS), hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    config = getattr(transformers, f"{family}Config")(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=20,
        max_text_len=64, encoder_n_points=2, decoder_n_points=2)
    torch.manual_seed(seed)
    model = getattr(transformers, f"{family}ForObjectDetection")(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # MM-Grounding-DINO's contrastive heads start at a 1 % prior (bias -4.6), so every random score is
            # below 0.1; a zero bias spreads them over (0, 1) and thresholds keep some boxes and drop others.
            if "class_embed" in name and name.endswith("bias"):
                param.zero_()
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    processor.image_processor.save_pretrained(str(folder))  # preprocessor_config.json, as the hub repo has
    return folder


def reference_grounded_detect(folder, model_class: str, image, caption: str, box_threshold: float,
                              text_threshold: float):
    """transformers' own recipe for the Grounding DINO family: boxes clipped to the image, sorted by score,
    phrases without separators and special tokens."""
    import numpy as np
    import torch
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(folder)
    model = getattr(transformers, model_class).from_pretrained(folder).eval()
    inputs = processor(images=image, text=caption, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    h, w = image.shape[:2]
    found = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold, target_sizes=[(h, w)])[0]
    boxes = found["boxes"].numpy().copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    order = np.argsort(-found["scores"].numpy(), kind="stable")
    specials = set(processor.tokenizer.all_special_tokens)
    phrases = [" ".join(w for w in p.replace(".", " ").split() if w not in specials) for p in found["text_labels"]]
    return boxes[order], found["scores"].numpy()[order], [phrases[i] for i in order]


def tiny_sam2_config(image_size: int = 128):
    """A SAM 2.1-shaped config (Hiera backbone, FPN, prompt encoder, mask decoder) with tiny widths."""
    from transformers import Sam2Config

    vision = {
        "backbone_config": {"model_type": "sam2_hiera_det_model", "hidden_size": 12, "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": [12, 24, 48, 96],
                            "num_attention_heads_per_stage": [1, 1, 1, 1], "window_size_per_stage": [4, 4, 4, 2],
                            "global_attention_blocks": [3], "image_size": [image_size, image_size],
                            "window_positional_embedding_background_size": [2, 2]},
        "backbone_channel_list": [96, 48, 24, 12], "fpn_hidden_size": 32,
        "backbone_feature_sizes": [[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2],
    }
    return Sam2Config(vision_config=vision,
                      prompt_encoder_config={"hidden_size": 32, "image_size": image_size, "patch_size": 16},
                      mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2,
                                           "iou_head_hidden_dim": 16})


def build_tiny_sam2(folder: Path, seed: int = 0, image_size: int = 128) -> Path:
    """A `Sam2Model` + `Sam2Processor` folder, laid out as `facebook/sam2.1-hiera-*` in transformers format."""
    import torch
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

    folder = Path(folder)
    torch.manual_seed(seed)
    Sam2Model(tiny_sam2_config(image_size)).eval().save_pretrained(str(folder))
    size = {"height": image_size, "width": image_size}
    processor = Sam2Processor(Sam2ImageProcessor(size=size, mask_size={"height": image_size // 4, "width": image_size // 4}),
                              target_size=image_size)
    processor.save_pretrained(str(folder))
    return folder


def build_tiny_edgetam(folder: Path, seed: int = 0, image_size: int = 128) -> Path:
    """An `EdgeTamModel` + `Sam2Processor` folder, laid out as `yonigozlan/EdgeTAM-hf`.

    The encoder is timm's RepViT built from its architecture name with `pretrained=False` (as transformers'
    TimmWrapper builds it from config.json: no download), one block per stage and narrow widths.
    """
    import torch
    from transformers import EdgeTamConfig, EdgeTamModel, Sam2ImageProcessor, Sam2Processor, TimmWrapperConfig

    folder = Path(folder)
    widths = [8, 16, 24, 32]
    backbone = TimmWrapperConfig(architecture="repvit_m1", model_args={
        "in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3], "embed_dim": widths, "depth": [1, 1, 1, 1]})
    vision = {"backbone_config": backbone.to_dict(), "backbone_channel_list": widths[::-1], "fpn_hidden_size": 32,
              "backbone_feature_sizes": [[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2]}
    config = EdgeTamConfig(vision_config=vision,
                           prompt_encoder_config={"hidden_size": 32, "image_size": image_size, "patch_size": 16},
                           mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2,
                                                "iou_head_hidden_dim": 16})
    torch.manual_seed(seed)
    EdgeTamModel(config).eval().save_pretrained(str(folder))
    size = {"height": image_size, "width": image_size}
    processor = Sam2Processor(Sam2ImageProcessor(size=size, mask_size={"height": image_size // 4, "width": image_size // 4}),
                              target_size=image_size)
    processor.save_pretrained(str(folder))
    return folder


def build_tiny_sam3(folder: Path, seed: int = 0, image_size: int = 112) -> Path:
    """A tiny `Sam3VideoModel` (detector + tracker) + `Sam3Processor` folder, laid out as `facebook/sam3`."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Sam3ImageProcessor, Sam3Processor, Sam3VideoConfig, Sam3VideoModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    grid = image_size // 14
    vision = {"backbone_config": {"model_type": "sam3_vit_model", "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": image_size,
                                  "patch_size": 14, "window_size": 4, "global_attn_indexes": [1],
                                  "pretrain_image_size": image_size},
              "fpn_hidden_size": 32, "backbone_feature_sizes": [[grid * 4] * 2, [grid * 2] * 2, [grid] * 2]}
    small = {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    detector = {"model_type": "sam3", "vision_config": vision,
                "text_config": {"model_type": "clip_text_model", "vocab_size": 514, "hidden_size": 32,
                                "intermediate_size": 64, "projection_dim": 32, "num_hidden_layers": 1,
                                "num_attention_heads": 2, "max_position_embeddings": 32,
                                "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513},
                "geometry_encoder_config": small, "detr_encoder_config": small,
                "detr_decoder_config": {**small, "num_queries": 10},
                "mask_decoder_config": {"hidden_size": 32, "num_attention_heads": 2}}
    tracker = {"model_type": "sam3_tracker_video", "vision_config": vision, "image_size": image_size,
               "prompt_encoder_config": {"hidden_size": 32, "image_size": image_size, "patch_size": 14},
               "mask_decoder_config": {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 16},
               "memory_attention_hidden_size": 32, "memory_attention_num_layers": 1,
               "memory_attention_feed_forward_hidden_size": 64, "memory_encoder_hidden_size": 32,
               "memory_encoder_output_channels": 16, "mask_downsampler_embed_dim": 32, "memory_fuser_embed_dim": 32,
               "memory_fuser_intermediate_dim": 64, "memory_fuser_num_layers": 1,
               "memory_attention_rope_feat_sizes": [grid, grid]}
    torch.manual_seed(seed)
    Sam3VideoModel(Sam3VideoConfig(detector_config=detector, tracker_config=tracker)).eval().save_pretrained(str(folder))
    # transformers 5.23 saves the tracker's weights as `tracker_model.tracker_model.*`; the published
    # checkpoint names them `tracker_model.*` (the prefix transformers' conversion table strips on load).
    state = load_file(str(folder / "model.safetensors"))
    save_file({k.replace("tracker_model.tracker_model.", "tracker_model.", 1): v for k, v in state.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = build_tokenizer(folder)  # a CLIP byte-level BPE, as SAM 3's text encoder reads
    Sam3Processor(Sam3ImageProcessor(size={"height": image_size, "width": image_size}), tokenizer).save_pretrained(str(folder))
    return folder


def tiny_vitmatte_config(image_size: int = 128):
    """A 2-block ViTMatte (one windowed, one global block; hidden 32) in ViTMatte's real layout."""
    from transformers import VitDetConfig, VitMatteConfig

    backbone = VitDetConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, window_size=14,
                            window_block_indices=[0], residual_block_indices=[1], num_channels=4,
                            use_relative_position_embeddings=True, image_size=image_size, pretrain_image_size=112,
                            out_features=["stage2"])
    return VitMatteConfig(backbone_config=backbone, hidden_size=32, fusion_hidden_sizes=[16, 16, 8, 8],
                          convstream_hidden_sizes=[8, 8, 16])


def build_tiny_vitmatte(folder: Path, seed: int = 0) -> Path:
    """A `VitMatteForImageMatting` + `VitMatteImageProcessor` folder laid out as hustvl/vitmatte-small-composition-1k
    (config.json, model.safetensors, preprocessor_config.json)."""
    import torch
    from transformers import VitMatteForImageMatting, VitMatteImageProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = VitMatteForImageMatting(tiny_vitmatte_config()).eval()
    with torch.no_grad():
        # Its init draws batch-norm scales near 0 and small convolutions, so every alpha would be 0.5000:
        # trained-like scales spread the random alphas over (0, 1), and a test can tell two mattes apart.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
        for param in model.parameters():
            if param.dim() == 4:
                torch.nn.init.kaiming_normal_(param)
    model.save_pretrained(str(folder))
    VitMatteImageProcessor().save_pretrained(str(folder))
    return folder


def declare_folder(root: Path, name: str, backend: str, manifest: Path, extra: str) -> None:
    """Write `manifest`: one entry naming the folder `root/name` as it is now (sizes and sha256 pinned), as a
    user, or a future catalogue entry, declares a model of `backend`."""
    import hashlib
    import json

    from editanything.models import MODELS

    MODELS.pop(name, None)
    files = []
    for path in sorted(p for p in (root / name).iterdir() if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        files.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                      "sources": [{"url": "https://example.invalid/" + rel}]})
    manifest.write_text(json.dumps([{"name": name, "license": "Apache-2.0", "extra": extra,
                                     "loader": {"backend": backend}, "files": files}]))


def install_declared(folder: Path, tmp_path: Path, monkeypatch, name: str, backend: str, extra: str) -> Path:
    """A models root holding a copy of `folder` as `name`, declared in $EDITANYTHING_MANIFEST (its files as
    `models download` lays them out) and the only root searched; the models layer runs on the CPU.
    The caller drops `name` from MODELS afterwards."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(folder, root / name)
    manifest = tmp_path / "mine.json"
    declare_folder(root, name, backend, manifest, extra)
    monkeypatch.setenv("EDITANYTHING_MANIFEST", str(manifest))
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(root))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    return root / name
