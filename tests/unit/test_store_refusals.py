"""What the store does with input it cannot keep as it is, through the real command line:
text UTF-8 cannot encode is stored repaired and the run goes on; another application's
SQLite file, a path with a NUL byte and a store that cannot be written are refused in one
line (exit 2) before anything is written, and left byte for byte as they were."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from store import episodes, notes, queries, steps
from store.db import open_store, transaction
from tests.conftest import ROOT, write_config, write_script
from workbench.cli import main

TWO_TASKS = ROOT / "tests/fixtures/two_tasks.jsonl"
SURROGATE_ANSWER = "```python\ndef add(a, b):\n    raise ValueError('x' + chr(0xdcff))\n```"
GOOD_ADD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
GOOD_DOUBLE = "```python\ndef double(x: int) -> int:\n    return 2 * x\n```"


def leafe_tui(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command, as a user runs it (this worktree's code, offline)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *arguments], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def coding_config(folder: Path, actions: dict[str, list[str]], *, store: str = "") -> Path:
    script = write_script(folder / "s.jsonl", actions)
    return write_config(folder / "c.toml", f"""
{f'[store]{chr(10)}path = "{store}"' if store else ""}
[model]
backend = "scripted"
script = "{script}"
[env]
kind = "coding"
suite = "{TWO_TASKS}"
tasks = ["easy/add", "easy/double"]
max_steps = 2
""")


# -- text UTF-8 cannot encode ----------------------------------------------------------


def test_an_answer_raising_a_lone_surrogate_is_one_failed_step_and_the_run_goes_on(workdir):
    """Generated code raising ValueError('x' + chr(0xdcff)) used to fail the store's insert:
    exit 1, the whole lock-step wave lost, and --resume failing again."""
    config = coding_config(workdir, {"easy/add": [SURROGATE_ANSWER, GOOD_ADD], "easy/double": [GOOD_DOUBLE]})
    done = leafe_tui("--batch", str(config), "--db", "s.db", "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "finished" and summary["stages"]["explore"]["successes"] == 2
    db = open_store(workdir / "s.db")
    stored = {row["name"]: steps.original_path(db, row["episode_id"])
              for row in db.query("select tasks.name, episodes.id as episode_id from episodes "
                                  "join tasks on tasks.id = episodes.task_id")}
    failed, fixed = stored["easy/add"][1:]
    assert "ValueError: x\ufffd" in failed.observation  # the code point that cannot be stored, replaced
    assert failed.feedback["error"]["message"] == "x\ufffd" and not failed.success
    assert fixed.success, "the episode went on to its next step"
    assert stored["easy/double"][1].success, "the other episode of the same wave was stored"
    resumed = leafe_tui("--batch", str(config), "--db", "s.db", "--resume", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "nothing to resume" in resumed.stderr


def test_every_write_of_the_store_repairs_such_text(tmp_path):
    """One place, the store's connection: a note, a run's error and a step all keep it."""
    db = open_store(tmp_path / "s.db")
    bad = "x" + chr(0xDCFF) + chr(0xD800) + "y"
    with transaction(db):
        run = queries.create_run(db, config={"name": bad}, stages=["explore"])
        task = queries.ensure_task(db, "coding", bad, {})
        episode, root = episodes.create(db, run_id=run, task_id=task, purpose="explore", rollout=0,
                                               observation=bad)
        step = steps.add(db, episode_id=episode, parent_id=root, depth=1, action=bad, observation=bad,
                         feedback={"message": bad}, score=0.0, done=True, success=False)
        note = notes.add(db, node_id=step.id, rollback_node_id=step.id, text=bad, author="model")
        queries.set_run_status(db, run, "failed", bad)
    kept = "x\ufffd\ufffdy"
    assert (step.action, step.observation, step.feedback) == (kept, kept, {"message": kept})
    assert notes.get(db, note).text == kept
    assert queries.get_run(db, run)["error"] == kept and queries.get_run(db, run)["config"] == {"name": kept}
    assert queries.task_name(db, task) == kept


# -- files that are not leafe stores -----------------------------------------------------


def foreign_database(path: Path, tables: dict[str, str]) -> Path:
    connection = sqlite3.connect(path)
    for name, columns in tables.items():
        connection.execute(f"create table {name} ({columns})")
        connection.execute(f"insert into {name} default values")
    connection.commit()
    connection.close()
    return path


FOREIGN = {
    "an unrelated runs table": {"runs": "id integer primary key, started text"},
    "an application's own tables": {"invoices": "id integer primary key", "customers": "id integer primary key"},
    "someone else's _migrations": {"_migrations": "id integer primary key, name text default 'create_invoices'",
                                   "invoices": "id integer primary key"},
}


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_another_applications_sqlite_file_is_refused_and_left_byte_for_byte(workdir, kind):
    store = foreign_database(workdir / "app.db", FOREIGN[kind])
    before = digest(store)
    config = coding_config(workdir, {"easy/add": [GOOD_ADD]})
    batch = leafe_tui("--batch", str(config), "--db", "app.db", cwd=workdir)
    tui = leafe_tui("--db", "app.db", cwd=workdir)
    for done in (batch, tui):
        assert done.returncode == 2
        assert "another application's SQLite database" in one_line(done.stderr)
    assert digest(store) == before
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith("app.db")) == ["app.db"]  # no -wal, -shm


def test_an_empty_sqlite_file_becomes_a_store(workdir):
    sqlite3.connect(workdir / "empty.db").close()  # a valid database of no tables (0 bytes here)
    foreign_database(workdir / "blank.db", {})
    for name in ("empty.db", "blank.db"):
        assert "runs" in open_store(workdir / name).table_names()


# -- paths that cannot be a store --------------------------------------------------------


def test_a_store_path_with_a_nul_byte_is_one_line(workdir, capsys):
    config = coding_config(workdir, {"easy/add": [GOOD_ADD]}, store="a\\u0000b.db")
    done = leafe_tui("--batch", str(config), cwd=workdir)  # from the config: argv cannot hold NUL
    assert done.returncode == 2
    assert "NUL byte" in one_line(done.stderr)
    assert main(["--batch", str(config), "--db", "x\x00y.db"]) == 2  # --db, in the process
    assert "NUL byte" in one_line(capsys.readouterr().err)
    assert main(["--db", "x\x00y.db"]) == 2
    assert "NUL byte" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in workdir.iterdir()) == ["c.toml", "s.jsonl"]


def make_unwritable(path: Path) -> str:
    """Make `path` immutable (chattr +i, which binds root too); without chattr, a read-only
    file does it for anyone but root. Returns how, for `make_writable`."""
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        return "chattr"
    if os.geteuid() != 0:
        path.chmod(0o444)
        return "chmod"
    pytest.fail("this test needs chattr +i (root ignores a read-only mode), and it is missing or not permitted")


def make_writable(path: Path, how: str) -> None:
    if how == "chattr":
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o644)


def test_a_store_that_cannot_be_written_is_one_line_and_left_as_it_was(workdir):
    config = coding_config(workdir, {"easy/add": [GOOD_ADD], "easy/double": [GOOD_DOUBLE]})
    assert leafe_tui("--batch", str(config), "--db", "s.db", cwd=workdir).returncode == 0
    store = workdir / "s.db"
    for leftover in (workdir / "s.db-wal", workdir / "s.db-shm"):
        assert not leftover.exists(), "a finished run leaves a whole store"
    before = digest(store)
    how = make_unwritable(store)
    try:
        batch = leafe_tui("--batch", str(config), "--db", "s.db", cwd=workdir)
        tui = leafe_tui("--db", "s.db", cwd=workdir)
        for done in (batch, tui):
            assert done.returncode == 2
            assert "cannot be written" in one_line(done.stderr)
        assert digest(store) == before
    finally:
        make_writable(store, how)
