"""The shipped examples do what their comments say: each loads, states its wall time on 2
cores, and `make run` is the LEAFE loop with corrections left for a person to review."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workbench.config import load_config

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def leading_comment(path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, line in enumerate(lines) if line.startswith("["))])


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_each_example_loads_and_states_its_wall_time(path):
    load_config(path)  # every key known, every value of its type
    comment = leading_comment(path)
    assert re.search(r"\b\d+ (s|min|h)\b", comment), f"{path.name}: no wall time in its comment"
    assert "2-core" in comment or "2 cores" in comment, f"{path.name}: the wall time says on what"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_each_example_names_task_files_that_exist(path):
    # examples/stdio.toml once named its tasks from the repository root; the loader reads a
    # suite path from the config's folder, so `leafe-tui --batch examples/stdio.toml` failed.
    suite = load_config(path).env.suite
    if suite.endswith((".jsonl", ".xsb")):
        assert (ROOT / suite).is_file() or Path(suite).is_file(), f"{path.name}: {suite} not found"


def test_make_run_is_the_leafe_loop_with_human_review():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--batch examples/quickstart.toml" in recipe
    config = load_config(ROOT / "examples/quickstart.toml")
    assert config.stages.run == ["explore", "reflect", "backtrack", "curate"]
    assert config.curate.policy == "human", "corrections wait for a person"
    assert config.model.name == "embedded" and config.backtrack.branches > 0


def test_the_leafe_example_is_the_quickstart_setting_curated_automatically():
    # tests/integration/test_real_runs.py runs leafe.toml as shipped and requires notes,
    # branches and corrections: sharing the quickstart's setting, it checks that one too.
    quickstart = load_config(ROOT / "examples/quickstart.toml")
    leafe = load_config(ROOT / "examples/leafe.toml")
    for section in ("model", "env", "explore", "prompts", "reflect", "backtrack"):
        assert dataclasses.asdict(getattr(leafe, section)) == dataclasses.asdict(getattr(quickstart, section)), section
    assert leafe.curate.policy == "auto" and leafe.curate.min_gain
    assert leafe.stages.run == ["explore", "reflect", "backtrack", "curate", "export"]
