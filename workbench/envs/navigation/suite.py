"""`NavigationSuite` (registered as `navigation`) and `NavigationEnvironment`, the minigrid
wrapper; the package docstring has the whole picture.
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.envs.navigation.planner import first_expert_action, moves_only
from workbench.envs.navigation.reflect import reflect_template as grid_reflect_template
from workbench.envs.navigation.text import (
    AGENT_SYMBOLS,
    HEADINGS,
    Cell,
    action_outcome,
    describe_object,
    direction_words,
    goal_cells,
    goal_distance,
    hazard_at,
    hazard_words,
    map_bounds,
    place,
    relative_words,
    render_map,
    walk_distances,
)
from workbench.envs.seeded_tasks import seeded_tasks
from workbench.errors import EnvironmentSetupError
from workbench.prompts import NAVIGATION

ACTION_WORDS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
MOVE_WORDS = ("left", "right", "forward")  # all a Dynamic-Obstacles room has
ACTIONS_LINE = (
    "Actions: left, right (turn in place), forward (move one cell), pickup, drop, "
    "toggle (open a door), done."
)
MOVES_LINE = "Actions: left, right (turn in place), forward (move one cell)."
CRASH_RULE = "Moving forward into a wall or a ball ends the episode as a failure."
SUGGESTED_SUITES = (
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-FourRooms-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
)
# `pick up` and `forwards` are how models often spell two of the words; small models say
# "move one cell" or "go ahead" for forward (the actions line explains forward that way).
ACTION_PATTERN = re.compile(
    r"\b(left|right|forwards?|move|moves|moving|ahead|straight|pick[\s_-]?up|drop|toggle|done)\b", re.IGNORECASE
)
# Prefixes, so "moving" counts as forward too ("moving".startswith("move") is False).
FORWARD_SYNONYMS = ("forward", "mov", "ahead", "straight")

# Attributes of the minigrid env that a snapshot leaves out: spaces and the render
# window never change during an episode and the window cannot be copied.
NOT_SNAPSHOTTED = frozenset({"action_space", "observation_space", "window", "clock", "spec", "actions"})


def parse_action(text: str | None) -> str | None:
    """The first action word in the model's text (case-insensitive), or None."""
    match = ACTION_PATTERN.search(text or "")
    if match is None:
        return None
    word = match.group(1).lower()
    if word.startswith("pick"):
        return "pickup"
    return "forward" if word.startswith(FORWARD_SYNONYMS) else word


def make_minigrid(env_id: str) -> Any:
    """The unwrapped minigrid env for `env_id`.

    gymnasium.make resolves the id's registered arguments (size, start position ...);
    the wrappers it adds are dropped because their bookkeeping (order checks, step
    counters) would be more state to snapshot, and minigrid enforces its own step limit."""
    import gymnasium
    import minigrid  # noqa: F401  (importing registers the MiniGrid ids)

    if env_id not in gymnasium.registry:
        known = [name for name in gymnasium.registry if name.startswith(("MiniGrid-", "BabyAI-"))]
        close = difflib.get_close_matches(env_id, known, n=3)
        choices = list(dict.fromkeys([*close, *SUGGESTED_SUITES]))
        raise EnvironmentSetupError(
            f"navigation: unknown MiniGrid env id {env_id!r} (try one of: {', '.join(choices)})"
        )
    return gymnasium.make(env_id).unwrapped


