"""SIGKILL a batch run at several points, resume it, and compare with a run never killed:
same counts, the same steps, no duplicated and no orphaned node, no process left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, write_config, write_script

pytestmark = pytest.mark.integration

STAGES = '["explore", "reflect", "backtrack", "curate", "export"]'


def config_text(script: Path, env_kind: str) -> str:
    return f"""
[model]
backend = "scripted"
script = "{script}"
[env]
kind = "{env_kind}"
tasks = 4
max_steps = 3
[explore]
rollouts_per_task = 2
[backtrack]
branches = 2
max_depth = 2
rollback = "first_error"
[stages]
run = {STAGES}
"""


def command(config: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", str(db), *extra]


def environment() -> dict:
    return os.environ | {"PYTHONPATH": str(ROOT)}


def fingerprint(db_path: Path) -> tuple[dict, Counter]:
    connection = sqlite3.connect(db_path)
    counts = {
        table: connection.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("episodes", "nodes", "notes", "corrections", "datasets")
    }
    steps = Counter(
        connection.execute(
            """select tasks.name, episodes.rollout, nodes.depth, nodes.branch_depth, nodes.action,
                      nodes.note_id is null, nodes.success from nodes
               join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id"""
        ).fetchall()
    )
    orphans = connection.execute(
        """select count(*) from nodes where (parent_id is not null and parent_id not in (select id from nodes))
           or episode_id not in (select id from episodes)"""
    ).fetchone()[0]
    assert orphans == 0
    duplicates = connection.execute(
        """select count(*) from (select parent_id, action, note_id, branch_depth, count(*) c from nodes
           where parent_id is not null group by parent_id, action, note_id, branch_depth having c > 1
           and branch_depth = 0)"""
    ).fetchone()[0]
    assert duplicates == 0, "an original step was stored twice"
    assert connection.execute("pragma integrity_check").fetchone()[0] == "ok"
    connection.close()
    return counts, steps


def wait_for(db_path: Path, sql: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if not db_path.exists():
            continue
        try:
            connection = sqlite3.connect(db_path, timeout=0.2)
            try:
                if connection.execute(sql).fetchone()[0]:
                    return
            finally:
                connection.close()
        except sqlite3.Error:
            continue
    raise AssertionError(f"timed out waiting for: {sql}")


KILL_POINTS = {
    "explore": "select count(*) from nodes where depth > 0",
    "backtrack": "select count(*) from nodes where branch_depth > 0",
    "level 2": "select count(*) from nodes where branch_depth = 2",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_to_the_same_store(workdir, point):
    script = write_script(
        workdir / "s.jsonl", {f"guess/{i}": ["0", "4", "2", "6", "8", "1", "9", "3"] for i in range(4)}
    )
    config = write_config(workdir / "c.toml", config_text(script, "tests.fixtures.guess_env:SlowGuessEnvironment"))
    clean_db, killed_db = workdir / "clean.db", workdir / "killed.db"
    done = subprocess.run(command(config, clean_db), capture_output=True, text=True, cwd=ROOT, env=environment())
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen(command(config, killed_db), stderr=subprocess.DEVNULL, cwd=ROOT, env=environment())
    wait_for(killed_db, KILL_POINTS[point])
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(0.5)
    assert not [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    resumed = subprocess.run(command(config, killed_db, "--resume"), capture_output=True, text=True, cwd=ROOT, env=environment())
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(killed_db) == fingerprint(clean_db)
