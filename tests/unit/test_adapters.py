"""`[model] adapter = "NAME"` from the store to the backend, a clear one-line error for an
unknown adapter, and an adapter's lineage naming the corrections it was distilled from
(training itself is faked: the integration suite trains for real)."""

from __future__ import annotations

import json

import pytest

import workbench.models
from store.db import open_store
from tests.conftest import GUESS_ENV, write_config, write_script
from workbench.cli import main
from workbench.config import config_from_dict
from workbench.context import StageContext
from workbench.distill import training as distill_training
from workbench.distill.stage import run_distill
from workbench.envs import open_suite
from workbench.pipeline import run_pipeline


def fake_train_lora(model, settings, examples, *, save_to=None, on_step=None, **_):
    """Writes what PEFT would (an adapter_config.json) and one loss point, in no time."""
    if save_to is not None:
        (save_to / "adapter_config.json").write_text('{"r": 4}')
    point = {"step": 1, "epoch": 1.0, "loss": 1.5, "learning_rate": 1e-4}
    if on_step:
        on_step(point)
    return distill_training.TrainResult(losses=[point], steps=1, n_examples=len(examples))


@pytest.fixture
def distilled(workdir, monkeypatch):
    """A scripted LEAFE run (two corrections approved, exported) distilled into an adapter."""
    monkeypatch.setattr(distill_training, "train_lora", fake_train_lora)
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0", "1", "2", "9", "3", "3"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 3},
        "backtrack": {"branches": 2, "max_depth": 1, "rollback": "first_error"},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    })
    result = run_pipeline(config, db_path=workdir / "leafe.db")
    assert result.status == "finished", result.error
    db = open_store(workdir / "leafe.db")
    suite = open_suite(config.env)
    try:
        summary = run_distill(StageContext(db=db, run_id=result.run_id, config=config, suite=suite))
    finally:
        suite.close()
    return db, result.run_id, summary


def test_lineage_names_the_corrections_of_the_export_it_was_trained_on(distilled):
    db, run_id, summary = distilled
    approved = [r[0] for r in db.execute("select id from corrections where status = 'approved' order by id")]
    assert len(approved) == 2
    adapter = db["adapters"].get(summary["adapter_id"])
    dataset = db.execute("select id, correction_ids from datasets").fetchone()
    lineage = json.loads(adapter["lineage"])
    assert lineage["correction_ids"] == approved == json.loads(dataset[1])
    assert (lineage["run_id"], lineage["dataset_id"], adapter["dataset_id"]) == (run_id, dataset[0], dataset[0])
    assert lineage["task_names"] == ["guess/0"] and lineage["kinds"] == ["correction"]


def test_model_adapter_name_reaches_the_backend_as_its_folder(distilled, workdir, monkeypatch):
    db, _, summary = distilled
    seen = []
    original = workbench.models.make_generator

    def recording(config, **kwargs):
        seen.append(config.adapter)
        return original(config, **kwargs)

    monkeypatch.setattr(workbench.models, "make_generator", recording)
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(workdir / "s.jsonl"), "adapter": summary["name"]},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 1},
        "stages": {"run": ["explore"]},
    })
    result = run_pipeline(config, db_path=workdir / "leafe.db")
    assert result.status == "finished", result.error
    assert seen == [summary["path"]] and summary["path"] == str(workdir / "leafe.db-files" / "adapters" / summary["name"])


def adapter_config(workdir, adapter: str):
    script = write_script(workdir / "one.jsonl", {"guess/0": ["3"]})
    return write_config(workdir / "with-adapter.toml", f"""
[model]
backend = "scripted"
script = "{script}"
adapter = "{adapter}"
[env]
kind = "{GUESS_ENV}"
tasks = 1
""")


def test_an_unknown_adapter_is_one_line_exit_2_naming_the_known_ones(distilled, workdir, capsys):
    db, _, summary = distilled
    runs_before = db["runs"].count
    assert main(["--batch", str(adapter_config(workdir, "no-such-adapter")), "--db", str(workdir / "leafe.db")]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert "'no-such-adapter'" in error and summary["name"] in error
    assert db["runs"].count == runs_before


def test_an_unknown_adapter_without_a_store_writes_nothing(workdir, capsys):
    assert main(["--batch", str(adapter_config(workdir, "missing")), "--db", str(workdir / "new.db")]) == 2
    assert "'missing'" in capsys.readouterr().err
    assert not (workdir / "new.db").exists()
