"""Tiny random-weight Grounding DINO and BLIP-2 models, written in the official file formats.

Plain helpers (no pytest fixtures) so any test can build them:

- `build_tiny_grounding_dino(root)` writes `root/groundingdino_swint_ogc.pth` (an official-style
  `{"model": state_dict}` checkpoint), `root/bert-base-uncased/` (a local BERT folder with the files
  the manifest asks for) and `root/groundingdino_tiny.py` (the packaged SwinT config with 1 encoder /
  1 decoder layer). With `EDITANYTHING_CHECKPOINTS=root` the models layer finds them like real files;
  `use_tiny_config(monkeypatch, config)` points the manifest's `groundingdino-swint-ogc` entry at the
  tiny config (the packaged one describes the full-size layer counts).
- `build_tiny_blip2(folder)` writes a `save_pretrained` BLIP-2 folder (two safetensors shards plus the
  index, as the official repository has) with a local byte-level GPT-2 tokenizer.

Random weights give nonsense words and boxes; tests compare our code with the upstream library on
the same weights, so only parity matters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

BERT_WORDS = ["the", "a", "dog", "cat", "red", "car", "person", "cup", "coffee", "rocket", "sky",
              "astronaut", "face", "hand", "tree", "table", "white", "black", "blue", "green"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", ","]
BLIP2_WEIGHT_GAIN = 10.0
GDINO_LOGIT_GAIN = 0.1


@dataclasses.dataclass(frozen=True)
class TinyGroundingDino:
    checkpoint: Path
    config: Path
    bert_dir: Path


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A BertTokenizer vocab + a tiny BertModel in `folder` (config.json, vocab.txt, model.safetensors)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = BERT_SPECIALS + BERT_WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    return folder


def write_tiny_config(path: Path, bert_dir: Path) -> Path:
    """The packaged SwinT OGC config, shrunk to 1 encoder and 1 decoder layer and 50 queries."""
    import groundingdino

    packaged = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    overrides = {"enc_layers": 1, "dec_layers": 1, "dim_feedforward": 256, "num_queries": 50,
                 "text_encoder_type": str(bert_dir)}
    text = packaged.read_text(encoding="utf-8")
    text += "\n# tiny test model\n" + "".join(f"{k} = {v!r}\n" for k, v in overrides.items())
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def build_tiny_grounding_dino(root: Path, seed: int = 0) -> TinyGroundingDino:
    """Random tiny Grounding DINO files under `root` with the official file names."""
    import torch
    from groundingdino.models import build_model
    from groundingdino.util.slconfig import SLConfig

    from editanything.detect.bert_compat import patched_bert_warper

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    bert_dir = build_tiny_bert(root / "bert-base-uncased", seed)
    config = write_tiny_config(root / "groundingdino_tiny.py", bert_dir)
    args = SLConfig.fromfile(str(config))
    args.device = "cpu"
    torch.manual_seed(seed)
    with patched_bert_warper(), contextlib.redirect_stdout(io.StringIO()):
        model = build_model(args)
    with torch.no_grad():
        # Random init gives token logits of +-30 (every score 0 or 1): scaling the decoder's output norm
        # (one factor of the query-token dot product) spreads the scores over (0, 1), so thresholds
        # keep some boxes and drop others.
        model.transformer.decoder.norm.weight.mul_(GDINO_LOGIT_GAIN)
        # The box head starts at zero, so every box is an encoder proposal (small, side by side); a push
        # on width/height and some random offsets give varied, overlapping boxes for NMS to resolve.
        head = model.bbox_embed[0].layers[-1]
        head.weight.normal_(0.0, 0.05)
        head.bias.copy_(torch.tensor([0.0, 0.0, 1.5, 1.5]))
    checkpoint = root / "groundingdino_swint_ogc.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    return TinyGroundingDino(checkpoint, config, bert_dir)


def use_tiny_config(monkeypatch, config: Path, name: str = "groundingdino-swint-ogc") -> None:
    """Point the manifest entry `name` at the tiny config for the rest of the test."""
    from editanything.models import MODELS

    spec = MODELS[name]
    monkeypatch.setitem(MODELS, name, dataclasses.replace(spec, loader={**spec.loader, "config": str(config)}))


def _byte_level_vocab() -> dict[str, int]:
    """Byte-level tokens for printable ASCII (space is "Ġ") and the specials, no merges.

    Any ASCII text tokenizes, and whatever a random model generates decodes to readable characters
    (bytes >= 128 would decode to U+FFFD and make different outputs look alike).
    """
    from tokenizers import pre_tokenizers

    tokens = sorted(c for c in pre_tokenizers.ByteLevel.alphabet() if 33 <= ord(c) <= 126 or c == "\u0120")
    return {t: i for i, t in enumerate(tokens + ["</s>", "<pad>", "<image>"])}


def build_tiny_blip2(folder: Path, seed: int = 0) -> Path:
    """A random tiny BLIP-2 (OPT) model + processor saved with `save_pretrained` in `folder`."""
    import torch
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessor, GPT2Tokenizer, OPTConfig)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = GPT2Tokenizer(vocab=_byte_level_vocab(), merges=[], bos_token="</s>", eos_token="</s>",
                              unk_token="</s>", pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    num_query_tokens = 4
    processor = Blip2Processor(
        BlipImageProcessor(size={"height": 32, "width": 32}, do_convert_rgb=True), tokenizer,
        num_query_tokens=num_query_tokens,
    )
    config = Blip2Config(
        vision_config=Blip2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8).to_dict(),
        qformer_config=Blip2QFormerConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, encoder_hidden_size=32).to_dict(),
        text_config=OPTConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, ffn_dim=64,
                              num_attention_heads=2, max_position_embeddings=128, word_embed_proj_dim=32,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id).to_dict(),
        num_query_tokens=num_query_tokens,
        image_token_index=image_token,
    )
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Init-scale weights (std 0.02) wash the image out: every picture would get the same words.
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.mul_(BLIP2_WEIGHT_GAIN)
    # Two shards plus an index, like the official repository (the manifest lists those files).
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    model.save_pretrained(str(folder), max_shard_size=int(total * 0.6))
    processor.save_pretrained(str(folder))
    processor.image_processor.save_pretrained(str(folder))
    vocab = tokenizer.get_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder
