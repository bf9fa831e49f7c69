"""Stage 3, backtrack: rewind to each note's rollback point and re-explore with the note.

Breadth-first by level: level 1 expands the notes written on original paths; a branch that
fails is reflected on, and its note is expanded at the next level, until `max_depth`
levels or `max_attempts` branches per episode are spent. At each note, `branches`
alternative first actions are sampled in one batched call (the shared history is encoded
once: see the hf backend's prefix reuse); each branch's first step is a sibling of the step
it replaces, and all branches then advance in lock-step with the steps left in the budget.

A branch that succeeds, or ends with a higher score than its original episode, yields a
`proposed` correction. Every step is committed as it finishes, so a resumed run continues
unfinished branches and expands only notes that have none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from store import corrections, episodes, notes, steps
from store.curation import add_human_note
from store.db import open_store, transaction
from store.records import Note, Step
from workbench.budget import LEAFE_PARTS, explore_target, explored_steps, leafe_spent
from workbench.context import Progress, StageContext, Stopwatch
from workbench.envs.base import execute
from workbench.errors import LeafeError
from workbench.models.base import Sampling
from workbench.prompts import build_messages, fit_context
from workbench.reflect import reflect_on, run_reflect
from workbench.rollout.engine import roll_out, step_workers
from workbench.rollout.record import store_step
from workbench.rollout.walkers import Walker, environment_at, note_texts, task_of
from workbench.storable_text import clean_text
from workbench.words import counted

WAVE_SEED = 100_003  # a rollback point's n-th expansion samples apart from its earlier ones


def branch_sampling(context: StageContext, level: int, wave: int = 0) -> Sampling:
    config = context.config
    return Sampling(
        temperature=config.backtrack.temperature,
        top_p=config.explore.top_p,
        max_new_tokens=config.model.max_new_tokens,
        seed=config.explore.seed + 1000 * level + WAVE_SEED * wave,
    )


def notes_to_expand(context: StageContext, level: int) -> list[Note]:
    """Notes whose step lies at branch depth `level - 1` and that have no branch yet."""
    return notes.to_expand(context.db, context.run_id, level - 1)


def attempts_used(context: StageContext, episode_id: int) -> int:
    """Branches started in an episode: first steps of branches carry their note."""
    return steps.branches_started(context.db, episode_id)


def plan_branches(context: StageContext, notes: Sequence[dict]) -> list[tuple[dict, int]]:
    """(note, branch count) for each note, within each episode's `max_attempts`."""
    config = context.config.backtrack
    budget: dict[int, int] = {}
    planned: list[tuple[dict, int]] = []
    for note in notes:
        episode_id = note["episode_id"]
        budget.setdefault(episode_id, config.max_attempts - attempts_used(context, episode_id))
        count = min(config.branches, budget[episode_id])
        if count > 0:
            budget[episode_id] -= count
            planned.append((note, count))
    return planned


