"""Re-exploration with prefix reuse against re-encoding the history for every branch.

One rollback point with a 1,000-token history; 8 branches of 64 new tokens each, sampled
in one call. With reuse (leafe-tui's hf backend) the history is encoded once and its KV
cache copied to the branches; without, every branch re-encodes the whole history (what
`generate(num_return_sequences=8)` does). Same model, same seed, same tokens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import embedded_generator, humaneval_prompts, timed  # noqa: E402
from workbench.models.base import Sampling  # noqa: E402


def history_prompt(generator, target_tokens: int) -> list[dict]:
    """A realistic multi-turn coding history padded with real tasks to ~target tokens."""
    turns = humaneval_prompts(40)
    messages = [turns[0][0]]
    index = 0
    while generator.count_tokens(messages) < target_tokens - 60:
        messages.append({"role": "user", "content": turns[index % len(turns)][1]["content"]})
        messages.append({"role": "assistant", "content": "def solution():\n    pass\n"})
        index += 1
    messages.append({"role": "user", "content": "2 of 5 checks failed. A note from an earlier attempt: handle the empty list."})
    return messages


def decode_profile(generator, prompt, branches: int, tokens: int) -> None:
    """Where the time of prefix reuse goes: one prefill of the history against `branches`
    of them, a decode step over the branches' caches broken down by kind of work, and the
    ceiling that follows from the measured times (prefix reuse cannot remove decoding)."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    model = generator.model
    ids = torch.tensor([generator.render(prompt)])
    with torch.inference_mode():
        model(input_ids=ids[:, :16])  # warm-up
        started = time.perf_counter()
        cache = model(input_ids=ids, use_cache=True).past_key_values
        one_prefill = time.perf_counter() - started
        started = time.perf_counter()
        model(input_ids=ids.repeat(branches, 1), use_cache=True)
        all_prefills = time.perf_counter() - started
        cache.batch_repeat_interleave(branches)
        step_ids = ids[:, -1:].repeat(branches, 1)
        started = time.perf_counter()
        for _ in range(4):
            cache = model(input_ids=step_ids, past_key_values=cache, use_cache=True).past_key_values
        step = (time.perf_counter() - started) / 4
        with profile(activities=[ProfilerActivity.CPU]) as trace:
            started = time.perf_counter()
            model(input_ids=step_ids, past_key_values=cache, use_cache=True)
            profiled_step = time.perf_counter() - started
    kinds = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"),
             "attention": ("aten::scaled_dot_product_attention", "aten::_scaled_dot_product"),
             "copies": ("aten::cat", "aten::copy_", "aten::index_select", "aten::contiguous", "aten::clone")}
    totals = dict.fromkeys(kinds, 0.0)
    events = trace.key_averages()
    whole = sum(e.self_cpu_time_total for e in events)
    for event in events:
        for kind, names in kinds.items():
            if any(event.key.startswith(name) for name in names):
                totals[kind] += event.self_cpu_time_total
    profiled = sum(totals.values())
    decode = step * tokens
    print(f"profile: one decode step of {branches} branches over a {ids.shape[1]}-token history: {step * 1000:.0f} ms")
    for kind, micros in totals.items():
        print(f"  {kind:16}: {micros / max(whole, 1) * 100:5.1f}% of operator time")
    print(f"  {'other operators':16}: {(whole - profiled) / max(whole, 1) * 100:5.1f}% of operator time")
    outside = max(0.0, profiled_step * 1e6 - whole) / (profiled_step * 1e6) * 100
    print(f"  Python and dispatch outside operators: {outside:5.1f}% of the profiled step ({profiled_step * 1000:.0f} ms)")
    print(f"  prefill once {one_prefill:.2f} s, {branches} times {all_prefills:.2f} s; {tokens} decode steps {decode:.2f} s")
    print(f"  ceiling of prefix reuse (measured): ({all_prefills:.2f} + {decode:.2f}) / ({one_prefill:.2f} + {decode:.2f}) "
          f"= {(all_prefills + decode) / (one_prefill + decode):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--branches", type=int, default=8)
    parser.add_argument("--history", type=int, default=1000, help="history tokens")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per branch")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--profile", action="store_true", help="also profile one decode step and print the ceiling")
    args = parser.parse_args()
    if args.threads:
        __import__("torch").set_num_threads(args.threads)
    generator = embedded_generator(args.dtype)
    prompt = history_prompt(generator, args.history)
    if args.profile:
        decode_profile(generator, prompt, args.branches, args.tokens)
    length = generator.count_tokens(prompt)
    sampling = Sampling(temperature=0.8, max_new_tokens=args.tokens, min_new_tokens=args.tokens, seed=0)
    generator.generate([prompt], 2, Sampling(temperature=0.8, max_new_tokens=2))  # warm-up

    generator.prefix_reuse = False
    plain, plain_seconds = timed(lambda: generator.generate([prompt], args.branches, sampling))
    generator.prefix_reuse = True
    reused, reused_seconds = timed(lambda: generator.generate([prompt], args.branches, sampling))
    tokens = sum(s.tokens for s in reused[0])
    print(f"backtracking: {args.branches} branches from a {length}-token history, {args.tokens} new tokens each, embedded model, {args.dtype}")
    print(f"  re-encode the history per branch (baseline): {plain_seconds:6.2f} s")
    print(f"  encode once, copy the KV cache (leafe-tui)  : {reused_seconds:6.2f} s  ({tokens} tokens)")
    print(f"  ratio: {plain_seconds / reused_seconds:.2f}x faster with prefix reuse")


if __name__ == "__main__":
    main()
