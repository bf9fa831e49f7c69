"""The core never imports Textual: a subprocess imports every core module that exists
and checks that no Textual module came with it (the TUI talks to the core through plain
functions, so batch runs and workers stay free of the interface)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = [
    "workbench", "workbench.config", "workbench.agent", "workbench.explore", "workbench.pipeline",
    "workbench.reflect", "workbench.backtrack", "workbench.curate", "workbench.export",
    "workbench.distill", "workbench.evaluate", "workbench.cli",
    "store", "store.db", "store.migrations", "store.queries", "store.curation", "store.views", "store.admin",
]


def existing(modules: list[str]) -> list[str]:
    found = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except ModuleNotFoundError:
            continue
    return found


def test_core_modules_do_not_import_textual():
    modules = existing(CORE_MODULES)
    assert "workbench.pipeline" in modules and "store.views" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    textual_modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert textual_modules == [], f"the core imported {textual_modules[:5]}"
