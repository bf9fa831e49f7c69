"""The README stays true: its quickstart holds exactly two commands, and its reference
names every config key with its default."""

from __future__ import annotations

import re

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


def test_every_example_named_in_the_readme_exists():
    for name in re.findall(r"`([a-z_]+\.toml)`", README):
        if name not in ("CONFIG.toml",):
            assert (ROOT / "examples" / name).is_file(), name
