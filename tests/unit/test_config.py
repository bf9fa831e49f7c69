"""Config loading: every key typed, every mistake one clear line naming the key."""

from __future__ import annotations

import pytest

from workbench.config import config_from_dict, help_rows, load_config, resolved, to_toml
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
