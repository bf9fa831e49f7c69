"""Equal budgets: the environment steps every trained method spends, declared, checked and
recorded.

`[experiment] env_steps = N` declares the budget; 0 (the default) takes what LEAFE's
exploration and backtracking spent in the run. Each trained method (LEAFE, rft, grpo,
early_experience) must spend N within 5%; one that cannot is named in a one-line warning
(on stderr and in its stage summary) with what it spent. No method spends more than N.

LEAFE spends a declared N too (`backtrack.spend_leafe_budget`): exploration plays waves of one
episode per task until its share (`[experiment] explore_share` of N) would be overrun;
backtracking then branches breadth-first, wave after wave (every rollback point once more
per wave, the least-branched first, `backtrack.max_attempts` no longer the cap), until the
next branch might overrun N; where no rollback point is left to branch from, exploration
plays another wave with what is left. With `[leafe] rounds = R`, round r's stages see
r/R of N as their budget, so the rounds share N evenly. Without a declared N, LEAFE spends
what its settings give and that is the budget of the others.

Every training stage's summary and its adapter's metrics carry `env_steps` (spent),
`env_steps_budget`, `tokens` (generated while collecting the data), `train_examples` and
`train_tokens` (training compute: examples and tokens through the model; a prompt that
several examples share and train once, `distill.share_prefixes`, counts once).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from store.budget import spent
from workbench.context import StageContext
from workbench.envs.base import Task

TOLERANCE = 0.05
LEAFE_PURPOSE = "explore"  # LEAFE's branches live in its explore episodes


@dataclasses.dataclass
class Budget:
    steps: int
    source: str  # "declared": [experiment] env_steps; "leafe": measured in this run; "planned": estimated


def leafe_spent(context: StageContext) -> tuple[int, int]:
    """(environment steps, generated tokens) of LEAFE's exploration and backtracking in the run."""
    return spent(context.db, context.run_id, LEAFE_PURPOSE)


def explored_steps(context: StageContext) -> int:
    """Environment steps of LEAFE's exploration alone (original paths, not branches)."""
    return spent(context.db, context.run_id, LEAFE_PURPOSE, original_only=True)[0]


def explore_target(context: StageContext, total: int) -> int:
    """Exploration's share of a LEAFE budget of `total` steps: all of it when the run does
    not backtrack, else `[experiment] explore_share` of it."""
    if "backtrack" not in context.config.stages.run:
        return total
    return round(context.config.experiment.explore_share * total)


def next_wave(tasks: list[Task], remaining: int, max_steps: int) -> list[Task]:
    """The tasks of the next wave (one episode each) that surely fit in `remaining` steps,
    every episode taken at its longest: all of them, else the first few, else none."""
    return list(tasks[: max(0, remaining) // max_steps])


LEAFE_PARTS = ("explore", "reflect", "backtrack")


def step_budget(context: StageContext, n_tasks: int) -> Budget:
    """The declared budget; else LEAFE's environment steps in this run; without an
    exploration in the run, the steps its exploration would plan at most
    (tasks x rollouts x max_steps)."""
    config = context.config
    if config.experiment.env_steps:
        return Budget(config.experiment.env_steps, "declared")
    steps, _ = leafe_spent(context)
    if steps:
        return Budget(steps, "leafe")
    planned = n_tasks * config.explore.rollouts_per_task * config.env.max_steps
    context.say(
        f"warning: run {context.run_id} has no LEAFE exploration to match; the baseline's "
        f"budget is the planned exploration, {planned} environment steps"
    )
    return Budget(planned, "planned")


def within_tolerance(used: int, budget: int) -> bool:
    """Whether `used` is within 5% of `budget` (either side)."""
    return abs(used - budget) <= TOLERANCE * budget


def budget_warning(method: str, used: int, budget: int) -> str | None:
    """The one-line warning for a method that missed the budget, or None."""
    if within_tolerance(used, budget):
        return None
    share = 100 * used / budget if budget else 0.0
    return (
        f"warning: {method} spent {used} of the {budget} environment steps budgeted ({share:.0f}%), "
        f"outside the {TOLERANCE:.0%} every method must keep to"
    )


def accounting(
    context: StageContext, method: str, *, used: int, budget: Budget, tokens: int
) -> dict[str, Any]:
    """The budget entries of a training stage's metrics; says the warning if there is one."""
    entries: dict[str, Any] = {
        "env_steps": used, "env_steps_used": used, "env_steps_budget": budget.steps,
        "budget_source": budget.source, "tokens": tokens,
    }
    warning = budget_warning(method, used, budget.steps)
    if warning:
        context.say(warning)
        entries["budget_warning"] = warning
    return entries


def leafe_accounting(context: StageContext) -> dict[str, Any]:
    """LEAFE's entries: what its exploration and backtracking spent, against the declared
    budget (or against itself when none is declared)."""
    used, tokens = leafe_spent(context)
    declared = context.config.experiment.env_steps
    budget = Budget(declared, "declared") if declared else Budget(used, "leafe")
    return accounting(context, "LEAFE (explore + backtrack)", used=used, budget=budget, tokens=tokens)


BUDGET_COLUMNS = (
    ("env_steps", "env steps"), ("env_steps_budget", "budget"), ("tokens", "tokens generated"),
    ("train_examples", "train examples"), ("train_tokens", "train tokens"),
)


def budget_rows(budgets: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per trained method: its adapter, kind, then BUDGET_COLUMNS ('-' where unknown);
    a method that missed the budget has `!` after its steps."""
    rows = []
    for name, entry in budgets.items():
        cells = [name, str(entry.get("kind", ""))]
        for key, _ in BUDGET_COLUMNS:
            value = entry.get(key)
            cells.append("-" if value is None else f"{value:,}")
        if entry.get("budget_warning"):
            cells[2] += " !"
        rows.append(cells)
    return rows


def budgets_table(budgets: dict[str, dict[str, Any]]):
    """The batch's Budgets table (rich)."""
    from rich.table import Table

    view = Table(title="Budgets: environment steps spent, tokens generated, training compute")
    for label in ("adapter", "method", *(label for _, label in BUDGET_COLUMNS)):
        view.add_column(label, justify="left" if label in ("adapter", "method") else "right")
    for row in budget_rows(budgets):
        view.add_row(*row)
    if any(entry.get("budget_warning") for entry in budgets.values()):
        view.caption = f"! outside {TOLERANCE:.0%} of the budget"
    return view
