"""LEAFE rounds: round 2 explores and backtracks with round 1's adapter, corrections pile up
over the rounds, each round's adapter is scored on validation tasks, and `--resume` after a
stop between rounds skips the finished round. The policy is scripted; its `model.name` is a
tiny Llama folder, so every round really trains (in a second)."""

from __future__ import annotations

import dataclasses

import pytest

import workbench.distill.stage
import workbench.explore
import workbench.models
import workbench.rounds
from store import rounds as stored_rounds
from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from tests.fixtures.stopped_runs import LEAFE_STAGES, record_trained, stop_explore_when
from tests.fixtures.tiny_model import save_tiny_llama
from workbench.config import config_from_dict
from workbench.errors import ConfigError
from workbench.pipeline import run_pipeline
from workbench.rounds import plan_stages


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("model") / "tiny")


def rounds_config(workdir, tiny_folder, **leafe) -> dict:
    # guess/0 (secret 3) is always guessed at once: rehearsal data, so every round trains;
    # guess/1 (secret 7) always fails, so every round reflects and backtracks on it.
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["0"], "guess/2": ["3"],
                                                "guess/3": ["1"]})
    return {
        "model": {"backend": "scripted", "script": str(script), "name": str(tiny_folder)},
        "env": {"kind": GUESS_ENV, "tasks": ["guess/0", "guess/1"], "max_steps": 2},
        "explore": {"rollouts_per_task": 2},
        "backtrack": {"branches": 1, "max_depth": 1},
        "export": {"rehearsal": True},
        "distill": {"epochs": 1, "batch_size": 2, "max_length": 256, "learning_rate": 1e-3},
        "leafe": {"rounds": 2, **leafe},
        "stages": {"run": list(LEAFE_STAGES)},  # a fresh list: callers may add stages
    }


class GeneratorLog:
    """Wraps make_generator: which adapter each generator was built with, and every
    generate call it served as (adapter, tasks)."""

    def __init__(self, monkeypatch) -> None:
        self.built: list[str] = []
        self.calls: list[tuple[str, list[str]]] = []
        original = workbench.models.make_generator

        def make(config, **kwargs):
            generator = original(config, **kwargs)
            self.built.append(config.adapter)
            serve = generator.generate

            def generate(prompts, n, sampling, *, tags=None):
                self.calls.append((config.adapter, list(tags or [])))
                return serve(prompts, n, sampling, tags=tags)

            generator.generate = generate
            return generator

        monkeypatch.setattr(workbench.models, "make_generator", make)


def test_one_round_is_todays_stage_list_and_rounds_repeat_the_leafe_stages():
    single = config_from_dict({"stages": {"run": [*LEAFE_STAGES, "evaluate"]}})
    assert plan_stages(single) == [(stage, None) for stage in [*LEAFE_STAGES, "evaluate"]]
    two = config_from_dict({
        "explore": {"rollouts_per_task": 2}, "leafe": {"rounds": 2, "validation_tasks": 2},
        "stages": {"run": ["baseline:rft", *LEAFE_STAGES, "evaluate"]},
    })
    assert plan_stages(two) == [
        ("baseline:rft", None),
        *[(stage, 1) for stage in LEAFE_STAGES], ("validate", 1),
        *[(stage, 2) for stage in LEAFE_STAGES], ("validate", 2),
        ("evaluate", None),
    ]


def test_a_budget_that_does_not_split_over_the_rounds_is_one_clear_error():
    with pytest.raises(ConfigError, match="rollouts_per_task = 3 does not split evenly over leafe.rounds = 2"):
        config_from_dict({"explore": {"rollouts_per_task": 3}, "leafe": {"rounds": 2}})


