"""Stage costs: each stage's wall time, tokens generated, environment steps and peak
resident memory, kept on its `run_stages` row; and the stored counts they are measured from."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils


@dataclass
class StageCost:
    stage: str
    wall_time: float  # seconds
    tokens: int
    env_steps: int
    peak_rss: int  # bytes


def last_node_id(db: sqlite_utils.Database) -> int:
    """The newest node's id (0 in an empty store): nodes stored later have larger ids."""
    return int(db.execute("select coalesce(max(id), 0) from nodes").fetchone()[0])


def steps_stored_since(db: sqlite_utils.Database, run_id: int, node_id: int) -> int:
    """Environment steps the run stored after node `node_id`: every non-root node, except the
    history an `ablation:no_note` episode copies from LEAFE's (not played again)."""
    return int(db.execute(
        """select count(*) from nodes join episodes on episodes.id = nodes.episode_id
           where episodes.run_id = ? and nodes.id > ? and nodes.parent_id is not null
           and json_extract(nodes.feedback, '$.copied_from') is null""",
        [run_id, node_id],
    ).fetchone()[0])


def run_tokens(db: sqlite_utils.Database, run_id: int) -> int:
    """Tokens generated in the run so far (what its stages' stopwatches stored)."""
    return int(db.execute("select tokens_generated from runs where id = ?", [run_id]).fetchone()[0] or 0)


def add_stage_cost(
    db: sqlite_utils.Database, run_id: int, position: int, cost: StageCost, *, counts_are_totals: bool = False
) -> None:
    """Add a (part of a) stage's cost to its row: a resumed stage adds to what it had.

    `counts_are_totals`: the tokens and steps are the stage's whole count (a stage that
    counts its own play and reports it in its summary), so they replace what the row had."""
    counts = "tokens = ?, env_steps = ?" if counts_are_totals else "tokens = tokens + ?, env_steps = env_steps + ?"
    db.execute(
        f"""update run_stages set wall_time = wall_time + ?, {counts}, peak_rss = max(peak_rss, ?)
            where run_id = ? and position = ?""",
        [cost.wall_time, cost.tokens, cost.env_steps, cost.peak_rss, run_id, position],
    )


def stage_costs(db: sqlite_utils.Database, run_id: int) -> list[StageCost]:
    """The run's stages in order with what each cost (zeros for a stage not run yet)."""
    return [
        StageCost(stage, float(wall or 0.0), int(tokens or 0), int(steps or 0), int(peak or 0))
        for stage, wall, tokens, steps, peak in db.execute(
            """select stage, wall_time, tokens, env_steps, peak_rss from run_stages
               where run_id = ? order by position""",
            [run_id],
        ).fetchall()
    ]
