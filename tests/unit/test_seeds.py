"""Training seeds ([experiment] seeds): the run's stages repeat once per seed, each seed's
episodes, adapters and evaluations apart (in a seed run of its own) and named after the
seed; each policy's Pass@k is summarised over seeds; `--resume` after a kill in seed 2
skips seed 1's finished stages. The policy is scripted; its `model.name` is a tiny Llama
folder, so every seed really trains (in a second)."""

from __future__ import annotations

import json
import statistics

import pytest

from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from tests.fixtures.stopped_runs import LEAFE_STAGES, record_trained, stop_explore_when
from tests.fixtures.tiny_model import save_tiny_llama
from workbench.config import config_from_dict
from workbench.models.scripted import ScriptedGenerator
from workbench.pipeline import run_pipeline, summary_json
from workbench.rounds import adapter_name, round_config
from workbench.seeds import SEED_STRIDE, across_seeds, seeded_config, seedless


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(autouse=True)
def scripted_adapters(monkeypatch):
    """The scripted backend plays adapter policies from its script (no weights to swap)."""
    monkeypatch.setattr(ScriptedGenerator, "set_adapter", lambda self, path: None, raising=False)


def seeds_config(workdir, tiny_folder, seeds=(0, 1)) -> dict:
    # guess/0 (secret 3) is guessed at once: rehearsal data, so every seed trains; guess/1
    # (secret 7) always fails, so every seed reflects and backtracks. Evaluation: guess/2
    # (secret 5) is guessed, guess/3 (secret 9) never.
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["0"], "guess/2": ["5"],
                                                "guess/3": ["1"]})
    return {
        "model": {"backend": "scripted", "script": str(script), "name": str(tiny_folder)},
        "env": {"kind": GUESS_ENV, "tasks": ["guess/0", "guess/1"], "max_steps": 2},
        "explore": {"rollouts_per_task": 1},
        "backtrack": {"branches": 1, "max_depth": 1},
        "export": {"rehearsal": True},
        "distill": {"epochs": 1, "batch_size": 2, "max_length": 256, "learning_rate": 1e-3},
        "evaluate": {"tasks": ["guess/2", "guess/3"], "n": 2, "k": [1, 2],
                     "policies": ["base", "adapter:leafe-run-{run}"]},
        "experiment": {"seeds": list(seeds)},
        "stages": {"run": [*LEAFE_STAGES, "evaluate"]},
    }


