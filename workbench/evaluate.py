"""Stage 6, evaluate: Pass@k of each policy (the base model, adapters) on held-out tasks.

Each policy plays `n` independent episodes per task under the same interaction budget
(`env.max_steps`) as exploration, with no reflection and no backtracking. Per policy and
task the store keeps (n, c) in `eval_results`; per policy and k the mean Pass@k over
tasks with a seeded 95% bootstrap interval in `evals`. Then each policy is compared per
task with `base` and with the run's LEAFE adapter (workbench/paired.py), into
`eval_pairs`. Results on tasks an adapter was trained on are flagged (`trained_on`,
`overlap_tasks`) besides the warning. Episodes are stored like any other (purpose
`evaluate`), so a killed evaluation resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from store import episodes, evals, queries
from store import pairs as stored_pairs
from store import seeds as stored_seeds
from store.budget import adapter_budgets
from store.db import transaction
from workbench.config import config_from_dict
from workbench.context import Progress, StageContext, Stopwatch
from workbench.distill.adapters import (
    ADAPTER_PREFIX,
    adapter_row_for,
    is_full_model_folder,
    resolve_adapter,
    training_task_names,
)
from workbench.envs.base import Task
from workbench.errors import Cancelled, LeafeError
from workbench.explore import open_episodes, register_tasks, unfinished_walkers
from workbench.models.base import Generator, Sampling
from workbench.paired import compare_policies
from workbench.passk import mean_pass_at_k
from workbench.rollout.engine import roll_out
from workbench.rollout.walkers import Walker
from workbench.seeds import run_label

PURPOSE = "evaluate"


def expand_policies(policies: Sequence[str], run_id: int | str) -> list[str]:
    """`{run}` in a policy stands for this run's id (`<run>-seed<s>` in a training seed's
    own stages), so one config can name the adapters its own stages train
    (`adapter:leafe-run-{run}`)."""
    return [policy.replace("{run}", str(run_id)) for policy in policies]


def check_policy(policy: str) -> None:
    if policy == "base":
        return
    if not policy.startswith(ADAPTER_PREFIX) or not policy[len(ADAPTER_PREFIX):].strip():
        raise LeafeError(f"evaluate: policy {policy!r} is neither 'base' nor 'adapter:NAME_OR_PATH'")


class PolicyGenerators:
    """The generator for each policy string.

    `base` is the run's policy model. On the hf backend the adapters share one separate
    copy of the base weights and are swapped on it, so the base policy's model never
    carries an adapter. Backends that apply adapters per request (vllm) swap on the
    run's own generator.
    """

    def __init__(self, context: StageContext) -> None:
        self.context = context
        self.adapter_host: Any = None
        self.copies: dict[str, Any] = {}  # policy -> a generator of its own (batching = "policies")
        self.restore_sharing: list[tuple[Any, bool]] = []

    def host(self) -> Any:
        """The hf generator that holds the adapters' base weights (never the run's own)."""
        if self.adapter_host is None:
            from workbench.models.hf import HFGenerator

            model = self.context.config.model
            self.context.progress.event("message", text=f"loading {model.name} for adapters")
            self.adapter_host = HFGenerator(dataclasses.replace(model, adapter=""))
        return self.adapter_host

    def playing_together(self, policy: str) -> Generator:
        """The generator of a policy that plays beside the others (hf): base on the run's
        generator, an adapter merged into weights of its own (HFGenerator.policy_copy)."""
        if policy == "base":
            return self.for_policy(policy)
        if policy not in self.copies:
            self.copies[policy] = self.host().policy_copy(resolve_adapter(self.context.db, policy))
        return self.copies[policy]

    def encode_every_row(self, generator: Generator) -> Generator:
        """The sequential baseline encodes each row on its own, as evaluation always did."""
        if hasattr(generator, "share_prompts"):
            self.restore_sharing.append((generator, generator.share_prompts))
            generator.share_prompts = False
        return generator

    def for_policy(self, policy: str) -> Generator:
        model = self.context.config.model
        if policy == "base":
            generator = self.context.generator()
            if model.backend != "hf" and hasattr(generator, "set_adapter"):
                generator.set_adapter(resolve_adapter(self.context.db, model.adapter) if model.adapter else None)
            return generator
        path = resolve_adapter(self.context.db, policy)
        if model.backend not in ("hf", "scripted") and is_full_model_folder(path):
            # A full fine-tune cannot join a batch of LoRA adapters on shared base weights:
            # it is evaluated on its own weights, as a model of its own.
            return self.context.generator(dataclasses.replace(model, name=path, adapter=""))
        if model.backend == "hf":
            self.host().set_adapter(path)
            return self.adapter_host
        generator = self.context.generator()
        if not hasattr(generator, "set_adapter"):
            raise LeafeError(f"evaluate: the {model.backend} backend cannot apply LoRA adapters ({policy})")
        generator.set_adapter(path)
        return generator

    def close(self) -> None:
        for generator, sharing in reversed(self.restore_sharing):
            generator.share_prompts = sharing
        self.restore_sharing.clear()
        for copy in self.copies.values():
            copy.close()
        self.copies.clear()
        if self.adapter_host is not None:
            self.adapter_host.close()
            self.adapter_host = None


def warn_on_overlap(context: StageContext, policy: str, tasks: Sequence[Task]) -> list[str]:
    """Pass@k on tasks an adapter trained on measures memory, not skill: say so, and
    return those tasks' names (their results are flagged in the store)."""
    trained = training_task_names(context.db, policy)
    shared = sorted(trained & {task.name for task in tasks})
    if shared:
        shown = ", ".join(shared[:5]) + (" ..." if len(shared) > 5 else "")
        context.say(
            f"warning: {policy} was trained on {len(shared)} of the {len(tasks)} evaluation tasks "
            f"({shown}); its Pass@k there is not a held-out measure"
        )
    return shared


