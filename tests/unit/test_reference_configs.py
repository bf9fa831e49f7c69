"""The shipped reference configs keep the protocol a reviewer checks before trusting a
result: training, validation and test tasks are disjoint, every MiniGrid test seed starts
unlike every training and validation seed (a seed is only a name for its start), and each
config runs the whole comparison (seeds, rounds, equal budgets, the no-note control)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import load_config
from workbench.envs import open_suite
from workbench.envs.base import Task
from workbench.envs.navigation import NavigationEnvironment
from workbench.splits import run_splits, splits_warning

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAVIGATION = ["navigation.toml", "navigation_lava.toml", "navigation_obstacles.toml"]
REFERENCE = [*NAVIGATION, "compare.toml"]


def start_of(room: str, seed: int) -> tuple:
    """What the policy sees first for a seed, read straight from a fresh environment (not
    through the suite's own start_state, so this test checks it rather than repeats it)."""
    env = NavigationEnvironment(4, "words")
    env.reset(Task(f"{room}/{seed}", {"env_id": room, "seed": seed}))
    return env.minigrid.grid.encode().tobytes(), env.agent_cell(), int(env.minigrid.agent_dir)


@pytest.mark.parametrize("name", REFERENCE)
def test_training_validation_and_test_tasks_are_disjoint(name):
    config = load_config(EXAMPLES / name)
    training, validation, test = config.env.tasks, config.leafe.validation_tasks, config.evaluate.tasks
    for listed in (training, validation, test):
        assert isinstance(listed, list), f"{name}: every split is listed by name in the config"
    assert not set(training) & set(validation), f"{name}: a validation task is also a training task"
    assert not set(training) & set(test), f"{name}: a test task is also a training task"
    assert not set(validation) & set(test), f"{name}: a test task is also a validation task"
    suite = open_suite(config.env)
    try:
        for listed in (training, validation, test):
            assert len(suite.load_tasks(listed)) == len(listed)  # every named task exists
        splits = run_splits(config, suite)
    finally:
        suite.close()
    assert splits["held_out"] == len(test) and splits_warning(splits) is None


@pytest.mark.parametrize("name", NAVIGATION)
def test_every_navigation_test_seed_starts_unlike_every_training_and_validation_seed(name):
    config = load_config(EXAMPLES / name)
    room = config.env.suite
    seen = {start_of(room, seed): seed for seed in [*config.env.tasks, *config.leafe.validation_tasks]}
    test = config.evaluate.tasks
    assert len(test) >= 32, f"{name}: at least 32 held-out test seeds"
    clashes = {seed: seen[start_of(room, seed)] for seed in test if start_of(room, seed) in seen}
    assert not clashes, f"{name}: test seeds starting like a training or validation seed: {clashes}"
    assert len({start_of(room, seed) for seed in test}) == len(test), f"{name}: two test seeds share a start"


@pytest.mark.parametrize("name", REFERENCE)
def test_each_reference_config_runs_the_whole_comparison(name):
    config = load_config(EXAMPLES / name)
    stages = config.stages.run
    for stage in ("explore", "backtrack", "distill", "baseline:rft", "baseline:grpo",
                  "baseline:early_experience", "ablation:no_note", "evaluate"):
        assert stage in stages, f"{name}: stage {stage} is missing"
    assert config.experiment.seeds == [0, 1, 2]
    assert config.experiment.env_steps > 0, f"{name}: the interaction budget is declared"
    assert config.leafe.rounds >= 2 and config.curate.min_gain is not None
    assert config.evaluate.n >= 8 and max(config.evaluate.k) <= config.evaluate.n
    policies = config.evaluate.policies
    assert policies[0] == "base" and len(policies) == 5
    # LEAFE is compared through its last round's adapter, the baselines through their own.
    assert f"adapter:leafe-run-{{run}}-round{config.leafe.rounds}" in policies
    for method in ("rft", "grpo", "early-experience"):
        assert f"adapter:{method}-run-{{run}}" in policies


PROBES = {  # probe: (its reference config, the settings it changes there, by section)
    "navigation_end_at_best.toml": ("navigation.toml", {"export": {"end_at_best": True}}),
    "navigation_whole_branches.toml": ("navigation.toml", {}),
    "navigation_corrected_action.toml": ("navigation.toml", {"export": {"continuation": False}}),
    "compare_first_error.toml": ("compare.toml", {"backtrack": {"rollback": "first_error"}}),
    "compare_first_error_action.toml": ("compare.toml", {"backtrack": {"rollback": "first_error"},
                                                         "export": {"targets": "action"}}),
}


@pytest.mark.parametrize(("probe", "reference_config", "changes"),
                         [(probe, *settings) for probe, settings in PROBES.items()])
def test_a_validation_probe_differs_from_its_reference_config_only_where_it_says(probe, reference_config, changes):
    # A probe copies a reference config; a setting changed there and not here would make
    # the probe measure something other than the reference run's LEAFE.
    import dataclasses

    reference = dataclasses.asdict(load_config(EXAMPLES / reference_config))
    probed = dataclasses.asdict(load_config(EXAMPLES / "probes" / probe))
    for section, settings in changes.items():
        assert {key: probed[section][key] for key in settings} == settings
        assert all(reference[section][key] != value for key, value in settings.items())
        probed[section].update({key: reference[section][key] for key in settings})
    assert probed["experiment"].pop("seeds") == [0]
    assert probed.pop("stages")["run"] == [
        "explore", "reflect", "backtrack", "curate", "export", "distill", "ablation:no_note"
    ]
    reference["experiment"].pop("seeds")
    reference.pop("stages"), reference.pop("store"), probed.pop("store")
    assert probed == reference
