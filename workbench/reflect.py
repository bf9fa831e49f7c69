"""Stage 2, reflect: turn a failed line of play into an experience note and a rollback point.

The reflector named by `reflect.reflector` writes the notes (workbench/reflectors/:
`template`, rules over the structured feedback; `model`, any configured backend; or one
registered by name); `human` notes are written in the TUI (`store.curation.add_human_note`).

The rollback point follows `[backtrack] rollback`: the reflector's choice, the last step, or
the first step whose feedback was a failure. That step is marked as a backtrack point.
"""

from __future__ import annotations

from collections.abc import Sequence

from store import episodes, notes, steps
from store.db import transaction
from workbench.context import StageContext
from workbench.reflectors import Reflection, find_reflector
from workbench.words import counted


def task_name_of_episode(context: StageContext, episode_id: int) -> str:
    return episodes.task_of(context.db, episode_id)[0]


# -- rollback point -----------------------------------------------------------------


def is_failure(step: dict) -> bool:
    feedback = step["feedback"] or {}
    if step["success"]:
        return False
    return bool(
        feedback.get("error") or feedback.get("failures") or feedback.get("collided")
        or feedback.get("success") is False or step["score"] < 1.0
    )


def rollback_depth(rule: str, reflection: Reflection, path: Sequence[dict]) -> int:
    last = path[-1]["depth"]
    if rule == "last":
        return last
    if rule == "first_error":
        for step in path[1:]:
            if is_failure(step):
                return step["depth"]
        return last
    return min(max(1, reflection.rollback_depth), last)


# -- the stage ----------------------------------------------------------------------


def reflect_on(context: StageContext, paths: Sequence[Sequence[dict]]) -> list[int]:
    """Write a note for each path (ending at the step reflected on); return the note ids."""
    if not paths:
        return []
    reflector = find_reflector(context.config.reflect.reflector)
    task_names = [task_name_of_episode(context, path[0]["episode_id"]) for path in paths]
    reflections = reflector(context, paths, task_names)
    note_ids = []
    with transaction(context.db):
        for path, reflection in zip(paths, reflections, strict=True):
            depth = rollback_depth(context.config.backtrack.rollback, reflection, path)
            rollback_node = path[depth]
            note_ids.append(notes.add(
                context.db, node_id=path[-1]["id"], rollback_node_id=rollback_node["id"], text=reflection.text,
                author=reflection.author, fallback_reason=reflection.fallback_reason,
            ))
            steps.mark_backtrack_point(context.db, rollback_node["id"])
    return note_ids


def reflection_points(path: Sequence[dict], every: int, *, failed: bool = True) -> list[int]:
    """Depths to reflect at: the end of a failed path and, with `every` = N, each N-th step
    before the end whose feedback was a failure (there is nothing to learn from a step
    that went well). A path that succeeded in the end still has such steps to recover
    from, so periodic reflection covers successful episodes too."""
    last = path[-1]["depth"]
    points = {last} if failed else set()
    if every > 0:
        points |= {depth for depth in range(every, last, every) if is_failure(path[depth])}
    return sorted(points)


def run_reflect(context: StageContext) -> dict:
    """The reflect stage: notes on every failed exploration episode not reflected on yet.
    Its count carries across a stop and `--resume` (the stage's tally), so a resumed stage
    reports every note it wrote, not only those after the resume; `by_author` counts the
    whole run's notes, every round's."""
    summary = context.counts(notes=0)
    reflect_on_failures(context, summary)
    return {"notes": summary["notes"], "by_author": notes.count_by_author(context.db, context.run_id)}


def reflect_on_failures(context: StageContext, tally: dict) -> None:
    """Reflect on every failed exploration episode of the run (and, with `reflect.every`,
    on every N-th failed step of any episode) where no note exists yet, adding each batch's
    notes to `tally["notes"]` as it is stored (so a stop between batches loses no count).
    Backtracking calls this too, after an exploration wave of its own."""
    every = context.config.reflect.every
    finished = episodes.of_run(context.db, context.run_id, "explore", finished=True)
    paths = []
    for episode in finished:
        if episode.success and every <= 0:
            continue
        full = steps.original_path(context.db, episode.id)
        if len(full) < 2:
            continue
        for depth in reflection_points(full, every, failed=not episode.success):
            if notes.exists_on(context.db, full[depth].id):
                continue  # reflected on already (a resumed run)
            paths.append(full[: depth + 1])
    context.progress.start("reflect", len(paths), f"reflect: {counted(len(paths), 'failed step')}")
    batch = 16
    for start in range(0, len(paths), batch):
        context.check_cancelled()
        tally["notes"] += len(reflect_on(context, paths[start : start + batch]))
        context.progress.advance(len(paths[start : start + batch]))
    context.progress.finish()
