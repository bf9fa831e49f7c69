"""Bad input of every kind: model output that is empty, enormous, not UTF-8, has no code or
an unknown action word; locked stores; random configs and actions. Each gets a recorded
failed step or a clear error of the project's own type, and nothing stored is lost."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.db import open_store
from tests.conftest import GUESS_ENV, ROOT, write_config, write_script
from tests.fixtures.cli import TWO_TASKS, assert_refused, leafe_tui, snapshot, store_with_a_run
from workbench.config import config_from_dict, load_config
from workbench.envs.coding import extract_code
from workbench.envs.navigation import parse_action
from workbench.errors import LeafeError
from workbench.pipeline import run_pipeline
from workbench.storable_text import MAX_ACTION_CHARS

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


HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    path = sys.argv[1]
    while True:  # until the run has stored its first step
        try:
            connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
            if connection.execute("select count(*) from nodes where depth > 0").fetchone()[0]:
                break
            connection.close()
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    connection.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.read()  # held until the test lets go
    connection.rollback()
""")
LOCKED_RUN = """
[model]
backend = "scripted"
script = "s.jsonl"
[env]
kind = "tests.fixtures.guess_env:SlowGuessEnvironment"
tasks = 4
max_steps = 4
[backtrack]
branches = 1
max_depth = 1
[stages]
run = ["explore", "reflect", "backtrack"]
"""


def stored_tree(db_path) -> dict:
    """Every step by its task, rollout and the actions leading to it; notes and corrections
    by the steps they name. Ids and times are left out: they differ between stores."""
    connection = sqlite3.connect(db_path)
    rows = connection.execute(
        """select nodes.id, nodes.parent_id, tasks.name, episodes.rollout, nodes.action, nodes.observation,
                  nodes.score, nodes.done, nodes.success, nodes.branch_depth, nodes.note_id is null
           from nodes join episodes on episodes.id = nodes.episode_id join tasks on tasks.id = episodes.task_id"""
    ).fetchall()
    parents = {row[0]: row[1] for row in rows}
    actions = {row[0]: row[4] for row in rows}

    def path(node_id):
        steps = []
        while node_id is not None:
            steps.append(actions[node_id])
            node_id = parents[node_id]
        return tuple(reversed(steps))

    nodes = sorted((row[2], row[3], path(row[0]), *row[5:]) for row in rows)
    notes = sorted(
        (path(node), path(rollback), text)
        for node, rollback, text in connection.execute("select node_id, rollback_node_id, text from notes")
    )
    corrections = sorted(
        (path(tau), path(leaf), status)
        for tau, leaf, status in connection.execute("select tau_node_id, leaf_node_id, status from corrections")
    )
    connection.close()
    return {"nodes": nodes, "notes": notes, "corrections": corrections}


