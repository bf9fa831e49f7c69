"""Stage 5, distill: SFT of the policy on a dataset of corrections (and rehearsal): a LoRA
adapter by default, or every weight with `distill.method = "full"` (stored the same way).

`train_adapter` is the whole job as a plain function (the TUI calls it from a worker;
the baselines call it for their own datasets): it trains, saves the adapter atomically
in PEFT's format, and records it with its metrics, lineage and loss curve. `run_distill`
is the pipeline stage around it.

It runs unchanged under `accelerate launch` (DDP, FSDP, DeepSpeed): every process
trains, only the main process writes files and the store. `python -m workbench.distill
CONFIG.toml --db STORE` (`workbench/distill/__main__.py`) is the launchable entry point
for a distill on its own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from store import adapters
from store.budget import spent
from workbench.config import DistillConfig, ModelConfig
from workbench.context import Progress, StageContext
from workbench.distill.adapters import find_dataset, record_adapter
from workbench.distill.output import adapter_output, default_output, write_card
from workbench.distill.plan import DistillPlan, send_plan
from workbench.errors import LeafeError, NothingToTrain

if TYPE_CHECKING:  # the training loop is imported when training starts
    from workbench.distill.training import TrainResult

BASELINE_DATASET_KINDS = ("rft", "grpo", "early_experience")
# hf and vllm name transformers weights a peft adapter can train on; a scripted policy
# replays recorded actions, and its `model.name` names the weights they stand for.
TRAINABLE_BACKENDS = ("hf", "vllm", "scripted")


def is_main_process(model: ModelConfig | None = None) -> bool:
    """True outside `accelerate launch`, and in its rank-0 process."""
    from accelerate import PartialState

    from workbench.distill.training import on_cpu

    return PartialState(cpu=on_cpu(model or ModelConfig())).is_main_process


def train_adapter(
    db: sqlite_utils.Database,
    *,
    dataset_path: str,
    dataset_id: int | None,
    settings: DistillConfig,
    model: ModelConfig,
    name: str,
    output: str,
    run_id: int | None,
    kind: str = "leafe",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    env_steps: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> int:
    """Train a LoRA adapter (or, with `settings.method = "full"`, every weight) on a dataset
    file and record it; return the adapter id.

    `env_steps` is the environment-step budget the training data cost (recorded as
    `env_steps_budget`); `metrics` adds entries to the adapter's metrics (a baseline's
    `env_steps_used` ...). Under `accelerate launch` every process calls this; the id is
    returned on the main process and 0 elsewhere.
    """
    from workbench.distill.data import read_examples
    from workbench.distill.training import train_lora
    from workbench.files import atomic_directory

    examples = read_examples(dataset_path)
    if not examples:
        raise NothingToTrain(f"distill: dataset {dataset_path} has no examples", adapter=name)
    if model.backend not in TRAINABLE_BACKENDS:
        raise LeafeError(
            f"distill: [model] backend {model.backend!r} has no local weights to train; "
            "use backend = 'hf' with a model folder, a cached Hugging Face id or 'embedded'"
        )
    output_path = adapter_output(db, name, output)
    curve: list[dict[str, float]] = []
    main = is_main_process(model)

    def train(save_to: Path | None, tensorboard: Path | None):
        return train_lora(
            model, settings, examples, save_to=save_to, progress=progress, cancel=cancel,
            on_step=curve.append, tensorboard_dir=tensorboard, description=f"distill {name}",
        )

    if main:
        with atomic_directory(output_path) as staging:
            tensorboard = staging / "runs" if settings.report_to == "tensorboard" else None
            result = train(staging, tensorboard)
            write_card(staging, db, name=name, kind=kind, dataset_path=dataset_path, settings=settings)
    else:
        train(None, None)
        return 0

    return record_adapter(
        db,
        name=name,
        path=output_path,
        model=model,
        dataset_path=dataset_path,
        dataset_id=dataset_id,
        kind=kind,
        run_id=run_id,
        metrics=adapter_metrics(result, settings, env_steps, metrics),
        examples=examples,
        settings=settings,
        curve=curve,
    )


def adapter_metrics(
    result: TrainResult, settings: DistillConfig, env_steps: int | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    """What an adapter's row records of its training: losses, steps, tokens, time, and the
    environment-step budget its data cost; `extra` (a stage's own) adds or replaces entries."""
    return {
        "final_loss": result.final_loss,
        "first_loss": result.first_loss,
        "epoch_losses": [round(loss, 4) for loss in result.epoch_losses],
        "steps": result.steps,
        "epochs": settings.epochs,
        "tokens": result.tokens,  # a stage's own metrics replace it with the tokens generated
        "train_examples": result.n_examples,
        "train_tokens": result.tokens,
        "target_tokens": result.target_tokens,
        "tokens_per_second": result.tokens_per_second,
        "wall_time": result.train_seconds + result.load_seconds,
        "train_seconds": result.train_seconds,
        "n_examples": result.n_examples,
        "n_skipped": result.skipped,
        "processes": result.processes,
        "method": settings.method,
        "env_steps_budget": env_steps,
        **(extra or {}),
    }


def loss_line(summary: dict[str, Any]) -> str:
    """How training went, in words: the mean loss of the first and last epoch (single steps
    differ by the batch they saw), with the first and last step beside it."""
    by_epoch = summary.get("epoch_losses") or []
    steps = f"over {summary['steps']} steps"
    first, last = summary["first_loss"], summary["final_loss"]
    if len(by_epoch) > 1:
        return (f"mean loss by epoch {by_epoch[0]:.3f} -> {by_epoch[-1]:.3f} {steps} "
                f"(first step {first:.3f}, last {last:.3f})")
    return f"loss {first:.3f} -> {last:.3f} {steps}"


def adapter_summary(db: sqlite_utils.Database, adapter_id: int) -> dict[str, Any]:
    """The stage summary for an adapter (what `--json` prints)."""
    adapter = adapters.get(db, adapter_id)
    metrics = adapter.metrics
    keys = ("first_loss", "final_loss", "epoch_losses", "steps", "n_examples", "n_skipped", "tokens_per_second",
            "wall_time", "method", "env_steps_budget", "env_steps_used",
            # equal budgets (workbench.budget): spent, generated, training compute
            "env_steps", "tokens", "train_examples", "train_tokens", "budget_warning")
    return {
        "adapter_id": adapter_id,
        "name": adapter.name,
        "path": adapter.path,
        "kind": adapter.kind,
        **{key: metrics[key] for key in keys if key in metrics},
    }


def existing_adapter(db: sqlite_utils.Database, name: str, run_id: int) -> int | None:
    """An adapter this run already trained under `name` (a resumed run does not train twice)."""
    adapter = adapters.by_name(db, name)
    return adapter.id if adapter is not None and adapter.run_id == run_id else None


def leafe_env_steps(db: sqlite_utils.Database, run_id: int) -> int:
    """Environment steps LEAFE spent in this run: every step of its explore episodes,
    branches from backtracking included (each non-root node is one environment step)."""
    return spent(db, run_id, "explore")[0]


def warn_without_corrections(context: StageContext, dataset_path: str) -> None:
    """A dataset with rehearsal only teaches the model what it already does: say so."""
    from workbench.distill.data import read_examples

    kinds = [example["kind"] for example in read_examples(dataset_path)]
    if kinds and "correction" not in kinds and set(kinds) <= {"rehearsal"}:
        context.say(
            f"warning: {dataset_path} holds no corrections, only {len(kinds)} rehearsal examples; "
            "the adapter will imitate the policy's own successes (backtracking found no successful branch)"
        )


def run_distill(context: StageContext) -> dict:
    from workbench.budget import leafe_accounting

    settings = context.config.distill
    name = settings.name or f"leafe-run-{context.run_id}"
    done = existing_adapter(context.db, name, context.run_id)
    if done is not None:
        return adapter_summary(context.db, done)
    dataset_path, dataset = find_dataset(
        context.db, settings.dataset, run_id=context.run_id, exclude_kinds=BASELINE_DATASET_KINDS
    )
    output = settings.output or str(default_output(context.db, name))
    warn_without_corrections(context, dataset_path)
    plan = DistillPlan(
        dataset_path=dataset_path,
        dataset_id=dataset.id if dataset is not None else None,
        settings=settings,
        model=context.config.model,
        name=name,
        output=output,
        run_id=context.run_id,
        kind="leafe",
        env_steps=leafe_env_steps(context.db, context.run_id),
        # What LEAFE spent against [experiment] env_steps, with the warning if it missed it.
        metrics=leafe_accounting(context),
    )
    # Under a launch of several processes, the others train on the same plan (distill/launch.py).
    send_plan(plan)
    adapter_id = train_adapter(context.db, **plan.arguments(), progress=context.progress, cancel=context.cancel)
    if not adapter_id:  # a non-main process of a launch: the main one records
        return {}
    summary = adapter_summary(context.db, adapter_id)
    context.say(f"adapter {name}: {loss_line(summary)}, saved to {summary['path']}")
    return summary
