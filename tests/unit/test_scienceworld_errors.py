"""The real `leafe-tui --batch` on a ScienceWorld config that cannot run: one line, exit 2,
nothing written, for a missing Java, a missing `scienceworld` package, an unknown task name
and a variation the task does not have."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config, write_script
from tests.fixtures.cli import LEAFE_TUI, assert_refused

CONFIG = """
[model]
backend = "scripted"
script = "s.jsonl"
[env]
kind = "scienceworld"
suite = "{suite}"
tasks = {tasks}
max_steps = 2
[stages]
run = ["explore"]
"""


def refused(folder: Path, *needles: str, suite: str = "find-animal", tasks: str = "1",
            environment: dict[str, str] | None = None) -> str:
    write_script(folder / "s.jsonl", {"find-animal/0": ["look around"]})
    write_config(folder / "c.toml", CONFIG.format(suite=suite, tasks=tasks))
    before = sorted(path.name for path in folder.iterdir())
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"} | (environment or {})
    process = subprocess.run([*LEAFE_TUI, "--batch", "c.toml", "--db", "s.db"], capture_output=True, text=True,
                             cwd=folder, timeout=300, env={k: v for k, v in env.items() if v is not None})
    line = assert_refused(process, *needles)
    assert sorted(path.name for path in folder.iterdir()) == before  # no store was created
    return line


def test_a_missing_java_is_one_line_that_says_how_to_install_it(tmp_path):
    no_java = tmp_path / "bin"
    no_java.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    environment = {"PATH": str(no_java), "JAVA_HOME": str(tmp_path / "no-such-jdk")}
    refused(work, "scienceworld: Java is not installed", "default-jre-headless", environment=environment)


def test_a_missing_package_is_one_line_that_says_how_to_install_it(tmp_path):
    # A folder first on PYTHONPATH where `import scienceworld` fails as it does when the
    # package is not installed.
    blocker = tmp_path / "blocker" / "scienceworld"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'scienceworld'\", name='scienceworld')\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    environment = {"PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"}
    refused(work, "scienceworld: the `scienceworld` package is not installed", "pip install scienceworld",
            environment=environment)


def test_an_unknown_task_name_is_one_line_with_the_close_names(tmp_path):
    refused(tmp_path, "unknown task 'boill' in env.suite", "did you mean boil", suite="boill")


@pytest.mark.parametrize(
    ("tasks", "needle"),
    [('["find-animal/100000"]', "find-animal has no variation 100000"),
     ('["test:100000"]', "asks for 100000 test variations of find-animal")],
)
def test_a_variation_the_task_does_not_have_is_one_line(tmp_path, tasks, needle):
    refused(tmp_path, needle, tasks=tasks)
