"""The no-note control with the scripted backend: it branches at LEAFE's rollback points,
as many times, with no note in any prompt, counts its steps apart, and sums both sides up."""

from __future__ import annotations

from store.budget import spent
from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from tests.unit.test_leafe_core import PromptRecorder, holds
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

STAGES = ["explore", "reflect", "backtrack", "curate", "ablation:no_note"]


def run(workdir, actions, **sections):
    data = {
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", actions))},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 2, "rollback": "first_error"},
        "stages": {"run": STAGES},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    result = run_pipeline(config_from_dict(data), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    return result, open_store(workdir / "s.db")


def test_the_control_branches_at_the_same_points_without_the_note(workdir, monkeypatch):
    recorder = PromptRecorder(monkeypatch)
    # guess/0 (secret 3): explore 0, 1, 2 fails; LEAFE's branches 9 (fails) and 3 (succeeds).
    # "9" plays on with 8, 8. The control's branches at the same step then get the
    # script's next answers: 3 (succeeds) and 8. guess/1 (secret 7) fails everywhere.
    result, db = run(workdir, {"guess/0": ["0", "1", "2", "9", "3", "8", "8", "3", "8"],
                               "guess/1": ["0"]}, backtrack={"max_depth": 1})
    notes = list(db.query(
        """select notes.* from notes join nodes on nodes.id = notes.node_id
           where nodes.branch_depth = 0 order by notes.id"""))
    assert len(notes) == 2
    # Same rollback points: each control episode replaces the same step as LEAFE's note.
    controls = list(db.query("select * from episodes where purpose = 'ablation:no_note' order by rollout"))
    assert [c["rollout"] for c in controls] == [n["id"] for n in notes]
    for note, control in zip(notes, controls, strict=True):
        tau = db["nodes"].get(note["rollback_node_id"])
        firsts = list(db.query(
            "select * from nodes where episode_id = ? and branch_depth = 1 and depth = ?",
            [control["id"], tau["depth"]]))
        leafe_firsts = db.execute(
            "select count(*) from nodes where note_id = ? and branch_depth = 1", [note["id"]]).fetchone()[0]
        assert len(firsts) == leafe_firsts == 2  # same number of branches
        assert all(step["note_id"] is None for step in firsts)
        assert control["task_id"] == db["episodes"].get(tau["episode_id"])["task_id"]
    # No note text in any prompt the control sent; LEAFE's branches did see it.
    control_prompts = recorder.prompts("ablation:no_note")
    assert control_prompts
    for note in db["notes"].rows:
        assert not any(holds(prompt, note["text"]) for prompt in control_prompts)
    assert any(holds(prompt, notes[0]["text"]) for prompt in recorder.prompts("backtrack"))
    # Same seed as LEAFE's first-level branches: one call, 2 samples at each of 2 points.
    assert recorder.sizes("ablation:no_note")[0] == (2, 2)

    summary = result.summaries["ablation:no_note"]
    assert set(summary) == {"rollback_points", "with_note", "without_note", "yield"}
    assert summary["rollback_points"] == 2
    assert summary["with_note"]["branches"] == summary["without_note"]["branches"] == 4
    assert summary["with_note"]["successes"] == 1 and summary["without_note"]["successes"] == 1
    for side in ("with_note", "without_note"):
        assert set(summary[side]) >= {"branches", "successes", "mean_gain"}
    # Its steps are its own: LEAFE's budget (explore episodes) does not grow.
    control_steps = spent(db, result.run_id, "ablation:no_note", branches_only=True)[0]
    assert summary["without_note"]["env_steps"] == control_steps > 0
    leafe_steps = spent(db, result.run_id, "explore")[0]
    assert summary["yield"]["env_steps"] == leafe_steps
    assert summary["yield"]["proposed"] == 1 and summary["yield"]["approved"] == 1
    assert summary["yield"]["approved_per_100_steps"] == round(100 / leafe_steps, 2)
    # The control proposes no corrections and adds no notes.
    assert db["corrections"].count == 1
    assert db.execute(
        """select count(*) from notes join nodes on nodes.id = notes.node_id join episodes
           on episodes.id = nodes.episode_id where episodes.purpose = 'ablation:no_note'""").fetchone()[0] == 0


def test_the_gain_is_measured_against_the_original_path(workdir):
    # guess/0 (secret 3): the original path ends on 2 (score 0.9); every branch says 3
    # with the note and 8 without it (score 0.5): gains +0.1 and -0.4.
    result, db = run(workdir, {"guess/0": ["0", "1", "2", "3", "3", "8", "8", "8", "8"]},
                     env={"tasks": 1}, backtrack={"max_depth": 1})
    summary = result.summaries["ablation:no_note"]
    assert summary["with_note"] == {"branches": 2, "successes": 2, "mean_gain": 0.1}
    assert summary["without_note"]["successes"] == 0
    assert summary["without_note"]["mean_gain"] == -0.4


def test_the_results_screen_lines_come_from_the_stored_summary(workdir):
    from store.ablation import stored_summary
    from workbench.ablation import summary_lines

    result, db = run(workdir, {"guess/0": ["0", "1", "2", "3", "3", "8", "8", "8", "8"]},
                     env={"tasks": 1}, backtrack={"max_depth": 1})
    lines = summary_lines(stored_summary(db, result.run_id))
    assert lines[0] == "What the note adds, at 1 rollback points:"
    assert lines[1] == "  with the note: 2 of 2 branches succeeded, mean gain +0.100"
    assert lines[2] == "  without it: 0 of 2 branches succeeded, mean gain -0.400"
    assert "approved corrections per 100 environment steps" in lines[3]
    assert summary_lines(None) == []