def leafe_policy(context: StageContext, policies: Sequence[str]) -> str | None:
    """The evaluated policy that is the adapter this run's LEAFE distill stage trained (the
    latest, if several), or None: the second reference of the paired comparison."""
    found: tuple[int, str] | None = None
    for policy in policies:
        if not policy.startswith(ADAPTER_PREFIX):
            continue
        row = adapter_row_for(context.db, policy)
        if row and row["kind"] == "leafe" and row["run_id"] == context.run_id and (found is None or row["id"] > found[0]):
            found = (row["id"], policy)
    return found[1] if found else None


def record_pairs(
    context: StageContext,
    counts: Mapping[str, Mapping[int, tuple[int, int]]],
    trained: Mapping[str, set[int]],
    ks: Sequence[int],
) -> tuple[str | None, list[dict]]:
    """Compare every evaluated policy with base and with the run's LEAFE adapter, per task;
    store the comparisons and return (the LEAFE policy, the comparisons as dicts)."""
    settings = context.config.evaluate
    leafe = leafe_policy(context, list(counts))
    references = ["base", leafe] if leafe else ["base"]
    pairs = [
        dataclasses.asdict(pair)
        for pair in compare_policies(
            counts, references, ks, resamples=settings.bootstrap, seed=settings.seed, trained_on=trained
        )
    ]
    with transaction(context.db):
        stored_pairs.replace_pairs(context.db, context.run_id, pairs)
    return leafe, pairs


