"""Typed records: what the store hands the core instead of rows.

Each record is built once from its row by `from_row`, where JSON columns are decoded and
flags become booleans, so no caller parses feedback, lineage or id lists again. Columns a
query joins in (a step's episode, a correction's note text and task) are optional fields.

Records also read like the rows they replace (`step["feedback"]`, `step.get("note_id")`):
the environments' `reflect_template(path)` and the prompt builders take a path of steps
as mappings, and user environments written against that contract keep working. New code
uses the attributes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self


def encode_json(value: Any) -> str:
    """A value as the text of a JSON column (keys sorted, so equal values store equal text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def decode_json(text: Any, default: Any) -> Any:
    """A JSON column as a value; `default` for NULL or an empty string."""
    if text is None or text == "":
        return default
    if not isinstance(text, str):
        return text  # already decoded (a record built from another record)
    return json.loads(text)


class RowView(Mapping[str, Any]):
    """Read-only mapping access to a record's fields, for code written against rows."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        names = cls._field_names()
        return cls(**{key: value for key, value in row.items() if key in names})  # type: ignore[call-arg]

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(eq=False)
class Step(RowView):
    """One node of an episode's tree: the root (the task) or one action and its outcome."""

    id: int
    episode_id: int
    parent_id: int | None
    depth: int
    action: str | None
    observation: str
    feedback: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0
    done: bool = False
    success: bool = False
    tokens: int = 0
    truncated_turns: int = 0
    note_id: int | None = None
    """The note that was in the policy's context for this action (a branch's first step)."""
    backtrack_point: bool = False
    branch_depth: int = 0
    created_at: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        step = super().from_row(row)
        step.feedback = decode_json(step.feedback, {})
        step.score = float(step.score or 0.0)
        step.done, step.success = bool(step.done), bool(step.success)
        step.backtrack_point = bool(step.backtrack_point)
        return step


@dataclass(eq=False)
class Episode(RowView):
    id: int
    run_id: int
    task_id: int
    policy: str
    purpose: str  # explore | evaluate | baseline:...
    rollout: int
    seed: int = 0
    status: str = "running"  # running | finished
    success: bool = False
    score: float = 0.0
    steps: int = 0
    created_at: str = ""
    task: str = ""
    """The task's name, where the query joined it."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        episode = super().from_row(row)
        episode.success = bool(episode.success)
        episode.score = float(episode.score or 0.0)
        return episode

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(eq=False)
class Note(RowView):
    """An experience note on a step, with the step the branches replace."""

    id: int
    node_id: int
    rollback_node_id: int
    text: str
    author: str  # template | model | human
    fallback_reason: str = ""
    created_at: str = ""
    episode_id: int | None = None
    """The episode of the step reflected on, where the query joined it."""


@dataclass(eq=False)
class Correction(RowView):
    """A branch that did better than the step it replaced, and what curation made of it."""

    id: int
    note_id: int
    tau_node_id: int
    leaf_node_id: int
    status: str  # proposed | approved | edited | rejected
    edited_action: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    created_at: str = ""
    note: str = ""
    """The text of its note, where the query joined it."""
    task: str = ""
    run_id: int | None = None
    branch_success: bool = False
    branch_score: float | None = None
    """The branch's final score, where the query joined it."""
    episode_score: float | None = None
    """The score of the episode's original path, where the query joined it."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        correction = super().from_row(row)
        correction.branch_success = bool(correction.branch_success)
        return correction


@dataclass(eq=False)
class Dataset(RowView):
    """A JSONL file of training examples the store recorded; the file is never rewritten."""

    id: int
    run_id: int | None
    name: str
    path: str
    n_examples: int
    kind: str  # leafe | rft | grpo | early_experience
    correction_ids: list[int] = field(default_factory=list)
    task_names: list[str] = field(default_factory=list)
    created_at: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        dataset = super().from_row(row)
        dataset.correction_ids = decode_json(dataset.correction_ids, []) or []
        dataset.task_names = decode_json(dataset.task_names, []) or []
        dataset.kind = dataset.kind or ""
        return dataset


@dataclass(eq=False)
class Adapter(RowView):
    """A trained LoRA adapter with its lineage and metrics."""

    id: int
    run_id: int | None
    name: str
    path: str
    base_model: str
    dataset_id: int | None = None
    kind: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        adapter = super().from_row(row)
        adapter.metrics = decode_json(adapter.metrics, {}) or {}
        adapter.lineage = decode_json(adapter.lineage, {}) or {}
        return adapter
