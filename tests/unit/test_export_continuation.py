"""What a correction teaches. By default the paper's counterfactual pair: the note-free
history up to tau -> the corrected action. With `[export] continuation` also the branch's
later actions, and with `end_at_best` (its default) only up to the step where the branch
reached its best score: a navigation branch approved for getting closer once went on to
turn in place for six steps, and the adapter trained on it learned to turn."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

# guess/0's secret is 3; a guess g scores 1 - |g - 3| / 10. The episode guesses 9 three
# times (0.4). Its branch from the first guess says 5 (0.8), then 4 (0.9, its best), then
# 8 (0.5): it ends 0.1 above the episode, so min_gain 0.05 approves it.
ACTIONS = {"guess/0": ["9", "9", "9", "5", "4", "8"]}


def exported_targets(workdir, **export) -> list[str]:
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", ACTIONS))},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 3},
        "backtrack": {"branches": 1, "max_depth": 1, "max_attempts": 1, "rollback": "first_error"},
        "curate": {"min_gain": 0.05},
        "export": export,
        "stages": {"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    assert result.summaries["curate"]["approved"] == 1
    rows = [json.loads(line) for line in Path(result.summaries["export"]["path"]).read_text().splitlines()]
    # Every assistant turn from target_start on is trained on.
    return [m["content"] for row in rows for m in row["messages"][row["target_start"]:] if m["role"] == "assistant"]


def test_by_default_a_correction_teaches_its_corrected_action_alone(workdir):
    assert exported_targets(workdir) == ["5"]


def test_with_continuation_a_correction_ends_where_its_branch_scored_best(workdir):
    assert exported_targets(workdir, continuation=True) == ["5", "4"]


def test_with_continuation_and_end_at_best_off_it_teaches_the_whole_branch(workdir):
    assert exported_targets(workdir, continuation=True, end_at_best=False) == ["5", "4", "8"]
