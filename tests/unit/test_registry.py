"""Environments and reflectors are found by name through registries: built-ins, `module:name`
and installed packages (entry points) alike. Adding either is one new file: a package with
one module adds both, and a batch run uses them by name. Unknown names are one line that
lists the known ones (exit 2 in batch mode). Stages ask a suite what it offers."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from store.db import open_store
from tests.conftest import ROOT, write_config, write_script
from tests.fixtures.guess_env import GuessEnvironment
from workbench.config import config_from_dict
from workbench.envs import SUITES, open_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.errors import ConfigError, EnvironmentSetupError
from workbench.pipeline import run_pipeline
from workbench.reflectors import REFLECTORS, Reflection

LEAFE_TUI = [sys.executable, "-m", "workbench.cli"]

# One module, the whole of a third-party package: an environment and a reflector.
LAMP_MODULE = '''
"""A lamp with ten switches; one turns it on. Feedback names the switch tried."""
import re

from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.reflectors import Reflection, register_reflector


class Lamp:
    def __init__(self, max_steps):
        self.max_steps, self.steps, self.switch = max_steps, 0, None

    def reset(self, task):
        self.switch, self.steps = task.spec["switch"], 0
        return "One of the switches 0 to 9 turns the lamp on. Which one do you press?"

    def step(self, action):
        self.steps += 1
        found = re.search(r"\\d", action)
        pressed = int(found.group()) if found else -1
        lit = pressed == self.switch
        seen = "The lamp is on." if lit else f"Switch {pressed} did nothing."
        return StepResult(seen, {"pressed": pressed, "success": lit}, float(lit), lit or self.steps >= self.max_steps)


@register_suite("lamp")
class LampSuite(Suite):
    default_prompts = {"system": "Answer with one switch number.", "first_turn": "{observation}",
                       "next_turn": "{observation} ({steps_left} left)", "note": "{turn} Hint: {note}"}

    def load_tasks(self, selection):
        tasks = [Task(f"lamp/{i}", {"switch": switch}) for i, switch in enumerate([4, 7])]
        return tasks[:selection] if isinstance(selection, int) else [t for t in tasks if t.name in selection]

    def new_environment(self):
        return Lamp(self.config.max_steps)


@register_reflector("switch-notes")
def switch_notes(context, paths, task_names):
    return [
        Reflection(f"On {name}, switch {path[-1]['feedback']['pressed']} did nothing; press another.",
                   path[-1]["depth"], "switch-notes")
        for path, name in zip(paths, task_names)
    ]
'''

ENTRY_POINTS = """\
[leafe_tui.environments]
lamp = leafe_lamp:LampSuite

[leafe_tui.reflectors]
switch-notes = leafe_lamp:switch_notes
"""


def install_lamp_package(folder: Path) -> Path:
    """`leafe-lamp` installed into `folder` as pip would: its module and its dist-info."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leafe_lamp.py").write_text(LAMP_MODULE)
    info = folder / "leafe_lamp-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: leafe-lamp\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


TEMPORARY_PACKAGES = ("leafe_lamp", "lamp_home")


@pytest.fixture
def imports_forgotten():
    """The packages a test installs in a temporary folder, and what they registered, are
    forgotten after it; the built-ins stay registered (their modules stay imported)."""
    yield
    for registry in (SUITES, REFLECTORS):
        for name, entry in list(registry.entries.items()):
            if entry.__module__.split(".")[0] in TEMPORARY_PACKAGES:
                del registry.entries[name]
    for name in list(sys.modules):
        if name.split(".")[0] in TEMPORARY_PACKAGES:
            del sys.modules[name]


def batch(config: Path, *arguments: str, site: Path | None = None) -> subprocess.CompletedProcess:
    paths = [str(site)] if site else []
    return subprocess.run(
        [*LEAFE_TUI, "--batch", str(config), *arguments], capture_output=True, text=True, cwd=config.parent,
        env=os.environ | {"PYTHONPATH": os.pathsep.join([*paths, str(ROOT)])}, timeout=300,
    )


def test_an_installed_package_adds_an_environment_and_a_reflector_a_batch_run_uses(tmp_path):
    site = install_lamp_package(tmp_path / "site")
    # lamp/0's switch is 4: two wrong presses end the episode; the reflector's note sends
    # the branch back to step 2, where the next scripted press, 4, lights the lamp.
    script = write_script(tmp_path / "s.jsonl", {"lamp/0": ["1", "2", "4"]})
    config = write_config(tmp_path / "c.toml", textwrap.dedent(f"""\
        [model]
        backend = "scripted"
        script = "{script}"
        [env]
        kind = "lamp"
        tasks = 1
        max_steps = 2
        [reflect]
        reflector = "switch-notes"
        [backtrack]
        branches = 1
        max_depth = 1
        rollback = "reflector"
        [stages]
        run = ["explore", "reflect", "backtrack", "curate"]
        """))
    process = batch(config, "--db", "s.db", "--json", site=site)
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)
    assert (summary["status"], summary["notes"], summary["corrections"]) == ("finished", 1, 1)
    db = open_store(tmp_path / "s.db")
    assert [(row["env"], row["name"]) for row in db["tasks"].rows] == [("lamp", "lamp/0")]
    notes = list(db["notes"].rows)
    assert [(note["author"], note["text"]) for note in notes] == [
        ("switch-notes", "On lamp/0, switch 2 did nothing; press another.")
    ]
    # The suite's own prompts reached the policy's first turn.
    assert json.loads(db["runs"].get(1)["config"])["prompts"]["system"] == "Answer with one switch number."
    branch = next(db["nodes"].rows_where("branch_depth = 1"))
    assert (branch["action"], branch["success"]) == ("4", 1)