def test_a_store_locked_in_the_middle_of_a_run_stops_it_in_one_line_and_resume_finishes(tmp_path):
    """Another writer takes the store's lock after the run's first step and keeps it: the
    run retries, then stops with one line naming the store and the resume command, exit 2,
    no traceback; the store is whole and no step is stored twice. Resumed, the run ends with
    the tree a run never locked has."""
    # Four wrong guesses explored, then each task's secret: the branches succeed.
    write_script(tmp_path / "s.jsonl", {f"guess/{i}": ["0", "4", "2", "6", secret] for i, secret in enumerate("3759")})
    write_config(tmp_path / "c.toml", LOCKED_RUN)
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    batch = [sys.executable, "-m", "workbench.cli", "--batch", "c.toml"]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "s.db"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        locked = subprocess.run([*batch, "--db", "s.db"], capture_output=True, text=True, cwd=tmp_path,
                                env=environment, timeout=300)
    finally:
        held, _ = holder.communicate(input="", timeout=60)  # lets go only now
    assert held == "held\n"
    assert locked.returncode == 2, locked.stderr
    assert "Traceback" not in locked.stderr
    lines = locked.stderr.strip().splitlines()
    assert [line for line in lines if "locked" in line] == [lines[-1]], locked.stderr
    assert re.fullmatch(
        r"leafe-tui: run 1 stopped: store \S*s\.db is locked by another writer; gave up after \d+ tries; "
        r"resume with: leafe-tui --batch c\.toml --db s\.db --resume",
        lines[-1],
    ), lines[-1]

    store = sqlite3.connect(tmp_path / "s.db")
    assert store.execute("pragma integrity_check").fetchone()[0] == "ok"
    stored = store.execute("select count(*) from nodes where depth > 0").fetchone()[0]
    twice = store.execute(
        "select parent_id from nodes where branch_depth = 0 and parent_id is not null group by parent_id having count(*) > 1"
    ).fetchall()
    status = store.execute("select status from runs where id = 1").fetchone()[0]
    store.close()
    assert 4 <= stored < 4 * 4 and twice == []
    assert status != "finished"  # as the lock left it: "running" (the lock kept even that out)

    resumed = subprocess.run([*batch, "--db", "s.db", "--resume", "--json"], capture_output=True, text=True,
                             cwd=tmp_path, env=environment, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["run_id"], summary["status"]) == (1, "finished")
    never_locked = subprocess.run([*batch, "--db", "never-locked.db"], capture_output=True, text=True,
                                  cwd=tmp_path, env=environment, timeout=300)
    assert never_locked.returncode == 0, never_locked.stderr
    tree = stored_tree(tmp_path / "s.db")
    assert tree == stored_tree(tmp_path / "never-locked.db")
    assert tree["notes"] and tree["corrections"]


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def test_every_write_of_a_run_takes_the_lock_first_so_it_is_retried(workdir, monkeypatch):
    """A write outside `store.db.transaction` would meet another writer's lock with a raw
    "database is locked" after one busy wait; inside it, BEGIN IMMEDIATE takes the lock
    first, with retries. The statements of a whole run, as SQLite saw them, say which."""
    import workbench.pipeline

    statements: list[str] = []

    def traced(path, **options):
        db = open_store(path, **options)
        db.conn.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(workbench.pipeline, "open_store", traced)
    script = write_script(workdir / "s.jsonl", {f"guess/{i}": ["0", "4", "2", "6", s] for i, s in enumerate("3759")})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": 4, "max_steps": 4},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    })
    result = run_pipeline(config, db_path=workdir / "s.db")
    assert result.status == "finished" and result.counts["corrections"], result.error
    locked, unguarded = False, []
    for statement in statements:
        keyword = statement.split(None, 1)[0].upper()
        if statement.strip().upper() == "BEGIN IMMEDIATE":
            locked = True
        elif keyword in ("COMMIT", "ROLLBACK", "END"):
            locked = False
        elif keyword in WRITES and not locked:
            unguarded.append(statement)
    assert unguarded == []
    assert any(s.startswith("update runs set tokens_generated") for s in statements)


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


# -- bad configs and input files through the real command: one line, exit 2, store untouched --

GUESS_RUN = f"""
[model]
backend = "scripted"
script = "guess.jsonl"
[env]
kind = "{GUESS_ENV}"
tasks = 2
max_steps = 2
"""
CODING_RUN = """
[model]
backend = "scripted"
script = "guess.jsonl"
[env]
kind = "coding"
suite = "tasks.jsonl"
tasks = 1
max_steps = 1
"""


def refused_with_store_untouched(folder, config_text: str, *needles: str) -> str:
    """Run `config_text` against the store in `folder`: one line holding every needle, exit
    2, and every file in the folder byte for byte as it was."""
    write_config(folder / "c.toml", config_text)
    before = snapshot(folder)
    line = assert_refused(leafe_tui(folder, "--batch", "c.toml", "--db", "s.db"), *needles)
    assert snapshot(folder) == before
    return line


CONFIG_REFUSALS = {
    "sandbox timeout nan": ("[env.sandbox]\ntimeout = nan\n", "env.sandbox.timeout must be a finite number above 0"),
    "sandbox timeout inf": ("[env.sandbox]\ntimeout = inf\n", "env.sandbox.timeout must be a finite number above 0"),
    "sandbox timeout 0": ("[env.sandbox]\ntimeout = 0\n", "env.sandbox.timeout must be above 0 and at most 600"),
    "memory_mb 0": ("[env.sandbox]\nmemory_mb = 0\n", "env.sandbox.memory_mb must be at least 16, got 0"),
    "100000 workers": ("[env.sandbox]\nworkers = 100000\n", "env.sandbox.workers must be at least 0 and at most 4 x the CPU cores"),
    "temperature nan": ("[explore]\ntemperature = nan\n", "explore.temperature must be a finite number at least 0"),
    "top_p 7.5": ("[explore]\ntop_p = 7.5\n", "explore.top_p must be above 0 and at most 1, got 7.5"),
    "no k": ("[evaluate]\nk = []\n", "evaluate.k is empty"),
    "no policies": ("[evaluate]\npolicies = []\n", "evaluate.policies is empty"),
    "no stages": ("[stages]\nrun = []\n", "stages.run is empty"),
    "no tasks": ("[env]\ntasks = []\n", "env.tasks is empty"),
    "a task twice": ('[env]\ntasks = ["guess/1", "guess/1"]\n', "env.tasks lists 'guess/1' twice"),
}


