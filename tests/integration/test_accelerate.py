"""Distillation under `accelerate launch`: the pipeline's distill stage unchanged in a
launched process, and the launchable entry point with two processes (a gloo group on
CPUs) where only rank 0 writes the adapter and the store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from store.db import open_store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"


def write_inputs(folder: Path) -> Path:
    rows = []
    for secret in (2, 4, 6, 8):
        rows.append({"messages": [
            {"role": "user", "content": "Guess a number from 0 to 9."},
            {"role": "assistant", "content": "5"},
            {"role": "user", "content": f"Wrong. The secret is {secret}."},
            {"role": "assistant", "content": str(secret)},
        ], "kind": "correction", "target_start": 3, "task": f"guess/{secret}", "correction_id": None})
    (folder / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = folder / "distill.toml"
    config.write_text(f"""
[model]
backend = "hf"
name = "embedded"
[env]
kind = "tests.fixtures.guess_env:GuessEnvironment"
tasks = 1
[distill]
dataset = "{folder / 'data.jsonl'}"
epochs = 1
batch_size = 1
max_length = 96
lora_r = 4
[stages]
run = ["distill"]
""")
    return config


def launch(arguments: list[str], threads: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(ACCELERATE), "launch", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_pipeline_distill_runs_under_accelerate_launch(tmp_path):
    config = write_inputs(tmp_path)
    db_path = tmp_path / "leafe.db"
    done = launch(["--num_processes", "1", "--cpu", "-m", "workbench.cli", "--batch", str(config),
                   "--db", str(db_path), "--json"], threads=2)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "finished"
    db = open_store(db_path)
    rows = list(db.query("select * from adapters"))
    assert len(rows) == 1 and rows[0]["name"] == f"leafe-run-{summary['run_id']}"
    assert (Path(rows[0]["path"]) / "adapter_model.safetensors").is_file()
    assert db.execute("select count(*) from train_log").fetchone()[0] == 4
    db.close()


def launch_two_cpu_processes(command: list[str]):
    """`accelerate launch` of `command` as two CPU processes (a gloo process group)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this checks the CPU process group; GPUs take the nccl path")
    return launch(["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                   "--dynamo_backend", "no", "--main_process_port", str(free_port()), *command], threads=1)


@pytest.mark.skipif(sys.platform != "linux", reason="gloo process groups are tested on Linux")
def test_two_processes_train_one_adapter_and_only_rank_zero_writes(tmp_path):
    config = write_inputs(tmp_path)
    db_path = tmp_path / "leafe.db"
    open_store(db_path).close()  # created and migrated before the ranks open it
    done = launch_two_cpu_processes(["-m", "workbench.distill", str(config), "--db", str(db_path), "--name", "two-ranks"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"adapter_id"') == 1  # one summary: rank 1 prints nothing
    db = open_store(db_path)
    rows = list(db.query("select * from adapters"))
    assert [row["name"] for row in rows] == ["two-ranks"]
    metrics = json.loads(rows[0]["metrics"])
    assert metrics["processes"] == 2
    assert metrics["steps"] == 2  # 4 examples, 1 per rank per step
    assert (tmp_path / "leafe.db-files" / "adapters" / "two-ranks" / "adapter_config.json").is_file()
    assert not [p for p in (tmp_path / "leafe.db-files" / "adapters").iterdir() if p.name.startswith(".")]
    db.close()


@pytest.mark.skipif(sys.platform != "linux", reason="gloo process groups are tested on Linux")
def test_a_distill_only_batch_under_two_processes_is_one_run_with_one_adapter(tmp_path):
    config = write_inputs(tmp_path)
    db_path = tmp_path / "leafe.db"
    done = launch_two_cpu_processes(["-m", "workbench.cli", "--batch", str(config), "--db", str(db_path), "--json"])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # one object: the other process prints nothing
    assert summary["status"] == "finished"
    db = open_store(db_path)
    assert db["runs"].count == 1
    (adapter,) = db.query("select * from adapters")
    assert adapter["name"] == f"leafe-run-{summary['run_id']}" and adapter["run_id"] == summary["run_id"]
    metrics = json.loads(adapter["metrics"])
    assert metrics["processes"] == 2 and metrics["steps"] == 2  # 4 examples, 1 per process per step
    assert (Path(adapter["path"]) / "adapter_model.safetensors").is_file()
    db.close()
