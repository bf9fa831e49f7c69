"""SIGKILL a batch run at several points, from exploration to the middle of distillation,
resuming it after each kill, and compare with a run never killed: same counts, the same
steps, no duplicated and no orphaned node, one adapter that loads, no temporary files
left beside it, no process left behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, write_config, write_script

pytestmark = pytest.mark.integration

STAGES = '["explore", "reflect", "backtrack", "curate", "export", "distill"]'
ADAPTER = "leafe-run-1"  # the default name of run 1's adapter
OWN = "leafe.db-files"  # the folder of files the store leafe.db writes, beside it


def config_text(script: Path, env_kind: str) -> str:
    # Exploration replays a script; distill trains the weights `model.name` names.
    return f"""
[model]
backend = "scripted"
script = "{script}"
name = "embedded"
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
[distill]
epochs = 1
batch_size = 4
max_length = 256
lora_r = 4
lora_alpha = 8
report_to = "tensorboard"
[stages]
run = {STAGES}
"""


def command(config: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", str(db), *extra]


def environment() -> dict:
    # One torch thread: two runs share a small machine; more threads only fight.
    return os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def fingerprint(db_path: Path) -> tuple[dict, Counter]:
    connection = sqlite3.connect(db_path)
    counts = {
        table: connection.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("episodes", "nodes", "notes", "corrections", "datasets", "adapters", "train_log")
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


def store_says(db_path: Path, sql: str) -> bool:
    if not db_path.exists():
        return False
    try:
        connection = sqlite3.connect(db_path, timeout=0.2)
        try:
            return bool(connection.execute(sql).fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return False


def wait_for(reached: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if reached():
            return
    raise AssertionError(f"timed out waiting for: {what}")


def staging_folders(folder: Path) -> list[Path]:
    """Folders an atomic write of the adapter is still filling."""
    return sorted((folder / OWN / "adapters").glob(f".{ADAPTER}.*"))


def training_started(folder: Path) -> bool:
    """The adapter's staging folder has TensorBoard events: the model is loaded and the
    training loop has begun."""
    return any(staging.glob("runs/events.out.tfevents.*") for staging in staging_folders(folder))


def kill_points(folder: Path) -> list[tuple[str, Callable[[], bool], float]]:
    db = folder / "leafe.db"
    return [
        ("explore", lambda: store_says(db, "select count(*) from nodes where depth > 0"), 60),
        ("backtrack", lambda: store_says(db, "select count(*) from nodes where branch_depth > 0"), 60),
        ("level 2", lambda: store_says(db, "select count(*) from nodes where branch_depth = 2"), 60),
        ("distill running", lambda: store_says(
            db, "select count(*) from run_stages where stage = 'distill' and status = 'running'"), 60),
        ("distill training", lambda: training_started(folder), 180),
    ]


def kill_at(folder: Path, config: Path, point: str, reached: Callable[[], bool], timeout: float) -> None:
    """Start (or resume) the run, SIGKILL it once `reached`, and check nothing survives it."""
    assert not reached(), f"{point}: already reached before this start, so no kill would land there"
    db = folder / "leafe.db"
    extra = ("--resume",) if db.exists() else ()
    process = subprocess.Popen(
        command(config, db, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=folder, env=environment(),
    )
    try:
        wait_for(reached, point, timeout)
        assert process.poll() is None, f"{point}: the run ended before it could be killed"
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.5)
    assert not [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE], point
    fingerprint(db)  # what a kill leaves is consistent: no orphan, no duplicate, intact file


def adapter_rows(db_path: Path) -> list[dict]:
    connection = sqlite3.connect(db_path)
    connection.row_factory = sqlite3.Row
    rows = [dict(row) for row in connection.execute("select * from adapters")]
    connection.close()
    return rows


def dataset_rows(folder: Path) -> list[str]:
    (path,) = (folder / OWN / "runs" / "run-1").glob("*.jsonl")
    return sorted(path.read_text().splitlines())


def test_run_killed_at_each_stage_resumes_to_the_same_store(workdir):
    script = write_script(
        workdir / "s.jsonl", {f"guess/{i}": ["0", "4", "2", "6", "8", "1", "9", "3"] for i in range(4)}
    )
    config = write_config(workdir / "c.toml", config_text(script, "tests.fixtures.guess_env:PausingGuessEnvironment"))
    clean, killed = workdir / "clean", workdir / "killed"
    clean.mkdir()
    killed.mkdir()
    # The run never killed goes alongside (its steps mostly wait on the environment).
    clean_log = (workdir / "clean.log").open("w")
    never_killed = subprocess.Popen(
        command(config, clean / "leafe.db"), stdout=clean_log, stderr=subprocess.STDOUT, cwd=clean, env=environment()
    )
    try:
        for point, reached, timeout in kill_points(killed):
            kill_at(killed, config, point, reached, timeout)
            if point == "distill training":
                # Killed mid-training: a half-written staging folder, and no adapter recorded.
                assert staging_folders(killed) and not (killed / OWN / "adapters" / ADAPTER).exists()
                assert adapter_rows(killed / "leafe.db") == []
        resumed = subprocess.run(
            command(config, killed / "leafe.db", "--resume", "--json"),
            capture_output=True, text=True, cwd=killed, env=environment(), timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert never_killed.wait(timeout=300) == 0, (workdir / "clean.log").read_text()
    finally:
        if never_killed.poll() is None:
            never_killed.kill()
            never_killed.wait()
        clean_log.close()
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "finished"

    assert fingerprint(killed / "leafe.db") == fingerprint(clean / "leafe.db")
    assert dataset_rows(killed) == dataset_rows(clean)

    # One adapter, recorded once, trained on the embedded model's weights, in its folder
    # with nothing else beside it: the killed attempts' staging folders are gone.
    (adapter,) = adapter_rows(killed / "leafe.db")
    (clean_adapter,) = adapter_rows(clean / "leafe.db")
    folder = killed / OWN / "adapters" / ADAPTER
    assert adapter["name"] == ADAPTER and adapter["base_model"] == "embedded"
    assert Path(adapter["path"]) == folder.resolve()
    assert summary["stages"]["distill"]["adapter_id"] == adapter["id"]
    assert json.loads(adapter["metrics"])["steps"] == json.loads(clean_adapter["metrics"])["steps"] == 2
    assert sorted(p.name for p in (killed / OWN / "adapters").iterdir()) == [ADAPTER]
    assert not list((killed / OWN / "runs").rglob(".*"))
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()

    from workbench.models.embedded import ensure_embedded_model

    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert Path(adapter_config["base_model_name_or_path"]) == ensure_embedded_model()

    # It loads onto the embedded model the way a later run's `model.adapter` would, and
    # holds the same weights as the adapter of the run never killed.
    import torch
    from safetensors.torch import load_file

    from store.db import open_store
    from workbench.config import ModelConfig
    from workbench.distill.adapters import resolve_adapter
    from workbench.models.hf import HFGenerator

    weights, clean_weights = load_file(folder / "adapter_model.safetensors"), load_file(
        clean / OWN / "adapters" / ADAPTER / "adapter_model.safetensors")
    assert weights.keys() == clean_weights.keys() and weights
    assert all(torch.allclose(weights[k], clean_weights[k], atol=1e-4) for k in weights)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    db = open_store(killed / "leafe.db")
    generator = HFGenerator(ModelConfig(name="embedded", device="cpu"))
    try:
        generator.set_adapter(resolve_adapter(db, ADAPTER))
        assert generator.adapter_path == str(folder.resolve())
        assert any("lora_" in name for name, _ in generator.model.named_parameters())
    finally:
        generator.close()
        db.close()
        torch.set_num_threads(threads)
