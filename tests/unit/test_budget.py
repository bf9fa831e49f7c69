"""Equal budgets with the scripted backend: what each method records as spent, the 5% rule
and its warning, and grpo's optimiser steps derived from the budget."""

from __future__ import annotations

import pytest

from store import queries
from store.db import open_store, transaction
from tests.conftest import GUESS_ENV, write_script
from tests.fixtures.guess_env import GuessHistoryGame
from workbench.baselines import early_experience, grpo, rft
from workbench.budget import Budget, budget_warning, leafe_accounting, step_budget, within_tolerance
from workbench.config import config_from_dict, resolved
from workbench.context import StageContext
from workbench.envs import open_suite
from workbench.errors import ConfigError
from workbench.pipeline import run_pipeline

LEAFE = ["explore", "reflect", "backtrack"]


def context_for(workdir, run_id: int, **sections) -> StageContext:
    data = {"env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config = config_from_dict(data)
    db = open_store(workdir / "s.db")
    if queries.latest_run(db) is None:
        with transaction(db):
            run_id = queries.create_run(db, config=resolved(config), stages=[], name="", config_path="",
                                        provenance={})
    return StageContext(db=db, run_id=run_id, config=config, suite=open_suite(config.env))


def leafe_run(workdir, actions: dict[str, list[str]], **sections):
    data = {
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", actions))},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 1, "rollback": "first_error"},
        "stages": {"run": LEAFE},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    result = run_pipeline(config_from_dict(data), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    return result


@pytest.mark.parametrize(("used", "inside"), [(95, True), (105, True), (94, False), (106, False), (100, True)])
def test_five_percent_either_side_is_within_budget(used, inside):
    assert within_tolerance(used, 100) is inside
    assert (budget_warning("baseline:rft", used, 100) is None) is inside


def test_the_warning_names_the_method_and_what_it_spent():
    line = budget_warning("baseline:grpo", 32, 1195)
    assert line is not None and "\n" not in line
    assert "baseline:grpo" in line and "32 of the 1195" in line and "3%" in line


def test_a_negative_budget_is_refused_with_one_line():
    with pytest.raises(ConfigError, match="experiment.env_steps"):
        config_from_dict({"experiment": {"env_steps": -5}})


def test_leafe_spends_exploration_and_backtracking_and_is_the_default_budget(workdir):
    # guess/0 (secret 3) and guess/1 (secret 7) fail all 3 steps; 2 branches each at step 1
    # replay the 3-step budget: 2 x 3 explored + 2 x 2 x 3 branched = 18 steps.
    result = leafe_run(workdir, {"guess/0": ["0"], "guess/1": ["0"]})
    context = context_for(workdir, result.run_id)
    assert step_budget(context, 2) == Budget(18, "leafe")
    entries = leafe_accounting(context)
    assert (entries["env_steps"], entries["env_steps_budget"]) == (18, 18)
    assert "budget_warning" not in entries and not context.messages


def test_leafe_off_a_declared_budget_is_warned_about(workdir):
    # 10 steps: exploration's 30% share holds one 3-step episode, two 3-step branches fit in
    # the 7 left and the last step fits nothing (more in test_leafe_budget.py).
    result = leafe_run(workdir, {"guess/0": ["0"], "guess/1": ["0"]}, experiment={"env_steps": 10})
    context = context_for(workdir, result.run_id, experiment={"env_steps": 10})
    entries = leafe_accounting(context)
    assert entries["env_steps"] == 9 and entries["env_steps_budget"] == 10
    assert "LEAFE" in entries["budget_warning"] and "9 of the 10" in entries["budget_warning"]
    assert context.messages == [entries["budget_warning"]]


def test_rft_plays_waves_until_it_spends_a_declared_budget(workdir):
    # Every rft episode fails and runs all 3 steps: 20 steps hold 3 full waves of 2 tasks
    # (18); the 2 left are below one episode's 3 steps, so 90% is spent and named.
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0"], "guess/1": ["0"]})
    context = context_for(workdir, 1, model={"backend": "scripted", "script": str(script)},
                          experiment={"env_steps": 20})
    budget = step_budget(context, 2)
    assert budget == Budget(20, "declared")
    rft.roll_out_within_budget(context, context.suite.load_tasks(2), budget)
    used = rft.steps_used(context, rft.PURPOSE)
    assert used == 18 and used <= budget.steps
    assert budget_warning("baseline:rft", used, budget.steps) is not None  # 90%: named
    context.close()


def test_rft_lands_within_five_percent_when_the_budget_is_large(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0"], "guess/1": ["0"]})
    context = context_for(workdir, 1, model={"backend": "scripted", "script": str(script)},
                          experiment={"env_steps": 100})
    rft.roll_out_within_budget(context, context.suite.load_tasks(2), step_budget(context, 2))
    used = rft.steps_used(context, rft.PURPOSE)
    assert 95 <= used <= 100
    context.close()


class ExpertGame(GuessHistoryGame):
    def expert_action(self) -> str:
        return str(self.game.secret)


def test_early_experience_spends_the_budget_pass_after_pass(workdir):
    # One expert state per task and pass (the expert guesses right), 1 + 2 alternatives
    # each: 3 steps a state, so 31 steps hold 10 states and leave 1.
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0"], "guess/1": ["0"]})
    context = context_for(workdir, 1, model={"backend": "scripted", "script": str(script)},
                          env={"kind": f"{__name__}:ExpertGame"}, baselines={"alternatives": 2},
                          experiment={"env_steps": 31})
    collection = early_experience.collect(context, context.suite.load_tasks(2), step_budget(context, 2))
    assert (collection.states, collection.used) == (10, 30)
    assert within_tolerance(collection.used, 31)
    context.close()


@pytest.mark.parametrize(("multi_turn", "grpo_steps", "expected"), [
    (False, 0, 1195 // 4),  # derived: every completion one step
    (True, 0, 1195 // 4),  # derived: planned for one-step episodes, stopped by the guard
    (False, 8, 8),  # a set count caps them
])
def test_grpo_optimiser_steps_are_derived_from_the_budget(workdir, multi_turn, grpo_steps, expected):
    context = context_for(workdir, 1, baselines={"grpo_multi_turn": multi_turn, "grpo_steps": grpo_steps})
    assert grpo.plan_steps(context, Budget(1195, "declared"), 4, 2) == expected


def test_the_grpo_guard_stops_before_the_budget_could_be_overrun(workdir):
    context = context_for(workdir, 1)
    scorer = grpo.Scorer(context, {}, budget=20)
    guard = grpo.BudgetGuard(scorer, budget=20, worst_step=12)
    scorer.used = 8
    assert not guard.exhausted()
    scorer.used = 9
    assert guard.exhausted()


def test_the_budgets_table_shows_each_method_and_marks_a_miss(workdir):
    from store.budget import adapter_budgets
    from store.queries import dumps
    from workbench.budget import budget_rows

    context = context_for(workdir, 1)
    with transaction(context.db):
        for name, kind, metrics in [
            ("leafe-run-1", "leafe", {"env_steps": 18, "env_steps_budget": 18, "tokens": 40,
                                      "train_examples": 3, "train_tokens": 900}),
            ("rft-run-1", "rft", {"env_steps": 12, "env_steps_budget": 18, "tokens": 30, "train_examples": 1,
                                  "train_tokens": 200, "budget_warning": "warning: baseline:rft spent 12"}),
        ]:
            context.db["adapters"].insert({"run_id": 1, "name": name, "kind": kind, "metrics": dumps(metrics)})
    rows = budget_rows(adapter_budgets(context.db, 1))
    assert rows == [["leafe-run-1", "leafe", "18", "18", "40", "3", "900"],
                    ["rft-run-1", "rft", "12 !", "18", "30", "1", "200"]]
    context.close()
