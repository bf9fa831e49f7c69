"""Output paths never destroy inputs: `[export] path = "s.db"` once turned the store into a
JSONL file and every run in it was lost. An output path or folder that resolves to the
store (or its -wal/-shm/-journal), the config file, a task file or a script, and an output
name that is not a plain name, is refused in one line, exit 2, before anything is written;
and every atomic write refuses such a target again, as a second guard."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

import workbench.pipeline
from store.db import open_store
from tests.conftest import GUESS_ENV, write_config
from tests.fixtures.cli import TWO_TASKS, assert_refused, leafe_tui, snapshot, store_with_a_run
from workbench.config import config_from_dict
from workbench.errors import LeafeError
from workbench.files import atomic_directory, atomic_write_jsonl, atomic_write_text, protected_files

RUN = f"""
[model]
backend = "scripted"
script = "guess.jsonl"
[env]
kind = "{GUESS_ENV}"
suite = "tasks.jsonl"
tasks = 2
max_steps = 2
[stages]
run = ["explore", "reflect", "backtrack", "curate", "export"]
"""


@pytest.fixture
def folder(tmp_path):
    """A folder with a store holding a finished run, a task file, a script and a config."""
    store_with_a_run(tmp_path)
    (tmp_path / "tasks.jsonl").write_bytes(TWO_TASKS.read_bytes())
    os.link(tmp_path / "s.db", tmp_path / "hard-link.db")
    (tmp_path / "alias.db").symlink_to(tmp_path / "s.db")
    (tmp_path / "sub").mkdir()
    return tmp_path


OUTPUTS = {
    # the value given, the key that names it, what the refusal says it is
    "store": ('[export]\npath = "s.db"\n', "export.path", "the store"),
    "store by another spelling": ('[export]\npath = "./sub/../s.db"\n', "export.path", "the store"),
    "store's wal file": ('[export]\npath = "s.db-wal"\n', "export.path", "the store's wal file"),
    "store's shm file": ('[export]\npath = "s.db-shm"\n', "export.path", "the store's shm file"),
    "store through a symlink": ('[export]\npath = "alias.db"\n', "export.path", "the store"),
    "store through a hard link": ('[export]\npath = "hard-link.db"\n', "export.path", "the store"),
    "config file": ('[export]\npath = "c.toml"\n', "export.path", "the config file"),
    "task file": ('[export]\npath = "tasks.jsonl"\n', "export.path", "the task file env.suite"),
    "script": ('[export]\npath = "guess.jsonl"\n', "export.path", "the script model.script"),
    "a folder": ('[export]\npath = "sub"\n', "export.path", "is a folder"),
    "adapter folder = the store": ('[distill]\noutput = "s.db"\n', "distill.output", "the store"),
    "adapter folder holding the store": ('[distill]\noutput = "."\n', "distill.output", "a folder holding the store"),
    "dataset name with a slash": ('[export]\nname = "../../x"\n', "export.name", "plain name"),
    "adapter name that is a path": ('[distill]\nname = "/tmp/x"\n', "distill.name", "plain name"),
    "adapter name ..": ('[distill]\nname = ".."\n', "distill.name", "plain name"),
}


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_an_output_that_would_overwrite_an_input_is_refused_before_anything_is_written(folder, case):
    section, key, what = OUTPUTS[case]
    write_config(folder / "c.toml", RUN + section)
    before = snapshot(folder)
    line = assert_refused(leafe_tui(folder, "--batch", "c.toml", "--db", "s.db"), key, what)
    assert line.startswith("leafe-tui: config: "), line
    assert snapshot(folder) == before  # the store, the inputs, and no new file


def test_the_store_in_another_folder_is_found_by_where_it_is(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write_config(elsewhere / "c.toml", RUN.replace('"guess.jsonl"', f'"{folder / "guess.jsonl"}"')
                 .replace('"tasks.jsonl"', f'"{folder / "tasks.jsonl"}"') + f'[export]\npath = "{folder}/s.db"\n')
    before = snapshot(folder)
    assert_refused(leafe_tui(elsewhere, "--batch", "c.toml", "--db", str(folder / "s.db")), "export.path", "the store")
    assert snapshot(folder) == before


def test_an_ordinary_output_path_still_works(folder):
    write_config(folder / "c.toml", RUN + '[export]\npath = "out/corrections.jsonl"\nname = "mine"\n')
    process = leafe_tui(folder, "--batch", "c.toml", "--db", "s.db", "--json")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["stages"]["export"]["dataset"] == "mine"
    assert (folder / "out" / "corrections.jsonl").is_file()
    db = open_store(folder / "s.db")
    assert db["runs"].count == 2 and db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_a_writer_that_skips_the_up_front_check_still_cannot_replace_the_store(folder, monkeypatch):
    """The second guard: with the config check gone, the export stage's own write is refused;
    the run fails with the reason and the earlier run is still there."""
    monkeypatch.setattr(workbench.pipeline, "check_output_paths", lambda *args, **kwargs: None)
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(folder / "guess.jsonl")},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 2},
        "export": {"path": str(folder / "s.db")},
        "stages": {"run": ["explore", "export"]},
    })
    result = workbench.pipeline.run_pipeline(config, db_path=folder / "s.db")
    assert result.status == "failed"
    assert "refusing to write" in result.error and "the store" in result.error, result.error
    db = open_store(folder / "s.db")
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert [row["status"] for row in db["runs"].rows] == ["finished", "failed"]
    assert db.execute("select count(*) from nodes where depth > 0").fetchone()[0] == 6  # both runs' steps


def test_atomic_writes_refuse_protected_files_and_folders_holding_them(tmp_path):
    store = tmp_path / "project" / "s.db"
    store.parent.mkdir()
    store.write_bytes(b"precious")
    with protected_files({store: "the store"}):
        with pytest.raises(LeafeError, match=r"refusing to write .*s\.db: it is the store"):
            atomic_write_jsonl(store, [{"a": 1}])
        with pytest.raises(LeafeError, match="a folder holding the store"), atomic_directory(tmp_path / "project"):
            pass
        with pytest.raises(LeafeError, match="it is the store"):
            atomic_write_text(tmp_path / "project" / ".." / "project" / "s.db", "x")
        atomic_write_text(tmp_path / "project" / "notes.txt", "fine")  # a neighbour is not protected
    assert store.read_bytes() == b"precious"
    assert sorted(p.name for p in store.parent.iterdir()) == ["notes.txt", "s.db"]
    atomic_write_text(store, "replaced")  # once the run that protected it is over
    assert store.read_text() == "replaced"


def test_atomic_writes_refuse_a_sqlite_database_in_use_even_unprotected(tmp_path):
    """The TUI writes datasets and adapters outside a run: a store another connection has
    open (its -wal beside it) is refused all the same, found without opening the file."""
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("pragma journal_mode=wal")
    connection.execute("create table kept (x)")
    connection.execute("insert into kept values (1)")
    connection.commit()
    try:
        with pytest.raises(LeafeError, match="a SQLite database in use"):
            atomic_write_jsonl(path, [{"a": 1}])
        with pytest.raises(LeafeError, match="wal file"):
            atomic_write_text(tmp_path / "other.db-wal", "x")
        assert connection.execute("select x from kept").fetchall() == [(1,)]
    finally:
        connection.close()
