"""Evaluation with policies batched together against evaluating them one after another.

The navigation evaluation's shape (examples/navigation.toml): MiniGrid-Empty-Random-5x5-v0,
8 held-out seeds x 16 rollouts, 5 policies (the embedded model and 4 LoRA adapters of it,
r 16 on every linear layer, random weights made here in a temporary folder), the same
`model.batch_size` on both sides. Both sides run the real evaluate stage on a store of
their own, model loading included: `evaluate.batching = "sequential"` (the baseline: one
policy after another, adapters unmerged, every row encoded) and `"policies"` (every
policy together, adapters merged into copies, identical prompts encoded once). Each
episode samples from its own seed, so both sides play the same episodes, which the script
checks. The sides alternate `--repeats` times; the best run of each counts. `--profile`
also prints, for each side's last run, where its time went: model forward passes over
prompts (prefill) and over one new token per row (decode), the per-row sampler, chat
template rendering, the environment, environment snapshots and the store.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks._common  # noqa: E402,F401  (sets HF_HUB_OFFLINE)

TASKS = [102, 103, 104, 106, 107, 108, 109, 111]
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_adapters(folder: Path, count: int) -> list[str]:
    """LoRA adapters of the embedded model with small random weights (not zero: a zero
    adapter would be the base model, and merging it would change nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workbench.models.embedded import ensure_embedded_model

    paths = []
    for index in range(count):
        torch.manual_seed(index)
        model = AutoModelForCausalLM.from_pretrained(str(ensure_embedded_model()), dtype=torch.float32)
        peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_MODULES))
        for name, weight in peft_model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(weight, std=1e-3)
        path = folder / f"adapter{index}"
        peft_model.save_pretrained(str(path))
        paths.append(str(path))
    return paths


def evaluation(batching: str, adapters: list[str], args, store: Path):
    from workbench.config import config_from_dict

    return config_from_dict({
        "model": {"backend": "hf", "name": "embedded", "dtype": args.dtype, "max_new_tokens": 16,
                  "batch_size": args.batch_size, "context_length": 512},
        "env": {"kind": "navigation", "suite": "MiniGrid-Empty-Random-5x5-v0", "tasks": 12,
                "max_steps": args.max_steps, "view": "words"},
        "prompts": {"history_turns": 0},
        "evaluate": {"policies": ["base", *(f"adapter:{a}" for a in adapters)], "tasks": TASKS[: args.tasks],
                     "n": args.n, "k": [1], "temperature": 0.7, "seed": 1000, "bootstrap": 0,
                     "batching": batching},
        "store": {"path": str(store)},
        "stages": {"run": ["evaluate"]},
    })


