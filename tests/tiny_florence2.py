"""A tiny random-weight Florence-2 (`Florence2ForConditionalGeneration` + `Florence2Processor`), saved with
`save_pretrained` as `florence-community/Florence-2-base` is laid out (config.json, generation_config.json,
model.safetensors, processor and tokenizer files).

Its tokenizer is byte-level BART without merges, plus the `<image>` placeholder and the 1000 `<loc_N>` tokens
Florence-2 writes boxes with, so the processor's real task prompts and post-processing run. Most of the small
vocabulary is location tokens: a random model then writes "text<loc_a><loc_b><loc_c><loc_d>" runs that phrase
grounding parses into boxes, as well as plain text for captions.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_detect_models import _byte_level_vocab

WEIGHT_GAIN = 3.0  # init-scale weights (std 0.02) wash the image out: every picture would get the same words
# Even so, at this size the prompt outweighs the 17 image tokens for most seeds; with this one, coffee.jpg and
# rocket.jpg get different captions and different grounded boxes (checked in tests/test_florence2.py).
SEED = 3
IMAGE_SIDE = 128  # the real processor resizes to 768x768; 128 runs the same code (4x4 patches + 1 image tokens)
POST_PROCESSOR = {"pure_text": {}, "phrase_grounding": {"banned_grounding_tokens": []}, "description_with_bboxes": {},
                  "bboxes": {}, "description_with_bboxes_or_polygons": {}, "polygons": {},
                  "description_with_polygons": {}, "ocr": {}}


def build_processor(folder: Path, image_side: int = IMAGE_SIDE, vocab_size: int | None = None):
    """A `Florence2Processor` (byte-level BART tokenizer + `<image>` + 1000 `<loc_N>`; CLIP image processor at
    `image_side`, ImageNet statistics as the real one). `vocab_size` pads the vocabulary with filler tokens
    before the location tokens, so every id a real-size model generates decodes."""
    from transformers import BartTokenizer, CLIPImageProcessor, Florence2Processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _byte_level_vocab()
    for extra in ("<s>", "<unk>", "<mask>"):
        vocab[extra] = len(vocab)
    while vocab_size is not None and len(vocab) < vocab_size - 1000:
        vocab[f"tok{len(vocab)}"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = BartTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), bos_token="<s>",
                              eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                              extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)])
    image_processor = CLIPImageProcessor(size={"height": image_side, "width": image_side}, do_center_crop=False,
                                         crop_size={"height": image_side, "width": image_side},
                                         image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                                         do_convert_rgb=True)
    image_processor.image_seq_length = (image_side // 32) ** 2 + 1
    return Florence2Processor(image_processor, tokenizer, post_processor_config=POST_PROCESSOR)


def generation_config(tokenizer):
    """Florence-2's generation settings (beams, no repeated trigram, forced BOS/EOS) for `tokenizer`."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, forced_bos_token_id=tokenizer.bos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id, no_repeat_ngram_size=3, num_beams=3, early_stopping=True)


def build_tiny_florence2(folder: Path, seed: int = SEED) -> Path:
    import torch
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

    folder = Path(folder)
    processor = build_processor(folder)
    tokenizer = processor.tokenizer
    text = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                      encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                      max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      decoder_start_token_id=tokenizer.eos_token_id, forced_bos_token_id=tokenizer.bos_token_id,
                      forced_eos_token_id=tokenizer.eos_token_id)
    vision = Florence2VisionConfig(depths=[1, 1, 1, 1], embed_dim=[8, 16, 16, 32], num_heads=[1, 1, 1, 2],
                                   num_groups=[1, 1, 1, 2], window_size=2, projection_dim=32, drop_path_rate=0.0)
    config = Florence2Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                             image_token_id=tokenizer.image_token_id)
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(WEIGHT_GAIN)
    model.generation_config = generation_config(tokenizer)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    processor.image_processor.save_pretrained(str(folder))  # preprocessor_config.json, as the hub repo has
    return folder
