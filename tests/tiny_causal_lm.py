"""A tiny random-weight instruct LM (Llama architecture, as SmolLM2) saved with `save_pretrained`.

The folder is laid out as HuggingFaceTB/SmolLM2-360M-Instruct is (config.json, generation_config.json,
model.safetensors, tokenizer.json, tokenizer_config.json with a ChatML chat template), so the local
expander loads it through its real path. The tokenizer is byte-level BPE over the 256 byte characters
(no merges), which tokenizes any text offline; `<|im_end|>` ends a turn and is the eos token.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_sd import _byte_chars

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_tokenizer(folder: Path, vocab_size: int = 0, eos: str = "<|im_end|>"):
    """The byte-level tokenizer with the chat template; `vocab_size` pads its vocabulary with filler tokens
    (for a real-size model, whose every sampled id must decode). GPT-2's eos is `<|endoftext|>`."""
    from transformers import GPT2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(_byte_chars())}
    vocab.update({s: 256 + i for i, s in enumerate(SPECIALS)})
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = GPT2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), bos_token="<|im_start|>",
                              eos_token=eos, unk_token="<|endoftext|>", pad_token=eos)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_causal_lm(folder: Path, seed: int = 0, *, silent: bool = False) -> Path:
    """Save a tiny `LlamaForCausalLM` + tokenizer in `folder`.

    `silent=True`: weights that make every next token `<|im_end|>` (the residual stream has a constant
    positive first coordinate, the final norm keeps only it, and only the eos row of the untied LM head
    reads it), an LM that answers with nothing but its stop token.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = build_tokenizer(folder)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"), eos_token_id=eos,
                         pad_token_id=eos, tie_word_embeddings=not silent)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    if silent:
        with torch.no_grad():
            model.model.embed_tokens.weight[:, 0] = 10.0
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.norm.weight.zero_()
            model.model.norm.weight[0] = 1.0
            model.lm_head.weight.zero_()
            model.lm_head.weight[eos, 0] = 100.0
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos, pad_token_id=eos)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder), save_jinja_files=False)  # the template in tokenizer_config.json, as SmolLM2's
    return folder


def build_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A tiny random `GPT2LMHeadModel` + tokenizer without a chat template, laid out as
    Gustavosta/MagicPrompt-Stable-Diffusion is (a model that continues the words it is given)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    tokenizer = build_tokenizer(folder, eos="<|endoftext|>")
    tokenizer.chat_template = None
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=eos, eos_token_id=eos)
    GPT2LMHeadModel(config).eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