@pytest.mark.parametrize("case", list(CONFIG_REFUSALS))
def test_a_config_value_no_run_can_use_is_refused_in_one_line(tmp_path, case):
    store_with_a_run(tmp_path)
    section, message = CONFIG_REFUSALS[case]
    if section.startswith("[env]\n"):  # into the run's own [env] table (TOML has each table once)
        text = GUESS_RUN.replace("tasks = 2\n", "") + section.removeprefix("[env]\n")
    else:
        text = GUESS_RUN + section
    line = refused_with_store_untouched(tmp_path, text, message)
    assert line.startswith("leafe-tui: config: ")


def test_a_task_chosen_twice_by_name_and_position_is_refused(tmp_path):
    store_with_a_run(tmp_path)
    (tmp_path / "tasks.jsonl").write_bytes(TWO_TASKS.read_bytes())
    text = CODING_RUN.replace("tasks = 1", 'tasks = ["easy/add", 0]')
    refused_with_store_untouched(tmp_path, text, "task 'easy/add' is selected twice")


NO_CHECKS = {
    "no check at all": "x = 1\n",
    "check without an assert": "def check(candidate):\n    candidate(1, 2)\n",
    "only assert True": "def check(candidate):\n    assert True, 'a marker'\n",
}


@pytest.mark.parametrize("case", list(NO_CHECKS))
def test_a_task_whose_test_checks_nothing_is_refused_when_the_file_loads(tmp_path, case):
    """Zero checks used to pass every answer (score 1.0, 0 of 0)."""
    store_with_a_run(tmp_path)
    lines = TWO_TASKS.read_text().splitlines()
    hollow = json.loads(lines[1]) | {"task_id": "easy/hollow", "test": NO_CHECKS[case]}
    (tmp_path / "tasks.jsonl").write_text("\n".join([lines[0], json.dumps(hollow)]) + "\n")
    refused_with_store_untouched(tmp_path, CODING_RUN, "tasks.jsonl:2: task 'easy/hollow' checks nothing")


def test_a_task_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    store_with_a_run(tmp_path)
    lines = TWO_TASKS.read_bytes().splitlines(keepends=True)
    (tmp_path / "tasks.jsonl").write_bytes(lines[0] + b"\n" + lines[1].replace(b"Return", b"Re\xfft\xc3urn", 1))
    refused_with_store_untouched(tmp_path, CODING_RUN, "tasks.jsonl:3: not UTF-8 text (byte 0xff at column")


DATASETS = {
    "not UTF-8": (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n', "line 2: not UTF-8 text (byte 0xe9"),
    "two user turns": (
        json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                 {"role": "assistant", "content": "c"}]}).encode() + b"\n",
        "line 2: turns out of order: message 1 is 'user' after 'user', expected 'assistant'",
    ),
    "answer first": (
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}).encode() + b"\n",
        "line 2: turns out of order: message 1 is 'assistant' after 'system', expected 'user'",
    ),
    "system later": (
        json.dumps({"messages": [{"role": "user", "content": "u"}, {"role": "system", "content": "s"}]}).encode() + b"\n",
        "line 2: turns out of order: message 1 is 'system' after 'user', expected 'assistant'",
    ),
}


