"""One step into the store: a child of the walker's latest node, and the walker moved on."""

from __future__ import annotations

from store import steps
from store.records import Step
from workbench.context import StageContext
from workbench.envs.base import StepResult
from workbench.rollout.walkers import Walker, remember_state


def store_step(
    context: StageContext,
    walker: Walker,
    text: str,
    result: StepResult,
    feedback: dict,
    success: bool,
    *,
    tokens: int,
    truncated: int,
    max_steps: int,
) -> Step:
    """Insert one step as a child of the walker's latest node and move the walker on; the
    step is what the store kept (text it had to repair comes back repaired)."""
    depth = walker.depth + 1
    note_id = walker.pending_note[0] if walker.pending_note else None
    done = bool(result.done) or success or depth >= max_steps
    record = steps.add(
        context.db,
        episode_id=walker.episode_id,
        parent_id=walker.node_id,
        depth=depth,
        action=text,
        observation=str(result.observation),
        feedback=feedback,
        score=float(result.score),
        done=done,
        success=success,
        tokens=tokens,
        truncated_turns=truncated,
        note_id=note_id,
        branch_depth=walker.branch_depth,
    )
    walker.path = [*walker.path, record]
    walker.pending_note = None
    walker.done = done
    remember_state(context, record.id, walker.env)
    return record