class NavigationEnvironment:
    """One MiniGrid episode as text (the Environment protocol)."""

    def __init__(self, max_steps: int = 100, view: str = "map") -> None:
        self.max_steps = max_steps
        self.view = view
        """`map`: the grid drawn as text plus the words; `words`: the words only."""
        self.env_id: str | None = None
        self.minigrid: Any = None
        """The unwrapped minigrid env (the expert planner reads its state)."""
        self.task: Task | None = None
        self.goals: tuple[Cell, ...] = ()
        self.bounds = (0, 0, 0, 0)
        """The shown map's box in grid cells: text and feedback coordinates count from its corner."""
        self.steps = 0
        self.initial_distance: int | None = None
        self.distance: int | None = None
        self.score = 0.0
        self.over = False

    # -- protocol -------------------------------------------------------------------

    def reset(self, task: Task) -> str:
        env_id, seed = task_env_id(task), task_seed(task)
        self.use_env(env_id)
        self.minigrid.reset(seed=seed)
        self.task = task
        self.goals = goal_cells(self.minigrid.grid)
        if not self.goals:
            raise EnvironmentSetupError(
                f"navigation: {env_id} has no goal square, so there is no distance to report "
                f"(try one of: {', '.join(SUGGESTED_SUITES)})"
            )
        self.bounds = map_bounds(self.minigrid.grid)
        self.steps, self.score, self.over = 0, 0.0, False
        self.distance = self.initial_distance = self.current_distance()
        return self.render()

    def step(self, action: str) -> StepResult:
        if self.minigrid is None or self.task is None:
            raise RuntimeError("NavigationEnvironment.step called before reset")
        word = parse_action(action)
        if self.over:
            return self.failed_step("The episode is over; no action can change it.", counts=False)
        words = MOVE_WORDS if moves_only(self.minigrid) else ACTION_WORDS
        if word not in words:
            shown = " ".join(str(action or "").split())[:40]
            return self.failed_step(f"Unknown action {shown!r}; use one of: {', '.join(words)}.")
        before = self.front_view()
        _, reward, terminated, truncated, _ = self.minigrid.step(self.minigrid.actions[word])
        self.steps += 1
        previous, self.distance = self.distance, self.current_distance()
        reached = self.agent_cell() in self.goals
        collided = word == "forward" and self.agent_cell() == before["cell"]
        hazard = hazard_at(self.minigrid.grid, self.agent_cell())
        if word == "forward" and terminated and not reached and reward < 0 and not hazard:
            # Dynamic-Obstacles: a forward into a wall or a ball ends the episode as a failure
            # (the ball may have moved on by then, so what counts is what was ahead).
            hazard = before["type"] or "obstacle"
        self.score = 0.0 if hazard else completion_score(reached, self.distance, self.initial_distance)
        self.over = reached or bool(hazard) or terminated or truncated or self.steps >= self.max_steps
        sentence = self.outcome_sentence(word, before, previous, reached, hazard)
        feedback = self.feedback(word, previous, collided, reached)
        if collided:
            feedback["blocked_by"] = before["what"]
        if hazard:
            feedback["hazard"] = hazard
        return StepResult(f"{sentence}\n{self.render()}", feedback, self.score, self.over)

    def snapshot(self) -> dict[str, Any]:
        # A deep copy, taken in one call so objects shared inside the env (an obstacle in
        # both `grid` and `obstacles`, the carried key) stay shared in the copy. It holds
        # the grid with every door and key, agent_pos, agent_dir, carrying, step_count
        # and np_random, so the copy replays identical observations and transitions.
        state = {k: v for k, v in vars(self.minigrid).items() if k not in NOT_SNAPSHOTTED}
        counters = {k: getattr(self, k) for k in ("task", "goals", "bounds", "steps", "initial_distance",
                                                  "distance", "score", "over")}
        return {"env_id": self.env_id, "minigrid": copy.deepcopy(state), "counters": counters}

    def restore(self, state: dict[str, Any]) -> None:
        self.use_env(state["env_id"])
        # Copied again so one snapshot can be restored for every branch at a rollback point.
        vars(self.minigrid).update(copy.deepcopy(state["minigrid"]))
        for key, value in state["counters"].items():
            setattr(self, key, value)

    # -- state ----------------------------------------------------------------------

    def use_env(self, env_id: str) -> None:
        if self.env_id != env_id:
            self.minigrid = make_minigrid(env_id)
            self.env_id = env_id

    def agent_cell(self) -> Cell:
        return int(self.minigrid.agent_pos[0]), int(self.minigrid.agent_pos[1])

    def current_distance(self) -> int | None:
        return goal_distance(walk_distances(self.minigrid.grid, self.agent_cell()), self.goals)

    def front_view(self) -> dict[str, Any]:
        """What the action will act on, kept to word the outcome afterwards."""
        env = self.minigrid
        obj = env.grid.get(int(env.front_pos[0]), int(env.front_pos[1]))
        return {"cell": self.agent_cell(), "what": describe_object(obj), "type": obj.type if obj else None,
                "carrying": describe_object(env.carrying) if env.carrying else None}

    def feedback(self, word: str | None, previous: int | None, collided: bool, reached: bool) -> dict[str, Any]:
        carrying = self.minigrid.carrying
        return {
            "action": word,
            "distance": self.distance,
            "previous_distance": previous,
            "collided": collided,
            "reached": reached,
            "success": reached,
            "steps": self.steps,
            "position": self.shown(self.agent_cell()),
            "heading": HEADINGS[self.minigrid.agent_dir],
            "goal": self.shown(self.goals[0]),
            "carrying": describe_object(carrying) if carrying else None,
        }

    def shown(self, cell: Cell) -> list[int]:
        """[column, row] of a grid cell in the shown map, as the text states it."""
        return [cell[0] - self.bounds[0], cell[1] - self.bounds[1]]

    def failed_step(self, error: str, counts: bool = True) -> StepResult:
        """A turn whose text moved nothing: it still spends one step of the budget
        (`counts`), except after the episode is over, when there is no budget to spend."""
        self.steps += 1 if counts else 0
        self.over = self.over or self.steps >= self.max_steps
        reached = self.agent_cell() in self.goals
        feedback = self.feedback(None, self.distance, False, reached)
        feedback["error"] = error
        return StepResult(f"{error}\n{self.render()}", feedback, self.score, self.over)

    # -- text -----------------------------------------------------------------------

    def render(self) -> str:
        env = self.minigrid
        cell, heading = self.agent_cell(), int(env.agent_dir)
        bounds = self.bounds
        reachable = walk_distances(env.grid, cell)
        lines, legend = render_map(env.grid, cell, heading, reachable, bounds)
        # Besides the map, the cell ahead and the goal's direction in words: a small model
        # reads these far more easily than it counts rows and columns.
        front = env.grid.get(int(env.front_pos[0]), int(env.front_pos[1]))
        ahead = describe_object(front) if front is not None else "open floor"
        you = "You" if self.view == "words" else f"You ({AGENT_SYMBOLS[heading]})"
        where = (f"{you} are at {place(cell, bounds)}, facing {HEADINGS[heading]}. "
                 f"In front of you: {ahead}.")
        if env.carrying is not None:
            where += f" You carry {describe_object(env.carrying)}."
        hazard = hazard_at(env.grid, cell)
        if hazard:
            where += f" You are in the {hazard}."  # the map draws the agent over it
        if self.view == "words":
            # Only the words that can matter here: a small model picks up any word it is shown.
            if moves_only(env):
                actions = MOVES_LINE + " " + CRASH_RULE
            else:
                actions = ACTIONS_LINE if self.needs_objects() else MOVES_LINE
            return "\n".join([f"Mission: {env.mission}", where, self.goal_line(cell), actions])
        actions = f"{MOVES_LINE} {CRASH_RULE}" if moves_only(env) else ACTIONS_LINE
        return "\n".join([f"Mission: {env.mission}", *lines, "Legend: " + ", ".join(legend),
                          where, self.goal_line(cell), actions])

    def needs_objects(self) -> bool:
        """Whether the grid holds anything to pick up or open (else turning and moving do)."""
        grid = self.minigrid.grid
        return any(
            obj is not None and obj.type not in ("wall", "goal", "floor", "lava")
            for obj in grid.grid
        )

    def goal_line(self, cell: Cell) -> str:
        if self.distance == 0:
            return "You are on the goal (G)."
        line = f"The goal (G) is at {place(self.goals[0], self.bounds)}"
        if self.distance is None:
            return line + ", but no path reaches it."
        if self.view == "words":
            heading = int(self.minigrid.agent_dir)
            return f"The goal is {relative_words(cell, heading, self.goals[0])}, {self.distance} cells away."
        return f"{line}: {direction_words(cell, self.goals[0])} of you, {self.distance} cells away."

    def outcome_sentence(
        self, word: str, before: dict[str, Any], previous: int | None, reached: bool, hazard: str | None = None
    ) -> str:
        if reached:
            return "You reached the goal!"
        if hazard:
            return f"You {hazard_words(hazard)}. The episode is over: a failure, score 0."
        sentence = action_outcome(word, before, self.front_view(), self.agent_cell())
        if word == "forward" and self.agent_cell() != before["cell"]:
            sentence += f" Distance to goal: {self.distance} (was {previous})."
        elif self.distance is not None:
            sentence += f" Distance to goal: {self.distance}."
        if self.over:
            sentence += " The episode is over."
        return sentence


