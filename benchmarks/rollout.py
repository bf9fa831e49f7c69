"""Lock-step batched rollouts against one generate call per episode.

Same model (the embedded SmolLM2-135M-Instruct, hf backend), same 8 HumanEval first turns,
same sampling and the same number of new tokens per episode (min = max = 64), so both
sides do identical work. Prints tokens per second for each and the ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import embedded_generator, humaneval_prompts, timed  # noqa: E402
from workbench.models.base import Sampling  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=8, help="live episodes")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per episode")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    generator = embedded_generator(args.dtype)
    prompts = humaneval_prompts(args.episodes)
    sampling = Sampling(temperature=0.7, max_new_tokens=args.tokens, min_new_tokens=args.tokens, seed=0)
    generator.generate(prompts[:1], 1, Sampling(temperature=0, max_new_tokens=4))  # warm-up

    batched, batched_seconds = timed(lambda: generator.generate(prompts, 1, sampling))
    single, single_seconds = timed(lambda: [generator.generate([p], 1, sampling)[0] for p in prompts])
    batched_tokens = sum(s.tokens for samples in batched for s in samples)
    single_tokens = sum(s.tokens for samples in single for s in samples)
    batched_rate, single_rate = batched_tokens / batched_seconds, single_tokens / single_seconds
    print(f"rollouts: {args.episodes} live episodes x {args.tokens} new tokens, embedded model, {args.dtype}, CPU threads {__import__('torch').get_num_threads()}")
    print(f"  one generate call per episode (baseline): {single_tokens:5d} tokens in {single_seconds:6.2f} s = {single_rate:7.1f} tokens/s")
    print(f"  lock-step batched (leafe-tui)           : {batched_tokens:5d} tokens in {batched_seconds:6.2f} s = {batched_rate:7.1f} tokens/s")
    print(f"  ratio batched / per-episode: {batched_rate / single_rate:.2f}x")


if __name__ == "__main__":
    main()
