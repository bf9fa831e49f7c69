"""Stage costs: what each stage of a run took in wall time, tokens generated, environment
steps and peak resident memory, measured around the stage and kept in the store
(`store/costs.py`), printed after a batch run and shown on the Results screen.

- wall time: the stage's own seconds (a resumed stage adds the seconds of each part);
- tokens and environment steps: what the stage stored (its nodes, not the history an
  ablation episode copies; the tokens its stopwatches counted). `baseline:grpo` and
  `baseline:early_experience` play without storing steps and count their own play; their
  summary's `env_steps` and `tokens` are taken instead;
- peak resident memory: the summed RSS of this process and all its children (model
  workers, sandbox servers), sampled every `SAMPLE_SECONDS` while the stage runs, so a
  peak shorter than that can be missed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from store import costs as stored
from store.costs import StageCost
from workbench.context import StageContext

SAMPLE_SECONDS = 0.5
SELF_COUNTING_STAGES = ("baseline:grpo", "baseline:early_experience")
"""Stages whose environment steps and tokens are counted by the stage (in its summary), not stored as nodes."""


def tree_rss() -> int:
    """Resident bytes of this process and every process under it, summed."""
    import psutil

    me = psutil.Process(os.getpid())
    total = 0
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a child may end while we look
            total += process.memory_info().rss
    return total


class MemorySampler:
    """The peak of `tree_rss()`, sampled in a daemon thread until `stop()`."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.peak = tree_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stage-memory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss())
        return self.peak


class StageMeter:
    """Measures one stage: start it before the stage function, `finish()` after (whatever
    the outcome); `finish` returns the cost and whether its counts are the stage's totals."""

    def __init__(self, context: StageContext, stage: str) -> None:
        self.context = context
        self.stage = stage
        self.started = time.monotonic()
        self.first_node = stored.last_node_id(context.db)
        self.tokens_before = stored.run_tokens(context.db, context.run_id)
        self.memory = MemorySampler()

    def finish(self, summary: Mapping[str, Any] | None = None) -> tuple[StageCost, bool]:
        peak = self.memory.stop()
        db, run_id = self.context.db, self.context.run_id
        steps = stored.steps_stored_since(db, run_id, self.first_node)
        tokens = stored.run_tokens(db, run_id) - self.tokens_before
        own = self.stage in SELF_COUNTING_STAGES and summary is not None and "env_steps" in summary
        if own:
            steps, tokens = int(summary["env_steps"]), int(summary.get("tokens") or 0)  # type: ignore[index]
        return StageCost(self.stage, time.monotonic() - self.started, tokens, steps, peak), own


def cost_entry(cost: StageCost) -> dict[str, Any]:
    """A stage's cost as stored in its summary and in `--json`."""
    return {"wall_time": round(cost.wall_time, 2), "tokens": cost.tokens, "env_steps": cost.env_steps,
            "peak_rss_mb": round(cost.peak_rss / 2**20, 1)}


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def cost_rows(costs: Sequence[StageCost]) -> list[list[str]]:
    """stage, wall time, tokens, env steps, peak memory: one row per stage, then the total
    (the peak of the peaks)."""
    rows = [[c.stage, format_seconds(c.wall_time), f"{c.tokens:,}", f"{c.env_steps:,}",
             f"{c.peak_rss / 2**20:,.0f} MiB"] for c in costs]
    if len(costs) > 1:
        rows.append(["total", format_seconds(sum(c.wall_time for c in costs)), f"{sum(c.tokens for c in costs):,}",
                     f"{sum(c.env_steps for c in costs):,}", f"{max(c.peak_rss for c in costs) / 2**20:,.0f} MiB"])
    return rows


COST_COLUMNS = ("stage", "wall time", "tokens generated", "env steps", "peak memory")


def costs_table(costs: Sequence[StageCost]):
    """The batch's Stage costs table (rich)."""
    from rich.table import Table

    view = Table(title="Stage costs (peak memory: resident, this process and its children)")
    for label in COST_COLUMNS:
        view.add_column(label, justify="left" if label == "stage" else "right")
    for row in cost_rows(costs):
        view.add_row(*row)
    return view