def fan_out(
    context: StageContext,
    notes: Sequence[dict],
    level: int,
    stopwatch: Stopwatch,
    *,
    planned: list[tuple[dict, int]] | None = None,
    with_note: bool = True,
    home: Callable[[dict, list[dict]], tuple[int, list[dict]]] | None = None,
    wave: int = 0,
) -> list[Walker]:
    """Sample the first step of every branch at each note's rollback point and store it.

    The no-note control (`workbench.ablation`) calls it with `with_note=False` (no note
    anywhere in the prompt), its own branch counts (`planned`) and `home`, which gives each
    note the episode and stored history its branches hang from (default: the note's own).
    `wave` > 0 samples a rollback point again, apart from its earlier branches (a budget).

    The environment steps run before the write transaction, in the step workers, and the
    new nodes land in one short transaction afterwards: the store's write lock is never
    held while a sandbox runs, so the TUI (or another process) can write meanwhile. A run
    killed before that commit stored none of these first steps and redoes them on resume.
    """
    config = context.config
    planned = plan_branches(context, notes) if planned is None else planned
    walkers: list[Walker] = []
    # One generate call per distinct branch count (usually one call for all notes).
    for count in sorted({count for _, count in planned}):
        group = [note for note, c in planned if c == count]
        context.check_cancelled()
        prompts, parents, tasks, dropped = [], [], [], []
        generator = context.generator()
        sampling = branch_sampling(context, level, wave)
        for note in group:
            tau = steps.get(context.db, note["rollback_node_id"])
            parent_path = steps.path_to(context.db, tau.parent_id)
            probe = Walker(note["episode_id"], task_of(context, note["episode_id"]), None, parent_path)  # type: ignore[arg-type]
            texts = note_texts(context, [probe]) if with_note else {}
            messages = build_messages(
                config.prompts, parent_path, config.env.max_steps, texts, note["text"] if with_note else None
            )
            # Like every other step, the branch's first one keeps room for its answer.
            messages, gone = fit_context(messages, generator, sampling.max_new_tokens)
            prompts.append(messages)
            dropped.append(gone)
            parents.append(parent_path)
            tasks.append(probe.task)
        completions = generator.generate(prompts, count, sampling, tags=[task.name for task in tasks])
        started = []  # (walker, text, cleaning, sample, truncated turns)
        for note, parent_path, task, samples, gone in zip(group, parents, tasks, completions, dropped, strict=True):
            episode_id, stored_path = home(note, parent_path) if home else (note["episode_id"], parent_path)
            for sample in samples:
                walker = Walker(
                    episode_id, task, environment_at(context, task, parent_path), stored_path,
                    branch_depth=level, pending_note=(note["id"], note["text"]) if with_note else None,
                )
                text, cleaning = clean_text(sample.text)
                started.append((walker, text, cleaning, sample, gone))
        context.check_cancelled()
        with ThreadPoolExecutor(max_workers=step_workers(context)) as pool:
            results = list(pool.map(lambda item: execute(item[0].env, item[1]), started))
        with transaction(context.db):
            for (walker, text, cleaning, sample, gone), (result, success) in zip(started, results, strict=True):
                feedback = dict(result.feedback) | cleaning
                if gone:
                    feedback["history_turns_dropped"] = gone
                store_step(
                    context, walker, text, result, feedback, success,
                    tokens=sample.tokens, truncated=gone, max_steps=config.env.max_steps,
                )
                stopwatch.add_tokens(sample.tokens)
        for walker, *_ in started:
            context.progress.event("node", node_id=walker.node_id, episode_id=walker.episode_id)
            walkers.append(walker)
    return walkers


def unfinished_branches(context: StageContext, level: int) -> list[Walker]:
    """Branch lines at `level` whose last stored step is not the end (a resumed run)."""
    walkers = []
    for end in steps.unfinished_branch_ends(context.db, context.run_id, level, purpose="explore"):
        path = steps.path_to(context.db, end.id)
        task = task_of(context, end.episode_id)
        walkers.append(Walker(end.episode_id, task, environment_at(context, task, path), path, branch_depth=level))
    return walkers


def finished_leaves(context: StageContext, level: int) -> list[tuple[Step, float]]:
    """(last step, its episode's score) of each exploration branch at `level` that ended."""
    return steps.finished_branch_ends(context.db, context.run_id, level, purpose="explore")


def branch_note(context: StageContext, leaf_id: int, level: int) -> int | None:
    """The note that started the branch ending at `leaf_id` (on its first step)."""
    for step in reversed(steps.path_to(context.db, leaf_id)):
        if step.branch_depth == level and step.note_id is not None:
            return step.note_id
    return None


def propose_corrections(context: StageContext, leaves: Sequence[tuple[Step, float]], level: int) -> int:
    """A proposed correction for each branch that succeeded or beat its episode's score."""
    created = 0
    with transaction(context.db):
        for leaf, episode_score in leaves:
            if not (leaf.success or leaf.score > episode_score):
                continue
            note_id = branch_note(context, leaf.id, level)
            if note_id is None:
                continue
            tau = notes.get(context.db, note_id).rollback_node_id
            if corrections.propose(context.db, note_id=note_id, tau_node_id=tau, leaf_node_id=leaf.id) is not None:
                created += 1
    return created


