"""Reflect, backtrack, curate and export with the scripted backend: exact trees, notes,
corrections and a training set in which the note never appears."""

from __future__ import annotations

import json

import pytest

from store import queries
from store.curation import corrections_of_run
from store.db import open_store
from tests.conftest import GUESS_ENV, ROOT, write_script
from workbench.config import config_from_dict
from workbench.curate import copied_run
from workbench.pipeline import run_pipeline
from workbench.reflectors.model import parse_model_reflection

LEAFE = ["explore", "reflect", "backtrack", "curate", "export"]
WRONG_ADD = "```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```"
RIGHT_ADD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"


def dataset_rows(db) -> list[dict]:
    path = db.execute("select path from datasets order by id desc limit 1").fetchone()[0]
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def test_fail_then_pass_yields_one_note_one_correction_one_clean_example(workdir):
    script = write_script(workdir / "s.jsonl", {"easy/add": [WRONG_ADD, RIGHT_ADD]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "coding", "suite": str(ROOT / "tests/fixtures/two_tasks.jsonl"), "tasks": ["easy/add"], "max_steps": 1},
        "backtrack": {"branches": 1},
        "stages": {"run": LEAFE},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    assert result.counts == {"episodes": 1, "nodes": 3, "notes": 1, "corrections": 1}
    (note,) = db["notes"].rows
    assert note["author"] == "template"
    tau = db["nodes"].get(note["rollback_node_id"])
    assert tau["action"] == WRONG_ADD and tau["backtrack_point"] == 1
    (correction,) = corrections_of_run(db, result.run_id)
    assert correction["status"] == "approved" and correction["decided_by"] == "auto"
    branch = db["nodes"].get(correction["leaf_node_id"])
    assert branch["parent_id"] == tau["parent_id"], "a branch's first step is a sibling of the step it replaces"
    assert branch["note_id"] == note["id"] and branch["success"] == 1
    (example,) = dataset_rows(db)
    assert example["messages"][example["target_start"]] == {"role": "assistant", "content": RIGHT_ADD}
    assert example["kind"] == "correction"
    # Each message's own text, not json.dumps (which escapes quotes and non-ASCII letters).
    assert not holds(example["messages"], note["text"])
    assert not holds(example["messages"], "note from an earlier attempt")


def guess_run(workdir, actions: dict[str, list[str]], **sections):
    data = {
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", actions))},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 2, "max_attempts": 8, "rollback": "first_error"},
        "stages": {"run": LEAFE},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    result = run_pipeline(config_from_dict(data), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    return result, open_store(workdir / "s.db")


def test_branches_see_the_note_and_advance_in_lock_step(workdir):
    # guess/0's secret is 3. Exploration: 0, 1, 2 (fails). Branches at step 1: 9 then 3.
    result, db = guess_run(workdir, {"guess/0": ["0", "1", "2", "9", "3", "8", "8"]}, backtrack={"max_depth": 1})
    root = db.execute("select id from nodes where parent_id is null").fetchone()[0]
    first_steps = [r["action"] for r in db["nodes"].rows_where("parent_id = ?", [root], order_by="id")]
    assert first_steps == ["0", "9", "3"]  # the original step and its two sibling branches
    assert result.summaries["backtrack"]["branches"] >= 2
    corrections = corrections_of_run(db, result.run_id)
    assert [c["status"] for c in corrections] == ["approved"]
    assert db["nodes"].get(corrections[0]["leaf_node_id"])["action"] == "3"


def test_a_failed_branch_is_reflected_on_again_up_to_max_depth(workdir):
    result, db = guess_run(workdir, {"guess/0": ["0"]}, backtrack={"branches": 1, "max_depth": 2})
    levels = [r[0] for r in db.execute("select distinct branch_depth from nodes order by 1")]
    assert levels == [0, 1, 2]
    assert db["notes"].count == 2  # one on the original episode, one on the failed level-1 branch
    assert result.counts["corrections"] == 0


def test_max_attempts_caps_branches_per_episode(workdir):
    result, db = guess_run(workdir, {"guess/0": ["0"]}, backtrack={"branches": 3, "max_depth": 3, "max_attempts": 4})
    started = db.execute("select count(*) from nodes where branch_depth > 0 and note_id is not null").fetchone()[0]
    assert started == 4


def test_budget_counts_from_the_root_for_branches(workdir):
    result, db = guess_run(workdir, {"guess/0": ["0"]}, backtrack={"branches": 1, "max_depth": 1, "rollback": "last"})
    assert db.execute("select max(depth) from nodes").fetchone()[0] == 3


def test_resume_redoes_nothing(workdir):
    result, db = guess_run(workdir, {"guess/0": ["0", "1", "2", "9", "3"]})
    before = queries.run_counts(db, result.run_id)
    again = run_pipeline(config_from_dict(json.loads(db["runs"].get(1)["config"])), db_path=workdir / "s.db", resume=True)
    assert again.status == "nothing-to-resume"
    assert queries.run_counts(open_store(workdir / "s.db"), result.run_id) == before


def test_human_policy_leaves_corrections_proposed(workdir):
    # Both branches succeed: "3" at once, "9" on its next step (the script's last action is 3).
    result, db = guess_run(workdir, {"guess/0": ["0", "1", "2", "9", "3"]}, curate={"policy": "human"})
    assert [c["status"] for c in corrections_of_run(db, result.run_id)] == ["proposed", "proposed"]
    assert result.summaries["export"]["examples"] == 0


def test_rehearsal_examples_come_from_successful_episodes(workdir):
    result, db = guess_run(workdir, {"guess/0": ["3"]}, export={"rehearsal": True})
    (example,) = dataset_rows(db)
    assert example["kind"] == "rehearsal" and example["messages"][-1]["content"] == "3"


@pytest.mark.parametrize(
    ("note", "action", "copied"),
    [
        ("use a loop over every item in the list and add it up", "for x in the list and add it up to total", None),
        ("loop over every item in the list and add it up to total", "x = 1  # loop over every item in the list and add it up", "loop over every item in the list and"),
        ("short note", "short note", None),
    ],
)
def test_leakage_detects_eight_copied_words(note, action, copied):
    assert copied_run(note, action, 8) == copied


def test_leaking_correction_is_rejected_with_reason(workdir):
    leaky = "Try 3 because the secret number is three and lower"
    result, db = guess_run(
        workdir, {"guess/0": ["0", "1", "2", leaky, leaky]},
        reflect={"reflector": "model", "model": {"backend": "scripted", "script": str(write_script(workdir / "r.jsonl", {"guess/0": ["NOTE: Try 3 because the secret number is three and lower\nROLLBACK: 1"]}))}},
        backtrack={"branches": 1, "max_depth": 1, "rollback": "reflector"},
    )
    (correction,) = corrections_of_run(db, result.run_id)
    assert correction["status"] == "rejected" and correction["reason"].startswith("leakage")


def test_model_reflector_parses_and_falls_back(workdir):
    assert parse_model_reflection("NOTE: check the sign.\nROLLBACK: 2", 3) == ("check the sign.", 2)
    assert "no NOTE" in parse_model_reflection("I think it is fine", 3)
    assert "outside" in parse_model_reflection("NOTE: x\nROLLBACK: 9", 3)
    result, db = guess_run(
        workdir, {"guess/0": ["0"]},
        reflect={"reflector": "model", "model": {"backend": "scripted", "script": str(write_script(workdir / "r.jsonl", {"guess/0": ["no idea"]}))}},
        backtrack={"branches": 1, "max_depth": 1},
    )
    (note,) = db["notes"].rows
    assert note["author"] == "template" and "no NOTE" in note["fallback_reason"]


def test_nothing_to_train_skips_distill_and_its_evaluation(workdir):
    result, db = guess_run(
        workdir, {"guess/0": ["0"]},
        backtrack={"branches": 1, "max_depth": 1},
        evaluate={"policies": ["base", "adapter:leafe-run-{run}"], "n": 1, "k": [1]},
        stages={"run": [*LEAFE, "distill", "evaluate"]},
    )
    assert result.summaries["distill"]["skipped"].startswith("distill: dataset")
    assert result.summaries["distill"]["skipped_adapter"] == "leafe-run-1"
    assert list(result.summaries["evaluate"]["table"]) == ["base"]
    assert any("left out" in line for line in result.messages)


def test_a_training_seed_with_nothing_to_train_still_evaluates_the_rest(workdir):
    # A seed's stage rows live with the run, its episodes with its seed run: the obstacle
    # room's reference run failed at seed 1's evaluate, naming the adapter it never trained.
    result, db = guess_run(
        workdir, {"guess/0": ["0"]},
        backtrack={"branches": 1, "max_depth": 1},
        evaluate={"policies": ["base", "adapter:leafe-run-{run}"], "n": 1, "k": [1]},
        experiment={"seeds": [0, 1]},
        stages={"run": [*LEAFE, "distill", "baseline:rft", "evaluate"]},
    )
    for seed in (0, 1):
        assert result.summaries[f"seed{seed}/baseline:rft"]["skipped_adapter"] == f"rft-run-1-seed{seed}"
        assert result.summaries[f"seed{seed}/distill"]["skipped_adapter"] == f"leafe-run-1-seed{seed}"
        assert list(result.summaries[f"seed{seed}/evaluate"]["table"]) == ["base"]
        assert result.summaries[f"seed{seed}/evaluate"]["untrained"] == [f"adapter:leafe-run-1-seed{seed}"]
    assert sum("left out" in line for line in result.messages) == 2
    # Across seeds the method is the base model it left unchanged, and says so; the batch's
    # table and the report (which reads the stage rows) agree.
    across = {row["policy"]: row for row in result.across_seeds()}
    assert across["adapter:leafe-run-1"]["as_base"] == [0, 1]
    assert across["adapter:leafe-run-1"]["per_seed"] == across["base"]["per_seed"]
    from workbench.report import write_report

    write_report(workdir / "s.db", workdir / "report")
    report = (workdir / "report" / "report.md").read_text()
    assert "| adapter:leafe-run-1 | 1 | 2 (base on 0, 1: nothing to train) |" in report
    assert "rft-run-1" not in report, "rft trained nothing either, but it was never a policy to evaluate"


def test_a_correction_that_teaches_no_read_action_is_named_not_silently_dropped(workdir):
    # The guess game reports no action it read, so `targets = "action"` finds nothing to
    # teach in its correction: the obstacle room's seed 2 exported "2 corrections, 0
    # examples" that way, with no word of why.
    result, db = guess_run(
        workdir, {"guess/0": ["0", "1", "2", "3"]}, backtrack={"branches": 1, "max_depth": 1},
        export={"targets": "action"}, prompts={"history_turns": 0},
    )
    assert result.counts["corrections"] == 1
    (correction,) = corrections_of_run(db, result.run_id)
    export = result.summaries["export"]
    assert (export["corrections"], export["examples"], export["taught_nothing"]) == (1, 0, [correction["id"]])
    assert any(f"corrections [{correction['id']}] teach nothing" in line for line in result.messages)
    # Text targets teach the same correction: no warning.
    (workdir / "text").mkdir()
    again, _ = guess_run(workdir / "text", {"guess/0": ["0", "1", "2", "3"]}, backtrack={"branches": 1, "max_depth": 1},
                         prompts={"history_turns": 0})
    assert again.summaries["export"]["examples"] == 1 and "taught_nothing" not in again.summaries["export"]


def note_depths(db) -> list[tuple[str, int]]:
    """(task, depth of the step reflected on) for every note, in order."""
    return [tuple(row) for row in db.execute(
        """select tasks.name, nodes.depth from notes join nodes on nodes.id = notes.node_id
           join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id
           order by tasks.name, nodes.depth""")]


@pytest.mark.parametrize(("every", "expected"), [
    (0, [("guess/0", 4)]),
    # every 2 steps: guess/0 at step 2 and at its failed end; guess/1 succeeded at step 3
    # but its step 2 failed, so it is reflected on there.
    (2, [("guess/0", 2), ("guess/0", 4), ("guess/1", 2)]),
    (3, [("guess/0", 3), ("guess/0", 4)]),
])
def test_reflect_every_n_steps_adds_notes_at_failed_steps(workdir, every, expected):
    # guess/0 (secret 3) fails all 4 steps; guess/1 (secret 7) succeeds at step 3.
    result, db = guess_run(
        workdir, {"guess/0": ["0", "1", "2", "4"], "guess/1": ["0", "1", "7"]},
        env={"tasks": 2, "max_steps": 4}, reflect={"every": every}, stages={"run": ["explore", "reflect"]},
    )
    assert note_depths(db) == expected
    for note in db["notes"].rows:
        assert db["nodes"].get(note["rollback_node_id"])["depth"] <= db["nodes"].get(note["node_id"])["depth"]


def test_a_periodic_note_is_backtracked_from_like_any_other(workdir):
    # guess/1 succeeds at step 3; its failed step 2 gets a note, and a branch at step 1
    # that says 7 at once beats it to a correction.
    result, db = guess_run(
        workdir, {"guess/1": ["0", "1", "7", "7"]},
        env={"tasks": ["guess/1"], "max_steps": 4}, reflect={"every": 2},
        backtrack={"branches": 1, "max_depth": 1},
    )
    (note,) = db["notes"].rows
    (branch,) = db["nodes"].rows_where("note_id = ?", [note["id"]])
    assert branch["parent_id"] == db["nodes"].get(note["rollback_node_id"])["parent_id"]
    assert branch["success"] == 1 and result.counts["corrections"] == 1


def test_model_reflector_rollback_step_is_the_node_rewound_to(workdir):
    # The model names step 2: not the first error (1) nor the last step (3).
    reflector_script = write_script(workdir / "r.jsonl", {"guess/0": ["NOTE: go higher than 2.\nROLLBACK: 2"]})
    result, db = guess_run(
        workdir, {"guess/0": ["0", "1", "2", "3"]},
        reflect={"reflector": "model", "model": {"backend": "scripted", "script": str(reflector_script)}},
        backtrack={"branches": 1, "max_depth": 1, "rollback": "reflector"},
    )
    (note,) = db["notes"].rows
    assert note["author"] == "model" and note["text"] == "go higher than 2."
    tau = db["nodes"].get(note["rollback_node_id"])
    assert (tau["depth"], tau["action"], tau["branch_depth"], tau["backtrack_point"]) == (2, "1", 0, 1)
    (branch,) = db["nodes"].rows_where("note_id = ?", [note["id"]])
    assert branch["parent_id"] == tau["parent_id"] and branch["depth"] == 2 and branch["action"] == "3"
    (correction,) = corrections_of_run(db, result.run_id)
    assert correction["tau_node_id"] == tau["id"]


class PromptRecorder:
    """Records every prompt the scripted policy receives, with the stage that asked."""

    def __init__(self, monkeypatch) -> None:
        import workbench.pipeline
        from workbench.models.scripted import ScriptedGenerator

        self.stage = ""
        self.calls: list[tuple[str, list, int]] = []  # (stage, prompts, n)
        original_generate, original_stage = ScriptedGenerator.generate, workbench.pipeline.stage_function

        def generate(generator, prompts, n, sampling, *, tags=None):
            self.calls.append((self.stage, [list(p) for p in prompts], n))
            return original_generate(generator, prompts, n, sampling, tags=tags)

        def stage_function(stage):
            function = original_stage(stage)

            def run(context):
                self.stage = stage
                return function(context)

            return run

        monkeypatch.setattr(ScriptedGenerator, "generate", generate)
        monkeypatch.setattr(workbench.pipeline, "stage_function", stage_function)

    def prompts(self, stage: str) -> list[list[dict]]:
        return [prompt for s, prompts, _ in self.calls if s == stage for prompt in prompts]

    def sizes(self, stage: str) -> list[tuple[int, int]]:
        """(prompts, samples per prompt) of each generate call a stage made."""
        return [(len(prompts), n) for s, prompts, n in self.calls if s == stage]


def holds(prompt: list[dict], text: str) -> bool:
    return any(text in message["content"] for message in prompt)


def test_the_note_reaches_the_branch_prompt_and_nothing_else(workdir, monkeypatch):
    recorder = PromptRecorder(monkeypatch)
    result, db = guess_run(workdir, {"guess/0": ["0", "1", "2", "9", "3"]}, backtrack={"branches": 1, "max_depth": 1})
    (note,) = db["notes"].rows
    tau = db["nodes"].get(note["rollback_node_id"])
    explore, branch = recorder.prompts("explore"), recorder.prompts("backtrack")
    assert len(explore) == 3 and not any(holds(prompt, note["text"]) for prompt in explore)
    # The branch's first action is asked for at tau: the history before tau, then the note.
    first = branch[0]
    assert first[-1]["role"] == "user" and note["text"] in first[-1]["content"]
    assert sum(m["role"] == "assistant" for m in first) == tau["depth"] - 1
    # Every later step of the branch still has the note in the turn before its first action.
    assert len(branch) == 2 and all(holds(prompt, note["text"]) for prompt in branch)
    (example,) = dataset_rows(db)
    assert example["messages"][example["target_start"]]["content"] == "9"
    assert not holds(example["messages"], note["text"])


def test_backtracking_batches_branches_of_every_episode_in_one_call_per_step(workdir, monkeypatch):
    recorder = PromptRecorder(monkeypatch)
    # Three episodes fail at every step; each gets 2 branches at step 1, which fail too.
    guess_run(workdir, {f"guess/{i}": ["0"] for i in range(3)}, env={"tasks": 3}, backtrack={"max_depth": 1})
    # One call samples both first steps of all 3 episodes' branches; then the 6 branches
    # advance together, one call per remaining step of the budget.
    assert recorder.sizes("explore") == [(3, 1), (3, 1), (3, 1)]
    assert recorder.sizes("backtrack") == [(3, 2), (6, 1), (6, 1)]
