"""Live runs from the TUI, the help modal, the command palette, and a start-up that
imports no model code."""

from __future__ import annotations

import subprocess
import sys
import threading

import sqlite_utils

from screens.app import LeafeApp
from screens.help import HelpScreen
from screens.live import LiveScreen
from screens.runs import RunsScreen
from tests.ui.conftest import REPO, SIZE, saved, until


async def test_live_run_from_a_config_file_grows_the_tree(tmp_path, guess_config):
    app = LeafeApp(tmp_path / "live.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        assert app.focused.id == "config-path"
        screen.query_one("#config-path").value = str(guess_config)
        await pilot.press("enter")  # fills the form from the file
        assert screen.query_one("#model-backend").value == "scripted"
        assert screen.query_one("#env-kind").value == "tests.fixtures.guess_env:GuessEnvironment"
        screen.query_one("#max-steps").value = "2"
        screen.query_one("#stage-reflect").value = False
        screen.query_one("#stage-backtrack").value = False
        await pilot.press("ctrl+s")
        await screen.workers.wait_for_complete()
        tree = screen.query_one("#live-tree")
        await until(pilot, lambda: not screen.running and tree.step_nodes, "the run's steps in the tree")
        assert screen.run_id == 1
        assert len(tree.episode_nodes) == 2
        assert tree.step_nodes, "the tree shows the steps as they were stored"
        assert "finished" in str(screen.query_one("#live-status").render())
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one("#runs-table").row_count == 1
    db = sqlite_utils.Database(tmp_path / "live.db")
    config = db.execute("select config, status from runs").fetchone()
    db.close()
    assert '"max_steps": 2' in config[0] and config[1] == "finished"


async def test_ctrl_x_sets_the_cancel_event(tmp_path, monkeypatch):
    import workbench.pipeline
    from workbench.pipeline import RunResult

    seen: list[threading.Event] = []

    def waiting_pipeline(config, *, db_path, progress, cancel, config_path=""):
        seen.append(cancel)
        cancel.wait(5)
        return RunResult(0, "interrupted" if cancel.is_set() else "finished")

    monkeypatch.setattr(workbench.pipeline, "run_pipeline", waiting_pipeline)
    app = LeafeApp(tmp_path / "cancel.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert screen.running
        await pilot.press("ctrl+x")
        await screen.workers.wait_for_complete()
        await pilot.pause()
        assert seen and seen[0].is_set()
        assert not screen.running
        assert "interrupted" in str(screen.query_one("#live-status").render())


async def test_question_mark_lists_every_key_of_the_screen(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        described = {row.description for row in app.screen.keys}
        assert {"Open", "New run", "Delete", "Refresh", "Quit", "Keys", "Curate", "Distill", "Pass@k"} <= described
        ids = {row.id for row in app.screen.keys}
        assert {"runs.open", "runs.delete", "app.quit"} <= ids
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("c", "question_mark")
        described = {row.description for row in app.screen.keys}
        assert {"Approve", "Edit", "Reject", "Note", "Undo", "Mark", "Approve marked", "Reject marked", "Back"} <= described


def binding_owners() -> dict[str, type]:
    """Every class under screens/ (screens, modals, widgets, the app) that declares its own
    BINDINGS, found by importing each module: a screen added tomorrow is checked too."""
    import importlib
    import inspect
    import pkgutil

    from textual.dom import DOMNode

    import screens

    owners = {}
    for info in pkgutil.walk_packages(screens.__path__, "screens."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, DOMNode) and "BINDINGS" in vars(cls):
                owners[f"{module.__name__}.{cls.__qualname__}"] = cls
    return owners


def test_every_binding_has_a_description_and_an_id():
    from textual.binding import Binding

    owners = binding_owners()
    # Each file that assigns BINDINGS is represented, so the discovery cannot miss one.
    declaring = {
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / "screens").rglob("*.py") if "    BINDINGS" in path.read_text()
    }
    assert declaring and declaring == {name.rsplit(".", 1)[0] for name in owners}
    for name, owner in owners.items():
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding), f"{name}: {binding!r} is a tuple, with no id"
            assert binding.description and binding.id, f"{name}: {binding.key}"


async def test_command_palette_offers_the_screen_actions(store):
    from screens.commands import WorkbenchCommands

    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        await pilot.press("c")
        provider = WorkbenchCommands(app.screen)
        titles = [title for title, _, _ in provider.commands()]
        assert "Approve (a)" in titles and "Distill an adapter" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"approve")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await saved(pilot)
    db = sqlite_utils.Database(store.path)
    assert db["corrections"].get(store.corrections["sorted"])["status"] == "approved"
    db.close()


def test_starting_the_app_imports_no_model_code():
    # CPU time, not wall time: other processes on a busy machine must not make this flaky.
    code = (
        "import sys, time; start = time.process_time(); import screens.app; "
        "elapsed = time.process_time() - start; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'workbench.pipeline', 'workbench.rollout.engine') "
        "if m in sys.modules]; print(heavy, round(elapsed, 2))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    heavy, elapsed = result.stdout.rsplit(" ", 1)
    assert heavy == "[]", f"importing the app pulled in {heavy}"
    assert float(elapsed) < 2.0
