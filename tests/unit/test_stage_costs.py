"""Stage costs with the scripted backend: each stage's wall time, tokens generated,
environment steps and peak memory in the store, in --json and in the batch summary."""

from __future__ import annotations

import json
import threading

from store import costs as stored_costs
from store.budget import spent
from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from workbench import cli
from workbench.config import config_from_dict
from workbench.context import SilentProgress
from workbench.pipeline import run_pipeline

STAGES = ["explore", "reflect", "backtrack", "curate"]


def config(workdir, **sections):
    data = {
        "model": {"backend": "scripted", "script": str(write_script(
            workdir / "s.jsonl", {"guess/0": ["1", "2", "3"], "guess/1": ["guess 0"]}))},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 1, "rollback": "first_error"},
        "stages": {"run": STAGES},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


def test_each_stage_records_its_time_tokens_steps_and_memory(workdir):
    result = run_pipeline(config(workdir), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    costs = {cost.stage: cost for cost in stored_costs.stage_costs(db, result.run_id)}
    assert list(costs) == STAGES
    explored = db.execute(
        "select count(*), sum(tokens) from nodes where parent_id is not null and branch_depth = 0").fetchone()
    branched = db.execute("select count(*), sum(tokens) from nodes where branch_depth > 0").fetchone()
    assert (costs["explore"].env_steps, costs["explore"].tokens) == tuple(explored)
    assert (costs["backtrack"].env_steps, costs["backtrack"].tokens) == tuple(branched)
    assert branched[0] > 0
    # Reflecting and curating play nothing; LEAFE's steps are exactly explore's plus backtrack's.
    assert costs["reflect"].env_steps == costs["curate"].env_steps == 0
    assert costs["explore"].env_steps + costs["backtrack"].env_steps == spent(db, result.run_id, "explore")[0]
    for cost in costs.values():
        assert cost.wall_time > 0
        assert cost.peak_rss > 20 * 2**20  # a Python process with sqlite and numpy loaded
    as_json = json.loads(json.dumps(result.as_json()))
    assert [entry["stage"] for entry in as_json["stage_costs"]] == STAGES
    assert as_json["stage_costs"][0]["env_steps"] == costs["explore"].env_steps
    assert as_json["stage_costs"][0]["peak_rss_mb"] > 20


def test_the_batch_summary_prints_the_stage_costs(workdir, capsys):
    path = workdir / "run.toml"
    path.write_text(
        f'[model]\nbackend = "scripted"\nscript = "{write_script(workdir / "s.jsonl", {"guess/0": ["1"]})}"\n'
        f'[env]\nkind = "{GUESS_ENV}"\ntasks = 1\nmax_steps = 2\n[stages]\nrun = ["explore"]\n'
    )
    assert cli.main(["--batch", str(path), "--db", str(workdir / "s.db")]) == 0
    out = capsys.readouterr().out
    assert "Stage costs" in out
    row = next(line for line in out.splitlines() if "explore" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    # stage, wall time, tokens (one word per answer), env steps (1 episode of 2), peak memory
    assert cells[0] == "explore" and cells[2:4] == ["2", "2"] and cells[4].endswith("MiB")


class StopAfterSteps(SilentProgress):
    """Cancels the run after `limit` progress events of kind `node` (stored steps)."""

    def __init__(self, cancel: threading.Event, limit: int) -> None:
        self.cancel, self.limit, self.seen = cancel, limit, 0

    def event(self, kind: str, **data) -> None:
        if kind == "node":
            self.seen += 1
            if self.seen >= self.limit:
                self.cancel.set()


def test_a_resumed_stage_adds_to_what_it_cost_before(workdir):
    cancel = threading.Event()
    first = run_pipeline(config(workdir), db_path=workdir / "s.db", cancel=cancel,
                         progress=StopAfterSteps(cancel, 3))
    assert first.status == "interrupted"
    db = open_store(workdir / "s.db")
    before = stored_costs.stage_costs(db, first.run_id)[0]
    assert before.env_steps >= 2 and before.wall_time > 0  # the part of explore that ran is kept
    resumed = run_pipeline(config(workdir), db_path=workdir / "s.db", resume=True)
    assert resumed.status == "finished", resumed.error
    after = stored_costs.stage_costs(db, first.run_id)[0]
    assert after.env_steps == spent(db, first.run_id, "explore")[0] - stored_costs.stage_costs(db, first.run_id)[2].env_steps
    assert after.wall_time > before.wall_time
