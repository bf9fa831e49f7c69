"""The README stays true: its quickstart holds exactly two commands, its reference names
every config key with the default the code really uses, and its store section names every
table a store has."""

from __future__ import annotations

import re

from store.db import open_store
from tests.conftest import ROOT
from workbench.config import help_rows

README = (ROOT / "README.md").read_text()


def test_quickstart_has_exactly_two_commands():
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["make run", "make test"]


def test_every_config_key_is_in_the_reference():
    reference = README.split("## Configuration reference", 1)[1]
    missing = [key for key, _, _ in help_rows() if f"`{key}`" not in reference]
    assert not missing, missing


def reference_defaults() -> dict[str, str]:
    """key -> default as the README's reference table shows it (a row: | `key` | `default` | ...)."""
    reference = README.split("## Configuration reference", 1)[1]
    return dict(re.findall(r"^\| `([^`]+)` \| `(.*?)` \|", reference, re.MULTILINE))


def test_every_default_in_the_reference_is_the_one_the_code_uses():
    shown = reference_defaults()
    wrong = {}
    for key, default, _ in help_rows():
        text = shown.get(key)
        # A long default (a prompt, a module list) is shown cut, ending in "...".
        matches = text == default or (
            text is not None and text.endswith("...") and default.startswith(text[:-3])
        )
        if not matches:
            wrong[key] = (text, default)
    assert not wrong, f"README default != code default: {wrong}"


def test_every_table_is_named_in_the_store_section(tmp_path):
    section = README.split("## The store", 1)[1].split("\n## ", 1)[0]
    tables = [t for t in open_store(tmp_path / "s.db").table_names() if not t.startswith("_")]
    assert [t for t in tables if f"`{t}" not in section] == []


def test_every_example_named_in_the_readme_exists():
    for name in re.findall(r"`([a-z_]+\.toml)`", README):
        if name not in ("CONFIG.toml",):
            assert (ROOT / "examples" / name).is_file(), name
