"""Seconds per prompt expansion on this CPU: today's default local path against the new one, side by side.

Rows, each through LocalExpander's real generate path (chat template, seeded sampling, bounds), run in
interleaved rounds so that a change in the machine's load hits every row alike:
- `360m float32, 80 tokens`: the path before this benchmark's change (SmolLM2-360M-Instruct in float32,
  always 80 new tokens for tags): the baseline;
- `360m int8`, `135m float32`, `135m int8`: each lever alone and together; these stop where the answer
  has filled CLIP's 75-token chunk (or at 80 new tokens, or at the first paragraph break);
- `135m int8, sentences`: the same model writing FLUX.2 prose (at most 160 new tokens, no CLIP stop).
The models are random-weight ones of the real architectures and sizes (SmolLM2-360M: 32 layers, width
960, 15 / 5 heads, MLP 2560; SmolLM2-135M: 30 layers, width 576, 9 / 3 heads, MLP 1536; both
LlamaForCausalLM with tied embeddings). Their tokenizer is CLIP's (its 49,408 entries plus the two chat
tokens; SmolLM2's own, 49,152 entries, is not needed offline): a BPE of the same size, so the
instructions cost about as many prompt tokens as with SmolLM2's, where a byte-level stand-in made them
4x longer. Random weights never write the eos token or a paragraph break, so every row runs to its
bound: each sampled token is a CLIP token, so the CLIP stop comes after about 70 new tokens (the decoded
pieces re-tokenize a little differently): the cost of an answer that fills the whole chunk. A trained model that follows its instructions ("at most 30
words") stops sooner. Printed per row: new tokens, wall seconds (median and fastest of the runs), CPU
seconds of this process (less sensitive to other processes' load) and the ratio to the baseline.
Target: under 3 s per prompt for the default local model (135m int8) on 2 cores. The machine's load
(`uptime`) is printed before and after: figures taken under load are ratios, not the machine's speed.

    python benchmarks/prompt_expand.py [--runs 3] [--threads 2]
    python benchmarks/prompt_expand.py --smoke    # 2 layers, 8 new tokens: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from editanything.prompting.local import LocalExpander  # noqa: E402
from editanything.prompting.rules import RulesExpander  # noqa: E402
from editanything.prompting.shaping import instructions  # noqa: E402
from editanything.prompting.types import get_target  # noqa: E402
from tiny_causal_lm import CHAT_TEMPLATE, build_tokenizer  # noqa: E402

WORDS = ("river, tiger, mountain, trees, sunset", "old lighthouse, storm, oil painting",
         "astronaut, horse, desert, cinematic")
# HuggingFaceTB/SmolLM2-360M-Instruct's and SmolLM2-135M-Instruct's config.json (architecture fields)
SMOLLM2_360M = dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                    num_key_value_heads=5, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                    tie_word_embeddings=True)
SMOLLM2_135M = dict(SMOLLM2_360M, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3)


class TodaysPath(LocalExpander):
    """The local expander as it was: no stop before the token bound."""

    def stopping_criteria(self, prompt_length, target):
        return []


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def bench_tokenizer(folder: Path):
    """CLIP's BPE with the chat tokens and template (see the module's note), or, without CLIP's vocabulary
    on disk, the tests' byte-level tokenizer (prompts then cost 4x the tokens: said in the output)."""
    from editanything.prompting.clip_tokens import clip_tokenizer

    loaded = clip_tokenizer()
    if loaded is None:
        return build_tokenizer(folder, 49152), "byte-level (CLIP's vocabulary is not on disk: prompts 4x too long)"
    from transformers import CLIPTokenizer

    loaded[0].save_pretrained(str(folder / "clip"))
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "clip"))  # a copy: the shared one stays as it is
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token = tokenizer.pad_token = "<|im_end|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer, f"CLIP's BPE ({len(tokenizer)} entries)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="expansions per row (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--smoke", action="store_true", help="2 layers, 8 new tokens, 1 run: checks the script runs")
    args = ap.parse_args()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load: {uptime()}")
    print(f"cpus: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}")
    runs = 1 if args.smoke else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, source = bench_tokenizer(Path(tmp))
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        print(f"tokenizer: {source}")
        built = {}
        for name, config in (("360m", SMOLLM2_360M), ("135m", SMOLLM2_135M)):
            config = dict(config, vocab_size=len(tokenizer), **({"num_hidden_layers": 2} if args.smoke else {}))
            torch.manual_seed(0)
            built[name] = LlamaForCausalLM(LlamaConfig(**config, bos_token_id=eos, eos_token_id=eos,
                                                       pad_token_id=eos))
            params = sum(p.numel() for p in built[name].parameters())
            print(f"model {name}: {config['num_hidden_layers']} layers, {params / 1e6:.0f}M parameters, random weights")
        bound = {"max_new_tokens": 8} if args.smoke else {}
        rows = {  # name → (expander, target)
            "360m float32, 80 tokens (baseline)": (TodaysPath(built["360m"], tokenizer, name="360m", device="cpu",
                                                               precision="float32", max_new_tokens=8 if args.smoke
                                                               else 80), "sd15"),
            "360m int8": (LocalExpander(built["360m"], tokenizer, name="360m", device="cpu", **bound), "sd15"),
            "135m float32": (LocalExpander(built["135m"], tokenizer, name="135m", device="cpu", precision="float32",
                                           **bound), "sd15"),
            "135m int8 (default)": (LocalExpander(built["135m"], tokenizer, name="135m", device="cpu", **bound),
                                    "sd15"),
            "135m int8, sentences": (LocalExpander(built["135m"], tokenizer, name="135m", device="cpu", **bound),
                                     "flux2-klein"),
        }
        prompt_tokens = {t: len(tokenizer.apply_chat_template(
            [{"role": "system", "content": instructions(get_target(t))}, {"role": "user", "content": WORDS[0]}],
            add_generation_prompt=True, return_dict=True)["input_ids"]) for t in ("sd15", "flux2-klein")}
        print(f"prompt tokens (chat template, instructions, words): tags {prompt_tokens['sd15']}, "
              f"sentences {prompt_tokens['flux2-klein']}")
        for expander, target in rows.values():
            expander.generate(WORDS[0], target, 0)  # warm-up: first-call allocations
        wall = {name: [] for name in rows}
        cpu = {name: [] for name in rows}
        tokens = {name: [] for name in rows}
        for i in range(runs):  # rounds: every row once per round
            for name, (expander, target) in rows.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                _, n = expander.generate(WORDS[i % len(WORDS)], target, i)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                tokens[name].append(n)
    base = statistics.median(wall[next(iter(rows))])
    print(f"{'row':38} {'new tokens':>10} {'median s':>9} {'fastest s':>9} {'cpu s':>7} {'tok/s':>6} {'vs base':>8}")
    for name in rows:
        median = statistics.median(wall[name])
        print(f"{name:38} {statistics.median(tokens[name]):>10.0f} {median:>9.2f} {min(wall[name]):>9.2f} "
              f"{statistics.median(cpu[name]):>7.2f} {sum(tokens[name]) / sum(wall[name]):>6.1f} "
              f"{base / median:>7.1f}x")
    default = statistics.median(wall["135m int8 (default)"])
    print(f"default / baseline = {base / default:.1f}x faster per expansion ({default:.2f} s vs {base:.2f} s, "
          f"median wall; the target is under 3 s on 2 quiet cores)")
    rules = RulesExpander()
    rules.expand(WORDS[0], "sd15", 0)  # loads the CLIP tokenizer when on disk
    start = time.perf_counter()
    for i in range(runs * 10):
        rules.expand(WORDS[i % len(WORDS)], "sd15", i)
    print(f"rules: {(time.perf_counter() - start) / (runs * 10) * 1000:.1f} ms per expansion")
    print(f"load after: {uptime()}")
    if args.smoke:
        print("smoke run: 2 layers and 8 new tokens; not a measurement of the real models")


if __name__ == "__main__":
    main()
