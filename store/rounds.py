"""LEAFE rounds in the store: which round each stage row belongs to, and each round's
validation score (`round_scores`). The rounds stage logic lives in workbench/rounds.py;
this module only writes and reads. Writers run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils


@dataclass(frozen=True)
class RoundScore:
    """A policy's validation Pass@1 after a round (round 0: the base policy)."""

    round: int
    policy: str
    adapter_id: int | None
    tasks: int
    n: int
    successes: int
    pass_at_1: float
    ci_low: float
    ci_high: float
    env_steps: int | None
    train_examples: int | None
    train_tokens: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RoundScore:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def set_stage_rounds(db: sqlite_utils.Database, run_id: int, rounds: Sequence[int | None]) -> None:
    """The round of each stage row of a new run, by position (None: outside the rounds)."""
    for position, round_number in enumerate(rounds):
        if round_number is not None:
            db.execute(
                "update run_stages set round = ? where run_id = ? and position = ?",
                [round_number, run_id, position],
            )


def score_of(db: sqlite_utils.Database, run_id: int, round_number: int) -> RoundScore | None:
    rows = list(db.query("select * from round_scores where run_id = ? and round = ?", [run_id, round_number]))
    return RoundScore.from_row(rows[0]) if rows else None


def save_score(db: sqlite_utils.Database, run_id: int, score: RoundScore) -> None:
    """Store a round's score, replacing an earlier one of the same round."""
    db.execute("delete from round_scores where run_id = ? and round = ?", [run_id, score.round])
    db["round_scores"].insert({"run_id": run_id, **score.__dict__})


def scores(db: sqlite_utils.Database, run_id: int) -> list[RoundScore]:
    """The run's rounds curve, in round order."""
    return [RoundScore.from_row(row) for row in
            db.query("select * from round_scores where run_id = ? order by round", [run_id])]


def adapter_training(db: sqlite_utils.Database, name: str, run_id: int) -> tuple[int, dict] | None:
    """(id, metrics JSON text decoded by the caller) of the run's adapter called `name`."""
    row = db.execute("select id, metrics from adapters where name = ? and run_id = ?", [name, run_id]).fetchone()
    return (row[0], row[1]) if row else None
