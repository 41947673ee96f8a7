"""Seconds per prompt expansion and tokens per second, on this CPU, for each expander.

The local expander runs a random-weight model of SmolLM2-360M-Instruct's architecture at its real size
(LlamaForCausalLM: 32 layers, width 960, 15 heads / 5 KV heads, MLP 2560, vocabulary 49,152, tied
embeddings: 362M parameters, float32 on a CPU) with a byte-level tokenizer padded to the same
vocabulary, through LocalExpander's real generate path (chat template, seeded sampling, bounded new
tokens). Random weights never stop early, so every run produces the full `max_new_tokens`: the
figures are the cost of a maximal answer. The rules expander is timed beside it. Target: under 3 s
per prompt for the default local model on 2 cores. The machine's load (`uptime`) is printed first;
figures taken under load are not the machine's.

    python benchmarks/prompt_expand.py [--runs 3] [--threads N]
    python benchmarks/prompt_expand.py --smoke    # 2 of the 32 layers, 8 new tokens: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from editanything.prompting.local import LocalExpander  # noqa: E402
from editanything.prompting.rules import RulesExpander  # noqa: E402
from tiny_causal_lm import build_tokenizer  # noqa: E402  (byte-level, ChatML template: tokenizes as cheaply as the real one)

WORDS = ("river, tiger, mountain, trees, sunset", "old lighthouse, storm, oil painting",
         "astronaut, horse, desert, cinematic")
# HuggingFaceTB/SmolLM2-360M-Instruct's config.json (architecture fields)
SMOLLM2_360M = dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                    num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192, rms_norm_eps=1e-5,
                    rope_theta=100000.0, tie_word_embeddings=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="expansions per expander (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--smoke", action="store_true", help="2 layers, 8 new tokens, 1 run: checks the script runs")
    args = ap.parse_args()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"cpus: {os.cpu_count()}, torch threads: {torch.get_num_threads()}")
    runs = 1 if args.smoke else args.runs
    config = dict(SMOLLM2_360M, num_hidden_layers=2) if args.smoke else SMOLLM2_360M
    new_tokens = 8 if args.smoke else 80  # the local expander's bound for tag prompts
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp), config["vocab_size"])
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        torch.manual_seed(0)
        start = time.perf_counter()
        model = LlamaForCausalLM(LlamaConfig(**config, bos_token_id=eos - 1, eos_token_id=eos, pad_token_id=eos))
        params = sum(p.numel() for p in model.parameters())
        print(f"model: SmolLM2-360M architecture, {config['num_hidden_layers']} layers, {params / 1e6:.0f}M "
              f"parameters, random weights, float32 (built in {time.perf_counter() - start:.1f} s)")
        local = LocalExpander(model, tokenizer, name="smollm2-360m-random", max_new_tokens=new_tokens, device="cpu")
        local.generate(WORDS[0], "sd15", 0)  # warm-up: first-call allocations
        seconds, tokens = [], []
        for i in range(runs):
            start = time.perf_counter()
            _, n = local.generate(WORDS[i % len(WORDS)], "sd15", i)
            seconds.append(time.perf_counter() - start)
            tokens.append(n)
        per = sum(seconds) / runs
        print(f"local ({config['num_hidden_layers']} layers): {per:.2f} s per expansion, "
              f"{sum(tokens) / sum(seconds):.1f} new tokens/s ({sum(tokens) // runs} new tokens each)")
    rules = RulesExpander()
    rules.expand(WORDS[0], "sd15", 0)  # loads the CLIP tokenizer when on disk
    start = time.perf_counter()
    for i in range(runs * 10):
        rules.expand(WORDS[i % len(WORDS)], "sd15", i)
    rules_per = (time.perf_counter() - start) / (runs * 10)
    print(f"rules: {rules_per * 1000:.1f} ms per expansion")
    print(f"local / rules = {per / rules_per:.0f}x the time per expansion")
    if args.smoke:
        print("smoke run: 2 of 32 layers and 8 new tokens; not a measurement of the real model")


if __name__ == "__main__":
    main()
