"""Freed memory goes back to the system between optimiser steps and stages (glibc keeps
it otherwise, and a training stage once held 11 GiB for batches that need about 4).

Each check runs in a fresh interpreter: how much a heap keeps depends on everything the
process allocated before, which in a long test session is anything."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# Frees about 300 MiB that stays resident: freeing a large block raises glibc's threshold
# for fresh pages, so the blocks after it come from the heap, and the small tensors between
# them keep the heap's top from shrinking by itself.
KEEP_FREED_MEMORY = """
import json, torch
from workbench.memory import GrowthTrimmer, release_free_memory, resident_bytes
MIB = 2**20
trimmer = GrowthTrimmer(growth=100 * MIB)
trimmer()
trims_before_growing = trimmer.trims
large = torch.ones(16 * MIB, dtype=torch.uint8)
del large
blocks, pins = [], []
for index in range(150):
    blocks.append(torch.ones(2 * MIB + 4096 * index, dtype=torch.uint8))
    pins.append(torch.ones(64))
del blocks
"""


def run(script: str) -> dict:
    finished = subprocess.run([sys.executable, "-c", KEEP_FREED_MEMORY + script], cwd=ROOT,
                              capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_released_memory_leaves_the_process():
    result = run("""
before = resident_bytes()
release_free_memory()
print(json.dumps({"freed": (before - resident_bytes()) / MIB}))
""")
    assert result["freed"] > 200  # of the ~300 MiB freed


def test_the_trimmer_trims_only_once_the_process_has_grown_past_its_allowance():
    result = run("""
trimmer()
after_growing = trimmer.trims
trimmer()
print(json.dumps({"before": trims_before_growing, "after": after_growing, "again": trimmer.trims}))
""")
    # None before the process grew, one once it had, none more with nothing new to give back.
    assert result == {"before": 0, "after": 1, "again": 1}
