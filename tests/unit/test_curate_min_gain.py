"""`curate.min_gain`: automatic curation also approves branches that did not succeed but
beat their original path's score by at least that much, with the gain as the reason;
unset (the default), only successful branches are approved."""

from __future__ import annotations

import pytest

from store.curation import corrections_of_run
from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict, help_rows
from workbench.curate import gain_reason
from workbench.errors import ConfigError
from workbench.pipeline import run_pipeline

# guess/0's secret is 3 and a guess g scores 1 - |g - 3| / 10. The episode guesses 9
# (0.4); its two branches guess 4 (0.9, a gain of 0.5) and 8 (0.5, a gain of 0.1); no
# guess succeeds, so without min_gain nothing is approved.
ACTIONS = {"guess/0": ["9", "4", "8"]}


def run_with(workdir, **curate):
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", ACTIONS))},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 1},
        "backtrack": {"branches": 2, "max_depth": 1, "max_attempts": 2},
        "curate": curate,
        "stages": {"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    by_guess = {c["branch_score"]: c for c in corrections_of_run(db, result.run_id)}
    db.close()
    assert set(by_guess) == {0.9, 0.5}, "both branches beat the episode's 0.4, so both are proposed"
    return result, by_guess


def test_a_branch_that_gained_enough_is_approved_with_its_gain_as_the_reason(workdir):
    result, corrections = run_with(workdir, min_gain=0.3)
    closer, barely = corrections[0.9], corrections[0.5]
    assert closer["status"] == "approved" and closer["decided_by"] == "auto"
    assert closer["reason"] == "score 0.9 beat the original path's 0.4 by 0.5 (curate.min_gain = 0.3)"
    assert barely["status"] == "proposed" and barely["decided_by"] is None
    assert result.summaries["curate"] == {"approved": 1, "approved_for_gain": 1, "rejected": 0, "proposed": 1}
    assert result.summaries["export"]["examples"] == 1  # the approved branch becomes training data


def test_without_min_gain_only_successes_are_approved(workdir):
    result, corrections = run_with(workdir)
    assert [c["status"] for c in corrections.values()] == ["proposed", "proposed"]
    assert result.summaries["curate"] == {"approved": 0, "rejected": 0, "proposed": 2}


def test_human_curation_leaves_improved_branches_to_a_person(workdir):
    _, corrections = run_with(workdir, policy="human", min_gain=0.1)
    assert [c["status"] for c in corrections.values()] == ["proposed", "proposed"]


def test_the_gain_is_compared_as_a_person_would_read_it():
    assert gain_reason(0.7, 0.4, 0.3) is not None  # 0.7 - 0.4 is 0.29999999999999993 in floats
    assert gain_reason(0.69, 0.4, 0.3) is None
    assert gain_reason(0.5, None, 0.5) is not None  # an original path with no score scored 0
    assert gain_reason(1.0, 0.0, None) is None  # unset: off


@pytest.mark.parametrize("value", [0, 0.0, -0.2, float("nan")])
def test_a_min_gain_that_is_not_positive_is_refused_in_one_line(value):
    with pytest.raises(ConfigError, match=r"curate\.min_gain must be (a finite number )?above 0") as error:
        config_from_dict({"curate": {"min_gain": value}})
    assert "\n" not in str(error.value)


def test_min_gain_is_typed_documented_and_off_by_default():
    assert config_from_dict({}).curate.min_gain is None
    assert config_from_dict({"curate": {"min_gain": 1}}).curate.min_gain == 1.0
    with pytest.raises(ConfigError, match="curate.min_gain must be a number"):
        config_from_dict({"curate": {"min_gain": "0.2"}})
    (row,) = [row for row in help_rows() if row[0] == "curate.min_gain"]
    assert row[1] == "(none)" and "original path" in row[2]