@pytest.mark.parametrize("case", list(DATASETS))
def test_a_bad_dataset_file_names_the_file_the_line_and_what_is_wrong(tmp_path, case):
    """Before any stage runs (batch), and in the launchable trainer, which reads it first."""
    store_with_a_run(tmp_path)
    bad, message = DATASETS[case]
    good = json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                    {"role": "assistant", "content": "a"}]}).encode() + b"\n"
    (tmp_path / "data.jsonl").write_bytes(good + bad)
    text = GUESS_RUN + '[stages]\nrun = ["explore", "distill"]\n[distill]\ndataset = "data.jsonl"\n'
    refused_with_store_untouched(tmp_path, text, "data.jsonl", message)
    before = snapshot(tmp_path)
    launched = subprocess.run(
        [sys.executable, "-m", "workbench.distill", "c.toml", "--db", "s.db"], capture_output=True, text=True,
        cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert launched.returncode == 2 and "Traceback" not in launched.stderr, launched.stderr
    assert message in launched.stderr.strip().splitlines()[-1]
    assert snapshot(tmp_path) == before


def test_an_unknown_adapter_policy_is_refused_before_any_rollout(tmp_path):
    store_with_a_run(tmp_path)
    text = GUESS_RUN + '[stages]\nrun = ["explore", "evaluate"]\n[evaluate]\npolicies = ["base", "adapter:notadapter"]\nn = 1\nk = [1]\n'
    refused_with_store_untouched(tmp_path, text, "evaluate.policies", "'adapter:notadapter'", "not an adapter name")
    (tmp_path / "s.db").unlink()
    refused_with_store_untouched(tmp_path, text, "evaluate.policies", "'adapter:notadapter'")
    assert not (tmp_path / "s.db").exists()


def test_adapters_trained_earlier_in_the_same_run_may_be_evaluated(tmp_path):
    from workbench.pipeline import check_adapters

    stages = ["explore", "distill", "baseline:rft", "baseline:early_experience", "evaluate"]
    config = config_from_dict({
        "model": {"backend": "scripted", "script": "unused.jsonl"},
        "distill": {"output": str(tmp_path / "mine")},
        "evaluate": {"policies": ["base", "adapter:leafe-run-{run}", "adapter:rft-run-{run}",
                                  "adapter:early-experience-run-{run}", f"adapter:{tmp_path / 'mine'}"]},
        "stages": {"run": stages},
    })
    check_adapters(None, config, run_id=3)
    config.stages.run = ["explore", "distill", "evaluate"]  # no rft stage: nothing makes rft-run-3
    with pytest.raises(LeafeError, match="'adapter:rft-run-3'"):
        check_adapters(None, config, run_id=3)


def test_resume_after_the_config_changed_says_which_keys_differ_and_keeps_the_stored_config(workdir):
    tmp_path = workdir  # the command below runs here too, so the config's paths read the same
    write_script(tmp_path / "guess.jsonl", {"guess/0": ["5", "4", "3"], "guess/1": ["1", "2", "7"]})
    write_config(tmp_path / "c.toml", GUESS_RUN)
    stopped = threading.Event()
    stopped.set()  # the run is created, then stopped before its first stage
    result = run_pipeline(load_config("c.toml"), db_path="s.db", cancel=stopped, config_path="c.toml")
    assert result.status == "interrupted"
    write_config(tmp_path / "c.toml", GUESS_RUN.replace("max_steps = 2", "max_steps = 3").replace("tasks = 2", "tasks = 1")
                 + "[backtrack]\nbranches = 3\n")
    process = leafe_tui(tmp_path, "--batch", "c.toml", "--db", "s.db", "--resume", "--json")
    assert process.returncode == 0, process.stderr
    told = [line for line in process.stderr.splitlines() if "--resume" in line]
    assert told == [
        "leafe-tui: warning: --resume continues run 1 with the config it started with; c.toml now differs in "
        "backtrack.branches, env.max_steps, env.tasks (run without --resume to use it)"
    ], process.stderr
    summary = json.loads(process.stdout)
    assert (summary["status"], summary["episodes"], summary["nodes"]) == ("finished", 2, 2 + 2 + 2)  # 2 steps each

    again = leafe_tui(tmp_path, "--batch", "c.toml", "--db", "s.db")  # a new run: nothing to warn about
    assert again.returncode == 0 and "differs" not in again.stderr, again.stderr


SLOW_ANSWER = "```python\nimport time\ntime.sleep(60)\n\ndef add(a, b):\n    return a + b\n```"


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_and_ctrl_c_stop_a_batch_run_within_the_submission_in_flight(tmp_path, signal_number, code):
    """Each submission sleeps until the sandbox's 3 s timeout: a run of 8 steps takes 24 s
    or more. Signalled while a submission runs, the run stops once it ends, keeps what it
    stored, and says how to resume."""
    write_script(tmp_path / "guess.jsonl", {"easy/add": [SLOW_ANSWER]})
    (tmp_path / "tasks.jsonl").write_bytes(TWO_TASKS.read_bytes())
    write_config(tmp_path / "c.toml", CODING_RUN.replace("max_steps = 1", "max_steps = 8")
                 + "[env.sandbox]\ntimeout = 3\nworkers = 1\n")
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "--batch", "c.toml", "--db", "s.db"],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not stored_steps(tmp_path / "s.db"):
            time.sleep(0.2)
        time.sleep(0.5)  # the second submission is sleeping now
        signalled = time.monotonic()
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert took < 3 + 5, f"stopped {took:.1f} s after the signal"
    assert "Resume with:" in stderr and "--resume" in stderr
    assert 1 <= stored_steps(tmp_path / "s.db") <= 3


def stored_steps(db_path) -> int:
    if not db_path.exists():
        return 0
    try:
        connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return connection.execute("select count(*) from nodes where depth > 0").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:
        return 0
