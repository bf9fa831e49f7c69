"""Freed memory goes back to the system between optimiser steps and stages (glibc keeps
it otherwise, and a training stage once held 11 GiB for batches that need about 4)."""

from __future__ import annotations

from workbench.memory import GrowthTrimmer, release_free_memory, resident_bytes

MIB = 2**20


def free_memory_the_allocator_keeps() -> list:
    """Free about 300 MiB that stays resident; returns the small tensors that pin it.

    Freeing a large block raises glibc's threshold for fresh pages, so the blocks after it
    come from the heap; the small tensors between them keep the heap's top from shrinking
    by itself."""
    import torch

    large = torch.ones(16 * MIB, dtype=torch.uint8)
    del large
    blocks, pins = [], []
    for index in range(150):
        blocks.append(torch.ones(2 * MIB + 4096 * index, dtype=torch.uint8))
        pins.append(torch.ones(64))
    del blocks
    return pins


def test_released_memory_leaves_the_process():
    pins = free_memory_the_allocator_keeps()
    before = resident_bytes()
    release_free_memory()
    assert before - resident_bytes() > 200 * MIB
    assert pins


def test_the_trimmer_trims_only_once_the_process_has_grown_past_its_allowance():
    trimmer = GrowthTrimmer(growth=100 * MIB)
    trimmer()
    assert trimmer.trims == 0  # not grown yet
    pins = free_memory_the_allocator_keeps()
    trimmer()
    assert trimmer.trims == 1
    assert resident_bytes() - trimmer.baseline < 50 * MIB
    trimmer()
    assert trimmer.trims == 1  # nothing new to give back
    assert pins
