"""Fixtures for the UI tests: a deterministic store, a small real run, the app."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import pytest

from tests.ui.fixture_store import FixtureIds, build_fixture_store

SIZE = (120, 36)
REPO = Path(__file__).resolve().parents[2]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Pilot tests) in a fresh event loop, without a plugin."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


@pytest.fixture(autouse=True)
def working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every UI test runs in its own temporary folder: whatever a screen, a run or a
    training writes relative to the working directory lands there, never in the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def saved(pilot) -> None:
    """Wait until every change the screens queued has reached the store (or was refused):
    the screens write in workers, one change after another."""
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "store-write"])
        await pilot.pause()
        if not any(getattr(screen, "writing", False) for screen in app.screen_stack):
            return
    raise AssertionError("the screens' writes did not finish")


async def open_run_screen(pilot, run_id: int, key: str, screen_type: type):
    """Open a run, press the key of one of its screens, and return that screen."""
    app = pilot.app
    app.open_run(run_id)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(app.screen, screen_type), f"{key!r} opened {type(app.screen).__name__}"
    return app.screen


async def until(pilot, condition, what: str, *, polls: int = 600) -> None:
    """Let the app run until `condition()` holds (a worker's result reached the screen).
    Only the outcome is asserted: the bound is there so a broken screen fails, not hangs."""
    for _ in range(polls):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def gated():
    """A fresh gate for tests.ui.envs:GatedGuessEnvironment; every step is let through
    at the end, so no run's worker is left waiting."""
    from tests.ui.envs import GatedGuessEnvironment, StepGate

    gate = StepGate()
    GatedGuessEnvironment.gate = gate
    yield gate
    gate.open()


@pytest.fixture
def store(tmp_path: Path) -> FixtureIds:
    """The deterministic two-run store (see fixture_store.py)."""
    return build_fixture_store(tmp_path / "fixture.db")


@pytest.fixture
def guess_config(tmp_path: Path) -> Path:
    """A config for the tiny guessing environment with a scripted policy."""
    script = tmp_path / "guess.jsonl"
    script.write_text(
        "\n".join(json.dumps(line) for line in [
            {"task_id": "guess/0", "actions": ["5", "2", "3", "4", "3", "3"]},
            {"task_id": "guess/1", "actions": ["7", "7", "7"]},
        ]) + "\n"
    )
    config = tmp_path / "guess.toml"
    config.write_text(
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
        '[env]\nkind = "tests.fixtures.guess_env:GuessEnvironment"\ntasks = 2\nmax_steps = 3\n'
        '[explore]\nrollouts_per_task = 1\n'
    )
    return config


@pytest.fixture
def explored_store(tmp_path: Path, guess_config: Path) -> Path:
    """A store with one real explore run of the guessing environment."""
    from workbench.config import load_config
    from workbench.pipeline import run_pipeline

    db_path = tmp_path / "explored.db"
    result = run_pipeline(load_config(guess_config), db_path=db_path, config_path=str(guess_config))
    assert result.status == "finished", result.error
    return db_path
