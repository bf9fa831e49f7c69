"""Rewinding to a rollback point: by snapshot/restore, or by replaying the stored actions
for a user environment without snapshots; and the environment steps of backtracking run
without holding the store's write lock."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from store.curation import corrections_of_run
from store.db import open_store
from tests.conftest import write_script
from tests.fixtures.guess_env import GuessEnvironment
from workbench.config import config_from_dict
from workbench.envs import load_user_class
from workbench.errors import EnvironmentSetupError
from workbench.pipeline import run_pipeline

LEAFE = ["explore", "reflect", "backtrack", "curate", "export"]
FIXTURES = "tests.fixtures.guess_env"


def leafe_run(folder, kind: str, rollback: str = "last"):
    # guess/0's secret is 3: 0, 1, 2 fail; the branches at the rollback step say 9, then 4, 3 ...
    script = write_script(folder / "s.jsonl", {"guess/0": ["0", "1", "2", "9", "4", "3"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": kind, "tasks": 1, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 2, "max_attempts": 6, "rollback": rollback},
        "stages": {"run": LEAFE},
    })
    result = run_pipeline(config, db_path=folder / "s.db")
    assert result.status == "finished", result.error
    return result, open_store(folder / "s.db")


def tree(db) -> list[tuple]:
    """Every step as (parent's depth, depth, branch level, action, observation, score)."""
    return [tuple(row) for row in db.execute(
        """select parent.depth, nodes.depth, nodes.branch_depth, nodes.action, nodes.observation, nodes.score
           from nodes join nodes parent on parent.id = nodes.parent_id order by nodes.id""")]


@pytest.mark.parametrize("rollback", ["last", "first_error"])
def test_replay_without_snapshots_gives_the_same_branches(tmp_path, rollback):
    (tmp_path / "replay").mkdir()
    (tmp_path / "snapshots").mkdir()
    replayed, replay_db = leafe_run(tmp_path / "replay", f"{FIXTURES}:GuessHistoryGame", rollback)
    restored, snapshot_db = leafe_run(tmp_path / "snapshots", f"{FIXTURES}:GuessHistorySnapshots", rollback)
    assert tree(replay_db) == tree(snapshot_db)
    assert replayed.counts == restored.counts and replayed.counts["corrections"] >= 1
    assert [c["status"] for c in corrections_of_run(replay_db, replayed.run_id)] == [
        c["status"] for c in corrections_of_run(snapshot_db, restored.run_id)
    ]


def test_a_replayed_branch_continues_from_the_rewound_history(tmp_path):
    _, db = leafe_run(tmp_path, f"{FIXTURES}:GuessHistoryGame", "last")
    first_branch = next(db["nodes"].rows_where("branch_depth = 1", order_by="id"))
    # Rewound to just before step 3: the game remembers guesses 0 and 1, then the branch's 9.
    assert first_branch["depth"] == 3
    assert first_branch["observation"].endswith("Guesses so far: 0, 1, 9.")


def test_snapshot_without_restore_is_refused_in_one_line():
    with pytest.raises(EnvironmentSetupError, match="snapshot\\(\\) but no restore\\(\\)"):
        load_user_class(f"{__name__}:SnapshotOnly")
    assert load_user_class(f"{FIXTURES}:GuessHistoryGame").__name__ == "GuessHistoryGame"


class SnapshotOnly(GuessEnvironment):
    restore = None


class WriteLockProbe(GuessEnvironment):
    """At every step, tries to take the store's write lock from another connection without
    waiting, as the TUI curating beside a batch run would, and records whether it could."""

    store_path = ""
    outcomes: list[str] = []
    # Branch steps run in parallel step workers: without this, two probes could hold the
    # lock against each other and report the pipeline as the culprit.
    one_probe_at_a_time = threading.Lock()

    def step(self, action: str):
        with WriteLockProbe.one_probe_at_a_time:
            connection = sqlite3.connect(self.store_path, timeout=0)
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.rollback()
                WriteLockProbe.outcomes.append("free")
            except sqlite3.OperationalError as error:
                WriteLockProbe.outcomes.append(str(error))
            finally:
                connection.close()
        return super().step(action)


def test_environment_steps_run_while_the_store_is_free_to_write(tmp_path, monkeypatch):
    monkeypatch.setattr(WriteLockProbe, "store_path", str(tmp_path / "s.db"))
    monkeypatch.setattr(WriteLockProbe, "outcomes", [])
    _, db = leafe_run(tmp_path, f"{__name__}:WriteLockProbe", "first_error")
    branch_steps = db.execute("select count(*) from nodes where branch_depth > 0").fetchone()[0]
    assert branch_steps >= 4
    # Every step: exploration, the replays that rewind, and every branch step.
    assert len(WriteLockProbe.outcomes) >= 3 + branch_steps
    assert set(WriteLockProbe.outcomes) == {"free"}


def test_a_step_the_environment_raised_on_is_replayed_as_the_same_failed_step(tmp_path):
    # A raising step is stored as a failed step; rewinding past it by replay once raised
    # the exception again and ended the run (a navigation run stopped on KeyError 'moving').
    script = write_script(tmp_path / "s.jsonl", {"guess/0": ["0", "boom", "2", "9", "4", "3"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": f"{FIXTURES}:GuessHistoryWithABug", "tasks": 1, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 2, "max_attempts": 6, "rollback": "last"},
        "stages": {"run": LEAFE},
    })
    result = run_pipeline(config, db_path=tmp_path / "s.db")
    assert result.status == "finished", result.error
    steps = tree(open_store(tmp_path / "s.db"))
    assert [s for s in steps if s[3] == "boom"][0][4] == "environment error: KeyError: 'boom'"
    branches = [s for s in steps if s[2] >= 1]
    # The branches replace the last guess ("2"): replayed, the history is the guess 0 and
    # the failed step, which added nothing, so each branch sees 0 and then its own guess.
    assert branches and all(s[4].endswith(f"Guesses so far: 0, {s[3]}.") for s in branches if s[1] == 3)
