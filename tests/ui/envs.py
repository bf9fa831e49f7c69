"""Environments for the UI tests whose steps the test releases, so a test can look at a
run in the middle (`env.kind = "tests.ui.envs:GatedGuessEnvironment"`) without relying
on how fast anything is.

Step k of every episode waits until the test calls `gate.release(k)` (or `gate.open()`
for all of them). The `gated` fixture in conftest.py installs a fresh gate per test and
opens it at the end, so a failing test never leaves a run's worker waiting.
"""

from __future__ import annotations

import threading

from tests.fixtures.guess_env import GuessEnvironment
from tests.ui import hostile_store as hostile
from workbench.envs.base import Task

GATE_TIMEOUT_S = 60.0  # a forgotten release ends as a failed step, not a hung test


class StepGate:
    """One event per step number; `reached(k)` says a step k is waiting or has passed."""

    def __init__(self, timeout: float = GATE_TIMEOUT_S) -> None:
        self.timeout = timeout
        self.lock = threading.Lock()
        self.events: dict[int, threading.Event] = {}
        self.arrivals: dict[int, int] = {}
        self.opened = False

    def event(self, step: int) -> threading.Event:
        with self.lock:
            event = self.events.setdefault(step, threading.Event())
            if self.opened:
                event.set()
            return event

    def release(self, step: int) -> None:
        """Let every episode take its step number `step`."""
        self.event(step).set()

    def open(self) -> None:
        """Let every step through, now and later."""
        with self.lock:
            self.opened = True
            events = list(self.events.values())
        for event in events:
            event.set()

    def reached(self, step: int) -> int:
        """How many episodes have asked to take step `step` so far."""
        with self.lock:
            return self.arrivals.get(step, 0)

    def wait(self, step: int) -> None:
        with self.lock:
            self.arrivals[step] = self.arrivals.get(step, 0) + 1
        if not self.event(step).wait(self.timeout):
            raise TimeoutError(f"the test never released step {step}")


class GatedGuessEnvironment(GuessEnvironment):
    """The guessing game (secrets 3, 7, 5, ...) whose every step waits for the test."""

    gate = StepGate()

    def step(self, action: str):
        self.gate.wait(self.steps + 1)
        return super().step(action)


class HostileGuessEnvironment(GuessEnvironment):
    """The guessing game as an attacker would write it (`tests.ui.hostile_store` spells
    the payloads): task names, the prompt, observations and feedback carry escape sequences
    and markup, and with `env.suite = "raise"` every reset raises an exception whose
    message carries them too, so the run fails with it."""

    @classmethod
    def load_tasks(cls, suite: str, selection) -> list[Task]:
        return [Task(name=f"evil{hostile.CLEAR}/{task.name.split('/')[-1]}",
                     spec={**task.spec, "raise": suite == "raise"})
                for task in GuessEnvironment.load_tasks("", selection)]

    def reset(self, task: Task) -> str:
        if task.spec.get("raise"):
            raise ValueError(f"bad task {hostile.OSC_52}{hostile.CLICK}")
        super().reset(task)
        return f"Guess a number. {hostile.OSC_TITLE}{hostile.LINK}"

    def step(self, action: str):
        result = super().step(action)
        return result._replace(observation=f"{result.observation} {hostile.OSC_52}{hostile.CLICK}",
                               feedback={**result.feedback, "hint": hostile.BOLD})
