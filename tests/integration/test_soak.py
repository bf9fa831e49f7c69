"""A long run: 2,000 scripted episodes through explore, reflect and backtrack, in ten runs
of 200 in one process. Resident memory must not keep growing with the work done."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import GUESS_ENV, write_script
from workbench.config import config_from_dict
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.integration

EPISODES_PER_RUN = 200
RUNS = 10


def test_memory_stays_flat_over_2000_episodes(workdir):
    actions = {f"guess/{i}": ["0", "1", "2", "4"] for i in range(EPISODES_PER_RUN)}
    script = write_script(workdir / "s.jsonl", actions)
    config = config_from_dict({
        "model": {"backend": "scripted", "script": str(script)},
        "env": {"kind": GUESS_ENV, "tasks": EPISODES_PER_RUN, "max_steps": 3},
        "backtrack": {"branches": 1, "max_depth": 1},
        "stages": {"run": ["explore", "reflect", "backtrack"]},
    })
    process = psutil.Process()
    resident = []
    for _ in range(RUNS):
        result = run_pipeline(config, db_path=workdir / "soak.db")
        assert result.status == "finished", result.error
        assert result.counts["episodes"] == EPISODES_PER_RUN
        resident.append(process.memory_info().rss)
    first, last = resident[0], resident[-1]
    growth = last / first - 1
    print(f"\nresident memory after 200 episodes: {first / 2**20:.1f} MiB; "
          f"after 2,000: {last / 2**20:.1f} MiB ({growth:+.1%})")
    assert growth < 0.10, [round(r / 2**20, 1) for r in resident]