def completion_score(reached: bool, distance: int | None, initial_distance: int | None) -> float:
    """1 at the goal; otherwise up to 0.9 for the share of the initial distance covered."""
    if reached:
        return 1.0
    if distance is None or not initial_distance:
        return 0.0
    return round(max(0.0, 1.0 - distance / initial_distance) * 0.9, 4)


def task_env_id(task: Task) -> str:
    return str(task.spec.get("env_id") or task.name.rsplit("/", 1)[0])


def task_seed(task: Task) -> int:
    seed = task.spec.get("seed")
    return int(seed if seed is not None else task.name.rsplit("/", 1)[1])


@register_suite("navigation")
class NavigationSuite(Suite):
    """MiniGrid tasks: one env id (`env.suite`), one task per seed."""

    default_prompts = NAVIGATION
    supports_snapshot = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.env_id = config.suite
        # Fail now, not mid-run: an unknown id, or an env with no goal to measure to.
        NavigationEnvironment(config.max_steps, getattr(config, "view", "map")).reset(Task(f"{self.env_id}/0", {"env_id": self.env_id, "seed": 0}))

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        return seeded_tasks("navigation", self.env_id, self.config.tasks if selection is None else selection)

    def new_environment(self) -> NavigationEnvironment:
        return NavigationEnvironment(self.config.max_steps, getattr(self.config, "view", "map"))

    def expert_action(self, env: NavigationEnvironment) -> str:
        """The next action of a shortest plan from `env`'s current state.

        `done` when the agent already stands on the goal or no plan reaches it."""
        return first_expert_action(env.minigrid) or "done"

    def start_state(self, task: Task) -> tuple:
        """What an episode of `task` starts from: the layout (every cell's object, colour and
        state), the agent's cell and its heading. Two seeds with the same start state are the
        same task to a policy, so a test seed counts as held out only if its start state
        differs from every training and validation seed's (`workbench/splits.py`)."""
        if getattr(self, "_start_env", None) is None:
            self._start_env = self.new_environment()  # one env for every seed: resets are cheap, makes are not
        env = self._start_env
        env.reset(task)
        grid = env.minigrid
        return (task_env_id(task), grid.grid.encode().tobytes(), env.agent_cell(), int(grid.agent_dir))

    def canonical_solution(self, task: Task) -> str | None:
        # A navigation task's answer is a sequence of actions found by `expert_action`.
        return None

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int]:
        """An experience note from the distance and collision history, and the rollback depth."""
        return grid_reflect_template(steps)
