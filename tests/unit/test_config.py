"""Config loading: every key typed, every mistake one clear line naming the key."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from workbench.config import Config, config_from_dict, help_rows, load_config, resolved, to_toml
from workbench.errors import ConfigError


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"env": {"max_stepz": 3}}, r"unknown key \[env\] max_stepz"),
        ({"modle": {}}, "unknown key modle"),
        ({"env": {"max_steps": "three"}}, "env.max_steps must be an integer, got a string 'three'"),
        ({"env": {"max_steps": 2.5}}, "env.max_steps must be an integer"),
        ({"explore": {"temperature": "hot"}}, "explore.temperature must be a number"),
        ({"model": {"backend": "tgi"}}, "model.backend must be one of"),
        ({"model": {"backend": "scripted"}}, "model.script is required"),
        ({"stages": {"run": ["explore", "reflekt"]}}, "unknown stage 'reflekt'"),
        ({"stages": {"run": ["explore", "evaluate", "baseline:rft"]}}, "lists 'baseline:rft' after 'evaluate'"),
        ({"env": {"tasks": [1.5]}}, "env.tasks must be"),
        ({"env": {"max_steps": 0}}, "env.max_steps must be at least 1"),
        ({"evaluate": {"n": 4, "k": [1, 8]}}, "evaluate.k = 8 needs at least 8 rollouts"),
        ({"env": "coding"}, r"\[env\] must be a table"),
        ({"reflect": {"model": {"nme": "x"}}}, r"unknown key \[reflect.model\] nme"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[env\nkind = 'coding'")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_defaults_are_filled_and_round_trip_through_toml(tmp_path):
    config = config_from_dict({"env": {"tasks": ["HumanEval/1", "HumanEval/2"]}})
    assert config.model.name == "embedded" and config.model.backend == "hf"
    assert config.prompts.system  # the coding environment's default system prompt
    text = to_toml(resolved(config))
    written = tmp_path / "resolved.toml"
    written.write_text(text)
    assert resolved(load_config(written)) == resolved(config)


def test_navigation_gets_its_own_prompts_unless_set():
    navigation = config_from_dict({"env": {"kind": "navigation", "suite": "MiniGrid-Empty-Random-6x6-v0"}})
    assert "grid" in navigation.prompts.system
    custom = config_from_dict({"env": {"kind": "navigation"}, "prompts": {"system": "Be brief."}})
    assert custom.prompts.system == "Be brief."


def test_relative_script_path_is_taken_from_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    config_path = tmp_path / "sub" / "c.toml"
    config_path.write_text('[model]\nbackend = "scripted"\nscript = "s.jsonl"\n')
    assert load_config(config_path).model.script == str(tmp_path / "sub" / "s.jsonl")


def test_every_setting_has_help():
    rows = help_rows()
    assert len(rows) > 60
    assert all(help_text for _, _, help_text in rows), [key for key, _, h in rows if not h]


# -- every number finite and in its range; lists that must hold something do -----------------

OUT_OF_RANGE = [
    # (section data, the key the error names, the range it states)
    ({"env": {"sandbox": {"timeout": float("nan")}}}, "env.sandbox.timeout", "a finite number above 0 and at most 600, got nan"),
    ({"env": {"sandbox": {"timeout": float("inf")}}}, "env.sandbox.timeout", "a finite number above 0"),
    ({"env": {"sandbox": {"timeout": 0}}}, "env.sandbox.timeout", "above 0 and at most 600, got 0.0"),
    ({"env": {"sandbox": {"memory_mb": 0}}}, "env.sandbox.memory_mb", "at least 16, got 0"),
    ({"env": {"sandbox": {"cpu_seconds": 0}}}, "env.sandbox.cpu_seconds", "at least 1 and at most 600"),
    ({"env": {"sandbox": {"workers": 100000}}}, "env.sandbox.workers", "at most 4 x the CPU cores ("),
    ({"model": {"timeout": float("nan")}}, "model.timeout", "a finite number above 0"),
    ({"model": {"timeout": 0}}, "model.timeout", "above 0"),
    ({"explore": {"temperature": float("nan")}}, "explore.temperature", "a finite number at least 0, got nan"),
    ({"explore": {"temperature": -0.1}}, "explore.temperature", "at least 0, got -0.1"),
    ({"explore": {"top_p": 7.5}}, "explore.top_p", "above 0 and at most 1, got 7.5"),
    ({"explore": {"top_p": 0}}, "explore.top_p", "above 0 and at most 1"),
    ({"explore": {"seed": -1}}, "explore.seed", "at least 0 and at most 4294967295"),
    ({"distill": {"lora_dropout": 1.0}}, "distill.lora_dropout", "at least 0 and below 1"),
    ({"distill": {"learning_rate": float("inf")}}, "distill.learning_rate", "a finite number above 0"),
    ({"reflect": {"model": {"timeout": float("nan")}}}, "reflect.model.timeout", "a finite number"),
    ({"evaluate": {"k": [1, 0]}}, r"evaluate.k\[1\]", "at least 1, got 0"),
    ({"baselines": {"grpo_group_size": 1}}, "baselines.grpo_group_size", "at least 2"),
    ({"evaluate": {"k": []}}, "evaluate.k", "is empty"),
    ({"evaluate": {"policies": []}}, "evaluate.policies", "is empty"),
    ({"stages": {"run": []}}, "stages.run", "is empty"),
    ({"env": {"tasks": []}}, "env.tasks", "is empty"),
    ({"env": {"tasks": 0}}, "env.tasks", "at least 1, got 0"),
    ({"env": {"tasks": ["T/add", "T/add"]}}, "env.tasks", "lists 'T/add' twice"),
    ({"evaluate": {"tasks": [3, 3]}}, "evaluate.tasks", "lists 3 twice"),
    ({"evaluate": {"policies": ["base", "base"]}}, "evaluate.policies", "lists 'base' twice"),
    ({"distill": {"target_modules": []}}, "distill.target_modules", "is empty"),
]


@pytest.mark.parametrize(("data", "key", "rule"), OUT_OF_RANGE, ids=[case[1] for case in OUT_OF_RANGE])
def test_a_number_out_of_its_range_or_an_empty_list_is_one_line_naming_key_and_range(data, key, rule):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(rf"config: {key} (must be|is empty|lists)", message), message
    assert rule in message, message


def numeric_settings(cls=Config, prefix=""):
    """(dotted key, section path, field name, type) of every number setting, nested included."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        key = f"{prefix}.{item.name}" if prefix else item.name
        hint = hints[item.name]
        options = typing.get_args(hint) or (hint,)
        model = next((o for o in options if dataclasses.is_dataclass(o)), None)
        if model is not None:
            yield from numeric_settings(model, key)
        elif int in options or float in options:
            yield key, (float if float in options else int)


def nested(key: str, value) -> dict:
    data: dict = value
    for part in reversed(key.split(".")):
        data = {part: data}
    return data


@pytest.mark.parametrize(("key", "kind"), list(numeric_settings()), ids=lambda item: str(item))
def test_every_number_setting_refuses_what_no_run_can_use(key, kind):
    """Generic over the config: a NaN, an infinity, or an absurd negative count is refused
    for every number a user can set, in one line naming the key."""
    bad = [float("nan"), float("inf"), -1e9] if kind is float else [-10**9]
    for value in bad:
        with pytest.raises(ConfigError, match=rf"^config: {re.escape(key)} must be "):
            config_from_dict(nested(key, value))


def test_ranges_are_shown_in_the_help_and_defaults_hold_them():
    rows = {key: text for key, _, text in help_rows()}
    assert rows["env.sandbox.timeout"].endswith("(above 0 and at most 600)")
    assert rows["explore.top_p"].endswith("(above 0 and at most 1)")
    assert "no item twice" in rows["env.tasks"] and "may not be empty" in rows["stages.run"]
    config_from_dict({})  # every default within its own range
