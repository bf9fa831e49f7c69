"""LEAFE spends a declared budget ([experiment] env_steps) with the scripted backend:
exploration in waves up to its share, backtracking breadth-first with the rest, landing
within 5% without overrunning; and `spend_leafe_budget`, which rounds call per round."""

from __future__ import annotations

from store import queries
from store.budget import spent
from store.db import open_store, transaction
from tests.conftest import GUESS_ENV, write_script
from workbench.backtrack import spend_leafe_budget
from workbench.budget import budget_warning, leafe_accounting, within_tolerance
from workbench.config import config_from_dict, resolved
from workbench.context import StageContext
from workbench.envs import open_suite
from workbench.pipeline import run_pipeline

WRONG = {"guess/0": ["0"], "guess/1": ["0"]}  # secrets 3 and 7: every guess fails
RIGHT = {"guess/0": ["3"], "guess/1": ["7"]}


def settings(workdir, actions, **sections) -> dict:
    data = {
        "model": {"backend": "scripted", "script": str(write_script(workdir / "s.jsonl", actions))},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 2, "max_attempts": 2, "rollback": "first_error"},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def leafe_run(workdir, actions, **sections):
    result = run_pipeline(config_from_dict(settings(workdir, actions, **sections)), db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    return result, open_store(workdir / "s.db")


def explored(db, run_id: int) -> int:
    return spent(db, run_id, "explore", original_only=True)[0]


def test_leafe_spends_a_declared_budget_within_five_percent(workdir):
    result, db = leafe_run(workdir, WRONG, experiment={"env_steps": 60})
    used = spent(db, result.run_id, "explore")[0]
    assert within_tolerance(used, 60) and used <= 60
    # Exploration took its share (30% of 60 = 18: three waves of 2 episodes of 3 steps) ...
    assert explored(db, result.run_id) == 18
    assert db.execute("select count(*) from episodes where purpose = 'explore'").fetchone()[0] == 6
    # ... and backtracking the rest, past `max_attempts` = 2 per episode: the budget is the cap.
    branches = result.summaries["backtrack"]["branches"]
    assert branches > 2 * 6 and result.summaries["backtrack"]["env_steps"] == used
    assert budget_warning("LEAFE", used, 60) is None


def test_leafe_budget_is_spent_breadth_first(workdir):
    result, db = leafe_run(workdir, WRONG, experiment={"env_steps": 90})
    # 27 steps explore 9 episodes; the 63 left branch from each of their 9 rollback points once
    # (54 steps), then from the new points failed branches gave, before any point a second time.
    per_note = [count for (count,) in db.execute(
        """select count(*) from nodes join notes on notes.id = nodes.note_id
           join nodes written on written.id = notes.node_id
           where nodes.branch_depth > 0 and written.branch_depth = 0 group by notes.id""").fetchall()]
    episodes = db.execute("select count(*) from episodes where purpose = 'explore'").fetchone()[0]
    assert len(per_note) == episodes and set(per_note) == {2}  # one note per failed episode, each once
    levels = {row[0] for row in db.execute("select distinct branch_depth from nodes where branch_depth > 0")}
    assert levels == {1, 2}  # failed branches were reflected on and branched from again
    used = spent(db, result.run_id, "explore")[0]
    assert within_tolerance(used, 90) and used <= 90


def test_when_every_episode_succeeds_exploration_spends_the_rest(workdir):
    # Nothing fails, so there is no rollback point: exploration plays more waves instead.
    result, db = leafe_run(workdir, RIGHT, experiment={"env_steps": 40})
    used = spent(db, result.run_id, "explore")[0]
    assert within_tolerance(used, 40) and used <= 40
    assert result.summaries["backtrack"]["branches"] == 0 and result.summaries["backtrack"]["explore_waves"] > 0


def test_a_budget_leafe_cannot_meet_is_named_in_the_warning(workdir):
    # 10 steps: exploration's share (3) holds one 3-step episode; two 3-step branches fit in
    # the 7 left, and the last step fits nothing: 9 of 10, outside 5%.
    result, db = leafe_run(workdir, WRONG, experiment={"env_steps": 10})
    assert spent(db, result.run_id, "explore")[0] == 9
    config = config_from_dict(settings(workdir, WRONG, experiment={"env_steps": 10}))
    context = StageContext(db=db, run_id=result.run_id, config=config, suite=open_suite(config.env))
    entries = leafe_accounting(context)
    assert "9 of the 10" in entries["budget_warning"] and "LEAFE" in entries["budget_warning"]


def test_spend_leafe_budget_spends_each_rounds_cumulative_total(workdir):
    config = config_from_dict(settings(workdir, WRONG))
    db = open_store(workdir / "s.db")
    with transaction(db):
        run_id = queries.create_run(db, config=resolved(config), stages=[], provenance={})
    context = StageContext(db=db, run_id=run_id, config=config, suite=open_suite(config.env))
    for total in (40, 80):  # two rounds of 40 steps each
        summaries = spend_leafe_budget(context, total)
        used = spent(db, run_id, "explore")[0]
        assert within_tolerance(used, total) and used <= total
        assert set(summaries) == {"explore", "reflect", "backtrack"}
    context.close()


def test_in_leafe_rounds_each_round_spends_its_share_through_the_stages(workdir):
    import dataclasses

    from workbench.backtrack import run_backtrack
    from workbench.explore import run_explore
    from workbench.reflect import run_reflect
    from workbench.rounds import round_config

    config = config_from_dict(settings(workdir, WRONG, experiment={"env_steps": 60}, leafe={"rounds": 2},
                                             explore={"rollouts_per_task": 2}))
    db = open_store(workdir / "s.db")
    with transaction(db):
        run_id = queries.create_run(db, config=resolved(config), stages=["explore"], provenance={})
    context = StageContext(db=db, run_id=run_id, config=config, suite=open_suite(config.env))
    for round_number, share in ((1, 30), (2, 60)):  # round r of 2: r/2 of the 60 steps, cumulative
        inner = dataclasses.replace(context, config=round_config(context, round_number))
        explored_now = run_explore(inner)
        run_reflect(inner)
        summary = run_backtrack(inner)
        used = spent(db, run_id, "explore")[0]
        # Exploration played waves up to its share (30% of the round's total), not rollouts_per_task.
        assert explored_now["env_steps_target"] == round(0.3 * share)
        assert summary["env_steps_budget"] == share and within_tolerance(used, share) and used <= share
    context.close()


def whole_and_resumed(workdir, monkeypatch, module, function: str, **sections):
    """The same run twice: once straight through, once stopped (as Ctrl-C stops it) on the
    second call of `module.function` and then resumed; their results."""
    (workdir / "whole").mkdir()
    (workdir / "stopped").mkdir()
    whole, _ = leafe_run(workdir / "whole", WRONG, **sections)
    config = config_from_dict(settings(workdir / "stopped", WRONG, **sections))
    original, calls = getattr(module, function), []

    def call_or_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, call_or_stop)
    stopped = run_pipeline(config, db_path=workdir / "stopped" / "s.db")
    assert stopped.status == "interrupted"
    monkeypatch.setattr(module, function, original)
    resumed = run_pipeline(config, db_path=workdir / "stopped" / "s.db", resume=True)
    assert resumed.status == "finished", resumed.error
    return whole, resumed


