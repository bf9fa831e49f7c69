"""The store: migrations from blank, and bad files refused without being touched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from store import episodes, queries, steps
from store.db import open_store, schema_version
from store.migrations import MIGRATIONS
from store.schema import lacks_column_at, missing_columns, schema_columns
from workbench.errors import StoreError

EXPECTED_COLUMNS = {
    "runs": ["id", "name", "config", "config_path", "stages", "status", "error", "created_at",
             "finished_at", "provenance", "tokens_generated", "wall_time", "splits", "parent_run_id", "seed"],
    "tasks": ["id", "env", "name", "spec"],
    "episodes": ["id", "run_id", "task_id", "policy", "purpose", "rollout", "seed", "status",
                 "success", "score", "steps", "created_at"],
    "nodes": ["id", "episode_id", "parent_id", "depth", "action", "observation", "feedback", "score",
              "done", "success", "tokens", "truncated_turns", "created_at", "note_id",
              "backtrack_point", "branch_depth"],
    "notes": ["id", "node_id", "rollback_node_id", "text", "author", "fallback_reason", "created_at"],
    "corrections": ["id", "note_id", "tau_node_id", "leaf_node_id", "status", "edited_action", "reason",
                    "decided_by", "decided_at", "created_at"],
    "datasets": ["id", "run_id", "name", "path", "n_examples", "kind", "correction_ids", "task_names", "created_at"],
    "eval_results": ["id", "run_id", "policy", "task_id", "n", "c", "trained_on"],
    "evals": ["id", "run_id", "policy", "k", "pass_at_k", "ci_low", "ci_high", "n_tasks", "overlap_tasks"],
    "eval_pairs": ["id", "run_id", "policy", "reference", "k", "diff", "ci_low", "ci_high", "n_tasks",
                   "overlap_tasks"],
    "adapters": ["id", "run_id", "name", "path", "base_model", "dataset_id", "kind", "metrics",
                 "lineage", "created_at"],
    "train_log": ["adapter_id", "step", "epoch", "loss", "learning_rate"],
    "run_stages": ["run_id", "stage", "position", "status", "started_at", "finished_at", "summary", "round",
                   "wall_time", "tokens", "env_steps", "peak_rss", "seed"],
    "round_scores": ["id", "run_id", "round", "policy", "adapter_id", "tasks", "n", "successes", "pass_at_1",
                     "ci_low", "ci_high", "env_steps", "train_examples", "train_tokens"],
    "decisions": ["id", "correction_id", "previous_status", "previous_edited_action", "status",
                  "edited_action", "reviewer", "decided_at", "reason", "undoes", "leaf_node_id",
                  "previous_leaf_node_id"],
    "evaluations": ["id", "run_id", "policies", "tasks", "n", "k", "seed", "status", "error", "summary",
                    "created_at", "finished_at"],
    "_migrations": ["id", "name", "applied_at"],
    # The search index (m005): FTS5 over the steps' and notes' text, with SQLite's own tables.
    "_search_nodes": ["action", "observation"],
    "_search_notes": ["text"],
    **{f"_search_{source}_{part}": columns for source in ("nodes", "notes") for part, columns in (
        ("data", ["id", "block"]), ("idx", ["segid", "term", "pgno"]), ("docsize", ["id", "sz"]),
        ("config", ["k", "v"]))},
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_blank_store_migrates_to_the_documented_columns(tmp_path):
    db = open_store(tmp_path / "s.db")
    # Every table is documented (DESIGN.md, README "The store"): none missing, none extra.
    assert sorted(db.table_names()) == sorted(EXPECTED_COLUMNS)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [c.name for c in db[table].columns] == columns, table
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    names = [row["name"] for row in db["_migrations"].rows]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert names[0] == "m001_initial"


def test_the_schema_columns_are_those_a_new_store_gets_and_a_changed_store_lacks_some(tmp_path):
    path = tmp_path / "s.db"
    db = open_store(path)
    assert {table: sorted(schema_columns()[table]) for table in EXPECTED_COLUMNS} == {
        table: sorted(columns) for table, columns in EXPECTED_COLUMNS.items()
    }
    assert missing_columns(db) == {}
    db.close()
    # Another program drops a column and a table.
    connection = sqlite3.connect(path)
    connection.execute("alter table adapters drop column lineage")
    connection.execute("drop table train_log")
    connection.commit()
    connection.close()
    db = open_store(path)
    assert missing_columns(db) == {"adapters": {"lineage"}, "train_log": set(EXPECTED_COLUMNS["train_log"])}
    db.close()
    assert lacks_column_at(path, "lineage") and lacks_column_at(path, "learning_rate")
    # A column the store still has, and a name that is no column at all, are not lacking.
    assert not lacks_column_at(path, "feedback") and not lacks_column_at(path, "prompt")
    assert not lacks_column_at(tmp_path / "no-such.db", "lineage")
    assert not (tmp_path / "no-such.db").exists()


def test_reopening_applies_nothing_twice(tmp_path):
    path = tmp_path / "s.db"
    open_store(path).close()
    db = open_store(path)
    assert db["_migrations"].count == len(MIGRATIONS)


def test_tree_is_rebuilt_with_a_recursive_query(tmp_path):
    db = open_store(tmp_path / "s.db")
    run = queries.create_run(db, config={}, stages=["explore"])
    task = queries.ensure_task(db, "coding", "HumanEval/0", {})
    episode, root = episodes.create(db, run_id=run, task_id=task, purpose="explore", rollout=0, observation="task")
    parent = root
    for depth in range(1, 4):
        parent = steps.insert(db, episode_id=episode, parent_id=parent, depth=depth, action=f"a{depth}",
                                     observation=f"o{depth}", feedback={"n": depth}, score=0.1, done=False, success=False)
    path = steps.path_to(db, parent)
    assert [step["action"] for step in path] == [None, "a1", "a2", "a3"]
    assert path[2]["feedback"] == {"n": 2}


def test_not_sqlite_is_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is a text file, not a database\n" * 10)
    before = digest(path)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(path)
    assert digest(path) == before


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "future.db"
    open_store(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version={schema_version() + 5}")
    connection.commit()
    connection.close()
    before = digest(path)
    with pytest.raises(StoreError, match="newer"):
        open_store(path)
    assert digest(path) == before


def test_truncated_store_is_refused_and_untouched(tmp_path):
    path = tmp_path / "cut.db"
    db = open_store(path)
    db["filler"].insert_all({"text": "x" * 2000} for _ in range(50))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = digest(path)
    with pytest.raises(StoreError, match="truncated|corrupt|unreadable"):
        open_store(path)
    assert digest(path) == before


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope" / "s.db")


def test_two_processes_creating_one_store_at_once_migrate_it_once(workdir):
    # A TUI opening a store while a batch run creates it: each migration runs once, and
    # neither side sees "table already exists".
    import subprocess
    import sys

    script = (
        "import sys; from store.db import open_store; db = open_store(sys.argv[1]); "
        "print(db.execute('pragma user_version').fetchone()[0])"
    )
    root = str(Path(__file__).resolve().parents[2])
    for attempt in range(5):
        path = workdir / f"race{attempt}.db"
        runs = [subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=root, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": root})
                for _ in range(4)]
        results = [run.communicate(timeout=120) + (run.returncode,) for run in runs]
        assert all(code == 0 for _, _, code in results), [err for _, err, _ in results]
        assert len({out for out, _, _ in results}) == 1
        db = open_store(path)
        names = [row["name"] for row in db["_migrations"].rows]
        assert len(names) == len(set(names)) == int(results[0][0])
        db.close()
