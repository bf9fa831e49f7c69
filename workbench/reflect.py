"""Stage 2, reflect: turn a failed line of play into an experience note and a rollback point.

Reflectors:
- `template`: rules over the structured feedback, from the environment suite
  (`suite.reflect_template(path)`), or a generic rule for a user's own environment;
- `model`: any configured backend (`[reflect.model]`, default the policy) answers a prompt;
  an answer that cannot be parsed falls back to the template and the note records why;
- `human`: written in the TUI (`store.curation.add_human_note`).

The rollback point follows `[backtrack] rollback`: the reflector's choice, the last step, or
the first step whose feedback was a failure. That step is marked as a backtrack point.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from store import queries
from store.db import now, transaction
from workbench.context import StageContext
from workbench.models.base import Sampling

NOTE_PATTERN = re.compile(r"NOTE\s*:\s*(.+?)(?:\n\s*ROLLBACK|\Z)", re.IGNORECASE | re.DOTALL)
ROLLBACK_PATTERN = re.compile(r"ROLLBACK\s*:\s*(?:step\s*)?(\d+)", re.IGNORECASE)
MAX_NOTE_CHARS = 600


@dataclass
class Reflection:
    text: str
    rollback_depth: int  # depth of the step to redo (1 = the first action)
    author: str  # template | model
    fallback_reason: str = ""


# -- template -----------------------------------------------------------------------


def feedback_message(feedback: dict) -> str:
    for key in ("message", "error"):
        value = feedback.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and value.get("message"):
            return f"{value.get('type', 'error')}: {value['message']}"
    return ""


def generic_template(path: Sequence[dict]) -> tuple[str, int]:
    """For environments without their own reflection: say what the last step's feedback
    reported and redo that step."""
    last = path[-1]
    message = feedback_message(last["feedback"]) or f"scored {last['score']:.2f} without solving the task"
    return f"Step {last['depth']} failed: {message[:200]}. Try a different action there.", last["depth"]


def template_reflection(context: StageContext, path: Sequence[dict]) -> Reflection:
    reflect = getattr(context.suite, "reflect_template", None)
    text, depth = reflect(list(path)) if callable(reflect) else generic_template(path)
    return Reflection(text=text.strip()[:MAX_NOTE_CHARS], rollback_depth=depth, author="template")


# -- model --------------------------------------------------------------------------


def describe_steps(path: Sequence[dict], width: int = 400) -> str:
    lines = [f"Task: {path[0]['observation'][:width]}"]
    for step in path[1:]:
        action = (step["action"] or "").strip().replace("\n", "\n    ")
        feedback = feedback_message(step["feedback"]) or json.dumps(step["feedback"])[:200]
        lines.append(f"Step {step['depth']} action:\n    {action[:width]}\nStep {step['depth']} result: score {step['score']:.2f}; {feedback[:200]}")
    return "\n".join(lines)


def task_name_of_episode(context: StageContext, episode_id: int) -> str:
    return context.db.execute(
        "select tasks.name from episodes join tasks on tasks.id = episodes.task_id where episodes.id = ?",
        [episode_id],
    ).fetchone()[0]


def parse_model_reflection(answer: str, last_step: int) -> tuple[str, int] | str:
    """(note, rollback depth), or the reason the answer could not be used."""
    note_match = NOTE_PATTERN.search(answer or "")
    if not note_match or not note_match.group(1).strip():
        return "the model's answer has no NOTE line"
    rollback_match = ROLLBACK_PATTERN.search(answer)
    if not rollback_match:
        return "the model's answer has no ROLLBACK step number"
    depth = int(rollback_match.group(1))
    if not 1 <= depth <= last_step:
        return f"the model chose step {depth}, outside 1..{last_step}"
    return note_match.group(1).strip()[:MAX_NOTE_CHARS], depth


def model_reflections(context: StageContext, paths: Sequence[Sequence[dict]]) -> list[Reflection]:
    """Ask the reflector model about many paths in one batched call."""
    config = context.config.reflect
    generator = context.generator(config.model)
    prompts = [
        [{"role": "user", "content": config.prompt.format(steps=describe_steps(path), last_step=path[-1]["depth"])}]
        for path in paths
    ]
    answers = generator.generate(
        prompts, 1, Sampling(temperature=0.0, max_new_tokens=config.max_new_tokens),
        tags=[task_name_of_episode(context, path[0]["episode_id"]) for path in paths],
    )
    reflections = []
    for path, samples in zip(paths, answers, strict=True):
        parsed = parse_model_reflection(samples[0].text, path[-1]["depth"])
        if isinstance(parsed, str):
            fallback = template_reflection(context, path)
            fallback.fallback_reason = parsed
            reflections.append(fallback)
        else:
            reflections.append(Reflection(text=parsed[0], rollback_depth=parsed[1], author="model"))
    return reflections


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
    if context.config.reflect.reflector == "model":
        reflections = model_reflections(context, paths)
    else:
        reflections = [template_reflection(context, path) for path in paths]
    note_ids = []
    with transaction(context.db):
        for path, reflection in zip(paths, reflections, strict=True):
            depth = rollback_depth(context.config.backtrack.rollback, reflection, path)
            rollback_node = path[depth]
            note_ids.append(
                context.db["notes"].insert(
                    {
                        "node_id": path[-1]["id"],
                        "rollback_node_id": rollback_node["id"],
                        "text": reflection.text,
                        "author": reflection.author,
                        "fallback_reason": reflection.fallback_reason,
                        "created_at": now(),
                    }
                ).last_pk
            )
            context.db["nodes"].update(rollback_node["id"], {"backtrack_point": 1})
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
    """Reflect on every failed exploration episode of the run (and, with `reflect.every`,
    on every N-th failed step of any episode) where no note exists yet."""
    every = context.config.reflect.every
    rows = context.db.execute(
        """select id, success from episodes where run_id = ? and purpose = 'explore' and status = 'finished'
           and (success = 0 or ? > 0) order by id""",
        [context.run_id, every],
    ).fetchall()
    paths = []
    for episode_id, success in rows:
        leaf = queries.leaf_of_original_path(context.db, episode_id)
        full = queries.path_to(context.db, leaf["id"])
        if len(full) < 2:
            continue
        for depth in reflection_points(full, every, failed=not success):
            if context.db.execute("select 1 from notes where node_id = ?", [full[depth]["id"]]).fetchone():
                continue  # reflected on already (a resumed run)
            paths.append(full[: depth + 1])
    context.progress.start("reflect", len(paths), f"reflect: {len(paths)} failed steps")
    note_ids = []
    batch = 16
    for start in range(0, len(paths), batch):
        context.check_cancelled()
        note_ids += reflect_on(context, paths[start : start + batch])
        context.progress.advance(len(paths[start : start + batch]))
    context.progress.finish()
    authors = dict(
        context.db.execute(
            """select author, count(*) from notes join nodes on nodes.id = notes.node_id
               join episodes on episodes.id = nodes.episode_id where episodes.run_id = ?
               group by author""",
            [context.run_id],
        ).fetchall()
    )
    return {"notes": len(note_ids), "by_author": authors}
