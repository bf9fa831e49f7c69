"""`StageContext.for_run`: the context a stage of a stored run gets outside the pipeline."""

from __future__ import annotations

import pytest

from store.db import open_store
from store.queries import create_run
from workbench.context import StageContext
from workbench.errors import LeafeError


def stored_run(path) -> int:
    db = open_store(path)
    try:
        return create_run(db, config={"env": {"kind": "tests.fixtures.guess_env:GuessEnvironment", "suite": "",
                                              "tasks": 2, "max_steps": 5}},
                          stages=["explore"], name="stored", config_path="")
    finally:
        db.close()


def test_for_run_gives_the_runs_own_config_and_closes_the_store(tmp_path):
    run_id = stored_run(tmp_path / "s.db")
    with StageContext.for_run(tmp_path / "s.db", run_id) as context:
        assert context.run_id == run_id
        assert context.config.env.max_steps == 5  # the stored run's, not a default
        assert context.db.execute("select name from runs").fetchone() == ("stored",)
        db = context.db
    with pytest.raises(Exception, match="closed"):
        db.execute("select 1")


def test_for_run_of_a_run_that_is_not_there_is_one_line(tmp_path):
    stored_run(tmp_path / "s.db")
    with pytest.raises(LeafeError, match=r"^no run 7 in .*s\.db$"), StageContext.for_run(tmp_path / "s.db", 7):
        pass
