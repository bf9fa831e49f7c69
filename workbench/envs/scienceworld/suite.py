"""`ScienceWorldSuite` (registered as `scienceworld`) and `ScienceWorldEnvironment`; the
package docstring has the whole picture.
"""

from __future__ import annotations

import difflib
import re
import threading
from dataclasses import dataclass
from typing import Any

from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.envs.scienceworld.jvm import java_executable, new_simulator, task_names_by_id
from workbench.envs.scienceworld.notes import reflect_template as scienceworld_reflect_template
from workbench.errors import EnvironmentSetupError

SPLITS = ("train", "dev", "test")
NOT_UNDERSTOOD = "No known action matches that input."
MAX_COMMAND_CHARS = 200
VALID_ACTIONS_CHARS = 1500
"""How much of an observation the valid commands may take (about 400 tokens): a room holds
hundreds to thousands of valid commands, most of them `connect X to Y` or `mix X`."""
VERB_ORDER = (
    "look around", "inventory", "task", "open", "go to", "pick up", "focus on", "move", "activate",
    "deactivate", "use", "pour", "look at", "look in", "read", "close", "put down", "wait",
)
"""The commands ScienceWorld's tasks are mostly solved with, shown first when the list is cut;
the rest follow, shortest first. `reset task` restarts the world and is never offered."""
EXAMPLE_COMMANDS = (
    "look around, open door to kitchen, go to kitchen, pick up thermometer, "
    "focus on water, move metal pot to stove, activate stove, wait1"
)

SCIENCEWORLD_PROMPTS = {
    "system": (
        "You are an agent in ScienceWorld, a text simulator of science experiments. Answer with "
        f"exactly one command, such as: {EXAMPLE_COMMANDS}. Focus only on what the task names: "
        "focusing on anything else fails the task."
    ),
    "first_turn": "{observation}\nWhich command do you type?",
    "next_turn": "{observation}\nSteps left: {steps_left}. Which command do you type?",
    "note": "{turn}\n\nA note from an earlier attempt at this point: {note}",
}

FENCE = re.compile(r"^```\w*$")
PREFIX = re.compile(r"^(?:[>*\-]\s*|(?:action|command|next action|answer)\s*:\s*)+", re.IGNORECASE)


def parse_command(text: str | None) -> str:
    """The command in a model's answer: its first line that is not a code fence, without a
    leading `Action:` or `>`, quotes, backticks or a final full stop, lower-case; '' for none."""
    for raw in str(text or "").splitlines():
        line = raw.strip()
        if not line or FENCE.match(line):
            continue
        line = PREFIX.sub("", line).strip().strip("`\"'").strip()
        line = line.rstrip(".").strip()
        if line:
            return " ".join(line.lower().split())[:MAX_COMMAND_CHARS]
    return ""


@dataclass(frozen=True)
class Variations:
    """What ScienceWorld says about one task's variations."""

    task: str
    count: int
    splits: dict[str, tuple[int, ...]]

    def split_of(self, variation: int) -> str:
        return next((name for name, members in self.splits.items() if variation in members), "")


VARIATIONS: dict[str, Variations] = {}
"""Per task name, read from the simulator once per process (loading a task takes ~0.5 s)."""


def variations_of(task: str) -> Variations:
    if task not in VARIATIONS:
        simulator = new_simulator()
        simulator.load(task, 0, "", False)
        VARIATIONS[task] = Variations(
            task, int(simulator.getTaskMaxVariations(task)),
            {"train": tuple(simulator.getVariationsTrain()), "dev": tuple(simulator.getVariationsDev()),
             "test": tuple(simulator.getVariationsTest())},
        )
    return VARIATIONS[task]


