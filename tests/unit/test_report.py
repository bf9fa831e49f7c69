"""`make report`: from a scripted two-round run's store, the Markdown tables a reader needs
(Pass@k with intervals, budgets and training compute, the rounds curve), CSV/JSON, plots."""

from __future__ import annotations

import json

from store import pairs as stored_pairs
from store.db import open_store, transaction
from tests.unit.test_export_targets import solved_in_prose  # noqa: F401 (a fixture)
from tests.unit.test_rounds import rounds_config, tiny_folder  # noqa: F401 (a fixture)
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline
from workbench.report import main


def test_report_of_a_two_round_run(workdir, tiny_folder, capsys):  # noqa: F811
    data = rounds_config(workdir, tiny_folder, validation_tasks=["guess/2", "guess/3"], validation_n=1)
    data["stages"]["run"].append("evaluate")
    data["evaluate"] = {"policies": ["base"], "tasks": ["guess/2", "guess/3"], "n": 2, "k": [1, 2]}
    result = run_pipeline(config_from_dict(data), db_path=workdir / "r.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "r.db")
    with transaction(db):  # a comparison as evaluate stores it when two policies played
        stored_pairs.replace_pairs(db, 1, [{"policy": "adapter:leafe-run-1-round2", "reference": "base", "k": 1,
                                            "diff": 0.25, "ci_low": -0.1, "ci_high": 0.5, "n_tasks": 2,
                                            "overlap_tasks": 0}])
    assert main(["--db", str(workdir / "r.db"), "--out", str(workdir / "out")]) == 0
    report = (workdir / "out" / "report.md").read_text()
    assert "| base | 2 | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] |" in report
    assert "| adapter:leafe-run-1-round2 | base | +0.250 [-0.100, +0.500] |" in report
    assert "| leafe-run-1-round1 | leafe |" in report and "| leafe-run-1-round2 | leafe |" in report
    assert "| 0 | base | 2 x 1 | 0 | 0.000 [0.000, 0.000] | 0 |" in report
    assert "| 2 | adapter:leafe-run-1-round2 | 2 x 1 |" in report
    saved = json.loads((workdir / "out" / "report.json").read_text())
    assert [r["round"] for r in saved["rounds"]] == [0, 1, 2]
    assert saved["training"][1]["train_examples"] > saved["training"][0]["train_examples"]
    # Tokens trained are every token through training (all epochs), not those generated.
    for row in saved["training"]:
        metrics = json.loads(open_store(workdir / "r.db").execute(
            "select metrics from adapters where name = ?", [row["adapter"]]).fetchone()[0])
        assert row["train_tokens"] == metrics["train_tokens"] > 0
        assert row["tokens"] == metrics["tokens"]
    assert "| tokens trained | tokens generated | optimiser steps |" in report
    assert (workdir / "out" / "rounds.csv").read_text().splitlines()[0].startswith("round,policy")
    assert "<polyline" in (workdir / "out" / "pass_at_k.svg").read_text()
    assert "Validation Pass@1 by LEAFE round" in (workdir / "out" / "rounds.svg").read_text()


def test_report_on_a_missing_store_is_one_line_exit_2(workdir, capsys):
    assert main(["--db", str(workdir / "none.db"), "--out", str(workdir / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: report: store not found: {workdir / 'none.db'}"


def test_report_shows_what_the_note_adds(workdir):
    from tests.unit.test_ablation import run

    # guess/0: every branch says 3 with the note (gain +0.1) and 8 without it (-0.4).
    result, db = run(workdir, {"guess/0": ["0", "1", "2", "3", "3", "8", "8", "8", "8"]},
                     env={"tasks": 1}, backtrack={"max_depth": 1})
    assert main(["--db", str(workdir / "s.db"), "--out", str(workdir / "out")]) == 0
    report = (workdir / "out" / "report.md").read_text()
    assert "| with the note (LEAFE) | 2 | 2 | 0.100 | - |" in report
    assert "| without the note (control) | 2 | 0 | -0.400 |" in report
    assert "Yield: " in report and " per 100 steps)." in report


def test_report_shows_how_often_the_environment_read_an_action(solved_in_prose):  # noqa: F811
    _, db_path, _ = solved_in_prose
    out = db_path.parent / "out"
    assert main(["--db", str(db_path), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    # 6 answers: one named no action, four forward, one left.
    assert "| policy | purpose | steps | no action read | forward | left |" in report
    assert "| base | explore | 6 | 17% | 67% | 17% |" in report
    assert (out / "actions.csv").read_text().splitlines()[0] == "policy,purpose,steps,none,forward,left"


def test_the_training_table_puts_trained_tokens_under_tokens_trained_and_generated_ones_apart():
    from workbench.report import training_row

    # Early Experience's record from the navigation reference run: it generated 8,829 tokens
    # (model reflections) and trained on 363,468; the report once showed the 8,829.
    metrics = {"env_steps_budget": 480, "env_steps_used": 480, "n_examples": 890, "train_examples": 890,
               "tokens": 8829, "train_tokens": 363468, "steps": 224, "wall_time": 2632.6, "method": "lora"}
    row = training_row("early-experience-run-1-seed0", "early_experience", metrics)
    assert (row["train_tokens"], row["tokens"], row["train_examples"]) == (363468, 8829, 890)
    # grpo trains on its completions (480), not on the 8 prompts of its dataset.
    grpo = training_row("grpo-run-1", "grpo", {"n_examples": 8, "train_examples": 480, "tokens": 6200})
    assert grpo["train_examples"] == 480 and grpo["train_tokens"] is None
    # A record from before train_examples was stored gives its dataset size.
    assert training_row("old", "leafe", {"n_examples": 12})["train_examples"] == 12


def test_a_run_with_training_seeds_plots_the_mean_over_seeds_and_a_rounds_curve_per_seed():
    from workbench.report import plots

    def rounds(*scores):
        return [{"round": r, "pass_at_1": score} for r, score in enumerate(scores)]

    # As collect() gives a seeded run: its own tables empty, its seed runs' in "seeds".
    data = {
        "pass_at_k": [], "rounds": [],
        "across_seeds": [{"policy": "base", "k": 1, "mean": 0.04}, {"policy": "base", "k": 8, "mean": 0.19},
                         {"policy": "adapter:leafe-run-1-round2", "k": 1, "mean": 0.01},
                         {"policy": "adapter:leafe-run-1-round2", "k": 8, "mean": 0.07}],
        "seeds": [{"seed": 0, "rounds": rounds(0.031, 0.031, 0.0)}, {"seed": 1, "rounds": rounds(0.031, 0.0, 0.0)}],
    }
    found = plots(data)
    title, _, series, log_x, ticks = found["pass_at_k"]
    assert "mean over 2 training seeds" in title and log_x and ticks == [1, 8]
    assert series == {"base": [(1, 0.04), (8, 0.19)], "adapter:leafe-run-1-round2": [(1, 0.01), (8, 0.07)]}
    _, _, curves, _, rounds_ticks = found["rounds"]
    assert curves == {"seed 0": [(0, 0.031), (1, 0.031), (2, 0.0)], "seed 1": [(0, 0.031), (1, 0.0), (2, 0.0)]}
    assert rounds_ticks == [0.0, 1.0, 2.0]