def test_an_unknown_environment_is_one_line_listing_the_known_ones_and_nothing_is_written(tmp_path):
    site = install_lamp_package(tmp_path / "site")
    config = write_config(tmp_path / "c.toml", '[env]\nkind = "lmap"\n')
    process = batch(config, "--db", "s.db", site=site)
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip().splitlines() == [
        "leafe-tui: env.kind 'lmap' is unknown (known: coding, gymnasium, lamp, navigation, scienceworld, sokoban; or a class as module:Class)"
    ]
    assert not (tmp_path / "s.db").exists()


def test_an_unknown_reflector_is_one_line_listing_the_known_ones(tmp_path):
    config = write_config(tmp_path / "c.toml", '[reflect]\nreflector = "templat"\n')
    for arguments in (["--db", "s.db"], ["--dry-run"]):
        process = batch(config, *arguments)
        assert process.returncode == 2, process.stderr
        assert process.stderr.strip().splitlines() == [
            "leafe-tui: config: reflect.reflector 'templat' is unknown "
            "(known: model, template; or a function as module:function)"
        ]
    assert not (tmp_path / "s.db").exists()


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path, monkeypatch, imports_forgotten):
    site = install_lamp_package(tmp_path / "site")
    (site / "leafe_lamp-0.1.dist-info" / "entry_points.txt").write_text(
        "[leafe_tui.environments]\nlamp = leafe_lamp:NoSuchSuite\n"
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(EnvironmentSetupError, match=r"env.kind 'lamp': the entry point 'leafe_lamp:NoSuchSuite'"):
        SUITES.find("lamp")


# -- in-process: module:name, built-ins, and what a suite declares ---------------------


class Counter:
    """Count up to the task's target; no snapshot()/restore() of its own."""

    def __init__(self, target: int = 3) -> None:
        self.count, self.target = 0, target

    def reset(self, task: Task) -> str:
        self.count, self.target = 0, task.spec["target"]
        return f"Count to {self.target}, one number per answer."

    def step(self, action: str) -> StepResult:
        said = int(action) if action.strip().isdigit() else -1
        self.count = self.count + 1 if said == self.count + 1 else self.count
        done = self.count == self.target
        return StepResult(f"At {self.count}.", {"success": done}, self.count / self.target, done)


class CounterSuite(Suite):
    """Declares no snapshots, so a rewind must replay: the environment's snapshot methods,
    added below, would break the run if a stage probed for them and called them."""

    def load_tasks(self, selection):
        return [Task("count/0", {"target": 3})]

    def new_environment(self) -> Counter:
        return BrokenSnapshotCounter()


class BrokenSnapshotCounter(Counter):
    def snapshot(self):
        raise AssertionError("snapshot() called on a suite that declares none")

    def restore(self, state):
        raise AssertionError("restore() called on a suite that declares none")


def wrong_last_step(context, paths, task_names) -> list[Reflection]:
    """A reflector given as module:function: redo the last step, say what was counted."""
    return [Reflection(f"{name}: count on from {path[-1]['observation']}", path[-1]["depth"], "counter")
            for path, name in zip(paths, task_names, strict=True)]


def test_module_names_reach_a_suite_and_a_reflector_and_rewinds_replay_without_snapshots(workdir):
    # "1" counts, then "3" twice does not; the note sends the branch back to step 3.
    script = write_script(workdir / "s.jsonl", {"count/0": ["1", "3", "3", "2"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": f"{__name__}:CounterSuite", "tasks": 1, "max_steps": 3},
        "reflect": {"reflector": f"{__name__}:wrong_last_step"},
        "backtrack": {"branches": 1, "max_depth": 1, "rollback": "reflector"},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "s.db")
    assert [note["text"] for note in db["notes"].rows] == ["count/0: count on from At 1."]
    branch = [(row["action"], row["observation"]) for row in db["nodes"].rows_where("branch_depth = 1", order_by="depth")]
    # Rewound by replaying "1", "3" (the state before step 3: at 1), so the branch's "2" counts.
    assert branch[0] == ("2", "At 2.")


def test_a_built_in_is_one_module_or_package_in_the_home_package(tmp_path, monkeypatch, imports_forgotten):
    # A home package like workbench/envs/: its __init__ holds the registry, each module
    # or package registers what it defines.
    home = tmp_path / "lamp_home"
    home.mkdir()
    (home / "__init__.py").write_text(textwrap.dedent("""\
        from workbench.errors import ConfigError
        from workbench.registry import Registry

        LAMPS = Registry(what="lamp", setting="lamp.kind", home="lamp_home", group="no.such.group",
                         spec="module:Class", error=ConfigError)
        """))
    (home / "base.py").write_text("HELPER = 1\n")
    (home / "bulb.py").write_text("from lamp_home import LAMPS\n\n@LAMPS.register('bulb')\nclass Bulb:\n    pass\n")
    # A module named otherwise than what it registers is found too, by importing them all.
    (home / "spare_parts.py").write_text("from lamp_home import LAMPS\n\n@LAMPS.register('tube')\nclass Tube:\n    pass\n")
    # A package of that name is a built-in too (as `coding` is workbench/envs/coding/): its
    # __init__ re-exports what its private modules define.
    (home / "strip").mkdir()
    (home / "strip" / "__init__.py").write_text("from lamp_home.strip.leds import Strip\n")
    (home / "strip" / "leds.py").write_text("from lamp_home import LAMPS\n\n@LAMPS.register('strip')\nclass Strip:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = importlib.import_module("lamp_home").LAMPS
    assert registry.find("bulb").__name__ == "Bulb"
    assert "lamp_home.spare_parts" not in sys.modules, "naming one built-in imports only its module"
    assert registry.find("strip").__name__ == "Strip"
    assert "lamp_home.spare_parts" not in sys.modules, "naming one built-in imports only its package"
    assert registry.find("tube").__name__ == "Tube"
    assert registry.known() == ["bulb", "strip", "tube"]
    with pytest.raises(ConfigError, match=r"^lamp.kind 'lava' is unknown \(known: bulb, strip, tube; or module:Class\)$"):
        registry.find("lava")


def test_one_name_cannot_be_registered_twice(imports_forgotten):
    class Impostor(Suite):
        def load_tasks(self, selection):
            return []

        def new_environment(self):
            return None

    with pytest.raises(EnvironmentSetupError, match="'coding' is registered twice"):
        SUITES.find("coding")
        SUITES.add("coding", Impostor)
    assert SUITES.find("coding").__name__ == "CodingSuite"
    with pytest.raises(ConfigError, match="hold no ':'"):
        REFLECTORS.add("a:b", wrong_last_step)


def test_a_suite_offers_nothing_optional_unless_it_declares_it():
    suite = open_suite(config_from_dict({"env": {"kind": f"{__name__}:CounterSuite"}}).env)
    task = suite.load_tasks(1)[0]
    env = suite.new_environment()
    env.reset(task)
    assert not suite.supports_snapshot
    assert (suite.reflect_template([{}]), suite.expert_action(env), suite.canonical_solution(task)) == (None, None, None)
    assert suite.default_prompts is None
    assert config_from_dict({"env": {"kind": f"{__name__}:CounterSuite"}}).prompts.system.startswith(
        "You are a careful Python programmer"
    ), "a suite without prompts of its own gets the coding ones"


def test_stages_ask_the_suite_and_never_probe_for_its_optional_parts():
    optional = "snapshot|restore|expert_action|canonical_solution|reflect_template|close|default_prompts"
    probe = re.compile(rf"""(getattr|hasattr)\([^)]*["'](?:{optional})["']""")
    adapter = ROOT / "workbench" / "envs" / "__init__.py"  # reads a plain class's methods, once
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "workbench").rglob("*.py")) if path != adapter
        for number, line in enumerate(path.read_text().splitlines(), 1) if probe.search(line)
    ]
    assert found == []


class ClosingGuess(GuessEnvironment):
    """A plain class that holds something to release: its close() counts the calls."""

    closed = 0

    def close(self) -> None:
        type(self).closed += 1


def test_a_baseline_releases_each_environment_it_opens(workdir, monkeypatch):
    from workbench.baselines.grpo import Scorer
    from workbench.context import StageContext

    monkeypatch.setattr(ClosingGuess, "closed", 0)
    config = config_from_dict({"env": {"kind": f"{__name__}:ClosingGuess", "tasks": 1}})
    suite = open_suite(config.env)
    context = StageContext(db=open_store(workdir / "s.db"), run_id=1, config=config, suite=suite)
    scorer = Scorer(context, {task.name: task for task in suite.load_tasks(1)}, budget=10)
    # guess/0's secret is 3: a right answer scores 1, one two away 0.8.
    assert scorer([[], []], ["3", "5"], ["guess/0", "guess/0"]) == [1.0, 0.8]
    assert ClosingGuess.closed == 2
