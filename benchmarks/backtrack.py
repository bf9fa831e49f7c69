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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--branches", type=int, default=8)
    parser.add_argument("--history", type=int, default=1000, help="history tokens")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per branch")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    generator = embedded_generator(args.dtype)
    prompt = history_prompt(generator, args.history)
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
