"""The `model` reflector: any configured backend (`[reflect.model]`, default the policy)
answers a prompt with `NOTE:` and `ROLLBACK:` lines. An answer that cannot be parsed falls
back to the template reflector, and the note records why."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.models.base import Sampling
from workbench.reflectors import MAX_NOTE_CHARS, Reflection, register_reflector
from workbench.reflectors.template import feedback_message, template_reflection

if TYPE_CHECKING:
    from workbench.context import StageContext

NOTE_PATTERN = re.compile(r"NOTE\s*:\s*(.+?)(?:\n\s*ROLLBACK|\Z)", re.IGNORECASE | re.DOTALL)
ROLLBACK_PATTERN = re.compile(r"ROLLBACK\s*:\s*(?:step\s*)?(\d+)", re.IGNORECASE)


def describe_steps(path: Sequence[dict], width: int = 400) -> str:
    lines = [f"Task: {path[0]['observation'][:width]}"]
    for step in path[1:]:
        action = (step["action"] or "").strip().replace("\n", "\n    ")
        feedback = feedback_message(step["feedback"]) or json.dumps(step["feedback"])[:200]
        lines.append(f"Step {step['depth']} action:\n    {action[:width]}\nStep {step['depth']} result: score {step['score']:.2f}; {feedback[:200]}")
    return "\n".join(lines)


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


@register_reflector("model")
def model_reflections(
    context: StageContext, paths: Sequence[Sequence[dict]], task_names: Sequence[str]
) -> list[Reflection]:
    """Ask the reflector model about many paths in one batched call."""
    config = context.config.reflect
    generator = context.generator(config.model)
    prompts = [
        [{"role": "user", "content": config.prompt.format(steps=describe_steps(path), last_step=path[-1]["depth"])}]
        for path in paths
    ]
    answers = generator.generate(
        prompts, 1, Sampling(temperature=0.0, max_new_tokens=config.max_new_tokens), tags=list(task_names),
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