def test_a_backtrack_stopped_midway_and_resumed_reports_every_branch_it_made(workdir, monkeypatch):
    import workbench.backtrack

    # Stopped in its second branch wave.
    whole, resumed = whole_and_resumed(workdir, monkeypatch, workbench.backtrack, "settle_branches",
                                       experiment={"env_steps": 60})
    # Before, the resumed stage said only what its last part did (a seed once reported 0
    # branches for 13); now it counts both parts, as the run that never stopped does.
    assert resumed.summaries["backtrack"]["branches"] == whole.summaries["backtrack"]["branches"] > 0
    assert resumed.summaries["backtrack"]["waves"] == whole.summaries["backtrack"]["waves"]


def test_a_reflect_stage_stopped_between_batches_and_resumed_reports_every_note(workdir, monkeypatch):
    import workbench.reflect

    # 2 tasks x 9 rollouts, all failed: 18 notes, written in batches of 16 and 2; stopped
    # before the second batch, after the first batch's 16 notes were stored.
    whole, resumed = whole_and_resumed(workdir, monkeypatch, workbench.reflect, "reflect_on",
                                       explore={"rollouts_per_task": 9}, stages={"run": ["explore", "reflect"]})
    assert whole.summaries["reflect"]["notes"] == 18
    assert resumed.summaries["reflect"]["notes"] == 18
