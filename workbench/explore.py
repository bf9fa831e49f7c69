"""Stage 1, explore: `rollouts_per_task` episodes per task, all advancing in lock-step.

Episodes and their root nodes are created up front in one transaction, so a resumed run
finds every episode it planned and continues the unfinished ones from their last stored
step; finished episodes are never redone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from store import episodes, queries, steps
from store.db import transaction
from workbench.context import StageContext, Stopwatch
from workbench.envs.base import Task
from workbench.models.base import Generator, Sampling
from workbench.rollout.engine import roll_out
from workbench.rollout.walkers import Walker, environment_at, task_of
from workbench.words import counted


def register_tasks(context: StageContext, tasks: Sequence[Task]) -> dict[str, int]:
    """Store the tasks (once per env and name); return their ids by name."""
    with transaction(context.db):
        return {
            task.name: queries.ensure_task(context.db, context.suite.kind, task.name, task.spec)
            for task in tasks
        }


def open_episodes(
    context: StageContext,
    tasks: Sequence[Task],
    *,
    purpose: str,
    policy: str,
    rollouts: int,
    seed: int,
    first_rollout: int = 0,
) -> list[int]:
    """The episodes (task x rollout) of one stage: existing ones kept, missing ones created.
    Rollouts are numbered from `first_rollout` (a later LEAFE round's share), episode i of a
    task seeded `seed + i`."""
    task_ids = register_tasks(context, tasks)
    episode_ids = []
    with transaction(context.db):
        for task in tasks:
            for rollout in range(first_rollout, first_rollout + rollouts):
                existing = episodes.find(
                    context.db, run_id=context.run_id, purpose=purpose, task_id=task_ids[task.name],
                    rollout=rollout, policy=policy,
                )
                if existing is not None:
                    episode_ids.append(existing)
                    continue
                observation = context.suite.new_environment().reset(task)
                episode_id, _ = episodes.create(
                    context.db,
                    run_id=context.run_id,
                    task_id=task_ids[task.name],
                    purpose=purpose,
                    rollout=rollout,
                    policy=policy,
                    seed=seed + rollout - first_rollout,
                    observation=observation,
                )
                episode_ids.append(episode_id)
    return episode_ids


def unfinished_walkers(context: StageContext, episode_ids: Sequence[int]) -> list[Walker]:
    """Walkers for the episodes still running, each restored to its last stored step."""
    walkers = []
    for episode_id in episode_ids:
        if not episodes.get(context.db, episode_id).running:
            continue
        path = steps.original_path(context.db, episode_id)
        task = task_of(context, episode_id)
        walkers.append(Walker(episode_id, task, environment_at(context, task, path), path))
    return walkers


def play_episodes(
    context: StageContext,
    episode_ids: Sequence[int],
    generator: Generator,
    sampling: Sampling,
    *,
    stage: str,
) -> None:
    """Run the given episodes to their end in lock-step, with a progress bar of steps."""
    max_steps = context.config.env.max_steps
    walkers = unfinished_walkers(context, episode_ids)
    done_steps = steps.actions_taken(context.db, list(episode_ids))
    context.progress.start(
        stage, len(episode_ids) * max_steps,
        f"{stage}: {counted(len(episode_ids), 'episode')} × {counted(max_steps, 'step')}",
    )
    context.progress.advance(done_steps)

    def finished(walker: Walker) -> None:
        # An episode that ends early frees the rest of its step budget on the bar.
        context.progress.advance(max_steps - walker.depth)
        context.progress.event("episode", episode_id=walker.episode_id, stage=stage)

    roll_out(
        context, walkers, generator, sampling,
        max_steps=max_steps, stopwatch=Stopwatch(context), on_finish=finished,
    )
    context.progress.finish()


def episode_summary(context: StageContext, purpose: str) -> dict:
    return episodes.summary(context.db, context.run_id, purpose)


def exploration_sampling(context: StageContext) -> Sampling:
    config = context.config
    return Sampling(
        temperature=config.explore.temperature,
        top_p=config.explore.top_p,
        max_new_tokens=config.model.max_new_tokens,
        seed=config.explore.seed,
    )


def explore_within_budget(context: StageContext, target: int, *, waves: int | None = None) -> dict:
    """Play waves of one episode per training task until exploration's environment steps
    reach `target` as closely as the next wave allows without overrunning it (each episode
    planned at its longest, `env.max_steps`; the last wave may cover only the first tasks).

    Every wave's episodes are stored before they are played, so a killed run finishes the
    wave it was in and plans the next from what is stored; `explore.rollouts_per_task` is
    not used. Wave w samples with seed `explore.seed + w`. `waves` caps the new waves played."""
    from store.budget import episodes_of, next_rollout
    from workbench.budget import explored_steps, next_wave

    config = context.config
    tasks = context.suite.load_tasks(config.env.tasks)
    sampling = exploration_sampling(context)
    policy = exploration_policy(config.model.adapter)
    while True:
        context.check_cancelled()
        running = episodes_of(context.db, context.run_id, "explore", status="running")
        if running:  # a wave a killed run left unfinished
            play_episodes(context, running, context.generator(), sampling, stage="explore")
        first = next_rollout(context.db, context.run_id, "explore")
        chosen = next_wave(tasks, target - explored_steps(context), config.env.max_steps)
        if not chosen or waves == 0:
            break
        waves = None if waves is None else waves - 1
        # One new rollout per task: in a LEAFE round the policy is new, and asking for
        # rollouts 0..first would replay every earlier wave under its name.
        open_episodes(context, chosen, purpose="explore", policy=policy, rollouts=1, first_rollout=first,
                      seed=config.explore.seed + first)
        play_episodes(
            context, episodes_of(context.db, context.run_id, "explore", rollout=first), context.generator(),
            dataclasses.replace(sampling, seed=config.explore.seed + first), stage=f"explore wave {first + 1}",
        )
    return {**episode_summary(context, "explore"), "env_steps": explored_steps(context), "env_steps_target": target,
            "waves": next_rollout(context.db, context.run_id, "explore")}


def exploration_policy(adapter: str) -> str:
    """The label of exploration's episodes: the policy that plays them (in a LEAFE round the
    previous round's adapter, else `[model] adapter`, else the base model)."""
    return f"adapter:{adapter}" if adapter else "base"


def run_explore(context: StageContext, *, first_rollout: int = 0) -> dict:
    """The explore stage, in a single pass and in every LEAFE round (workbench/rounds.py):
    with a declared budget, waves up to exploration's share of it (workbench/budget.py);
    else `explore.rollouts_per_task` episodes per task, numbered from `first_rollout`, so a
    later round's episodes are its own even when it acts with the same policy."""
    config = context.config
    if config.experiment.env_steps:
        # Exploration's part of LEAFE's budgeted path (workbench/budget.py, backtrack.spend_leafe_budget).
        from workbench.budget import explore_target

        return explore_within_budget(context, explore_target(context, config.experiment.env_steps))
    tasks = context.suite.load_tasks(config.env.tasks)
    policy = exploration_policy(config.model.adapter)
    episode_ids = open_episodes(
        context, tasks, purpose="explore", policy=policy, rollouts=config.explore.rollouts_per_task,
        seed=config.explore.seed, first_rollout=first_rollout,
    )
    if episodes.count_running(context.db, episode_ids):
        play_episodes(context, episode_ids, context.generator(), exploration_sampling(context),
                      stage=f"explore ({policy})" if config.model.adapter else "explore")
    return {**episode_summary(context, "explore"), "policy": policy}