def task_counts(db: sqlite_utils.Database, episode_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(n, c) per task id over the given finished episodes."""
    return episodes.outcomes_by_task(db, episode_ids)


def record_policy(
    context: StageContext, policy: str, counts: dict[int, tuple[int, int]], ks: Sequence[int],
    trained: set[int] | frozenset[int] = frozenset(),
) -> dict[str, dict[str, float]]:
    """Write eval_results and evals for one policy, flagging the tasks in `trained` (ids
    the policy was trained on); return its row of the table."""
    settings = context.config.evaluate
    results = [counts[task_id] for task_id in sorted(counts)]
    measured = {k: mean_pass_at_k(results, k, resamples=settings.bootstrap, seed=settings.seed + k) for k in ks}
    with transaction(context.db):
        evals.replace_policy(context.db, context.run_id, policy, counts, measured)
        stored_pairs.flag_trained_tasks(context.db, context.run_id, policy, trained)
    return {str(k): {"pass_at_k": mean, "ci_low": low, "ci_high": high} for k, (mean, low, high) in measured.items()}


def episode_seed(seed: int, task: str, rollout: int) -> int:
    """An evaluation episode's seed: the same for every policy and however episodes are
    batched, so policies differ only by their weights."""
    digest = hashlib.blake2b(f"{seed}:{task}:{rollout}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def play_policies(
    context: StageContext,
    plans: Mapping[str, Sequence[int]],
    generator_of: Callable[[str], Generator],
    seeds: Mapping[int, int],
    sampling: Sampling,
    *,
    stage: str,
) -> None:
    """Play the unfinished episodes of every policy in `plans` together in lock-step, each
    walker on its policy's generator and seeded by its episode's seed."""
    walkers = []
    for policy, episode_ids in plans.items():
        mine = unfinished_walkers(context, episode_ids)
        if not mine:
            continue
        generator = generator_of(policy)
        for walker in mine:
            walker.generator, walker.seed = generator, seeds[walker.episode_id]
        walkers.extend(mine)
    if not walkers:
        return
    max_steps = context.config.env.max_steps
    episodes = sum(len(ids) for ids in plans.values())
    context.progress.start(stage, episodes * max_steps, f"{stage}: {episodes} episodes, {len(plans)} policies")
    # Steps already played (a resumed evaluation) and episodes already finished.
    context.progress.advance(episodes * max_steps - sum(max_steps - w.depth for w in walkers))

    def finished(walker: Walker) -> None:
        # An episode that ends early frees the rest of its step budget on the bar.
        context.progress.advance(max_steps - walker.depth)
        context.progress.event("episode", episode_id=walker.episode_id, stage=stage)

    fallback = walkers[0].generator
    assert fallback is not None
    roll_out(context, walkers, fallback, sampling, max_steps=max_steps, stopwatch=Stopwatch(context),
             on_finish=finished)
    context.progress.finish()


def skipped_adapters(context: StageContext) -> set[str]:
    """Adapters this run's training stages skipped for want of examples. A training seed's
    stage rows are stored with the run it belongs to, not with its seed run, so a seed
    run reads its parent's (adapter names carry the seed, so the seeds' do not mix)."""
    parent = stored_seeds.parent_of(context.db, context.run_id)
    by_seed = queries.skipped_adapters_by_seed(context.db, parent[0] if parent else context.run_id)
    return set().union(*by_seed.values())


def run_evaluate(context: StageContext) -> dict:
    config = context.config
    settings = config.evaluate
    ks = sorted(set(settings.k))
    too_big = [k for k in ks if k > settings.n]
    if too_big:
        raise LeafeError(
            f"evaluate: pass@{too_big[0]} needs at least {too_big[0]} rollouts per task, "
            f"but evaluate.n = {settings.n}"
        )
    policies = expand_policies(settings.policies, run_label(context))
    for policy in policies:
        check_policy(policy)
    tasks = context.suite.load_tasks(settings.tasks if settings.tasks is not None else config.env.tasks)
    if not tasks:
        raise LeafeError("evaluate: no tasks to evaluate on")
    task_ids = register_tasks(context, tasks)
    if settings.temperature <= 0 and settings.n > 1:
        context.say(
            "warning: evaluate.temperature = 0 makes every rollout of a task the same, "
            "so Pass@k equals Pass@1 for every k"
        )
    sampling = Sampling(
        temperature=settings.temperature,
        top_p=config.explore.top_p,
        max_new_tokens=config.model.max_new_tokens,
        seed=settings.seed,
    )
    generators = PolicyGenerators(context)
    table: dict[str, dict[str, dict[str, float]]] = {}
    successes: dict[str, int] = {}
    per_task: dict[str, dict[int, tuple[int, int]]] = {}
    trained: dict[str, set[int]] = {}
    overlap: dict[str, list[str]] = {}
    untrained = skipped_adapters(context)
    left_out: list[str] = []
    plans: dict[str, list[int]] = {}  # policy -> its episodes, task by task, rollout by rollout
    try:
        for policy in policies:
            if policy.startswith(ADAPTER_PREFIX) and policy[len(ADAPTER_PREFIX):] in untrained:
                context.say(f"warning: evaluate: {policy} left out: its training stage had nothing to train on")
                left_out.append(policy)
                continue
            if policy != "base":
                shared = warn_on_overlap(context, policy, tasks)
                if shared:
                    overlap[policy] = shared
                    trained[policy] = {task_ids[name] for name in shared}
            plans[policy] = open_episodes(
                context, tasks, purpose=PURPOSE, policy=policy, rollouts=settings.n, seed=settings.seed
            )
        # Every policy samples each episode with the same seed: differences come from the weights.
        seeds = {
            episode_id: episode_seed(settings.seed, tasks[index // settings.n].name, index % settings.n)
            for episode_ids in plans.values()
            for index, episode_id in enumerate(episode_ids)
        }
        if settings.batching == "policies" and config.model.backend == "hf":
            play_policies(context, plans, generators.playing_together, seeds, sampling, stage="evaluate")
        else:
            for policy, episode_ids in plans.items():
                play_policies(
                    context, {policy: episode_ids}, lambda p: generators.encode_every_row(generators.for_policy(p)),
                    seeds, sampling, stage=f"evaluate {policy}",
                )
        for policy, episode_ids in plans.items():
            counts = task_counts(context.db, episode_ids)
            table[policy] = record_policy(context, policy, counts, ks, trained.get(policy, frozenset()))
            successes[policy] = sum(c for _, c in counts.values())
            per_task[policy] = counts
    finally:
        generators.close()
    leafe, pairs = record_pairs(context, per_task, trained, ks)
    return {
        "tasks": len(tasks),
        "n": settings.n,
        "episodes": len(tasks) * settings.n * len(table),
        "successes": successes,
        "table": table,
        "leafe_policy": leafe,
        "pairs": pairs,
        "overlap": overlap,
        # Policies whose training had nothing to train on: the method left the base model
        # as it was, so across seeds it scores base's results there (seeds.py).
        "untrained": left_out,
        # What each trained method spent and trained on, beside what it scored (budget.py).
        "budgets": adapter_budgets(context.db, context.run_id),
    }


# -- an evaluation of its own, under a stored run (the Results screen's `e`) ---------------


def evaluate_in_run(
    db_path: str | Path,
    run_id: int,
    *,
    policies: Sequence[str],
    n: int,
    tasks: int | list[str] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Evaluate `policies` on `tasks` (None: the run's test tasks) with `n` rollouts each,
    under run `run_id` itself: its results, paired comparisons and overlap flags are the
    run's, and the evaluation is recorded with what it used and found
    (store/evaluations.py). Returns run_evaluate's summary with `evaluation_id`."""
    from store import evaluations

    with StageContext.for_run(db_path, run_id, progress=progress, cancel=cancel) as context:
        data = queries.get_run(context.db, run_id)["config"]
        settings = dict(data.get("evaluate") or {})
        settings.update(policies=list(policies), n=n)
        settings["k"] = [k for k in settings.get("k", [1, 2, 4]) if k <= n] or [1]
        if tasks is not None:
            settings["tasks"] = tasks
        context.config = config_from_dict({**data, "evaluate": settings})  # checked like any config
        chosen = context.config.evaluate
        evaluation_id = evaluations.start_evaluation(
            context.db, run_id, policies=chosen.policies, tasks=chosen.tasks, n=chosen.n, k=chosen.k,
            seed=chosen.seed,
        )
        try:
            summary = run_evaluate(context)
        except Cancelled:
            evaluations.finish_evaluation(context.db, evaluation_id, "cancelled")
            raise
        except Exception as error:
            evaluations.finish_evaluation(context.db, evaluation_id, "failed", error=str(error))
            raise
        recorded = {name: summary[name] for name in ("tasks", "n", "table", "pairs", "overlap", "leafe_policy")}
        evaluations.finish_evaluation(context.db, evaluation_id, "finished", summary=recorded)
        return {**summary, "run_id": run_id, "evaluation_id": evaluation_id}


