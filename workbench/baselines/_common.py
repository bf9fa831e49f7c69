"""What the outcome-driven baselines share: the environment-step budget they must match,
their datasets (written atomically and recorded), and training an adapter with the same
[distill] LoRA settings as LEAFE.

The budget is what LEAFE spent in the same run: every step of its explore episodes,
branches from backtracking included. A baseline may spend less, never more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from store import queries
from store.db import now, transaction
from workbench.adapters import store_folder
from workbench.agent import build_messages
from workbench.context import StageContext
from workbench.distill import adapter_summary, existing_adapter, leafe_env_steps, train_adapter
from workbench.errors import LeafeError


@dataclasses.dataclass
class Budget:
    steps: int
    source: str  # "leafe": measured in this run; "planned": no exploration here, estimated


def step_budget(context: StageContext, n_tasks: int) -> Budget:
    """LEAFE's environment steps in this run; without an exploration in the run, the
    steps its exploration would plan at most (tasks x rollouts x max_steps)."""
    steps = leafe_env_steps(context.db, context.run_id)
    if steps:
        return Budget(steps, "leafe")
    config = context.config
    planned = n_tasks * config.explore.rollouts_per_task * config.env.max_steps
    context.say(
        f"warning: run {context.run_id} has no LEAFE exploration to match; the baseline's "
        f"budget is the planned exploration, {planned} environment steps"
    )
    return Budget(planned, "planned")


def steps_used(context: StageContext, purpose: str) -> int:
    """Environment steps the run's episodes of `purpose` took (non-root nodes)."""
    return context.db.execute(
        """select count(*) from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and episodes.purpose = ? and nodes.parent_id is not null""",
        [context.run_id, purpose],
    ).fetchone()[0]


def state_prompt(context: StageContext, path: Sequence[dict]) -> list[dict[str, str]]:
    """The chat the policy sees before acting after `path[-1]`."""
    return build_messages(context.config.prompts, path, context.config.env.max_steps)


def dataset_file(context: StageContext, kind: str) -> Path:
    return store_folder(context.db) / "runs" / f"run-{context.run_id}" / f"{kind}.jsonl"


def write_dataset(
    context: StageContext, *, kind: str, name: str, examples: Sequence[dict[str, Any]]
) -> tuple[str, int]:
    """Write the examples (atomically) and record the dataset; return (path, id).

    A rerun of the stage replaces the file and updates its row, so a resumed run keeps
    one dataset per baseline."""
    from workbench._distill_data import write_examples

    path = dataset_file(context, kind)
    count = write_examples(path, examples)
    row = {
        "run_id": context.run_id,
        "name": name,
        "path": str(path),
        "n_examples": count,
        "kind": kind,
        "correction_ids": queries.dumps([]),
        "task_names": queries.dumps(sorted({e["task"] for e in examples if e.get("task")})),
        "created_at": now(),
    }
    with transaction(context.db):
        existing = context.db.execute(
            "select id from datasets where run_id = ? and name = ?", [context.run_id, name]
        ).fetchone()
        if existing:
            context.db["datasets"].update(existing[0], row)
            dataset_id = existing[0]
        else:
            dataset_id = context.db["datasets"].insert(row).last_pk
    return str(path), dataset_id


def adapter_name(kind: str, run_id: int) -> str:
    return f"{kind.replace('_', '-')}-run-{run_id}"


def finished_adapter(context: StageContext, kind: str) -> dict | None:
    """The summary of this baseline's adapter if the run already trained it (resume)."""
    done = existing_adapter(context.db, adapter_name(kind, context.run_id), context.run_id)
    return adapter_summary(context.db, done) if done is not None else None


def train_baseline_adapter(
    context: StageContext,
    *,
    kind: str,
    dataset_path: str,
    dataset_id: int,
    budget: Budget,
    used: int,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Train the baseline's adapter with the run's [distill] LoRA settings; its summary."""
    if used > budget.steps:
        raise LeafeError(f"{kind}: used {used} environment steps, over the budget of {budget.steps}")
    name = adapter_name(kind, context.run_id)
    settings = dataclasses.replace(context.config.distill, dataset="", name="", output="")
    adapter_id = train_adapter(
        context.db,
        dataset_path=dataset_path,
        dataset_id=dataset_id,
        settings=settings,
        model=context.config.model,
        name=name,
        output=str(store_folder(context.db) / "adapters" / name),
        run_id=context.run_id,
        kind=kind,
        progress=context.progress,
        cancel=context.cancel,
        env_steps=budget.steps,
        metrics={"env_steps_used": used, "budget_source": budget.source, **(extra or {})},
    )
    return adapter_summary(context.db, adapter_id) if adapter_id else {}
