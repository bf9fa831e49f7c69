"""The core never imports Textual: a fresh interpreter imports every module under workbench/
and store/, found on disk (a module added tomorrow is checked without editing this file),
and no Textual module (nor a Textual plugin such as textual_plotext) may come with any of
them. The TUI talks to the core through plain functions, so batch runs and workers stay
free of the interface."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

CORE_PACKAGES = ("workbench", "store")

# Imports each module in turn and records which Textual modules arrived with it, so a
# failure names the module that brought Textual in. A module that cannot be imported
# fails the test (with its traceback) rather than being skipped.
PROBE = """
import importlib, json, sys
brought = {}
for name in json.loads(sys.argv[1]):
    before = set(sys.modules)
    importlib.import_module(name)
    textual = sorted(m for m in set(sys.modules) - before if m.split(".")[0].startswith("textual"))
    if textual:
        brought[name] = textual[:3]
print(json.dumps(brought))
"""


def core_modules() -> list[str]:
    """Every module of the core packages, from the files on disk."""
    modules = []
    for package in CORE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_every_core_module_is_found_on_disk():
    modules = core_modules()
    files = [path for package in CORE_PACKAGES for path in (ROOT / package).rglob("*.py")]
    assert len(modules) == len(set(modules)) == len(files)
    assert {"workbench", "store", "workbench.pipeline", "workbench.registry", "store.db"} <= set(modules)


def test_no_core_module_imports_textual():
    modules = core_modules()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules)], capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    brought = json.loads(result.stdout.strip().splitlines()[-1])
    assert brought == {}, f"these core modules import Textual: {brought}"
