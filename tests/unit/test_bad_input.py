"""Bad input of every kind: model output that is empty, enormous, not UTF-8, has no code or
an unknown action word; locked stores; random configs and actions. Each gets a recorded
failed step or a clear error of the project's own type, and nothing stored is lost."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.db import open_store
from tests.conftest import GUESS_ENV, ROOT, write_config, write_script
from workbench.agent import MAX_ACTION_CHARS
from workbench.config import config_from_dict, load_config
from workbench.envs.coding import extract_code
from workbench.envs.navigation import parse_action
from workbench.errors import LeafeError
from workbench.pipeline import run_pipeline

GOOD_ADD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
BAD_OUTPUTS = {
    "empty": "",
    "enormous": "x = 1\n" * 200_000,
    "not utf-8": "def add(a, b):\n    return a - b  # \udcff\udcfe",
    "no code": "I am not sure how to solve this, sorry.",
}


def steps_of(db) -> list[dict]:
    return [dict(row) | {"feedback": json.loads(row["feedback"])} for row in db["nodes"].rows_where("depth > 0", order_by="depth")]


@pytest.mark.parametrize("kind", list(BAD_OUTPUTS))
def test_bad_model_output_is_a_failed_step_and_the_episode_goes_on(workdir, kind):
    script = write_script(workdir / "s.jsonl", {"easy/add": [BAD_OUTPUTS[kind], GOOD_ADD]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "coding", "suite": str(ROOT / "tests/fixtures/two_tasks.jsonl"), "tasks": ["easy/add"], "max_steps": 2},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished", result.error
    first, second = steps_of(open_store(workdir / "s.db"))
    assert first["success"] == 0 and first["feedback"].get("message"), first["feedback"]
    assert second["success"] == 1, "the episode went on to its next step"
    if kind == "enormous":
        assert len(first["action"]) == MAX_ACTION_CHARS and first["feedback"]["action_truncated"] > MAX_ACTION_CHARS
    if kind == "not utf-8":
        assert first["feedback"]["invalid_utf8"] is True
        first["action"].encode("utf-8")  # stored text is valid UTF-8


def test_unknown_navigation_word_is_a_failed_step(workdir):
    script = write_script(workdir / "s.jsonl", {"MiniGrid-Empty-Random-6x6-v0/0": ["jump over it", "forward"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": "navigation", "suite": "MiniGrid-Empty-Random-6x6-v0", "tasks": 1, "max_steps": 2},
    })
    assert run_pipeline(config, db_path=workdir / "s.db").status == "finished"
    first, second = steps_of(open_store(workdir / "s.db"))
    assert first["success"] == 0 and "forward" in json.dumps(first["feedback"]["error"])
    assert second["feedback"]["action"] == "forward"


def test_a_locked_store_is_retried_then_reported_in_one_line(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"]})
    config = write_config(workdir / "c.toml", f'[model]\nbackend = "scripted"\nscript = "{script}"\n[env]\nkind = "{GUESS_ENV}"\ntasks = 1\n')
    db_path = workdir / "s.db"
    open_store(db_path).close()
    holder = sqlite3.connect(db_path)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("create table held (x)")
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", str(db_path)],
        capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    waited = time.monotonic() - started
    holder.rollback()
    holder.close()
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "locked by another writer" in lines[0], process.stderr
    assert waited > 2, "it retried before giving up"
    db = open_store(db_path)
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok" and db["runs"].count == 0


def test_reading_while_a_batch_run_writes(workdir):
    script = write_script(workdir / "s.jsonl", {f"guess/{i}": ["0", "1", "2", "4"] for i in range(8)})
    config = write_config(workdir / "c.toml", f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
                          '[env]\nkind = "tests.fixtures.guess_env:SlowGuessEnvironment"\ntasks = 8\nmax_steps = 4\n')
    db_path = workdir / "s.db"
    errors, seen = [], []
    stop = threading.Event()

    def read_like_the_tui():
        while not stop.is_set():
            try:
                if db_path.exists():
                    reader = open_store(db_path)
                    seen.append(reader.execute("select count(*) from nodes").fetchone()[0])
                    reader.close()
            except Exception as error:  # any error is a failure of concurrent use
                errors.append(repr(error))
            time.sleep(0.05)

    thread = threading.Thread(target=read_like_the_tui)
    thread.start()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "workbench.cli", "--batch", str(config), "--db", str(db_path)],
            capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        stop.set()
        thread.join()
    assert process.returncode == 0, process.stderr
    assert not errors, errors[:3]
    assert len(set(seen)) > 2, "the reader saw the tree grow"
    assert seen == sorted(seen)


PLAIN = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=20))
VALUES = st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
SECTIONS = st.sampled_from(["store", "model", "env", "explore", "prompts", "reflect", "backtrack", "curate", "export", "distill", "evaluate", "baselines", "stages", "other"])
KEYS = st.sampled_from(["path", "backend", "name", "script", "tasks", "max_steps", "kind", "suite", "run", "n", "k", "temperature", "branches", "sandbox", "model", "policy", "typo"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(SECTIONS, st.dictionaries(KEYS, VALUES, max_size=4) | VALUES, max_size=4))
def test_random_configs_load_or_raise_our_error(data):
    with contextlib.suppress(LeafeError):
        config_from_dict(data)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_random_toml_text_loads_or_raises_our_error(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(LeafeError):
        load_config(path)


@settings(max_examples=500)
@given(st.text(max_size=500))
def test_action_parsers_never_raise(text):
    assert isinstance(extract_code(text), str)
    word = parse_action(text)
    assert word is None or word in {"left", "right", "forward", "pickup", "drop", "toggle", "done"}