def reflect_on_failed(context: StageContext, leaves: Sequence[tuple[Step, float]]) -> int:
    paths = [
        steps.path_to(context.db, leaf.id) for leaf, _ in leaves
        if not leaf.success and not notes.exists_on(context.db, leaf.id)
    ]
    return len(reflect_on(context, paths))


def settle_branches(context: StageContext, levels: set[int]) -> tuple[int, int]:
    """After branches at `levels` ended: propose their corrections and reflect on the failed
    ones that may still be branched from; return (corrections, notes) made."""
    proposed = reflected = 0
    for level in sorted(levels):
        leaves = finished_leaves(context, level)
        proposed += propose_corrections(context, leaves, level)
        if level < context.config.backtrack.max_depth:
            reflected += reflect_on_failed(context, leaves)
    return proposed, reflected


def plan_budget_wave(context: StageContext, remaining: int) -> list[tuple[dict, int]]:
    """(rollback point, branch count) of the next wave that surely fits in `remaining`
    steps, each branch planned at its longest (from its rollback step to `env.max_steps`).

    Breadth-first: the points expanded least often come first, then the lower levels; every
    point gets at most `backtrack.branches` more, and a cheaper point may fill what a dearer
    one left."""
    from store.budget import branch_points

    settings, max_steps = context.config.backtrack, context.config.env.max_steps
    if settings.branches < 1:
        return []
    points = branch_points(context.db, context.run_id, settings.max_depth)
    for point in points:
        point["wave"] = -(-point["branches"] // settings.branches)  # expansions so far, a partial one counted
    planned = []
    for point in sorted(points, key=lambda p: (p["wave"], p["level"], p["id"])):
        cost = max_steps - point["tau_depth"] + 1
        count = min(settings.branches, max(0, remaining) // cost)
        if count:
            planned.append((point, count))
            remaining -= count * cost
    return planned


def backtrack_within_budget(context: StageContext, total: int) -> dict:
    """Branch wave after wave until LEAFE's environment steps in the run (exploration and
    branches) reach `total` as closely as the next branch allows without overrunning it.

    `backtrack.max_attempts` is not the cap here; the budget is. When no rollback point is
    left that fits (every episode succeeded, or `max_depth` is spent everywhere), exploration
    plays one more wave with what is left and its failures are reflected on, so the budget
    is still spent. Everything is planned from what is stored, so a killed run resumes."""
    from workbench.explore import explore_within_budget
    from workbench.reflect import reflect_on_failures

    settings = context.config.backtrack
    max_steps = context.config.env.max_steps
    generator = context.generator()
    summary = context.counts(branches=0, corrections=0, notes=0, waves=0, explore_waves=0)
    while True:
        context.check_cancelled()
        stopwatch = Stopwatch(context)
        levels = range(1, settings.max_depth + 1)
        leftover = [walker for level in levels for walker in unfinished_branches(context, level)]
        if leftover:  # branches a killed run left unfinished
            roll_out(context, leftover, generator, branch_sampling(context, 1), max_steps=max_steps, stopwatch=stopwatch)
            made = settle_branches(context, {walker.branch_depth for walker in leftover})
            summary["corrections"] += made[0]
            summary["notes"] += made[1]
        remaining = total - leafe_spent(context)[0]
        planned = plan_budget_wave(context, remaining)
        if not planned:
            before = leafe_spent(context)[0]
            explore_within_budget(context, explored_steps(context) + remaining, waves=1)
            if leafe_spent(context)[0] == before:
                break
            summary["explore_waves"] += 1
            reflect_on_failures(context, summary)
            continue
        most = sum(count * (max_steps - point["tau_depth"] + 1) for point, count in planned)
        context.progress.start(
            "backtrack", most,
            f"backtrack wave {summary['waves'] + 1}: {counted(sum(c for _, c in planned), 'branch', 'branches')}, "
            f"≤ {counted(most, 'step')}",
        )
        new: list[Walker] = []
        for key in sorted({(point["level"], point["wave"]) for point, _ in planned}):
            group = [(point, count) for point, count in planned if (point["level"], point["wave"]) == key]
            new += fan_out(context, [point for point, _ in group], key[0], stopwatch, planned=group, wave=key[1])
        summary["branches"] += len(new)
        summary["waves"] += 1
        # Each branch's first step, and the budget left by those it already ended.
        context.progress.advance(len(new) + sum(max_steps - w.depth for w in new if w.done))
        first = min(planned, key=lambda item: (item[0]["wave"], item[0]["level"]))[0]
        roll_out(context, new, generator, branch_sampling(context, first["level"], first["wave"]),
                 max_steps=max_steps, stopwatch=stopwatch,
                 on_finish=lambda walker: context.progress.advance(max_steps - walker.depth))
        made = settle_branches(context, {walker.branch_depth for walker in new})
        summary["corrections"] += made[0]
        summary["notes"] += made[1]
        context.progress.finish()
    used = leafe_spent(context)[0]
    return {**summary, "env_steps": used, "env_steps_budget": total, "corrections_total": corrections_in_run(context)}


def corrections_in_run(context: StageContext) -> int:
    return corrections.count_of_run(context.db, context.run_id)


def spend_leafe_budget(context: StageContext, total: int, parts: tuple[str, ...] = LEAFE_PARTS) -> dict[str, Any]:
    """Run LEAFE's exploration, reflection and backtracking until the run's LEAFE steps
    (explore episodes, branches included) reach `total` within one episode's worth, without
    overrunning it; return the summaries. Stateless over the store, so it resumes.

    The one budgeted path: the explore and backtrack stages run their own part of it (the
    stage list runs them in turn), and in LEAFE rounds `total` is round r's cumulative
    share, r / rounds of the declared budget (workbench/rounds.py puts it in the round's
    config). It lives here, above the stages it runs, so budget.py (the accounting every
    stage reads) imports none of them."""
    from workbench.explore import explore_within_budget

    steps_of_part = {
        "explore": lambda: explore_within_budget(context, explore_target(context, total)),
        "reflect": lambda: run_reflect(context),
        "backtrack": lambda: backtrack_within_budget(context, total),
    }
    return {part: steps_of_part[part]() for part in parts}


def planned_steps(context: StageContext, expanded: Sequence[dict], walkers: Sequence[Walker]) -> tuple[int, int]:
    """(branches, most steps they can take) at one level: the progress bar's total. A
    branch's first step replaces the step at the rollback point, so it may take that step
    and the ones after it within `max_steps`; a resumed branch has the steps it has left."""
    max_steps = context.config.env.max_steps
    planned = plan_branches(context, expanded)
    most = sum(
        count * (max_steps - steps.get(context.db, note["rollback_node_id"]).depth + 1)
        for note, count in planned
    )
    most += sum(max(max_steps - walker.depth, 0) for walker in walkers)
    return sum(count for _, count in planned) + len(walkers), most


def run_backtrack(context: StageContext) -> dict:
    if context.config.experiment.env_steps:
        # A declared budget: branch until LEAFE has spent it (workbench/budget.py); a LEAFE
        # round's config holds that round's cumulative share of it (workbench/rounds.py).
        return backtrack_within_budget(context, context.config.experiment.env_steps)
    config = context.config.backtrack
    summary = context.counts(branches=0, corrections=0, notes=0, levels=0)
    if config.branches < 1 or config.max_depth < 1:
        return summary
    generator = context.generator()
    max_steps = context.config.env.max_steps
    for level in range(1, config.max_depth + 1):
        context.check_cancelled()
        stopwatch = Stopwatch(context)
        expanded = notes_to_expand(context, level)
        walkers = unfinished_branches(context, level)
        if not expanded and not walkers and not finished_leaves(context, level):
            break
        summary["levels"] = level
        branches, total = planned_steps(context, expanded, walkers)
        context.progress.start(
            "backtrack", total,
            f"backtrack {level}: {counted(branches, 'branch', 'branches')}, ≤ {counted(total, 'step')}",
        )
        new = fan_out(context, expanded, level, stopwatch)
        summary["branches"] += len(new)
        # Each branch's first step, and the budget left by those it already ended.
        context.progress.advance(len(new) + sum(max_steps - w.depth for w in new if w.done))
        roll_out(
            context, walkers + new, generator, branch_sampling(context, level),
            max_steps=max_steps, stopwatch=stopwatch,
            on_finish=lambda walker: context.progress.advance(max_steps - walker.depth),
        )
        leaves = finished_leaves(context, level)
        summary["corrections"] += propose_corrections(context, leaves, level)
        if level < config.max_depth:
            summary["notes"] += reflect_on_failed(context, leaves)
        context.progress.finish()
    summary["corrections_total"] = corrections_in_run(context)
    return summary


# -- by hand (the TUI's `b`) --------------------------------------------------------


def branch_by_hand(
    db_path: str,
    node_id: int,
    action_text: str,
    note_text: str | None = None,
    *,
    progress: Progress | None = None,
    cancel=None,
    author: str = "human",
) -> list[int]:
    """Re-run from a step with an edited action (Loom-style); return the new nodes' ids.

    The environment is restored to the state before `node_id`, the edited action is
    executed, and the run's policy continues to the end of the budget. The new branch's
    first step is a sibling of `node_id`. A note, if given, is stored (author `human`),
    placed in the policy's context, and a successful branch becomes a proposed correction.
    """
    with StageContext.for_run(db_path, run_of_step(db_path, node_id), progress=progress, cancel=cancel) as context:
        note = None
        if note_text and note_text.strip():
            note_id = add_human_note(context.db, node_id, node_id, note_text, author=author)
            note = (note_id, note_text.strip())
        new_ids = branch_from(context, node_id, action_text, note)
        if note is not None:
            leaf = steps.get(context.db, new_ids[-1])
            episode_score = episodes.get(context.db, leaf.episode_id).score
            propose_corrections(context, [(leaf, episode_score)], leaf.branch_depth)
        return new_ids


def walker_before(context: StageContext, node_id: int, note: tuple[int, str] | None = None) -> Walker:
    """A walker standing where `node_id` was played: its parent's state restored (snapshot
    or replay), one branch level deeper, carrying `note` in the policy's context."""
    original = steps.get(context.db, node_id)
    if original.parent_id is None:
        raise ValueError("the root holds the task; branch from one of its steps")
    parent_path = steps.path_to(context.db, original.parent_id)
    task = task_of(context, original.episode_id)
    return Walker(original.episode_id, task, environment_at(context, task, parent_path), parent_path,
                  branch_depth=original.branch_depth + 1, pending_note=note)


def try_action(context: StageContext, node_id: int, action_text: str):
    """Play `action_text` in place of step `node_id`, storing nothing: (the cleaned text, the
    environment's result, success). What a reviewer sees before an edit is kept."""
    walker = walker_before(context, node_id)
    text, _ = clean_text(action_text)
    result, success = execute(walker.env, text)
    return text, result, success


def branch_from(context: StageContext, node_id: int, action_text: str, note: tuple[int, str] | None) -> list[int]:
    """The edited action played in place of step `node_id`, then the policy to the end of
    the budget (with `note` in its context); returns the new steps' ids, first to leaf."""
    db, config = context.db, context.config
    walker = walker_before(context, node_id, note)
    text, cleaning = clean_text(action_text)
    result, success = execute(walker.env, text)
    with transaction(db):
        store_step(
            context, walker, text, result, dict(result.feedback) | cleaning | {"by_hand": True},
            success, tokens=0, truncated=0, max_steps=config.env.max_steps,
        )
        steps.mark_backtrack_point(db, node_id)
    first = walker.node_id
    context.progress.event("node", node_id=first, episode_id=walker.episode_id)
    if not walker.done:
        roll_out(context, [walker], context.generator(), branch_sampling(context, walker.branch_depth),
                 max_steps=config.env.max_steps)
    return [step["id"] for step in walker.path if step["id"] >= first]


def run_of_step(db_path: str, node_id: int) -> int:
    """The run a stored step belongs to (a step that is not there is one clear line)."""
    db = open_store(db_path)
    try:
        run_id = steps.run_of_node(db, node_id)
    finally:
        db.close()
    if run_id is None:
        raise LeafeError(f"no step {node_id} in {db_path}")
    return run_id
