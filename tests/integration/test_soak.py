"""A long run: one run of 2,000 scripted episodes through explore, reflect and backtrack.
Resident memory must not keep growing with the work done: at the end it is within 10% of
what it was once the first 200 episodes had finished."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.context import SilentProgress
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration

EPISODES = 2000
SAMPLED_AFTER = 200


class MemoryWatch(SilentProgress):
    """Samples this process's resident memory when the 200th episode has finished."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.finished = 0
        self.resident_early: int | None = None

    def event(self, kind: str, **data) -> None:
        if kind == "episode" and data.get("stage") == "explore":
            self.finished += 1
            if self.finished == SAMPLED_AFTER:
                self.resident_early = self.process.memory_info().rss


def test_memory_stays_flat_over_2000_episodes(workdir, report_figure):
    actions = {f"guess/{i}": ["0", "1", "2", "4"] for i in range(EPISODES)}
    script = write_script(workdir / "s.jsonl", actions)
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": EPISODES, "max_steps": 3},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    watch = MemoryWatch()
    started = time.monotonic()
    result = run_pipeline(config, db_path=workdir / "soak.db", progress=watch)
    seconds = time.monotonic() - started
    resident_end = watch.process.memory_info().rss
    assert result.status == "finished", result.error
    assert result.counts["episodes"] == EPISODES and watch.finished == EPISODES
    assert result.summaries["reflect"]["notes"] > 1000 and result.counts["corrections"] > 0
    early = watch.resident_early
    growth = resident_end / early - 1
    report_figure(
        f"soak: resident memory after {SAMPLED_AFTER} of {EPISODES:,} episodes {early / 2**20:.1f} MiB, "
        f"at the end {resident_end / 2**20:.1f} MiB ({growth:+.1%}); one run of explore, reflect "
        f"and backtrack in {seconds:.0f} s"
    )
    assert growth < 0.10
