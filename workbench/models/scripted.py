"""The `scripted` backend: replays recorded actions per task, for exact tests and replays.

`model.script` is a JSONL file, one line per task: {"task_id": "...", "actions": [...]}.
The k-th action requested for a task in a run (every request counts, in the order the run
makes them) gets actions[k], or the last action once they run out. The counters resume
from the actions a run already stored, so `--resume` continues where it stopped.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from workbench.errors import ConfigError
from workbench.models.base import ChatPrompt, Completion, Sampling


def load_script(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.script: file not found: {path}")
    script: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ConfigError(f"model.script {path}:{number}: not JSON ({error.args[0]})") from None
            if not isinstance(row, dict) or not isinstance(row.get("task_id"), str):
                raise ConfigError(f"model.script {path}:{number}: needs a string task_id")
            actions = row.get("actions")
            if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
                raise ConfigError(f"model.script {path}:{number}: actions must be a non-empty list of strings")
            script[row["task_id"]] = actions
    return script


class ScriptedGenerator:
    """Replays `model.script`; see the module docstring."""

    context_length = 1_000_000

    def __init__(self, script: str | Path, *, start_counts: dict[str, int] | None = None) -> None:
        self.name = f"scripted:{Path(script).name}"
        self.path = str(script)
        self.script = load_script(script)
        self.counts: dict[str, int] = dict(start_counts or {})
        self.lock = threading.Lock()

    def next_action(self, task: str) -> str:
        actions = self.script.get(task)
        if actions is None:
            raise ConfigError(f"model.script {self.path} has no line for task {task!r}")
        with self.lock:
            index = self.counts.get(task, 0)
            self.counts[task] = index + 1
        return actions[min(index, len(actions) - 1)]

    def generate(
        self,
        prompts: list[ChatPrompt],
        n: int,
        sampling: Sampling,
        *,
        tags: list[str] | None = None,
    ) -> list[list[Completion]]:
        if tags is None or len(tags) != len(prompts):
            raise ConfigError("the scripted backend needs the task of every prompt")
        results = []
        for task in tags:
            samples = []
            for _ in range(n):
                text = self.next_action(task)
                samples.append(Completion(text=text, tokens=len(text.split())))
            results.append(samples)
        return results

    def count_tokens(self, prompt: ChatPrompt) -> int:
        return sum(len(message["content"].split()) + 4 for message in prompt)

    def close(self) -> None:
        pass