# -- reading and showing ------------------------------------------------------------------


def load_pass_at_k_table(db: sqlite_utils.Database, run_id: int) -> dict[str, dict[str, dict[str, float]]]:
    """The run's Pass@k table from the store, in the shape `run_evaluate` returns."""
    return evals.table(db, run_id)


def format_cell(cell: dict[str, float] | None) -> str:
    if not cell:
        return "-"
    return f"{cell['pass_at_k']:.2f} [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]"


OVERLAP_MARK = "*"


def pass_at_k_table(
    table: dict[str, dict[str, dict[str, float]]], overlap: Mapping[str, Sequence[str]] | None = None
):
    """A Rich table: one row per policy, one column per k, cells `0.42 [0.30, 0.55]`; a
    policy trained on some of the tasks (`overlap`: policy -> task names) is marked `*`."""
    from rich.table import Table

    overlap = overlap or {}
    ks = sorted({int(k) for row in table.values() for k in row})
    view = Table(title="Pass@k (95% bootstrap interval over tasks)")
    view.add_column("policy", style="bold")
    for k in ks:
        view.add_column(f"pass@{k}", justify="right")
    for policy, row in table.items():
        label = f"{policy} {OVERLAP_MARK}" if overlap.get(policy) else policy
        view.add_row(label, *(format_cell(row.get(str(k))) for k in ks))
    if any(overlap.get(policy) for policy in table):
        view.caption = overlap_caption(overlap)
    return view


