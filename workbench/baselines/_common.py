"""What the outcome-driven baselines share: the environment-step budget they must match,
their datasets (written atomically and recorded), and training an adapter with the same
[distill] LoRA settings as LEAFE.

The budget is `[experiment] env_steps`, or by default what LEAFE spent in the same run:
every step of its explore episodes, branches from backtracking included
(`workbench.budget`). A baseline never spends more, and one that spends less than 95% of
it is named in a warning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from store import files
from store.budget import spent
from workbench.budget import Budget, accounting
from workbench.context import StageContext
from workbench.distill.stage import adapter_summary, existing_adapter, train_adapter
from workbench.errors import LeafeError
from workbench.export import save_dataset
from workbench.prompts import build_messages
from workbench.seeds import run_label


def steps_used(context: StageContext, purpose: str) -> int:
    """Environment steps the run's episodes of `purpose` took (non-root nodes)."""
    return spent(context.db, context.run_id, purpose)[0]


def tokens_generated(context: StageContext, purpose: str) -> int:
    """Tokens the policy generated in the run's episodes of `purpose`."""
    return spent(context.db, context.run_id, purpose)[1]


def state_prompt(context: StageContext, path: Sequence[dict]) -> list[dict[str, str]]:
    """The chat the policy sees before acting after `path[-1]`."""
    return build_messages(context.config.prompts, path, context.config.env.max_steps)


def write_dataset(
    context: StageContext, *, kind: str, name: str, examples: Sequence[dict[str, Any]]
) -> tuple[str, int]:
    """Write the examples and record the dataset (`workbench.export.save_dataset`: a rerun
    with the same examples is the same dataset); return (path, id)."""
    dataset = save_dataset(context.db, run_id=context.run_id, kind=kind, name=name, examples=examples)
    return dataset.path, dataset.id


def adapter_name(kind: str, run_label: int | str) -> str:
    """`rft-run-3`; a training seed's own: `rft-run-3-seed1` (workbench/seeds.py)."""
    return f"{kind.replace('_', '-')}-run-{run_label}"


def finished_adapter(context: StageContext, kind: str) -> dict | None:
    """The summary of this baseline's adapter if the run already trained it (resume)."""
    done = existing_adapter(context.db, adapter_name(kind, run_label(context)), context.run_id)
    return adapter_summary(context.db, done) if done is not None else None


def train_baseline_adapter(
    context: StageContext,
    *,
    kind: str,
    dataset_path: str,
    dataset_id: int,
    budget: Budget,
    used: int,
    tokens: int,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Train the baseline's adapter with the run's [distill] LoRA settings; its summary."""
    if used > budget.steps:
        raise LeafeError(f"{kind}: used {used} environment steps, over the budget of {budget.steps}")
    name = adapter_name(kind, run_label(context))
    budget_entries = accounting(context, f"baseline:{kind}", used=used, budget=budget, tokens=tokens)
    settings = dataclasses.replace(context.config.distill, dataset="", name="", output="")
    adapter_id = train_adapter(
        context.db,
        dataset_path=dataset_path,
        dataset_id=dataset_id,
        settings=settings,
        model=context.config.model,
        name=name,
        output=str(files.adapter_folder(context.db, name)),
        run_id=context.run_id,
        kind=kind,
        progress=context.progress,
        cancel=context.cancel,
        env_steps=budget.steps,
        metrics={**budget_entries, **(extra or {})},
    )
    return adapter_summary(context.db, adapter_id) if adapter_id else {}
