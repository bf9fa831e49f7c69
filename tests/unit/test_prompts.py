"""Prompts built from a node path: the note's place, note-free histories, and a history
longer than the model's context."""

from __future__ import annotations

import dataclasses
import json

import pytest

from store.db import open_store
from tests.conftest import GUESS_ENV, write_script
from workbench.config import PromptsConfig, config_from_dict
from workbench.models.scripted import ScriptedGenerator
from workbench.pipeline import run_pipeline
from workbench.prompts import action_chats, build_messages, fit_context
from workbench.storable_text import clean_text

PROMPTS = PromptsConfig(system="sys", first_turn="TASK {observation}", next_turn="OBS {observation} left {steps_left}", note="{turn} NOTE {note}")


def path(steps: int) -> list[dict]:
    nodes = [{"id": 1, "depth": 0, "observation": "t", "action": None}]
    for depth in range(1, steps + 1):
        nodes.append({"id": depth + 1, "depth": depth, "observation": f"o{depth}", "action": f"a{depth}"})
    return nodes


def test_messages_alternate_and_count_the_budget():
    messages = build_messages(PROMPTS, path(2), max_steps=3)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == "TASK t" and messages[-1]["content"] == "OBS o2 left 1"


def test_the_note_joins_the_turn_before_the_action_it_guided():
    nodes = path(2)
    nodes[2]["note_id"] = 7
    with_note = build_messages(PROMPTS, nodes, max_steps=3, notes={7: "try harder"})
    assert with_note[3]["content"] == "OBS o1 left 2 NOTE try harder"
    without = build_messages(PROMPTS, nodes, max_steps=3)
    assert "NOTE" not in json.dumps(without)
    pending = build_messages(PROMPTS, path(1), max_steps=3, pending_note="go left")
    assert pending[-1]["content"] == "OBS o1 left 2 NOTE go left"


def test_a_history_window_shows_only_the_latest_turns():
    nodes = path(3)
    nodes[3]["note_id"] = 7
    latest_only = build_messages(dataclasses.replace(PROMPTS, history_turns=0), nodes, max_steps=5, notes={7: "n"})
    assert latest_only == [{"role": "system", "content": "sys"}, {"role": "user", "content": "OBS o3 left 2"}]
    one_back = build_messages(dataclasses.replace(PROMPTS, history_turns=1), nodes, max_steps=5, notes={7: "n"})
    assert [m["content"] for m in one_back] == ["sys", "OBS o2 left 3 NOTE n", "a3", "OBS o3 left 2"]
    # A branch's pending note joins the one turn a windowed policy sees.
    pending = build_messages(dataclasses.replace(PROMPTS, history_turns=0), path(2), max_steps=5, pending_note="go")
    assert pending[-1]["content"] == "OBS o2 left 3 NOTE go" and len(pending) == 2
    assert build_messages(PROMPTS, nodes, max_steps=5) == build_messages(
        dataclasses.replace(PROMPTS, history_turns=3), nodes, max_steps=5
    ), "a window wider than the history changes nothing"


def test_training_chats_show_each_action_the_prompt_the_policy_saw():
    nodes = path(3)
    whole = action_chats(PROMPTS, nodes, max_steps=5, first_depth=2)
    assert len(whole) == 1, "with the whole history one chat holds every target"
    messages, start = whole[0]
    assert [m["content"] for m in messages[start:]] == ["a2", "OBS o2 left 3", "a3"]
    windowed = action_chats(dataclasses.replace(PROMPTS, history_turns=0), nodes, max_steps=5, first_depth=2)
    assert [[m["content"] for m in chat] for chat, _ in windowed] == [
        ["sys", "OBS o1 left 4", "a2"],
        ["sys", "OBS o2 left 3", "a3"],
    ]
    assert all(start == 2 for _, start in windowed)
    for chat, _ in windowed:  # exactly what the policy was shown before acting
        prompt = chat[:-1]
        depth = int(chat[-1]["content"][1:])
        assert prompt == build_messages(dataclasses.replace(PROMPTS, history_turns=0), nodes[:depth], max_steps=5)


