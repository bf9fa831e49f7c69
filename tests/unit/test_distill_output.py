"""Where an adapter is written: training replaces its folder whole, so a folder that holds
anything (another adapter included) is refused before any training, and left as it was."""

from __future__ import annotations

import json

import pytest

from store.db import open_store
from workbench.config import DistillConfig, ModelConfig
from workbench.distill.output import check_output_folder
from workbench.distill.stage import train_adapter
from workbench.errors import LeafeError


def one_example(path):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path.write_text(json.dumps({"messages": messages, "kind": "correction", "target_start": 1}) + "\n")
    return path


def test_an_empty_output_is_refused_rather_than_taken_as_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LeafeError, match=r"\[distill\] output"):
        check_output_folder("")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_of_other_files_is_refused_and_untouched(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('keep me')")
    data = one_example(tmp_path / "data.jsonl")
    db = open_store(tmp_path / "leafe.db")
    with pytest.raises(LeafeError, match="not an adapter"):
        train_adapter(db, dataset_path=str(data), dataset_id=None, settings=DistillConfig(),
                      model=ModelConfig(), name="mine", output=str(project), run_id=None)
    assert [p.name for p in project.iterdir()] == ["train.py"]
    assert db["adapters"].count == 0


def test_new_and_empty_folders_may_be_written_an_existing_adapter_may_not(tmp_path):
    assert check_output_folder(str(tmp_path / "new")) == (tmp_path / "new").resolve()
    (tmp_path / "empty").mkdir()
    assert check_output_folder(str(tmp_path / "empty")).name == "empty"
    (tmp_path / "old-adapter").mkdir()
    (tmp_path / "old-adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(LeafeError, match="never overwritten"):
        check_output_folder(str(tmp_path / "old-adapter"))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LeafeError, match="is a file"):
        check_output_folder(str(tmp_path / "a-file"))


def test_only_the_store_that_saved_an_unrecorded_adapter_may_replace_it(tmp_path):
    """A run killed between saving an adapter and recording it retrains on resume into the
    same folder; the card says which store and name saved it, and no one else may."""
    store = (tmp_path / "leafe.db").resolve()
    folder = tmp_path / "leafe.db-files" / "adapters" / "mine"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "leafe-adapter.json").write_text(json.dumps({"store": str(store), "name": "mine"}))
    assert check_output_folder(str(folder), store_file=store, name="mine") == folder.resolve()
    with pytest.raises(LeafeError, match="never overwritten"):
        check_output_folder(str(folder), store_file=(tmp_path / "other.db").resolve(), name="mine")
    with pytest.raises(LeafeError, match="never overwritten"):
        check_output_folder(str(folder), store_file=store, name="yours")
