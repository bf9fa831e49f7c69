"""Headless runs on a user environment with the scripted backend: lock-step batching,
the scripted order, resume, and the command line's contracts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from store import queries
from store.db import open_store
from tests.conftest import GUESS_ENV, ROOT, write_config, write_script
from workbench.cli import main
from workbench.config import config_from_dict
from workbench.errors import LeafeError
from workbench.models.scripted import ScriptedGenerator
from workbench.pipeline import run_pipeline

LEAFE_TUI = [sys.executable, "-m", "workbench.cli"]


def guess_config(script: Path, **sections) -> dict:
    data = {
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "explore": {"rollouts_per_task": 2},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def test_one_batched_generate_call_per_step(workdir, monkeypatch):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0", "1", "2"], "guess/1": ["0", "1", "2"]})
    calls = []
    original = ScriptedGenerator.generate

    def counting(self, prompts, n, sampling, *, tags=None):
        calls.append(len(prompts))
        return original(self, prompts, n, sampling, tags=tags)

    monkeypatch.setattr(ScriptedGenerator, "generate", counting)
    result = run_pipeline(config_from_dict(guess_config(script)), db_path=workdir / "s.db")
    assert result.status == "finished"
    # 4 episodes advance together: 3 steps, one call each, all live episodes in it.
    assert calls == [4, 4, 4]
    assert result.counts["episodes"] == 4 and result.counts["nodes"] == 4 + 12


def test_scripted_actions_follow_the_documented_order(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["1", "2", "4", "6"], "guess/1": ["7"], "other": ["9"]})
    run_pipeline(config_from_dict(guess_config(script)), db_path=workdir / "s.db")
    db = open_store(workdir / "s.db")
    rows = db.execute(
        """select tasks.name, episodes.rollout, nodes.depth, nodes.action from nodes
           join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id
           where nodes.depth > 0 order by tasks.name, episodes.rollout, nodes.depth"""
    ).fetchall()
    # guess/0: step 1 gives rollouts actions 0 and 1, step 2 actions 2 and 3, then the last repeats.
    assert [r for r in rows if r[0] == "guess/0"] == [
        ("guess/0", 0, 1, "1"), ("guess/0", 0, 2, "4"), ("guess/0", 0, 3, "6"),
        ("guess/0", 1, 1, "2"), ("guess/0", 1, 2, "6"), ("guess/0", 1, 3, "6"),
    ]
    # guess/1 solves at once (the secret is 7): one step per episode.
    assert [r for r in rows if r[0] == "guess/1"] == [("guess/1", 0, 1, "7"), ("guess/1", 1, 1, "7")]


def test_each_node_is_a_child_of_the_previous_step(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["1", "2", "3"], "guess/1": ["1"]})
    run_pipeline(config_from_dict(guess_config(script)), db_path=workdir / "s.db")
    db = open_store(workdir / "s.db")
    for node in db["nodes"].rows_where("depth > 0"):
        parent = db["nodes"].get(node["parent_id"])
        assert parent["depth"] == node["depth"] - 1 and parent["episode_id"] == node["episode_id"]
        assert json.loads(node["feedback"]) is not None


def test_run_records_provenance(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["7"]})
    result = run_pipeline(config_from_dict(guess_config(script)), db_path=workdir / "s.db")
    run = queries.get_run(open_store(workdir / "s.db"), result.run_id)
    assert run["config"]["env"]["max_steps"] == 3
    assert run["provenance"]["versions"]["leafe-tui"] == "0.1.0"
    assert run["provenance"]["model"]["checksum"].startswith("script:")
    assert run["provenance"]["seeds"]["explore"] == 0
    assert run["tokens_generated"] > 0 and run["wall_time"] > 0


def test_wall_time_covers_every_stage_and_adds_up_across_resume(workdir, monkeypatch):
    """A run's wall time is the whole run's: stages that roll nothing out (reflect, curate)
    count, and a run interrupted and resumed adds the second part to the first. Tokens
    generated are counted once."""
    import workbench.curate
    import workbench.reflect

    pause = 0.5
    paused: list[float] = []
    cancel = threading.Event()
    reflect, curate = workbench.reflect.run_reflect, workbench.curate.run_curate

    def slow_reflect(context):
        time.sleep(pause)
        paused.append(pause)
        return reflect(context)

    def slow_curate(context):
        time.sleep(pause)
        paused.append(pause)
        if len(paused) == 2:  # the first time: stop the run here, as Ctrl-C would
            cancel.set()
            context.check_cancelled()
        return curate(context)

    monkeypatch.setattr(workbench.reflect, "run_reflect", slow_reflect)
    monkeypatch.setattr(workbench.curate, "run_curate", slow_curate)
    script = write_script(workdir / "s.jsonl", {"guess/0": ["1", "2", "4"], "guess/1": ["3", "7"]})
    config = config_from_dict(guess_config(script, stages={"run": ["explore", "reflect", "curate"]}))
    began = time.monotonic()
    first = run_pipeline(config, db_path=workdir / "s.db", cancel=cancel)
    assert first.status == "interrupted" and "curate" not in first.summaries
    db = open_store(workdir / "s.db")
    after_first = queries.get_run(db, first.run_id)["wall_time"]
    assert after_first >= 2 * pause  # reflect's time and the interrupted curate's
    resumed = run_pipeline(config, db_path=workdir / "s.db", resume=True)
    elapsed = time.monotonic() - began
    assert resumed.status == "finished" and resumed.run_id == first.run_id
    run = queries.get_run(db, first.run_id)
    assert len(paused) == 3
    assert after_first + pause <= run["wall_time"] <= elapsed
    stored_tokens = db.execute(
        "select sum(nodes.tokens) from nodes join episodes on episodes.id = nodes.episode_id where run_id = ?",
        [first.run_id],
    ).fetchone()[0]
    assert run["tokens_generated"] == stored_tokens > 0


def test_resume_with_nothing_unfinished_says_so(workdir, capsys):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["7"]})
    config = write_config(workdir / "c.toml", f'[model]\nbackend = "scripted"\nscript = "{script}"\n[env]\nkind = "{GUESS_ENV}"\ntasks = 2\n')
    assert main(["--batch", str(config), "--db", "s.db"]) == 0
    capsys.readouterr()
    assert main(["--batch", str(config), "--db", "s.db", "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "nothing-to-resume" and summary["run_id"] == 1
    assert open_store(workdir / "s.db")["runs"].count == 1  # nothing new was started


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("[env]\nmax_stepz = 3\n", "unknown key [env] max_stepz"),
        ("[env]\nmax_steps = 'x'\n", "env.max_steps must be an integer"),
        ('[model]\nname = "no-such-model"\n', "model 'no-such-model' not found"),
        ('[model]\nbackend = "scripted"\nscript = "missing.jsonl"\n', "model.script: file not found"),
        ('[env]\nsuite = "missing-tasks.jsonl"\n', "missing-tasks.jsonl"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(workdir, config_text, message):
    config = write_config(workdir / "c.toml", config_text)
    process = subprocess.run(
        [*LEAFE_TUI, "--batch", str(config), "--db", "out.db"],
        capture_output=True, text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert process.returncode == 2, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], process.stderr
    assert not (ROOT / "out.db").exists()


def test_a_scripted_run_that_trains_needs_the_weights_model_name_names(workdir):
    # Replayed actions need no weights; a training stage trains `model.name`, so a name
    # that is not there is refused before anything is written, not after exploring.
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["7"]})
    data = guess_config(script, model={"name": str(workdir / "no-model")})
    with pytest.raises(LeafeError, match="no-model"):
        run_pipeline(config_from_dict(data | {"stages": {"run": ["explore", "distill"]}}), db_path=workdir / "s.db")
    assert not (workdir / "s.db").exists()
    assert run_pipeline(config_from_dict(data), db_path=workdir / "s.db").status == "finished"


def test_missing_config_file(workdir, capsys):
    assert main(["--batch", "nowhere.toml"]) == 2
    assert "config file not found: nowhere.toml" in capsys.readouterr().err


def test_dry_run_prints_every_default(workdir, capsys):
    config = write_config(workdir / "c.toml", "[env]\ntasks = 2\n")
    assert main(["--batch", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for line in ("[model]", 'name = "embedded"', "[env.sandbox]", "[prompts]", "system = ", "[backtrack]", "branches = 2"):
        assert line in out
    assert not (workdir / "leafe.db").exists()


def test_json_summary_has_integer_counts(workdir, capsys):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["7"]})
    config = write_config(workdir / "c.toml", f'[model]\nbackend = "scripted"\nscript = "{script}"\n[env]\nkind = "{GUESS_ENV}"\ntasks = 2\n')
    assert main(["--batch", str(config), "--db", "s.db", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["run_id"] == 1 and summary["episodes"] == 2 and summary["nodes"] == 4
    assert all(isinstance(summary[key], int) for key in ("run_id", "episodes", "nodes"))


def test_sigterm_stops_cleanly_and_resume_finishes(workdir):
    script = write_script(workdir / "s.jsonl", {f"guess/{i}": ["0", "4", "2", "6", "8"] for i in range(8)})
    config = write_config(
        workdir / "c.toml",
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
        f'[env]\nkind = "tests.fixtures.guess_env:SlowGuessEnvironment"\ntasks = 8\nmax_steps = 5\n',
    )
    command = [*LEAFE_TUI, "--batch", str(config), "--db", str(workdir / "s.db")]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environment)
    db_path = workdir / "s.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for the first committed steps
        time.sleep(0.2)
        if db_path.exists():
            try:
                if open_store(db_path).execute("select count(*) from nodes where depth > 0").fetchone()[0]:
                    break
            except Exception:
                continue
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "--resume" in err
    db = open_store(db_path)
    assert db["runs"].get(1)["status"] == "interrupted"
    stored = db.execute("select count(*) from nodes where depth > 0").fetchone()[0]
    assert 0 < stored < 8 * 5
    resumed = subprocess.run([*command, "--resume", "--json"], capture_output=True, text=True, cwd=ROOT, env=environment)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == 1 and summary["status"] == "finished" and summary["episodes"] == 8
    # The scripted count continued: no episode repeated an action it already took.
    for (episode,) in db.execute("select id from episodes").fetchall():
        actions = [r[0] for r in db.execute("select action from nodes where episode_id = ? and depth > 0 order by depth", [episode])]
        assert len(actions) == len(set(actions)) or actions[-1] == "8"
