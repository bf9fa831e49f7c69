"""The benchmark scripts that train on a run's exported dataset answer a missing
`--dataset` with one line and exit status 2, before loading a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["shared_prefix.py", "lora_layers.py", "training_memory.py"])
def test_a_missing_dataset_is_one_line_not_a_traceback(script, tmp_path):
    missing = tmp_path / "early-experience-run-1-seed2.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--dataset", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"{script}: error: --dataset {missing}: no such file"
    assert "Traceback" not in done.stderr
