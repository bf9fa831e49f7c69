"""LEAFE rounds (the paper's periodic fine-tuning) and the validation step that scores them.

With `[leafe] rounds = N`, the stages explore .. distill run once per round: round r
explores and backtracks with round r-1's adapter, its corrections join the run's dataset
(export is cumulative over the run), and the adapter is trained again on all of them.
Each round runs the same stage functions as a single pass, on the round's config: the
previous round's adapter as `[model] adapter`, its share of `explore.rollouts_per_task`
(split evenly, so N rounds spend the exploration budget of one), or with `[experiment]
env_steps` its cumulative share r/N of the budget, spent through `spend_leafe_budget`. Names carry the round: adapter `leafe-run-<run>-round<r>` (or
`<distill.name>-round<r>`), dataset `<export name>-round<r>`. With validation tasks
(`[leafe] validation_tasks`), each round ends in a `validate` stage that scores its
adapter's Pass@1 on them (round 0: the base policy) into `round_scores`: the curve that
shows whether rounds help. It is part of training, apart from the final `evaluate`.

The pipeline asks `plan_stages` for the run's stage rows (stage, round) and runs each
through `run_in_round`; a stage row's round is stored, so `--resume` skips finished rounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from store import episodes, queries
from store import rounds as stored_rounds
from store.db import transaction
from workbench.config import Config
from workbench.context import StageContext
from workbench.errors import LeafeError
from workbench.models.base import Generator, Sampling
from workbench.outputs import suffixed_path

ROUND_STAGES = ("explore", "reflect", "backtrack", "curate", "export", "distill")
VALIDATE = "validate"
VALIDATE_PURPOSE = "validate"


def plan_stages(config: Config) -> list[tuple[str, int | None]]:
    """(stage, round) rows of a new run. The round stages listed in `stages.run` repeat once
    per round where the first of them stands, each round followed by `validate` when
    validation tasks are set; other stages run once (round None). One round without
    validation is exactly the configured list."""
    stages = list(config.stages.run)
    in_round = [stage for stage in stages if stage in ROUND_STAGES]
    validating = config.leafe.validation_tasks is not None and "distill" in in_round
    rounds = config.leafe.rounds
    if not in_round or (rounds == 1 and not validating):
        return [(stage, None) for stage in stages]
    block: list[tuple[str, int | None]] = []
    for number in range(1, rounds + 1):
        label = number if rounds > 1 else None
        block += [(stage, label) for stage in in_round]
        if validating:
            block.append((VALIDATE, label))
    first = stages.index(in_round[0])
    before = [(stage, None) for stage in stages[:first] if stage not in ROUND_STAGES]
    after = [(stage, None) for stage in stages[first:] if stage not in ROUND_STAGES]
    return before + block + after


def stage_key(stage: str, round_number: int | None) -> str:
    """The stage's key in a run's summaries (`--json` "stages"): `distill@2` in round 2."""
    return stage if round_number is None else f"{stage}@{round_number}"


def with_round(name: str, round_number: int | None) -> str:
    return name if round_number is None else f"{name}-round{round_number}"


def adapter_name(config: Config, run_id: int, round_number: int | None) -> str:
    """The LEAFE adapter a round trains: `leafe-run-<run>-round<r>` (no suffix in a single pass)."""
    return with_round(config.distill.name or f"leafe-run-{run_id}", round_number)


def with_round_path(path: str, round_number: int) -> str:
    return suffixed_path(path, f"-round{round_number}")


def previous_adapter(context: StageContext, round_number: int) -> str:
    """What round `round_number` acts with: the latest earlier round's adapter (a round whose
    distill had nothing to train left none), else the configured `[model] adapter`."""
    for earlier in range(round_number - 1, 0, -1):
        name = adapter_name(context.config, context.run_id, earlier)
        if stored_rounds.adapter_training(context.db, name, context.run_id) is not None:
            return name
    return context.config.model.adapter


def round_config(context: StageContext, round_number: int) -> Config:
    """The run's config as round `round_number` sees it: its share of the exploration
    episodes (with seeds of its own) or, with a declared budget, its cumulative share of the
    budget; the previous round's adapter as the policy; round names for its dataset and adapter."""
    config = context.config
    per_round = config.explore.rollouts_per_task // config.leafe.rounds
    explore = dataclasses.replace(
        config.explore, rollouts_per_task=per_round, seed=config.explore.seed + (round_number - 1) * per_round
    )
    experiment = dataclasses.replace(
        config.experiment, env_steps=round(config.experiment.env_steps * round_number / config.leafe.rounds)
    )
    model = dataclasses.replace(config.model, adapter=previous_adapter(context, round_number))
    export = dataclasses.replace(
        config.export,
        name=with_round(config.export.name or f"leafe-run-{context.run_id}", round_number),
        path=with_round_path(config.export.path, round_number),
    )
    distill = dataclasses.replace(
        config.distill,
        name=adapter_name(config, context.run_id, round_number),
        output=with_round_path(config.distill.output, round_number),
    )
    return dataclasses.replace(
        config, explore=explore, experiment=experiment, model=model, export=export, distill=distill
    )


