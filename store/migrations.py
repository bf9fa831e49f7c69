"""Numbered schema migrations. Each function runs once, in order, in one transaction,
and is recorded in `_migrations`; `PRAGMA user_version` holds how many have run, so a
store written by a newer leafe-tui is recognised and refused instead of damaged.

Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(function: Callable[[sqlite_utils.Database], None]):
    MIGRATIONS.append(function)
    return function


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    # The walking skeleton: runs with their provenance, the tasks they touch, episodes
    # and their steps as a tree (each node stores its own turn, not the whole prefix).
    db["runs"].create(
        {
            "id": int,
            "name": str,
            "config": str,  # resolved config as JSON, every default filled in
            "config_path": str,
            "stages": str,  # JSON list, in order
            "status": str,  # running | interrupted | failed | finished
            "error": str,
            "created_at": str,
            "finished_at": str,
            "provenance": str,  # JSON: package versions, model checksum, seeds
            "tokens_generated": int,
            "wall_time": float,
        },
        pk="id",
        defaults={"status": "running", "tokens_generated": 0, "wall_time": 0.0},
    )
    db["run_stages"].create(
        {
            "run_id": int,
            "stage": str,
            "position": int,
            "status": str,  # pending | running | finished
            "started_at": str,
            "finished_at": str,
            "summary": str,  # JSON
        },
        pk=("run_id", "position"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["tasks"].create(
        {"id": int, "env": str, "name": str, "spec": str},
        pk="id",
    )
    db["tasks"].create_index(["env", "name"], unique=True)
    db["episodes"].create(
        {
            "id": int,
            "run_id": int,
            "task_id": int,
            "policy": str,  # base | adapter:NAME | ...
            "purpose": str,  # explore | evaluate | baseline
            "rollout": int,  # index among the task's rollouts in this stage
            "seed": int,
            "status": str,  # running | finished
            "success": int,
            "score": float,
            "steps": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("task_id", "tasks", "id")],
        defaults={"status": "running", "success": 0, "score": 0.0, "steps": 0},
    )
    db["episodes"].create_index(["run_id", "purpose", "task_id", "rollout", "policy"], unique=True)
    db["nodes"].create(
        {
            "id": int,
            "episode_id": int,
            "parent_id": int,  # NULL for the root (the reset observation)
            "depth": int,  # 0 for the root, 1 for the first action ...
            "action": str,  # the model's text, as generated (NULL on the root)
            "observation": str,  # what the environment answered (the task on the root)
            "feedback": str,  # JSON object
            "score": float,
            "done": int,
            "success": int,
            "tokens": int,
            "truncated_turns": int,  # history turns dropped to fit the context
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("episode_id", "episodes", "id"), ("parent_id", "nodes", "id")],
        defaults={"score": 0.0, "done": 0, "success": 0, "tokens": 0, "truncated_turns": 0},
    )
    db["nodes"].create_index(["episode_id"])
    db["nodes"].create_index(["parent_id"])


@migration
def m002_reflection(db: sqlite_utils.Database) -> None:
    # LEAFE's reflect/backtrack/curate: notes with their rollback point, branches that
    # carry a note in their context, corrections and every curation decision (for undo).
    db["notes"].create(
        {
            "id": int,
            "node_id": int,  # the step reflected on (a failed leaf, or a periodic check)
            "rollback_node_id": int,  # the step to be replaced by the branches
            "text": str,
            "author": str,  # template | model | human
            "fallback_reason": str,  # why a model note fell back to the template
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("node_id", "nodes", "id"), ("rollback_node_id", "nodes", "id")],
    )
    db["notes"].create_index(["node_id"])
    db["nodes"].add_column("note_id", int, fk="notes", fk_col="id")  # note in context for this action
    db["nodes"].add_column("backtrack_point", int, not_null_default=0)
    db["nodes"].add_column("branch_depth", int, not_null_default=0)  # 0 on the original path
    db["corrections"].create(
        {
            "id": int,
            "note_id": int,
            "tau_node_id": int,  # the replaced step
            "leaf_node_id": int,  # the branch's last step
            "status": str,  # proposed | approved | edited | rejected
            "edited_action": str,
            "reason": str,  # why it was rejected (leakage ...) or left proposed
            "decided_by": str,
            "decided_at": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[
            ("note_id", "notes", "id"),
            ("tau_node_id", "nodes", "id"),
            ("leaf_node_id", "nodes", "id"),
        ],
        defaults={"status": "proposed"},
    )
    db["corrections"].create_index(["leaf_node_id"], unique=True)
    db["decisions"].create(
        {
            "id": int,
            "correction_id": int,
            "previous_status": str,
            "previous_edited_action": str,
            "status": str,
            "edited_action": str,
            "reviewer": str,
            "decided_at": str,
        },
        pk="id",
        foreign_keys=[("correction_id", "corrections", "id")],
    )


@migration
def m003_training_and_evaluation(db: sqlite_utils.Database) -> None:
    # Distillation and Pass@k: datasets exported from corrections, adapters with their
    # lineage and loss curve, per-task rollout counts and the Pass@k table.
    db["datasets"].create(
        {
            "id": int,
            "run_id": int,
            "name": str,
            "path": str,
            "n_examples": int,
            "kind": str,  # leafe | rft | grpo | early_experience
            "correction_ids": str,  # JSON list
            "task_names": str,  # JSON list of tasks the examples come from
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["adapters"].create(
        {
            "id": int,
            "run_id": int,
            "name": str,
            "path": str,
            "base_model": str,
            "dataset_id": int,
            "kind": str,
            "metrics": str,  # JSON: final loss, tokens, wall time, env_steps budget ...
            "lineage": str,  # JSON: run, dataset, corrections, config
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("dataset_id", "datasets", "id")],
    )
    db["adapters"].create_index(["name"], unique=True)
    db["train_log"].create(
        {"adapter_id": int, "step": int, "epoch": float, "loss": float, "learning_rate": float},
        pk=("adapter_id", "step"),
        foreign_keys=[("adapter_id", "adapters", "id")],
    )
    db["eval_results"].create(
        {"id": int, "run_id": int, "policy": str, "task_id": int, "n": int, "c": int},
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("task_id", "tasks", "id")],
    )
    db["eval_results"].create_index(["run_id", "policy", "task_id"], unique=True)
    db["evals"].create(
        {
            "id": int,
            "run_id": int,
            "policy": str,
            "k": int,
            "pass_at_k": float,
            "ci_low": float,
            "ci_high": float,
            "n_tasks": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["evals"].create_index(["run_id", "policy", "k"], unique=True)


@migration
def m004_paired_evaluation(db: sqlite_utils.Database) -> None:
    # Policies play the same tasks with the same seeds, so they are compared per task: each
    # policy against base and against the run's LEAFE adapter, a mean Pass@k difference
    # with a paired bootstrap interval. Results on tasks a policy was trained on are
    # flagged: there Pass@k measures memory, not a held-out skill.
    db["eval_results"].add_column("trained_on", int, not_null_default=0)  # 1: the policy trained on this task
    db["evals"].add_column("overlap_tasks", int, not_null_default=0)  # of n_tasks, how many it trained on
    db["eval_pairs"].create(
        {
            "id": int,
            "run_id": int,
            "policy": str,
            "reference": str,
            "k": int,
            "diff": float,  # mean over tasks of policy's Pass@k minus reference's
            "ci_low": float,
            "ci_high": float,
            "n_tasks": int,  # tasks both policies played
            "overlap_tasks": int,  # of those, tasks either policy was trained on
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        defaults={"overlap_tasks": 0},
    )
    db["eval_pairs"].create_index(["run_id", "policy", "reference", "k"], unique=True)


@migration
def m005_leafe_rounds(db: sqlite_utils.Database) -> None:
    # LEAFE rounds: the stages explore .. distill repeat once per round, so a stage row
    # says which round it belongs to (null: the stage runs once), and `--resume` skips
    # finished rounds. Each round's adapter is scored on validation tasks: the curve that
    # shows whether rounds help (round 0 is the base policy).
    db["run_stages"].add_column("round", int)
    db["round_scores"].create(
        {
            "id": int,
            "run_id": int,
            "round": int,
            "policy": str,  # "base" for round 0, else adapter:NAME
            "adapter_id": int,
            "tasks": int,  # validation tasks played
            "n": int,  # rollouts per task
            "successes": int,
            "pass_at_1": float,  # mean over tasks, with a 95% bootstrap interval
            "ci_low": float,
            "ci_high": float,
            "env_steps": int,  # LEAFE's environment steps in the run up to this round
            "train_examples": int,  # the round's adapter: examples and tokens trained on
            "train_tokens": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["round_scores"].create_index(["run_id", "round"], unique=True)


@migration
def m006_stage_costs(db: sqlite_utils.Database) -> None:
    # What each stage cost, so a researcher sees where a run's time and memory go: wall
    # time, tokens generated, environment steps and the peak resident memory of the process
    # tree (sampled). A resumed stage adds its times, tokens and steps; the peak is the larger.
    db["run_stages"].add_column("wall_time", float, not_null_default=0.0)  # seconds
    db["run_stages"].add_column("tokens", int, not_null_default=0)  # generated by the stage's policies
    db["run_stages"].add_column("env_steps", int, not_null_default=0)  # environment steps it played
    db["run_stages"].add_column("peak_rss", int, not_null_default=0)  # bytes, summed over the process tree


@migration
def m007_run_splits(db: sqlite_utils.Database) -> None:
    # A run records which tasks it trains on, chooses settings on and tests on, and which
    # test tasks are not held out (the same task, or in MiniGrid the same start state), so
    # a result can be read against its protocol.
    db["runs"].add_column("splits", str)  # JSON: training, validation, test, overlap, same_start


@migration
def m008_search_index(db: sqlite_utils.Database) -> None:
    # Search across runs (the runs screen's `/`): FTS5 indexes of the steps' actions and
    # observations and of the notes. They read their text from the tables themselves
    # (external content: nothing is stored twice), and triggers keep them current, so a
    # step or a note any program writes (a batch run, branch by hand) is found at once.
    # `rebuild` indexes what the store already holds.
    db.execute(
        "create virtual table _search_nodes using fts5(action, observation, content='nodes', content_rowid='id')"
    )
    db.execute("create virtual table _search_notes using fts5(text, content='notes', content_rowid='id')")
    for table, index, columns in (("nodes", "_search_nodes", ("action", "observation")),
                                  ("notes", "_search_notes", ("text",))):
        names = ", ".join(columns)
        new = ", ".join(f"new.{column}" for column in columns)
        old = ", ".join(f"old.{column}" for column in columns)
        db.execute(f"""create trigger {index}_insert after insert on {table} begin
                         insert into {index}(rowid, {names}) values (new.id, {new}); end""")
        db.execute(f"""create trigger {index}_delete after delete on {table} begin
                         insert into {index}({index}, rowid, {names}) values ('delete', old.id, {old}); end""")
        db.execute(f"""create trigger {index}_update after update of {names} on {table} begin
                         insert into {index}({index}, rowid, {names}) values ('delete', old.id, {old});
                         insert into {index}(rowid, {names}) values (new.id, {new}); end""")
        db.execute(f"insert into {index}({index}) values ('rebuild')")
    # The tree and the episode list count each step's corrections: found by index, not by scan.
    db["corrections"].create_index(["tau_node_id"], if_not_exists=True)


@migration
def m009_decision_log(db: sqlite_utils.Database) -> None:
    # Curation keeps its audit trail: an undo is a decision of its own (it names the decision
    # it reverts in `undoes`) instead of deleting that row, and every decision keeps its
    # reason (a reviewer's reason for a rejection, the leakage check's, a gain).
    db["decisions"].add_column("reason", str)
    db["decisions"].add_column("undoes", int, fk="decisions", fk_col="id")


@migration
def m010_training_seeds(db: sqlite_utils.Database) -> None:
    # Training seeds: [experiment] seeds repeats data collection, training and evaluation
    # once per seed inside one run. Each seed's data lives in a seed run of its own (its
    # parent the run a person started, `seed` its training seed), so every per-run query
    # stays as it is; the parent's stage rows say which seed they belong to, so `--resume`
    # skips the finished stages of finished seeds.
    db["runs"].add_column("parent_run_id", int)  # null: a run a person started
    db["runs"].add_column("seed", int)  # the training seed of a seed run
    db["run_stages"].add_column("seed", int)  # null: the run has one seed


@migration
def m011_evaluations(db: sqlite_utils.Database) -> None:
    # An evaluation started from the Results screen belongs to the run it was opened from:
    # it is recorded under that run with what it used (policies, tasks, n, k, seed) and,
    # once it ends, what it found (the Pass@k table, the paired comparisons, the tasks each
    # policy trained on), instead of becoming an unnamed run of its own.
    db["evaluations"].create(
        {
            "id": int,
            "run_id": int,
            "policies": str,  # JSON list
            "tasks": str,  # JSON: null (the run's test tasks), a count, or a list of names
            "n": int,
            "k": str,  # JSON list
            "seed": int,
            "status": str,  # running | finished | failed | cancelled
            "error": str,
            "summary": str,  # JSON: table, pairs, overlap, tasks played
            "created_at": str,
            "finished_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["evaluations"].create_index(["run_id"])
    # An edit of a correction is run from tau and continued by the policy: the decision
    # names the branch it made (and the one it replaced), so an undo restores that too.
    db["decisions"].add_column("leaf_node_id", int)
    db["decisions"].add_column("previous_leaf_node_id", int)
