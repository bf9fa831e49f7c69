"""Training memory: whole batches with glibc keeping what each step freed (the loop before
`distill.max_batch_tokens` and `workbench/memory.py`), against the default (batches
trained in parts of at most 1024 padded tokens, freed pages handed back as the process
grows).

Correction-shaped examples from HumanEval (as `benchmarks/distill.py` builds them: 218 to
716 tokens), or `--dataset` rows (a dataset JSONL a run exported, e.g. an Early Experience
stage's, shuffled with seed 0), batches of 8, the embedded model in bfloat16 with float32 LoRA. Each setting
trains in a process of its own, so none inherits another's heap. Prints, per setting, the
peak resident memory, the resident memory after the first and the last step, and tokens
per second; then the ratio of the peaks (baseline / default) and of the speeds.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import checked_dataset, print_result, run_child  # noqa: E402  (also sets HF_HUB_OFFLINE)
from benchmarks.distill import correction_examples  # noqa: E402

SETTINGS = {
    "baseline": "whole batches, freed memory kept (max_batch_tokens = 0, no trimming)",
    "default": "parts of at most 1024 padded tokens, freed memory handed back",
}


def examples(args) -> list[dict]:
    if not args.dataset:
        return correction_examples(args.examples)
    import random

    from workbench.distill.data import read_examples

    rows = read_examples(args.dataset)
    random.Random(0).shuffle(rows)
    return rows[: args.examples]


def train_once(name: str, args) -> None:
    import torch

    from workbench import memory
    from workbench.config import DistillConfig, ModelConfig
    from workbench.distill.training import train_lora

    if args.threads:
        torch.set_num_threads(args.threads)
    budget = 1024
    if name == "baseline":
        budget = 0
        memory.GrowthTrimmer.__call__ = lambda self: None  # the loop as it was: nothing handed back
    settings = DistillConfig(epochs=args.epochs, batch_size=args.batch_size, max_length=1024,
                             max_batch_tokens=budget)
    resident: list[int] = []
    result = train_lora(ModelConfig(name="embedded", dtype="bfloat16", device="cpu"), settings,
                        examples(args), save_to=None,
                        on_step=lambda _: resident.append(memory.resident_bytes()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    print_result({"peak": peak, "first": resident[0], "last": resident[-1], "steps": result.steps,
                  "tokens": result.tokens, "seconds": result.train_seconds})


def run_in_process(name: str, args) -> dict:
    return run_child(__file__, ["--setting", name, "--examples", str(args.examples), "--epochs", str(args.epochs),
                                "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                                "--dataset", args.dataset], f"training memory benchmark: the {name} run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--dataset", default="", help="a dataset JSONL to train on instead of HumanEval examples")
    parser.add_argument("--setting", choices=sorted(SETTINGS), help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args()
    checked_dataset(parser, args.dataset)
    if args.setting:
        train_once(args.setting, args)
        return
    print(f"training memory: {args.examples} examples x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"each setting a process of its own")
    results = {}
    for name, meaning in SETTINGS.items():
        result = results[name] = run_in_process(name, args)
        gib = 2**30
        print(f"  {name:8} ({meaning}): peak {result['peak'] / gib:.2f} GiB, resident after step 1 "
              f"{result['first'] / gib:.2f} GiB and after step {result['steps']} {result['last'] / gib:.2f} GiB, "
              f"{result['tokens'] / result['seconds']:.1f} tokens/s", flush=True)
    base, ours = results["baseline"], results["default"]
    print(f"  ratio peak memory baseline/default: {base['peak'] / ours['peak']:.2f}x")
    print(f"  ratio speed default/baseline: {(ours['tokens'] / ours['seconds']) / (base['tokens'] / base['seconds']):.2f}x")


if __name__ == "__main__":
    main()
