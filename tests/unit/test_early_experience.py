"""The Early Experience baseline's data with the scripted backend: world-modelling,
self-reflection and expert examples at every expert state, alternatives tried in a copy
of the state (by replay for an environment without snapshots)."""

from __future__ import annotations

from store.db import open_store
from tests.conftest import write_script
from tests.fixtures.guess_env import GuessHistoryGame
from workbench.baselines.early_experience import EXPERT, REFLECTION, WORLD, collect
from workbench.budget import Budget
from workbench.config import config_from_dict
from workbench.context import StageContext
from workbench.envs import open_suite


class HalvingExpertGame(GuessHistoryGame):
    """An expert that first halves the range (5), then says the secret; no snapshots."""

    def expert_action(self) -> str:
        return "5" if not self.guesses else str(self.game.secret)


def test_every_expert_state_yields_world_reflection_and_expert_examples(workdir):
    # guess/0's secret is 3. At each expert state one alternative is tried, then the
    # policy explains why the expert's action was better (its next scripted answer).
    script = write_script(workdir / "s.jsonl", {"guess/0": [
        "9", "halving the range first finds the secret sooner",
        "8", "the secret lies below five so three fits",
    ]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": f"{__name__}:HalvingExpertGame", "tasks": 1, "max_steps": 3},
        "baselines": {"alternatives": 1},
    })
    db = open_store(workdir / "s.db")
    suite = open_suite(config.env)
    context = StageContext(db=db, run_id=1, config=config, suite=suite)
    try:
        collection = collect(context, suite.load_tasks(1), Budget(steps=4, source="planned"))
    finally:
        context.close()
        suite.close()
    assert (collection.states, collection.alternatives, collection.used) == (2, 2, 4)
    by_kind = {kind: [e for e in collection.examples if e["kind"] == kind] for kind in (WORLD, REFLECTION, EXPERT)}
    assert [len(by_kind[kind]) for kind in (WORLD, REFLECTION, EXPERT)] == [4, 2, 2]
    assert [e["messages"][-1]["content"] for e in by_kind[EXPERT]] == ["5", "3"]
    # The alternative at the second state ran in a copy rewound by replaying the expert's "5".
    world_replies = [e["messages"][-1]["content"] for e in by_kind[WORLD]]
    assert "Wrong, go lower. Guesses so far: 5, 8." in world_replies
    reflections = [e["messages"][-1]["content"] for e in by_kind[REFLECTION]]
    assert reflections == [
        "5\n\nhalving the range first finds the secret sooner",
        "3\n\nthe secret lies below five so three fits",
    ]
    assert collection.model_reflections == 2