class StepProfile:
    """Seconds spent in each part of an evaluation, measured by wrapping the functions that
    do that part for the duration of one run (nested parts are subtracted from their
    callers, so the parts add up to the time they were measured over). The environment
    steps on worker threads: its seconds are summed over them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.local = threading.local()  # per thread: the stack of [start, seconds of nested parts]
        self.lock = threading.Lock()
        self.restore: list[tuple[object, str, object]] = []

    @property
    def stack(self) -> list[list[float]]:
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def add(self, part: str, started: float, nested: float) -> None:
        spent = time.perf_counter() - started
        with self.lock:
            self.seconds[part] += spent - nested
            self.calls[part] += 1
        if self.stack:
            self.stack[-1][1] += spent

    def timed(self, part: str, function):
        # functools.wraps keeps the signature, which generate() inspects on forward and processors.
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return self.measure(part, function, args, kwargs)

        return wrapper

    def measure(self, part: str, function, args, kwargs):
        self.stack.append([time.perf_counter(), 0.0])
        try:
            return function(*args, **kwargs)
        finally:
            self.add(part, *self.stack.pop())

    def wrap(self, owner: object, name: str, part: str) -> None:
        original = getattr(owner, name)
        # An inherited method is restored by removing the wrapper, not by pinning a copy.
        self.restore.append((owner, name, original if name in vars(owner) else None))
        setattr(owner, name, self.timed(part, original))

    def wrap_forward(self, owner: type) -> None:
        """A forward pass over more than one position per row is a prefill, else a decode step."""
        original = owner.forward
        self.restore.append((owner, "forward", original))

        @functools.wraps(original)
        def forward(module, *args, **kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            part = "model: prefill" if ids is not None and ids.shape[-1] > 1 else "model: decode"
            return self.measure(part, original, (module, *args), kwargs)

        owner.forward = forward

    def wrap_transaction(self) -> None:
        from workbench.rollout import engine

        original = engine.transaction
        self.restore.append((engine, "transaction", original))
        profile = self

        @contextlib.contextmanager
        def transaction(db):
            profile.stack.append([time.perf_counter(), 0.0])
            try:
                with original(db):
                    yield
            finally:
                profile.add("store", *profile.stack.pop())

        engine.transaction = transaction

    @contextlib.contextmanager
    def installed(self):
        from transformers import LlamaForCausalLM

        from workbench.models import hf, seeded_rows
        from workbench.rollout import engine, record

        self.wrap_forward(LlamaForCausalLM)
        self.wrap(seeded_rows.RowSeededSampler, "__call__", "sampler (per-row seeds)")
        self.wrap(hf.HFGenerator, "render", "chat template")
        self.wrap(hf.HFGenerator, "_completion", "detokenize")
        self.wrap(engine, "execute", "environment")
        self.wrap(record, "remember_state", "environment snapshots")
        self.wrap(engine, "build_messages", "prompt building")
        self.wrap_transaction()
        try:
            yield self
        finally:
            for owner, name, original in reversed(self.restore):
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self.restore.clear()

    def report(self, label: str, total: float) -> None:
        print(f"  profile of {label} ({total:.1f} s):")
        for part, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            print(f"    {part:26}: {seconds:7.1f} s {seconds / total * 100:5.1f}%  ({self.calls[part]} calls)")
        rest = total - sum(self.seconds.values())
        print(f"    {'everything else':26}: {rest:7.1f} s {rest / total * 100:5.1f}%  (loading, merging, Python)")


def run_side(batching: str, adapters: list[str], args, store: Path, profile: StepProfile | None = None
             ) -> tuple[float, int, dict]:
    from store.db import open_store
    from workbench.pipeline import run_pipeline

    config = evaluation(batching, adapters, args, store)
    with profile.installed() if profile else contextlib.nullcontext():
        started = time.perf_counter()
        result = run_pipeline(config, db_path=store)
        seconds = time.perf_counter() - started
    if profile:
        profile.report(batching, seconds)
    if result.status != "finished":
        raise SystemExit(f"evaluate ({batching}) failed: {result.error}")
    db = open_store(store)
    episodes = {(row["policy"].rsplit("/", 1)[-1], row["task_id"], row["rollout"]): (row["steps"], row["success"])
                for row in db.query("select policy, task_id, rollout, steps, success from episodes")}
    db.close()
    return seconds, len(episodes), episodes


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=8, help="held-out seeds (at most 8)")
    parser.add_argument("--n", type=int, default=16, help="rollouts per task and policy")
    parser.add_argument("--adapters", type=int, default=4, help="LoRA policies beside the base model")
    parser.add_argument("--max-steps", type=int, default=10, help="actions per episode (env.max_steps)")
    parser.add_argument("--batch-size", type=int, default=96, help="model.batch_size, both sides")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each side; the best counts")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--profile", action="store_true",
                        help="print where each side's last run spent its time (adds a little overhead)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        adapters = random_adapters(folder, args.adapters)
        policies = 1 + len(adapters)
        print(f"evaluate: {args.tasks} tasks x {args.n} rollouts x {policies} policies, at most {args.max_steps} "
              f"actions, batch_size {args.batch_size}, embedded model, {args.dtype}, CPU threads {torch.get_num_threads()}")
        best: dict[str, float] = {}
        played: dict[str, dict] = {}
        for repeat in range(args.repeats):
            for batching in ("sequential", "policies"):
                store = folder / f"{batching}-{repeat}.db"
                profile = StepProfile() if args.profile and repeat == args.repeats - 1 else None
                seconds, episodes, played[batching] = run_side(batching, adapters, args, store, profile)
                rate = episodes / seconds
                best[batching] = max(best.get(batching, 0.0), rate)
                print(f"  run {repeat + 1} {batching:10}: {episodes} episodes in {seconds:7.1f} s = "
                      f"{rate:6.3f} episodes/s", flush=True)
        differing = sum(played["sequential"][key] != outcome for key, outcome in played["policies"].items())
        # Equal in float32 (tests/unit/test_evaluate_batching.py); in bfloat16 a merged adapter's
        # rounded weights and other batch shapes can tip a near-tie between two tokens.
        print(f"  episodes whose steps or outcome differ between the two ways: {differing} of {len(played['policies'])}")
        for batching in ("sequential", "policies"):
            wins = sum(success for _, success in played[batching].values())
            print(f"  {batching}: {wins} successes")
        print(f"  sequential (baseline): {best['sequential']:6.3f} episodes/s (best of {args.repeats})")
        print(f"  policies batched     : {best['policies']:6.3f} episodes/s (best of {args.repeats})")
        print(f"  ratio batched/sequential: {best['policies'] / best['sequential']:.2f}x")


if __name__ == "__main__":
    main()
