"""Baseline `rft`: rejection-sampling fine-tuning (outcome-driven SFT on successes).

The base policy plays the training tasks, wave after wave, until LEAFE's environment-step
budget is spent; only successful episodes are kept, each whole conversation a training
example (every answer a target), and an adapter is trained on them with the same LoRA
settings as LEAFE.

A wave is planned only if it fits in the budget even when every episode uses all of
`max_steps`; the last wave may cover only some tasks. Episodes are stored (purpose
`baseline:rft`), so the budget spent is counted the same way as LEAFE's and a killed run
resumes without replaying finished waves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from store import episodes, steps
from workbench.baselines._common import (
    adapter_name,
    finished_adapter,
    steps_used,
    tokens_generated,
    train_baseline_adapter,
    write_dataset,
)
from workbench.budget import Budget, step_budget
from workbench.context import StageContext
from workbench.distill.data import make_example
from workbench.envs.base import Task
from workbench.errors import NothingToTrain
from workbench.explore import open_episodes, play_episodes
from workbench.models.base import Sampling
from workbench.prompts import action_chats
from workbench.seeds import run_label

KIND = "rft"
PURPOSE = "baseline:rft"
SEED_OFFSET = 10_007  # rollouts differ from exploration's, with the same temperature


def episode_ids(context: StageContext, *, running: bool | None = None, from_rollout: int = 0) -> list[int]:
    finished = False if running else None
    return [e.id for e in episodes.of_run(
        context.db, context.run_id, PURPOSE, finished=finished, from_rollout=from_rollout
    )]


def next_rollout(context: StageContext) -> int:
    return episodes.next_rollout(context.db, context.run_id, PURPOSE)


def plan_waves(tasks: Sequence[Task], remaining: int, max_steps: int, waves_left: int | None) -> tuple[list[Task], int]:
    """(tasks, how many waves) that surely fit in `remaining` steps; ([], 0) when none does."""
    full = remaining // (len(tasks) * max_steps)
    if waves_left is not None:
        full = min(full, waves_left)
    if full >= 1:
        return list(tasks), full
    if waves_left == 0:
        return [], 0
    count = remaining // max_steps
    return list(tasks[:count]), 1 if count else 0


def roll_out_within_budget(context: StageContext, tasks: Sequence[Task], budget: Budget) -> int:
    """Play waves of base-policy episodes until the budget is spent; return the waves played."""
    config = context.config
    max_steps = config.env.max_steps
    sampling = Sampling(
        temperature=config.explore.temperature,
        top_p=config.explore.top_p,
        max_new_tokens=config.model.max_new_tokens,
        seed=config.explore.seed + SEED_OFFSET,
    )
    leftover = episode_ids(context, running=True)
    if leftover:  # a killed run's last wave
        play_episodes(context, leftover, context.generator(), sampling, stage="baseline:rft")
    cap = config.baselines.rollouts_per_task or None
    while True:
        context.check_cancelled()
        first = next_rollout(context)
        remaining = budget.steps - steps_used(context, PURPOSE)
        chosen, waves = plan_waves(tasks, remaining, max_steps, None if cap is None else max(0, cap - first))
        if not waves:
            return first
        open_episodes(
            context, chosen, purpose=PURPOSE, policy="base", rollouts=first + waves,
            seed=config.explore.seed + SEED_OFFSET,
        )
        new = episode_ids(context, from_rollout=first)
        play_episodes(
            context, new, context.generator(),
            dataclasses.replace(sampling, seed=sampling.seed + first),
            stage=f"baseline:rft rollouts {first + 1}-{first + waves}",
        )


def successful_examples(context: StageContext) -> list[dict]:
    """Every answer of every successful episode a target (one chat per episode, or one per
    answer when the policy sees a window of its history)."""
    examples = []
    for episode in episodes.of_run(context.db, context.run_id, PURPOSE, finished=True, success=True):
        path = steps.original_path(context.db, episode.id)
        for messages, start in action_chats(
            context.config.prompts, path, context.config.env.max_steps, target=context.config.export.targets
        ):
            examples.append(make_example(messages, kind=KIND, target_start=start, task=episode.task))
    return examples


def run_rft(context: StageContext) -> dict:
    done = finished_adapter(context, KIND)
    if done:
        return done
    tasks = context.suite.load_tasks(context.config.env.tasks)
    budget = step_budget(context, len(tasks))
    waves = roll_out_within_budget(context, tasks, budget)
    used = steps_used(context, PURPOSE)
    played = episodes.summary(context.db, context.run_id, PURPOSE)
    count, successes = played["episodes"], played["successes"]
    examples = successful_examples(context)
    if not examples:
        raise NothingToTrain(
            f"baseline:rft: none of the {count} episodes ({used} environment steps) succeeded, "
            "so there is nothing to fine-tune on",
            adapter=adapter_name(KIND, run_label(context)),
        )
    path, dataset_id = write_dataset(context, kind=KIND, name=f"rft-run-{context.run_id}", examples=examples)
    context.say(f"baseline:rft: {successes} of {count} episodes succeeded in {used} of {budget.steps} steps")
    summary = train_baseline_adapter(
        context, kind=KIND, dataset_path=path, dataset_id=dataset_id, budget=budget, used=used,
        tokens=tokens_generated(context, PURPOSE), extra={"episodes": count, "successes": successes, "rollouts_per_task": waves},
    )
    return {**summary, "episodes": count, "successes": successes, "env_steps_used": used,
            "env_steps_budget": budget.steps}