def resolve_task_name(suite: str) -> str:
    """ScienceWorld's task name for `suite` (a name or an id such as `4-4`), or one clear line."""
    by_id = task_names_by_id()
    names = list(by_id.values())
    text = str(suite).strip()
    if text in names:
        return text
    if text in by_id:
        return by_id[text]
    close = difflib.get_close_matches(text, names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise EnvironmentSetupError(
        f"scienceworld: unknown task {suite!r} in env.suite ({hint}known: {', '.join(names)})"
    )


class ScienceWorldEnvironment:
    """One ScienceWorld episode (the Environment protocol): one world in the shared JVM."""

    def __init__(self, max_steps: int = 100, show_valid_actions: bool = False) -> None:
        self.max_steps = max_steps
        self.show_valid_actions = show_valid_actions
        self.simulator: Any = None
        self.loaded: tuple[str, int] | None = None
        """The (task, variation) the simulator holds, so a reset of the same one skips loading."""
        self.task: Task | None = None
        self.commands: list[str] = []
        """The commands typed this episode, in order (the expert compares them with its own)."""
        self.score = 0.0
        self.over = False

    def reset(self, task: Task) -> str:
        name, variation = task_name(task), task_variation(task)
        if self.simulator is None:
            self.simulator = new_simulator()
        if self.loaded == (name, variation):
            self.simulator.reset()
        else:
            self.simulator.load(name, variation, "", False)
            self.loaded = (name, variation)
        self.task, self.commands, self.score, self.over = task, [], 0.0, False
        # As ScienceWorld's own reset does: the first observation is a `look around`.
        look = str(self.simulator.step("look around"))
        return self.with_valid_actions(f"Task: {self.simulator.getTaskDescription()}\n{look}")

    def step(self, action: str) -> StepResult:
        if self.simulator is None or self.task is None:
            raise RuntimeError("ScienceWorldEnvironment.step called before reset")
        command = parse_command(action)
        if self.over:
            return self.failed_step(command, "The episode is over; no command can change it.", counts=False)
        if not command:
            return self.failed_step(command, f"No command in the answer; type one, such as: {EXAMPLE_COMMANDS}.")
        observation = str(self.simulator.step(command))
        self.commands.append(command)
        raw = float(self.simulator.getScore())
        failed = raw < 0
        previous, self.score = self.score, 0.0 if failed else min(1.0, raw)
        success = not failed and raw >= 0.999
        understood = observation.strip() != NOT_UNDERSTOOD
        self.over = success or failed or bool(self.simulator.getCompleted()) or len(self.commands) >= self.max_steps
        feedback = self.feedback(command, previous, success)
        feedback |= {"understood": understood, "failed": failed}
        if failed:
            feedback["error"] = f"{command!r} failed the task (ScienceWorld's score fell below 0)"
        elif not understood:
            feedback["error"] = f"ScienceWorld understood no command in {command!r}"
        return StepResult(self.with_valid_actions(f"{observation}\n{self.score_line(feedback)}"),
                          feedback, self.score, self.over)

    def close(self) -> None:
        # py4j frees the world in the JVM once nothing in Python refers to it.
        self.simulator, self.loaded = None, None

    # -- text and feedback ---------------------------------------------------------------

    def feedback(self, command: str, previous: float, success: bool) -> dict[str, Any]:
        return {
            "action": command,
            "score": round(self.score, 4),
            "score_change": round(self.score - previous, 4),
            "success": success,
            "steps": len(self.commands),
        }

    def failed_step(self, command: str, error: str, counts: bool = True) -> StepResult:
        """A turn that reached no simulator: it still spends a step of the budget (`counts`),
        except after the episode is over, when there is no budget to spend."""
        if counts:
            self.commands.append(command)
            self.over = self.over or len(self.commands) >= self.max_steps
        feedback = self.feedback(command, self.score, False) | {"understood": False, "failed": False, "error": error}
        return StepResult(f"{error}\n{self.score_line(feedback)}", feedback, self.score, self.over)

    def score_line(self, feedback: dict[str, Any]) -> str:
        change = feedback["score_change"]
        moved = f"up {change:.2f}" if change > 0 else ("down to 0" if change < 0 else "no change")
        line = f"Score: {self.score:.2f} ({moved})."
        if feedback.get("failed"):
            line += " The task failed: the episode is over."
        elif feedback["success"]:
            line += " The task is complete!"
        elif self.over:
            line += " The episode is over."
        return line

    def with_valid_actions(self, text: str) -> str:
        if not self.show_valid_actions or self.over:
            return text
        return f"{text}\n{valid_actions_line(list(self.simulator.getValidActionObjectCombinations()))}"


def valid_actions_line(actions: list[str]) -> str:
    """The shortest valid commands that fit in VALID_ACTIONS_CHARS, and how many were left out."""
    unique = sorted(set(map(str, actions)) - {"reset task"}, key=valid_action_rank)
    shown: list[str] = []
    used = 0
    for command in unique:
        if used + len(command) + 2 > VALID_ACTIONS_CHARS:
            break
        shown.append(command)
        used += len(command) + 2
    left = len(unique) - len(shown)
    more = f" (and {left} more)" if left else ""
    return f"Valid commands{more}: {'; '.join(shown)}"


def valid_action_rank(command: str) -> tuple[int, int, str]:
    verb = next((rank for rank, verb in enumerate(VERB_ORDER) if command.startswith(verb)), len(VERB_ORDER))
    return verb, len(command.split()), command


def task_name(task: Task) -> str:
    return str(task.spec.get("task") or task.name.rsplit("/", 1)[0])


def task_variation(task: Task) -> int:
    variation = task.spec.get("variation")
    return int(variation if variation is not None else task.name.rsplit("/", 1)[1])


@register_suite("scienceworld")
class ScienceWorldSuite(Suite):
    """One ScienceWorld task (`env.suite`); its tasks are the task's variations."""

    default_prompts = SCIENCEWORLD_PROMPTS
    supports_snapshot = False  # ScienceWorld has no save/load: rewound by replaying commands

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        # Fail now, in one line, and before a JVM starts: the package, the name, Java.
        self.task = resolve_task_name(config.suite)
        java_executable()
        self.gold: dict[int, list[str]] = {}
        self.gold_lock = threading.Lock()

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        if selection is None:
            selection = self.config.tasks
        variations = variations_of(self.task)
        if isinstance(selection, bool) or not isinstance(selection, int | list):
            raise EnvironmentSetupError(
                f"scienceworld: env.tasks must be a count or a list of variations or splits, got {selection!r}"
            )
        chosen: list[int] = []
        items = [f"train:{selection}"] if isinstance(selection, int) else selection
        for item in items:
            for variation in self.variations_named(item, variations):
                if variation in chosen:
                    raise EnvironmentSetupError(
                        f"scienceworld: task '{self.task}/{variation}' is selected twice (as {item!r}); give each once"
                    )
                chosen.append(variation)
        return [self.task_for(variation, variations) for variation in chosen]

    def task_for(self, variation: int, variations: Variations) -> Task:
        return Task(f"{self.task}/{variation}",
                    {"task": self.task, "variation": variation, "split": variations.split_of(variation)})

    def variations_named(self, item: str | int, variations: Variations) -> list[int]:
        """The variations one entry of `env.tasks` names: `3`, `"boil/3"`, `"test"` or `"test:5"`."""
        text = str(item).strip()
        split, _, count = text.partition(":")
        if not isinstance(item, bool) and split in SPLITS:
            members = variations.splits[split]
            if not count:
                return list(members)
            if not count.isdigit() or int(count) < 1:
                raise EnvironmentSetupError(f"scienceworld: {item!r} in env.tasks: write {split}:N with N 1 or more")
            if int(count) > len(members):
                raise EnvironmentSetupError(
                    f"scienceworld: {item!r} asks for {count} {split} variations of {self.task}, "
                    f"which has {len(members)} ({split_summary(variations)})"
                )
            return list(members[: int(count)])
        if isinstance(item, str) and "/" in text:
            name, _, text = text.rpartition("/")
            if name != self.task:
                raise EnvironmentSetupError(f"scienceworld: task {item!r} is not from the suite {self.task!r}")
        if isinstance(item, bool) or not text.isdigit():
            raise EnvironmentSetupError(
                f"scienceworld: task {item!r} is not a variation (a whole number, {self.task}/N, or a split: "
                f"train, dev, test, or SPLIT:N)"
            )
        if int(text) >= variations.count:
            raise EnvironmentSetupError(
                f"scienceworld: {self.task} has no variation {text} (it has 0..{variations.count - 1}: "
                f"{split_summary(variations)})"
            )
        return [int(text)]

    def new_environment(self) -> ScienceWorldEnvironment:
        return ScienceWorldEnvironment(self.config.max_steps, getattr(self.config, "show_valid_actions", False))

    def close_environment(self, env: ScienceWorldEnvironment) -> None:
        env.close()

    def expert_action(self, env: ScienceWorldEnvironment) -> str | None:
        """The next command of ScienceWorld's gold sequence, while `env` has followed it so
        far; None off the gold path or past its end."""
        if env.task is None:
            return None
        gold = self.gold_commands(task_variation(env.task))
        done = len(env.commands)
        if done >= len(gold) or env.commands != gold[:done]:
            return None
        return gold[done]

    def gold_commands(self, variation: int) -> list[str]:
        with self.gold_lock:
            if variation not in self.gold:
                # Generating the gold path takes ~0.5 s a variation, so only the expert asks for it.
                simulator = new_simulator()
                simulator.load(self.task, variation, "", True)
                self.gold[variation] = [parse_command(command) for command in simulator.getGoldActionSequence()]
            return self.gold[variation]

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int]:
        """A note from the score history: the command that failed the task, the first one not
        understood, or where the score stopped rising; and the step to redo."""
        return scienceworld_reflect_template(steps)


def split_summary(variations: Variations) -> str:
    return ", ".join(f"{len(members)} {name}" for name, members in variations.splits.items())
