"""Shared fixtures. Every test runs offline: nothing may reach a model hub."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GUESS_ENV = "tests.fixtures.guess_env:GuessEnvironment"


def write_script(path: Path, actions: dict[str, list[str]]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "actions": a}) + "\n" for t, a in actions.items()))
    return path


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder that is also the working directory (stores, exports land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


FIGURES: list[str] = []


@pytest.fixture(scope="session")
def report_figure():
    """`report_figure(line)`: a measured figure to print in the summary at the end of the
    test run (it shows with `pytest -q` too, where a test's own output does not)."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
