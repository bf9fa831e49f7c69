"""What peft's LoRA layers cost in the training loop, and what leafe-tui removes:
dropout masks drawn as 31-bit integers (`distill.dropout_masks = "integer"`) and LoRA
products in bfloat16 on a bfloat16 base (`distill.lora_precision = "bfloat16"`), against
peft's own layers (`nn.Dropout` masks, every input copied to float32).

One model, one optimiser, the same batches: each batch is trained once per side, the order
of the sides rotating from batch to batch, so that every side sees the same shapes and the
same load on the machine. Correction-shaped HumanEval examples (as `benchmarks/distill.py`
builds them) or `--dataset` rows (a dataset JSONL a run exported, shuffled with seed 0);
the embedded model in bfloat16, `lora_dropout` 0.05 as configured by default. Prints
tokens per second of each side and its ratio against peft's layers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import checked_dataset, prepared_training, use_threads  # noqa: E402  (sets HF_HUB_OFFLINE)
from benchmarks.training_memory import examples  # noqa: E402

# side: (dropout masks, LoRA products in bfloat16)
SIDES = {
    "peft": ("torch", False),
    "integer masks": ("integer", False),
    "integer masks + bfloat16 LoRA (default)": ("integer", True),
}
BASELINE = "peft"


def lora_layers(model) -> list:
    import torch

    return [m for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6, help="batches timed (each trained once per side)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--dataset", default="", help="a dataset JSONL to train on instead of HumanEval examples")
    args = parser.parse_args()
    checked_dataset(parser, args.dataset)

    from workbench.config import DistillConfig
    from workbench.distill.dropout import IntegerMaskDropout
    from workbench.distill.training import train_step

    use_threads(args.threads)
    settings = DistillConfig(epochs=1, batch_size=args.batch_size, max_length=1024, dropout_masks="torch",
                             lora_precision="float32")
    training = prepared_training(settings, examples(args))
    layers = lora_layers(training.model)
    masks = {
        "torch": [dict(layer.lora_dropout.items()) for layer in layers],
        "integer": [{name: IntegerMaskDropout(d.p) for name, d in layer.lora_dropout.items()} for layer in layers],
    }

    def use(side: str) -> None:
        kind, in_bfloat16 = SIDES[side]
        for layer, chosen in zip(layers, masks[kind], strict=True):
            for name, module in chosen.items():
                layer.lora_dropout[name] = module
            layer.cast_input_dtype_enabled = not in_bfloat16
        training.lora_in_bfloat16 = in_bfloat16

    print(f"LoRA layers in training: {len(layers)} adapted layers, lora_dropout {settings.lora_dropout}, "
          f"{args.batches} batches of {args.batch_size}, each trained once per side")
    batches = iter(training.loader)
    train_step(training, next(batches))  # warm-up, timed by no side
    tokens = {side: 0 for side in SIDES}
    seconds = {side: 0.0 for side in SIDES}
    names = list(SIDES)
    for index in range(args.batches):
        batch = next(batches, None)
        if batch is None:
            break
        shift = index % len(names)
        for side in names[shift:] + names[:shift]:
            use(side)
            start = time.perf_counter()
            _, _, batch_tokens, _ = train_step(training, batch)
            seconds[side] += time.perf_counter() - start
            tokens[side] += batch_tokens
    rates = {side: tokens[side] / seconds[side] for side in SIDES}
    for side in SIDES:
        print(f"  {side:40}: {rates[side]:.1f} tokens/s ({tokens[side]} tokens in {seconds[side]:.1f} s)")
    for side in names[1:]:
        print(f"  ratio {side}/{BASELINE}: {rates[side] / rates[BASELINE]:.2f}x")


if __name__ == "__main__":
    main()
