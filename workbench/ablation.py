"""Stage `ablation:no_note`: what the experience note adds (a diagnostic; it trains nothing).

At every rollback point where LEAFE's backtracking branched from an original path (its
first-level notes), the control samples the same number of branches with the same seed,
but with no note in the context, and rolls them out with the steps left in the budget.
It reuses backtracking's machinery (`backtrack.fan_out` with the note switched off, then
`rollout.engine.roll_out`). Each note's control branches live in an episode of their own (purpose
`ablation:no_note`: the history before the rollback point copied, then the branches),
so they never become corrections, never reach LEAFE's data, and their environment steps
are counted apart from the budget every trained method spends.

Summary: `with_note` (LEAFE's branches at those points) and `without_note` (the
control's), each with `branches`, `successes` and `mean_gain` (a branch's final score
minus its original path's), plus `yield`: LEAFE's proposed and approved corrections per
100 of its environment steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store import ablation as records
from store.steps import get as get_step
from store.steps import newest_id, path_to
from workbench.backtrack import branch_note, branch_sampling, fan_out
from workbench.budget import leafe_spent
from workbench.context import StageContext, Stopwatch
from workbench.rollout.engine import roll_out
from workbench.rollout.walkers import Walker, environment_at, task_of

LEVEL = 1  # the control branches where LEAFE first backtracked from an original path


def side(outcomes: Sequence[tuple[float, bool, float]], steps: int | None = None) -> dict[str, Any]:
    """branches, successes and mean gain of (score, success, original score) outcomes."""
    gains = [score - original for score, _, original in outcomes]
    summary: dict[str, Any] = {
        "branches": len(outcomes),
        "successes": sum(bool(success) for _, success, _ in outcomes),
        "mean_gain": round(sum(gains) / len(gains), 4) if gains else 0.0,
    }
    if steps is not None:
        summary["env_steps"] = steps
    return summary


def per_100(count: int, steps: int) -> float:
    return round(100 * count / steps, 2) if steps else 0.0


def control_home(context: StageContext):
    """`fan_out`'s home for the control: each note's own episode, created on first use."""

    def home(note: dict, history: list[dict]) -> tuple[int, list[dict]]:
        episode_id = records.control_episode(context.db, context.run_id, note["id"])
        if episode_id is None:
            last = records.copy_history(context.db, context.run_id, note, history)
            episode_id = records.control_episode(context.db, context.run_id, note["id"])
        else:
            last = newest_id(context.db, episode_id)
        return episode_id, path_to(context.db, last)

    return home


def resumed_walkers(context: StageContext) -> list[Walker]:
    """Control branches a killed run left unfinished."""
    walkers = []
    for node_id, episode_id in records.unfinished_branch_nodes(context.db, context.run_id):
        path = path_to(context.db, node_id)
        task = task_of(context, episode_id)
        walkers.append(Walker(episode_id, task, environment_at(context, task, path), path, branch_depth=LEVEL))
    return walkers


def compare(context: StageContext, notes: Sequence[dict]) -> dict[str, Any]:
    original = {note["id"]: note["episode_score"] or 0.0 for note in notes}
    with_note = []
    for leaf in records.leafe_leaves(context.db, context.run_id):
        note_id = branch_note(context, leaf["id"], LEVEL)
        if note_id in original:
            with_note.append((leaf["score"], leaf["success"], original[note_id]))
    without = [(leaf["score"], leaf["success"], original[leaf["note_id"]])
               for leaf in records.control_leaves(context.db, context.run_id) if leaf["note_id"] in original]
    control_steps, _ = records_spent(context)
    steps, _ = leafe_spent(context)
    proposed, approved = records.correction_counts(context.db, context.run_id)
    return {
        "rollback_points": len(notes),
        "with_note": side(with_note),
        "without_note": side(without, control_steps),
        "yield": {
            "env_steps": steps,
            "proposed": proposed,
            "approved": approved,
            "proposed_per_100_steps": per_100(proposed, steps),
            "approved_per_100_steps": per_100(approved, steps),
        },
    }


def records_spent(context: StageContext) -> tuple[int, int]:
    from store.budget import spent

    return spent(context.db, context.run_id, records.PURPOSE, branches_only=True)


def run_ablation(context: StageContext) -> dict[str, Any]:
    notes = records.first_level_notes(context.db, context.run_id)
    todo = []
    for note in notes:
        episode_id = records.control_episode(context.db, context.run_id, note["id"])
        if episode_id is None or not records.has_branches(context.db, episode_id):
            todo.append(note)
    walkers = resumed_walkers(context)
    if todo or walkers:
        stopwatch = Stopwatch(context)
        max_steps = context.config.env.max_steps
        # Steps on the bar: each branch from its rollback step to the budget's end.
        total = sum(
            note["branches"] * (max_steps - get_step(context.db, note["rollback_node_id"]).depth + 1)
            for note in todo
        ) + sum(max(max_steps - walker.depth, 0) for walker in walkers)
        context.progress.start("ablation:no_note", total, f"ablation:no_note: {len(todo)} rollback points")
        new = fan_out(
            context, todo, LEVEL, stopwatch,
            planned=[(note, note["branches"]) for note in todo], with_note=False, home=control_home(context),
        )
        context.progress.advance(len(new) + sum(max_steps - w.depth for w in new if w.done))
        roll_out(
            context, walkers + new, context.generator(), branch_sampling(context, LEVEL),
            max_steps=max_steps, stopwatch=stopwatch,
            on_finish=lambda walker: context.progress.advance(max_steps - walker.depth),
        )
        context.progress.finish()
    records.finish_controls(context.db, context.run_id)
    summary = compare(context, notes)
    mine, theirs = summary["with_note"], summary["without_note"]
    context.say(
        f"ablation:no_note: at {len(notes)} rollback points, with the note {mine['successes']} of "
        f"{mine['branches']} branches succeeded (mean gain {mine['mean_gain']:+.3f}), without it "
        f"{theirs['successes']} of {theirs['branches']} ({theirs['mean_gain']:+.3f}); yield "
        f"{summary['yield']['approved_per_100_steps']} approved corrections per 100 steps"
    )
    return summary


def summary_lines(summary: dict[str, Any] | None) -> list[str]:
    """The control's summary as lines for the Results screen (none when it did not run)."""
    if not summary:
        return []
    lines = [f"What the note adds, at {summary['rollback_points']} rollback points:"]
    for key, label in (("with_note", "with the note"), ("without_note", "without it")):
        part = summary[key]
        lines.append(f"  {label}: {part['successes']} of {part['branches']} branches succeeded, "
                     f"mean gain {part['mean_gain']:+.3f}")
    found = summary["yield"]
    lines.append(f"  yield: {found['proposed_per_100_steps']} proposed, {found['approved_per_100_steps']} approved "
                 f"corrections per 100 environment steps ({found['env_steps']} steps)")
    return lines