def overlap_caption(overlap: Mapping[str, Sequence[str]]) -> str:
    parts = [f"{policy} on {len(names)} ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
             for policy, names in overlap.items() if names]
    return f"{OVERLAP_MARK} trained on some evaluation tasks, not a held-out measure: " + "; ".join(parts)


def format_difference(pair: Mapping[str, float] | None) -> str:
    if not pair:
        return "-"
    return f"{pair['diff']:+.2f} [{pair['ci_low']:+.2f}, {pair['ci_high']:+.2f}]"


def paired_table(pairs: Sequence[Mapping[str, object]]):
    """A Rich table of the paired comparisons: one row per (policy, reference), one column
    per k, cells `+0.06 [-0.02, +0.14]` (policy minus reference)."""
    from rich.table import Table

    ks = sorted({int(pair["k"]) for pair in pairs})
    rows: dict[tuple[str, str], dict[int, Mapping]] = {}
    for pair in pairs:
        rows.setdefault((str(pair["policy"]), str(pair["reference"])), {})[int(pair["k"])] = pair
    view = Table(title="Paired difference in Pass@k, policy - reference (95% paired bootstrap over tasks)")
    view.add_column("policy", style="bold")
    view.add_column("reference")
    for k in ks:
        view.add_column(f"pass@{k}", justify="right")
    marked = False
    for (policy, reference), cells in rows.items():
        overlapping = any(int(cell.get("overlap_tasks") or 0) for cell in cells.values())
        marked = marked or overlapping
        view.add_row(f"{policy} {OVERLAP_MARK}" if overlapping else policy, reference,
                     *(format_difference(cells.get(k)) for k in ks))
    if marked:
        view.caption = f"{OVERLAP_MARK} one side was trained on some of the paired tasks"
    return view


def evaluation_tables(summary: Mapping[str, object]) -> list:
    """What the batch prints after `evaluate`: the Pass@k table, then the paired comparisons."""
    tables = [pass_at_k_table(summary["table"], summary.get("overlap"))]  # type: ignore[arg-type]
    if summary.get("pairs"):
        tables.append(paired_table(summary["pairs"]))  # type: ignore[arg-type]
    if summary.get("budgets"):
        from workbench.budget import budgets_table

        tables.append(budgets_table(summary["budgets"]))  # type: ignore[arg-type]
    return tables