def test_two_seeds_give_two_sets_of_episodes_adapters_and_evaluations(workdir, tiny_folder):
    result = run_pipeline(config_from_dict(seeds_config(workdir, tiny_folder)), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    # The run a person started, and one seed run per seed holding that seed's data.
    runs = [(row["id"], row["parent_run_id"], row["seed"], row["status"]) for row in db["runs"].rows]
    assert runs == [(1, None, None, "finished"), (2, 1, 0, "finished"), (3, 1, 1, "finished")]
    assert result.seed_runs == {0: 2, 1: 3}
    rows = [(row["stage"], row["seed"]) for row in db["run_stages"].rows_where("run_id = 1", order_by="position")]
    assert rows == [(stage, seed) for seed in (0, 1) for stage in [*LEAFE_STAGES, "evaluate"]]
    # Each seed explored on its own, with seeds apart: seed 1's are shifted by SEED_STRIDE.
    explored = db.execute(
        "select run_id, seed from episodes where purpose = 'explore' and rollout = 0 order by run_id, id").fetchall()
    assert explored == [(2, 0), (2, 0), (3, SEED_STRIDE), (3, SEED_STRIDE)]
    assert [(row["name"], row["run_id"]) for row in db["adapters"].rows] == [
        ("leafe-run-1-seed0", 2), ("leafe-run-1-seed1", 3)]
    assert [row["name"] for row in db["datasets"].rows] == ["leafe-run-1-seed0", "leafe-run-1-seed1"]
    # Each seed evaluated base and its own adapter, with its own paired comparisons.
    evaluated = db.execute("select run_id, policy from evals where k = 1 order by run_id, id").fetchall()
    assert evaluated == [(2, "base"), (2, "adapter:leafe-run-1-seed0"), (3, "base"), (3, "adapter:leafe-run-1-seed1")]
    assert {row[0] for row in db.execute("select distinct run_id from eval_pairs")} == {2, 3}
    assert {"seed0/distill", "seed1/distill", "seed0/evaluate", "seed1/evaluate"} <= set(result.summaries)
    # --json: per seed its tables, across seeds each policy's mean and spread.
    data = json.loads(summary_json(result))
    assert [(entry["seed"], entry["run_id"]) for entry in data["seeds"]] == [(0, 2), (1, 3)]
    assert set(data["seeds"][1]["pass_at_k"]) == {"base", "adapter:leafe-run-1-seed1"}
    across = {(row["policy"], row["k"]): row for row in data["across_seeds"]}
    assert set(across) == {(policy, k) for policy in ("base", "adapter:leafe-run-1") for k in (1, 2)}
    base = across[("base", 1)]
    # Scripted: guess/2 always right, guess/3 always wrong, in both seeds: Pass@1 0.5, no spread.
    assert base["seeds"] == 2 and base["mean"] == 0.5 and base["std"] == 0.0 and base["per_seed"] == {"0": 0.5, "1": 0.5}
    # The report: the spread over seeds, then each seed's own tables; the run a person started is the default.
    from workbench.report import write_report

    written = {path.name for path in write_report(workdir / "s.db", workdir / "report")}
    assert {"across_seeds.csv", "seeds_pass_at_k.csv"} <= written
    report = (workdir / "report" / "report.md").read_text()
    assert report.startswith("# Run 1") and "| adapter:leafe-run-1 | 1 | 2 | 0.500 ± 0.000 |" in report
    assert "## Training seed 1 (seed run 3)" in report and "| adapter:leafe-run-1-seed1 | base |" in report


def test_resume_after_a_kill_in_seed_two_skips_seed_ones_finished_stages(workdir, tiny_folder, monkeypatch):
    config = config_from_dict(seeds_config(workdir, tiny_folder))
    # Stopped in the second seed, as a kill there would.
    explore_again = stop_explore_when(monkeypatch, lambda context: context.config.experiment.seeds == [1])
    first = run_pipeline(config, db_path=workdir / "s.db")
    assert first.status == "interrupted"
    db = open_store(workdir / "s.db")
    assert [row["name"] for row in db["adapters"].rows] == ["leafe-run-1-seed0"]
    finished = {(row["stage"], row["seed"]): row["finished_at"] for row in db["run_stages"].rows}
    explore_again()
    trained = record_trained(monkeypatch)
    second = run_pipeline(config, db_path=workdir / "s.db", resume=True)
    assert second.status == "finished", second.error
    assert second.run_id == 1 and trained == ["leafe-run-1-seed1"]
    rows = {(row["stage"], row["seed"]): row for row in db["run_stages"].rows}
    for stage in [*LEAFE_STAGES, "evaluate"]:
        assert rows[(stage, 0)]["finished_at"] == finished[(stage, 0)]  # seed 1's rows were not run again
        assert rows[(stage, 1)]["status"] == "finished"
    assert db["runs"].count == 3 and db.execute("select count(*) from runs where status != 'finished'").fetchone()[0] == 0
    assert db.execute("select count(*) from episodes where run_id = 2 and purpose = 'explore'").fetchone()[0] == 2


def test_one_seed_is_todays_run_and_names_carry_seed_then_round(workdir, tiny_folder):
    settings = seeds_config(workdir, tiny_folder, seeds=(0,))
    settings["stages"]["run"] = ["explore"]
    result = run_pipeline(config_from_dict(settings), db_path=workdir / "one.db")
    db = open_store(workdir / "one.db")
    assert result.seed_runs == {} and db["runs"].count == 1
    assert list(result.summaries) == ["explore"] and "seeds" not in json.loads(summary_json(result))
    # The name pattern: seed first, then round.
    rounds = config_from_dict({**seeds_config(workdir, tiny_folder), "leafe": {"rounds": 2},
                               "explore": {"rollouts_per_task": 2}})
    seeded = seeded_config(rounds, 3, 1)
    assert adapter_name(seeded, 3, 2) == "leafe-run-3-seed1-round2"
    assert seeded.explore.seed == SEED_STRIDE and seeded.evaluate.seed == 1000 + SEED_STRIDE

    from types import SimpleNamespace

    context = SimpleNamespace(config=seeded, run_id=3, db=db)  # what round_config reads; no round 1 adapter
    assert round_config(context, 2).distill.name == "leafe-run-3-seed1-round2"


def test_across_seeds_is_mean_standard_deviation_min_and_max_of_each_policys_pass_at_k():
    tables = {
        0: {"base": {"1": {"pass_at_k": 0.2}}, "adapter:nav-seed0-round2": {"1": {"pass_at_k": 0.5}}},
        1: {"base": {"1": {"pass_at_k": 0.4}}, "adapter:nav-seed1-round2": {"1": {"pass_at_k": 0.25}}},
        7: {"base": {"1": {"pass_at_k": 0.9}}, "adapter:nav-seed7-round2": {"1": {"pass_at_k": 0.75}}},
    }
    rows = {(row["policy"], row["k"]): row for row in across_seeds(tables)}
    assert set(rows) == {("base", 1), ("adapter:nav-round2", 1)}
    for policy, scores in (("base", [0.2, 0.4, 0.9]), ("adapter:nav-round2", [0.5, 0.25, 0.75])):
        row = rows[(policy, 1)]
        mean = sum(scores) / 3
        std = (sum((s - mean) ** 2 for s in scores) / 2) ** 0.5  # the sample standard deviation
        assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std)
        assert (row["min"], row["max"], row["seeds"]) == (min(scores), max(scores), 3)
    assert statistics.stdev([0.2, 0.4, 0.9]) == pytest.approx(rows[("base", 1)]["std"])
    # Only a whole "-seed<s>" part is taken out: seed 1 leaves seed 12's name alone.
    assert seedless("adapter:leafe-run-3-seed12", 1) == "adapter:leafe-run-3-seed12"
    assert seedless("adapter:leafe-run-3-seed1", 1) == "adapter:leafe-run-3"


def test_a_seed_where_a_method_trained_nothing_counts_the_base_model_it_left_unchanged():
    # The obstacle room: LEAFE trained on seed 0 only. Averaging it over seed 0 alone would
    # report the seed it happened to train on as the method's mean.
    tables = {
        0: {"base": {"1": {"pass_at_k": 0.2}}, "adapter:nav-seed0": {"1": {"pass_at_k": 0.5}}},
        1: {"base": {"1": {"pass_at_k": 0.4}}},
        2: {"base": {"1": {"pass_at_k": 0.3}}},
    }
    rows = {row["policy"]: row for row in across_seeds(tables, {1: ["adapter:nav-seed1"], 2: ["adapter:nav-seed2"]})}
    assert rows["adapter:nav"]["per_seed"] == {"0": 0.5, "1": 0.4, "2": 0.3}
    assert rows["adapter:nav"]["mean"] == pytest.approx(0.4) and rows["adapter:nav"]["as_base"] == [1, 2]
    assert rows["base"]["as_base"] == []
    # Without `untrained`, a seed with no result is left out, as before.
    assert across_seeds(tables)[1]["per_seed"] == {"0": 0.5}
