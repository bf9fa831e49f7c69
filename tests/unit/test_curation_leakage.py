"""The leakage check wherever a correction can become training data: a person approving
or editing, a person rewriting the note, and the export itself; and the exported file as
`datasets` reads it, with no note text in any message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store import curation
from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.errors import LeakageError
from workbench.export import export_dataset
from workbench.pipeline import run_pipeline

NOTE = "the secret is higher than two so say a bigger number now"
LEAKY = "3 since the secret is higher than two so say a bigger number now"
# Quotes, a dash and non-ASCII letters: json.dumps would escape all of them.
TRICKY_NOTE = 'Don\'t say "0" again — the secret is größer than «2»; try 3 (numbers 0–9 only)'


def run_with_note(folder, note: str, branch_actions: list[str], later: tuple[str, ...] = (), **sections):
    """guess/0 fails at 0, 1, 2; a model reflector writes `note` with rollback to step 1,
    where the branches answer `branch_actions` (then `later`). guess/1 succeeds at once."""
    reflector = write_script(folder / "r.jsonl", {"guess/0": [f"NOTE: {note}\nROLLBACK: 1"]})
    data = {
        "model": {"backend": "scripted", "script": str(write_script(
            folder / "s.jsonl", {"guess/0": ["0", "1", "2", *branch_actions, *later], "guess/1": ["7"]}))},
        "env": {"kind": GUESS_ENV, "tasks": 2, "max_steps": 3},
        "reflect": {"reflector": "model", "model": {"backend": "scripted", "script": str(reflector)}},
        "backtrack": {"branches": len(branch_actions), "max_depth": 1, "rollback": "reflector"},
        "curate": {"policy": "human"},
        "stages": {"run": ["explore", "reflect", "backtrack", "curate"]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config = config_from_dict(data)
    result = run_pipeline(config, db_path=folder / "s.db")
    assert result.status == "finished", result.error
    db = open_store(folder / "s.db")
    by_action = {db["nodes"].get(c["leaf_node_id"])["action"]: c["id"] for c in db["corrections"].rows}
    return config, result.run_id, db, by_action


def test_a_person_approving_a_leaking_correction_records_a_rejection(workdir):
    _, _, db, ids = run_with_note(workdir, NOTE, [LEAKY, "3"])
    assert curation.decide(db, ids[LEAKY], "approved", reviewer="ana") == "rejected"
    row = db["corrections"].get(ids[LEAKY])
    assert row["status"] == "rejected" and row["decided_by"] == "ana"
    assert row["reason"].startswith("leakage") and "secret is higher than two" in row["reason"]
    assert curation.decide(db, ids["3"], "approved", reviewer="ana") == "approved"


def test_saving_an_edited_action_that_quotes_the_note_is_rejected_and_keeps_the_text(workdir):
    _, _, db, ids = run_with_note(workdir, NOTE, ["3"])
    edited = "3  # " + NOTE
    assert curation.decide(db, ids["3"], "edited", reviewer="ana", edited_action=edited) == "rejected"
    row = db["corrections"].get(ids["3"])
    assert (row["status"], row["edited_action"]) == ("rejected", edited) and row["reason"].startswith("leakage")
    assert curation.decide(db, ids["3"], "edited", reviewer="ana", edited_action="3  # the number") == "edited"


def test_approving_a_selection_rejects_only_the_leaking_ones(workdir):
    _, run_id, db, ids = run_with_note(workdir, NOTE, [LEAKY, "3"])
    assert curation.decide_many(db, [ids[LEAKY], ids["3"]], "approved", reviewer="ana") == 2
    statuses = {c["id"]: (c["status"], c["reason"][:8]) for c in curation.corrections_of_run(db, run_id)}
    assert statuses == {ids[LEAKY]: ("rejected", "leakage:"), ids["3"]: ("approved", "")}


def test_a_note_the_action_quotes_is_refused_and_nothing_is_saved(workdir):
    _, _, db, ids = run_with_note(workdir, NOTE, ["3 because it is higher than two and more"])
    (correction_id,) = ids.values()
    before = (db["notes"].count, db["corrections"].get(correction_id)["note_id"])
    with pytest.raises(LeakageError, match="leakage"):
        curation.set_correction_note(db, correction_id, "say 3 because it is higher than two and more, like this", reviewer="ana")
    assert (db["notes"].count, db["corrections"].get(correction_id)["note_id"]) == before
    curation.set_correction_note(db, correction_id, "the secret lies above two", reviewer="ana")
    assert db["corrections"].get(correction_id)["note_id"] != before[1]


def test_export_never_writes_a_leaking_correction(workdir):
    config, run_id, db, ids = run_with_note(workdir, NOTE, [LEAKY, "3"])
    # Approved without the check (a store from an older version, or a hand-written decision).
    for correction_id in ids.values():
        db["corrections"].update(correction_id, {"status": "approved"})
    dataset, leaking, _ = export_dataset(db, config, run_id, rehearsal=False)
    assert leaking == [ids[LEAKY]]
    assert dataset.correction_ids == [ids["3"]]
    examples = [json.loads(line) for line in Path(dataset.path).read_text().splitlines()]
    assert [e["correction_id"] for e in examples] == [ids["3"]]


def test_exported_file_loads_with_datasets_and_no_message_holds_the_note(workdir):
    config, run_id, db, ids = run_with_note(
        workdir, TRICKY_NOTE, ["3", "9"], later=("3",), curate={"policy": "auto"}, export={"rehearsal": True},
        stages={"run": ["explore", "reflect", "backtrack", "curate", "export"]},
    )
    (note,) = db["notes"].rows
    assert note["text"] == TRICKY_NOTE
    path = db.execute("select path from datasets").fetchone()[0]
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=path, split="train", cache_dir=str(workdir / "hf-cache"))
    assert sorted(dataset["kind"]) == ["correction", "correction", "rehearsal"]
    for example in dataset:
        assert example["messages"][example["target_start"]]["role"] == "assistant"
        for message in example["messages"]:
            assert TRICKY_NOTE not in message["content"]
            assert "größer" not in message["content"] and "earlier attempt" not in message["content"]
    corrections = [e for e in dataset if e["kind"] == "correction"]
    assert sorted(e["messages"][e["target_start"]]["content"] for e in corrections) == ["3", "9"]