def first_rollout(config: Config, round_number: int) -> int:
    """Where round `round_number`'s exploration episodes are numbered from: after the
    earlier rounds' shares."""
    return (round_number - 1) * (config.explore.rollouts_per_task // config.leafe.rounds)


def run_in_round(
    stage: str, round_number: int | None, context: StageContext, function: Callable[[StageContext], dict]
) -> dict:
    """Run one stage row: outside the rounds as it is, inside round r on round r's config."""
    if stage == VALIDATE:
        return run_validate(context, round_number)
    if round_number is None:
        return function(context)
    inner = dataclasses.replace(context, config=round_config(context, round_number))
    try:
        if stage == "explore":
            # The explore stage itself, numbering this round's episodes after the earlier rounds'.
            summary = function(inner, first_rollout=first_rollout(context.config, round_number))
        else:
            summary = function(inner)
    finally:
        context.usage_since = inner.usage_since  # time is counted once, whichever context stored it
    return {"round": round_number, **summary}


# -- validation ---------------------------------------------------------------------------


def run_validate(context: StageContext, round_number: int | None = None) -> dict:
    """Score the round's adapter (and, once, the base policy as round 0) on the validation
    tasks: Pass@1 over `validation_n` rollouts per task, stored in `round_scores`."""
    config = context.config
    if config.leafe.validation_tasks is None:
        raise LeafeError("validate: set [leafe] validation_tasks to the tasks that score each round")
    tasks = context.suite.load_tasks(config.leafe.validation_tasks)
    if not tasks:
        raise LeafeError("validate: [leafe] validation_tasks selects no tasks")
    trained_on = {task.name for task in context.suite.load_tasks(config.env.tasks)}
    shared = sorted(trained_on & {task.name for task in tasks})
    if shared:
        context.say(
            f"warning: validate: {len(shared)} of the {len(tasks)} validation tasks are also exploration "
            f"tasks ({', '.join(shared[:3])}{' ...' if len(shared) > 3 else ''}); the rounds curve measures memory there"
        )
    summary: dict = {"round": round_number or 1, "tasks": len(tasks)}
    if stored_rounds.score_of(context.db, context.run_id, 0) is None:
        base = score_policy(context, tasks, "base", context.generator(), 0, None)
        summary["base_pass_at_1"] = base.pass_at_1
    name = adapter_name(config, context.run_id, round_number)
    trained = stored_rounds.adapter_training(context.db, name, context.run_id)
    if trained is None:
        context.say(f"warning: validate: round {round_number or 1} trained no adapter ({name}); nothing to score")
        return {**summary, "skipped": f"no adapter {name}"}
    adapter_id, metrics = trained[0], queries.loads(trained[1], {})
    generator = context.generator(dataclasses.replace(config.model, adapter=name))
    score = score_policy(
        context, tasks, f"adapter:{name}", generator, round_number or 1, adapter_id,
        train_examples=metrics.get("n_examples"), train_tokens=metrics.get("tokens"),
    )
    context.say(
        f"validate round {score.round}: {name} Pass@1 {score.pass_at_1:.3f} "
        f"[{score.ci_low:.3f}, {score.ci_high:.3f}] on {score.tasks} tasks"
    )
    return {**summary, "policy": score.policy, "pass_at_1": score.pass_at_1,
            "ci_low": score.ci_low, "ci_high": score.ci_high, "env_steps": score.env_steps}


def score_policy(
    context: StageContext, tasks: list, policy: str, generator: Generator, round_number: int,
    adapter_id: int | None, *, train_examples: int | None = None, train_tokens: int | None = None,
) -> stored_rounds.RoundScore:
    from workbench.distill.stage import leafe_env_steps
    from workbench.evaluate import task_counts
    from workbench.explore import open_episodes, play_episodes
    from workbench.passk import mean_pass_at_k

    config = context.config
    episode_ids = open_episodes(
        context, tasks, purpose=VALIDATE_PURPOSE, policy=policy,
        rollouts=config.leafe.validation_n, seed=config.evaluate.seed,
    )
    sampling = Sampling(
        temperature=config.evaluate.temperature, top_p=config.explore.top_p,
        max_new_tokens=config.model.max_new_tokens, seed=config.evaluate.seed,
    )
    if episodes.count_running(context.db, episode_ids):
        play_episodes(context, episode_ids, generator, sampling, stage=f"validate {policy}")
    counts = task_counts(context.db, episode_ids)
    mean, low, high = mean_pass_at_k(
        list(counts.values()), 1, resamples=config.evaluate.bootstrap, seed=config.evaluate.seed + 1
    )
    score = stored_rounds.RoundScore(
        round=round_number, policy=policy, adapter_id=adapter_id, tasks=len(counts),
        n=config.leafe.validation_n, successes=sum(c for _, c in counts.values()),
        pass_at_1=mean, ci_low=low, ci_high=high,
        env_steps=leafe_env_steps(context.db, context.run_id) if round_number else 0,
        train_examples=train_examples, train_tokens=train_tokens,
    )
    with transaction(context.db):
        stored_rounds.save_score(context.db, context.run_id, score)
    return score