def test_action_targets_teach_the_action_the_environment_read_not_the_prose():
    nodes = path(3)
    nodes[1]["feedback"] = {"action": "left"}  # "a1" was read as left
    nodes[2]["feedback"] = {"error": "Unknown action"}  # read as nothing
    nodes[3]["feedback"] = {"action": 2, "action_name": "forward"}  # Gymnasium names its index
    windowed = dataclasses.replace(PROMPTS, history_turns=0)
    chats = action_chats(windowed, nodes, max_steps=5, target="action")
    assert [chat[-1]["content"] for chat, _ in chats] == ["left", "forward"], "the unread step teaches nothing"
    assert chats[1][0][-2]["content"] == "OBS o2 left 3", "the prompt is still the one the policy saw"
    as_written = action_chats(windowed, nodes, max_steps=5)
    assert [chat[-1]["content"] for chat, _ in as_written] == ["a1", "a2", "a3"]
    whole, start = action_chats(PROMPTS, nodes, max_steps=5, target="action")[0]
    assert [m["content"] for m in whole if m["role"] == "assistant"] == ["left", "a2", "forward"]


def test_epoch_losses_are_means_so_a_costly_last_batch_does_not_read_as_a_rise():
    from workbench.distill.training import TrainResult

    curve = [2.6, 3.7, 2.2, 2.2, 2.1, 2.1, 2.1, 2.0, 2.4, 3.4]  # the shape a real run gave
    result = TrainResult(losses=[{"step": i + 1, "epoch": (i + 1) / 5, "loss": loss} for i, loss in enumerate(curve)])
    assert result.final_loss > result.first_loss
    first, last = result.epoch_losses
    assert first == pytest.approx(2.56) and last == pytest.approx(2.4)


def test_long_history_keeps_task_and_latest_turns():
    generator = ScriptedGenerator.__new__(ScriptedGenerator)
    generator.context_length = 40
    messages = build_messages(PROMPTS, path(10), max_steps=12)
    fitted, dropped = fit_context(messages, generator, reserve=10)
    assert dropped > 0 and dropped % 2 == 0
    assert fitted[:2] == messages[:2], "the system prompt and the task stay"
    assert fitted[-2:] == messages[-2:], "the latest turn stays"
    assert generator.count_tokens(fitted) <= 30
    tiny = ScriptedGenerator.__new__(ScriptedGenerator)
    tiny.context_length = 5
    squeezed, _ = fit_context(messages, tiny, reserve=0)
    assert squeezed == messages[:2] + messages[-2:], "even past the limit the task and the latest turn stay"


def test_dropped_turns_are_recorded_on_the_node(workdir, monkeypatch):
    monkeypatch.setattr(ScriptedGenerator, "context_length", 45)
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0", "1", "2", "4", "6", "8"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script), "max_new_tokens": 8},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 6},
    })
    assert run_pipeline(config, db_path=workdir / "s.db").status == "finished"
    rows = list(open_store(workdir / "s.db")["nodes"].rows_where("depth > 0", order_by="depth"))
    assert rows[0]["truncated_turns"] == 0
    assert rows[-1]["truncated_turns"] > 0
    assert json.loads(rows[-1]["feedback"])["history_turns_dropped"] == rows[-1]["truncated_turns"]


def test_clean_text_repairs_and_bounds():
    text, notes = clean_text("ok\udcff\x00")
    assert text == "ok?" and notes == {"invalid_utf8": True}
    assert clean_text(b"\xff\xfeabc")[1]["invalid_utf8"] is True


def test_a_branch_first_step_also_drops_old_turns_to_leave_room_for_its_answer(workdir, monkeypatch):
    monkeypatch.setattr(ScriptedGenerator, "context_length", 45)
    script = write_script(workdir / "s.jsonl", {"guess/0": ["0", "1", "2", "4", "6", "8", "9"]})
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script), "max_new_tokens": 8},
        "env": {"kind": GUESS_ENV, "tasks": 1, "max_steps": 6},
        "backtrack": {"rollback": "last", "branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    assert run_pipeline(config, db_path=workdir / "s.db").status == "finished"
    branch = next(open_store(workdir / "s.db")["nodes"].rows_where("branch_depth = 1", order_by="depth"))
    assert branch["depth"] == 6  # it replaces the last step, after a long history
    assert branch["truncated_turns"] > 0
    assert json.loads(branch["feedback"])["history_turns_dropped"] == branch["truncated_turns"]
