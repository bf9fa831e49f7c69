"""The batch command under a launch of several processes: only distillation is
data-parallel, so any other stage is refused in one line before anything is written."""

from __future__ import annotations

import pytest

from tests.conftest import GUESS_ENV, write_config, write_script
from workbench.cli import main
from workbench.distill.plan import launched_processes


def config_with_stages(workdir, stages: str):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"]})
    return write_config(workdir / "c.toml", f"""
[model]
backend = "scripted"
script = "{script}"
[env]
kind = "{GUESS_ENV}"
tasks = 1
[stages]
run = {stages}
""")


@pytest.mark.parametrize("variable", ["WORLD_SIZE", "OMPI_COMM_WORLD_SIZE"])
def test_a_multi_process_launch_of_other_stages_is_refused_in_one_line(workdir, monkeypatch, capsys, variable):
    monkeypatch.setenv(variable, "8")
    assert launched_processes() == 8
    config = config_with_stages(workdir, '["explore", "reflect", "distill"]')
    assert main(["--batch", str(config), "--db", str(workdir / "s.db")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "under 8 processes" in line and "explore, reflect" in line
    assert "accelerate launch -m workbench.distill" in line
    assert not (workdir / "s.db").exists()


def test_one_process_is_not_a_launch(workdir, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launched_processes() == 1
    assert main(["--batch", str(config_with_stages(workdir, '["explore"]')), "--db", str(workdir / "s.db"), "--json"]) == 0
    assert '"status": "finished"' in capsys.readouterr().out
