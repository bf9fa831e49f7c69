"""LoRA dropout masks drawn as integers (`distill.dropout_masks = "integer"`, the default)
against peft's `nn.Dropout` (`"torch"`), in the training loop itself.

One model, one optimiser, the same batches: each batch is trained once with each kind of
mask, which one goes first alternating from batch to batch, so that both sides see the same
shapes and the same load on the machine. Correction-shaped HumanEval examples (as
`benchmarks/distill.py` builds them) or `--dataset` rows (a dataset JSONL a run exported,
shuffled with seed 0); the embedded model in bfloat16 with float32 LoRA, `lora_dropout`
0.05 as configured by default. Prints tokens per second of each side and the ratio
integer/torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.training_memory import examples  # noqa: E402  (its import sets HF_HUB_OFFLINE)


def dropout_tables(model) -> list:
    import torch

    return [m.lora_dropout for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)]


def install(tables: list, modules: list[dict]) -> None:
    for table, chosen in zip(tables, modules, strict=True):
        for name, module in chosen.items():
            table[name] = module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6, help="batches timed (each trained once per side)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--dataset", default="", help="a dataset JSONL to train on instead of HumanEval examples")
    args = parser.parse_args()

    import torch
    from accelerate.utils import set_seed

    from workbench.config import DistillConfig, ModelConfig
    from workbench.context import SilentProgress
    from workbench.distill.dropout import IntegerMaskDropout
    from workbench.distill.training import (
        TrainResult,
        make_accelerator,
        prepare_training,
        train_step,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = ModelConfig(name="embedded", dtype="bfloat16", device="cpu")
    settings = DistillConfig(epochs=1, batch_size=args.batch_size, max_length=1024, dropout_masks="torch")
    set_seed(0)
    training = prepare_training(model_config, settings, examples(args), make_accelerator(model_config),
                                TrainResult(), SilentProgress())
    tables = dropout_tables(training.model)
    sides = {
        "torch": [dict(table.items()) for table in tables],
        "integer": [{name: IntegerMaskDropout(d.p) for name, d in table.items()} for table in tables],
    }
    print(f"LoRA dropout masks: {len(tables)} adapted layers, p = {settings.lora_dropout}, "
          f"{args.batches} batches of {args.batch_size}, each trained once per side")
    batches = iter(training.loader)
    train_step(training, next(batches))  # warm-up, timed by neither side
    tokens = {name: 0 for name in sides}
    seconds = {name: 0.0 for name in sides}
    for index in range(args.batches):
        batch = next(batches, None)
        if batch is None:
            break
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for name in order:
            install(tables, sides[name])
            start = time.perf_counter()
            _, _, batch_tokens, _ = train_step(training, batch)
            seconds[name] += time.perf_counter() - start
            tokens[name] += batch_tokens
    rates = {name: tokens[name] / seconds[name] for name in sides}
    for name in sides:
        print(f"  {name:7}: {rates[name]:.1f} tokens/s ({tokens[name]} tokens in {seconds[name]:.1f} s)")
    print(f"  ratio integer/torch: {rates['integer'] / rates['torch']:.2f}x")


if __name__ == "__main__":
    main()
