"""The core's `Progress` protocol, turned into Textual messages for a screen.

Stages call `start`/`advance`/`finish`/`event` from a worker thread; each call posts a
small message to the screen (post_message is thread-safe). Progress updates may come in
floods, so they carry the running totals and `can_replace` keeps only the latest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump


class StageProgress(Message):
    """The running stage's progress; a newer one replaces an older one still queued."""

    def __init__(self, stage: str, description: str, completed: int, total: int | None,
                 fields: dict[str, Any], losses: tuple[tuple[int, float], ...]) -> None:
        super().__init__()
        self.stage = stage
        self.description = description
        self.completed = completed
        self.total = total
        self.fields = fields
        self.losses = losses

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StageProgress)


class NodeStored(Message):
    """A step was stored; the tree shows it on its next refresh."""

    def __init__(self, node_id: int, episode_id: int) -> None:
        super().__init__()
        self.node_id = node_id
        self.episode_id = episode_id



class PendingNodes:
    """Steps reported by `NodeStored`, applied to a tree at most a few times a second (the
    episode and live screens both collect them here between refreshes)."""

    def __init__(self) -> None:
        self.node_ids: list[int] = []

    def add(self, node_id: int) -> None:
        self.node_ids.append(node_id)

    def take(self) -> list[int]:
        taken, self.node_ids = self.node_ids, []
        return taken

class RunStarted(Message):
    """The pipeline created (or resumed) run `run_id`: a screen can follow it from now on."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id


class LogLine(Message):
    """A line from a stage for the log pane."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


@dataclass
class MessageProgress:
    """A `workbench.context.Progress` that reports to a Textual screen."""

    target: MessagePump
    stage: str = ""
    description: str = ""
    completed: int = 0
    total: int | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, fields: dict[str, Any] | None = None) -> None:
        self.target.post_message(
            StageProgress(self.stage, self.description, self.completed, self.total, dict(fields or {}),
                          tuple(self.losses))
        )

    def start(self, stage: str, total: int | None, description: str) -> None:
        with self.lock:
            self.stage, self.total, self.description, self.completed = stage, total, description, 0
        self.post()

    def advance(self, amount: int = 1, **fields: Any) -> None:
        with self.lock:
            self.completed += amount
            loss = fields.get("loss")
            if isinstance(loss, int | float):
                self.losses.append((len(self.losses) + 1, float(loss)))
        self.post(fields)

    def finish(self) -> None:
        with self.lock:
            if self.total is not None:
                self.completed = self.total
        self.post()

    def event(self, kind: str, **data: Any) -> None:
        if kind == "node" and data.get("node_id") is not None:
            self.target.post_message(NodeStored(int(data["node_id"]), int(data.get("episode_id") or 0)))
        elif kind == "message":
            self.target.post_message(LogLine(str(data.get("text", ""))))
        elif kind == "run_started" and data.get("run_id") is not None:
            self.target.post_message(RunStarted(int(data["run_id"])))
