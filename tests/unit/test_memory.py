"""Freed memory goes back to the system between optimiser steps and stages (glibc keeps
it otherwise, and a training stage once held 11 GiB for batches that need about 4)."""

from __future__ import annotations

from workbench.memory import GrowthTrimmer, release_free_memory, resident_bytes


def resident_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def test_released_memory_leaves_the_process():
    import torch

    # Freeing a large block raises glibc's threshold for fresh pages, so the blocks below come
    # from the heap; the small tensors between them keep the heap's top from shrinking by itself.
    large = torch.ones(16 * 2**20, dtype=torch.uint8)
    del large
    blocks, pins = [], []
    for index in range(150):
        blocks.append(torch.ones(2 * 2**20 + 4096 * index, dtype=torch.uint8))
        pins.append(torch.ones(64))
    del blocks
    before = resident_mib()
    release_free_memory()
    assert before - resident_mib() > 200  # of the ~300 MiB freed


def test_the_trimmer_trims_only_once_the_process_has_grown_past_its_allowance():
    import torch

    trimmer = GrowthTrimmer(growth=100 * 2**20)
    trimmer()
    assert trimmer.trims == 0  # not grown yet
    large = torch.ones(16 * 2**20, dtype=torch.uint8)
    del large
    blocks, pins = [], []
    for index in range(150):
        blocks.append(torch.ones(2 * 2**20 + 4096 * index, dtype=torch.uint8))
        pins.append(torch.ones(64))
    del blocks  # ~300 MiB freed but still resident
    trimmer()
    assert trimmer.trims == 1
    assert resident_bytes() - trimmer.baseline < 50 * 2**20
    trimmer()
    assert trimmer.trims == 1  # nothing new to give back