def test_round_two_explores_and_backtracks_with_round_ones_adapter(workdir, tiny_folder, monkeypatch):
    log = GeneratorLog(monkeypatch)
    config = config_from_dict(rounds_config(workdir, tiny_folder, validation_tasks=["guess/2", "guess/3"],
                                            validation_n=1))
    result = run_pipeline(config, db_path=workdir / "r.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "r.db")
    round_one, round_two = db["adapters"].get(1), db["adapters"].get(2)
    assert [row["name"] for row in db["adapters"].rows] == ["leafe-run-1-round1", "leafe-run-1-round2"]
    # The generators: the base policy for round 1, round 1's adapter folder for round 2
    # (which also validates round 1), round 2's for its validation.
    assert log.built == ["", round_one["path"], round_two["path"]]
    by_adapter = {adapter: [task for _, tasks in log.calls if _ == adapter for task in tasks]
                  for adapter in log.built}
    # Round 2's exploration (both tasks) and its branches (the failing guess/1) ran on it.
    assert {"guess/0", "guess/1"} <= set(by_adapter[round_one["path"]])
    explore = db.execute(
        "select policy, count(*) from episodes where purpose = 'explore' group by policy order by policy"
    ).fetchall()
    assert explore == [("adapter:leafe-run-1-round1", 2), ("base", 2)]  # one rollout per task per round
    branches_round_two = db.execute(
        """select count(*) from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.policy = 'adapter:leafe-run-1-round1' and nodes.branch_depth > 0"""
    ).fetchone()[0]
    assert branches_round_two >= 1
    # Each round's dataset holds everything so far: round 2 trains on more than round 1.
    datasets = [(row["name"], row["n_examples"]) for row in db["datasets"].rows]
    assert [name for name, _ in datasets] == ["leafe-run-1-round1", "leafe-run-1-round2"]
    assert datasets[1][1] > datasets[0][1]
    assert {"distill@1", "distill@2", "validate@1", "validate@2"} <= set(result.summaries)
    # The rounds curve: base as round 0, then each round's adapter on the validation tasks.
    curve = stored_rounds.scores(db, 1)
    assert [(s.round, s.policy) for s in curve] == [
        (0, "base"), (1, "adapter:leafe-run-1-round1"), (2, "adapter:leafe-run-1-round2")]
    assert all(s.tasks == 2 and s.n == 1 for s in curve)
    # Scripted answers: guess/2 (secret 5) is never guessed, guess/3 (secret 9) neither.
    assert [s.pass_at_1 for s in curve] == [0.0, 0.0, 0.0]
    assert curve[2].env_steps > curve[1].env_steps > 0 and curve[2].train_examples > curve[1].train_examples


def test_resume_after_a_stop_between_rounds_skips_the_finished_round(workdir, tiny_folder, monkeypatch):
    config = config_from_dict(rounds_config(workdir, tiny_folder))
    # Round 2 is the one acting with an adapter: stopped there, as a kill between rounds would.
    explore_again = stop_explore_when(monkeypatch, lambda context: bool(context.config.model.adapter))
    first = run_pipeline(config, db_path=workdir / "r.db")
    assert first.status == "interrupted"
    db = open_store(workdir / "r.db")
    assert [row["name"] for row in db["adapters"].rows] == ["leafe-run-1-round1"]
    finished = {(row["stage"], row["round"]): row["finished_at"] for row in db["run_stages"].rows}
    explore_again()
    trained = record_trained(monkeypatch)
    second = run_pipeline(config, db_path=workdir / "r.db", resume=True)
    assert second.status == "finished", second.error
    assert trained == ["leafe-run-1-round2"]
    rows = {(row["stage"], row["round"]): row for row in db["run_stages"].rows}
    for stage in LEAFE_STAGES:  # round 1's rows were not run again
        assert rows[(stage, 1)]["finished_at"] == finished[(stage, 1)]
        assert rows[(stage, 2)]["status"] == "finished"
    explore = db.execute("select policy, count(*) from episodes where purpose = 'explore' group by policy").fetchall()
    assert sorted(explore) == [("adapter:leafe-run-1-round1", 2), ("base", 2)]
    assert second.summaries["distill@1"]["name"] == "leafe-run-1-round1"


def test_round_names_follow_distill_and_export_names(workdir, tiny_folder):
    from workbench.rounds import adapter_name, with_round_path
    from workbench.seeds import with_seed_path

    config = config_from_dict(rounds_config(workdir, tiny_folder))
    assert adapter_name(config, 7, 2) == "leafe-run-7-round2"
    named = dataclasses.replace(config, distill=dataclasses.replace(config.distill, name="nav"))
    assert adapter_name(named, 7, 3) == "nav-round3"
    assert with_round_path("out/data.jsonl", 2) == "out/data-round2.jsonl"
    assert with_round_path("", 2) == ""  # no path set: the default follows the round's name
    # A seed's files are suffixed the same way, the seed first when both apply.
    assert with_round_path(with_seed_path("out/adapter", 1), 2) == "out/adapter-seed1-round2"


def test_a_round_after_one_that_trained_nothing_still_explores_episodes_of_its_own(workdir, tiny_folder):
    # guess/1 is never guessed: round 1 has no success and no correction, so it trains no
    # adapter and round 2 acts with the base policy again, on new episodes, not round 1's.
    settings = rounds_config(workdir, tiny_folder)
    settings["env"]["tasks"] = ["guess/1"]
    result = run_pipeline(config_from_dict(settings), db_path=workdir / "r.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "r.db")
    rows = db.execute("select policy, rollout from episodes where purpose = 'explore' order by rollout").fetchall()
    assert rows == [("base", 0), ("base", 1)]
    assert result.summaries["explore@2"]["episodes"] == 2 and "skipped" in result.summaries["distill@2"]


def test_with_a_budget_round_two_explores_only_its_own_share(workdir, tiny_folder):
    # Round 2 acts with round 1's adapter, a policy of its own: its waves must not replay
    # round 1's rollout numbers under the new policy (which once doubled its exploration
    # and left backtracking a third of its share).
    settings = rounds_config(workdir, tiny_folder)
    settings["experiment"] = {"env_steps": 16, "explore_share": 0.5}
    result = run_pipeline(config_from_dict(settings), db_path=workdir / "r.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "r.db")
    rows = db.execute("select rollout, policy, count(*) from episodes where purpose = 'explore' "
                      "group by rollout, policy order by rollout, policy").fetchall()
    assert len({rollout for rollout, _, _ in rows}) == len(rows), f"a rollout played by two policies: {rows}"
    assert all(count <= 2 for _, _, count in rows), "one episode per task and wave"
    explore_2 = result.summaries["explore@2"]
    assert explore_2["env_steps"] <= explore_2["env_steps_target"] == 8
