"""The files a store writes: in a folder of its own, never rewritten, one identity per name.

Two stores side by side (as the README suggests, compare.db and navigation.db) used to
export to the same runs/run-1/leafe-run-1.jsonl, so one store's dataset row then pointed
at the other's examples; the export matched a dataset by name and the baselines by run and
name, so the two could disagree about which row a dataset was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store import datasets, queries
from store.db import open_store, transaction
from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.distill.output import adapter_output, check_output_folder, write_card
from workbench.errors import LeafeError
from workbench.export import export_dataset, save_dataset
from workbench.pipeline import run_pipeline

SECRETS = [3, 7, 5, 9, 1, 8, 2, 6]  # of guess/0, guess/1 ... (tests/fixtures/guess_env.py)


def exported_run(folder: Path, store: str, tasks: int, **export) -> tuple[dict, Path]:
    """Explore `tasks` guess tasks (each solved at once) and export them as rehearsal."""
    script = write_script(folder / f"{store}.jsonl", {f"guess/{i}": [str(SECRETS[i])] for i in range(tasks)})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": tasks, "max_steps": 2},
        "export": {"rehearsal": True, **export},
        "stages": {"run": ["explore", "export"]},
    })
    result = run_pipeline(config, db_path=folder / store)
    assert result.status == "finished", result.error
    return result.summaries["export"], folder / store


def examples_in(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_two_stores_in_one_folder_never_write_the_same_file(workdir):
    compare, compare_db = exported_run(workdir, "compare.db", 1)
    navigation, navigation_db = exported_run(workdir, "navigation.db", 3)
    assert compare["dataset"] == navigation["dataset"] == "leafe-run-1"  # same run id, same name
    assert Path(compare["path"]) == (workdir / "compare.db-files/runs/run-1/leafe-run-1.jsonl").resolve()
    assert Path(navigation["path"]) == (workdir / "navigation.db-files/runs/run-1/leafe-run-1.jsonl").resolve()
    # Each store's row points at its own examples.
    for db_path, tasks in ((compare_db, 1), (navigation_db, 3)):
        (row,) = open_store(db_path)["datasets"].rows
        assert row["n_examples"] == tasks == len(examples_in(row["path"]))
    # Adapters the same: each store's default folder is its own, and a folder one store
    # saved an adapter to is refused to the other, even under the same name.
    first, second = open_store(compare_db), open_store(navigation_db)
    mine = adapter_output(first, "leafe-run-1")
    assert mine == (workdir / "compare.db-files/adapters/leafe-run-1").resolve()
    assert adapter_output(second, "leafe-run-1") == (workdir / "navigation.db-files/adapters/leafe-run-1").resolve()
    mine.mkdir(parents=True)
    (mine / "adapter_config.json").write_text("{}")
    write_card(mine, first, name="leafe-run-1", kind="leafe", dataset_path="d.jsonl",
               settings=config_from_dict({}).distill)
    with pytest.raises(LeafeError, match="never overwritten"):
        adapter_output(second, "leafe-run-1", str(mine))
    # The store that saved it and never recorded it (a killed run) may save there again.
    assert adapter_output(first, "leafe-run-1") == mine


def test_a_re_export_with_other_examples_gets_a_new_name_and_the_first_file_stays(workdir):
    first, store = exported_run(workdir, "leafe.db", 2)
    db = open_store(store)
    config = config_from_dict({"env": {"kind": GUESS_ENV, "max_steps": 2}, "export": {"rehearsal": True}})
    before = Path(first["path"]).read_bytes()
    # The same examples again (a resumed export): the same dataset, nothing written.
    again, _, _ = export_dataset(db, config, 1)
    assert (again.name, again.path) == (first["dataset"], first["path"])
    assert db["datasets"].count == 1
    # Other examples (no rehearsal: none at all): a new name and a file of its own.
    other, _, _ = export_dataset(db, config, 1, rehearsal=False)
    assert other.name == "leafe-run-1-2" and other.n_examples == 0
    assert Path(other.path).name == "leafe-run-1-2.jsonl"
    assert Path(first["path"]).read_bytes() == before
    assert {row["name"] for row in db["datasets"].rows} == {"leafe-run-1", "leafe-run-1-2"}


def test_a_dataset_name_is_one_dataset_whichever_stage_records_it(workdir):
    """The export and a baseline record datasets the same way (`save_dataset`), keyed by
    name alone: a second run choosing a name the first run used gets the next free name,
    and the first run's row and file stay as they were."""
    _, store = exported_run(workdir, "leafe.db", 1, name="shared")
    db = open_store(store)
    (first,) = db["datasets"].rows
    with transaction(db):
        run_two = queries.create_run(db, config={}, stages=["baseline:rft"])
    example = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
               "kind": "rft", "target_start": 1, "task": "guess/9", "correction_id": None}
    second = save_dataset(db, run_id=run_two, kind="rft", name="shared", examples=[example])
    assert second.name == "shared-2" and second.run_id == run_two
    assert dict(db["datasets"].get(first["id"])) == first
    assert examples_in(first["path"])[0]["kind"] == "rehearsal"
    assert examples_in(second.path) == [example]
    assert datasets.by_name(db, "shared").id == first["id"]


def test_a_chosen_export_path_is_written_once(workdir):
    taken = workdir / "mine.jsonl"
    taken.write_text("a file of the user's\n")
    with pytest.raises(AssertionError, match="never rewritten"):
        exported_run(workdir, "leafe.db", 1, path=str(taken))
    assert taken.read_text() == "a file of the user's\n"
    fresh = workdir / "fresh.jsonl"
    summary, _ = exported_run(workdir, "other.db", 1, path=str(fresh))
    assert Path(summary["path"]) == fresh.resolve() and len(examples_in(fresh)) == 1


def test_an_adapter_folder_of_someone_else_is_never_overwritten(tmp_path):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "adapter_config.json").write_text("{}")
    with pytest.raises(LeafeError, match="never overwritten"):
        check_output_folder(str(tmp_path / "theirs"), store_file=(tmp_path / "leafe.db").resolve(), name="theirs")
