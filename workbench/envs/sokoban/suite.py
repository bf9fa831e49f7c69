"""`SokobanSuite` (registered as `sokoban`) and `SokobanEnvironment`; the package docstring
has the whole picture.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.envs.sokoban.levels import (
    MOVES,
    Cell,
    Level,
    generate,
    parse_xsb,
    read_level_file,
    solve,
    step_cell,
)
from workbench.envs.sokoban.reflect import reflect_template as sokoban_reflect_template
from workbench.errors import EnvironmentSetupError

PRESETS = {"small": (6, 6, 1, 1), "medium": (7, 7, 2, 4), "large": (8, 8, 3, 6)}
"""Room presets: rows and columns (walls included), boxes, and the fewest pushes a room needs."""
SIZE_PATTERN = re.compile(r"^(\d+)x(\d+)-(\d+)$")
LEVEL_FILE_SUFFIXES = (".xsb", ".sok", ".txt")
HAZARD = "a box stuck in a corner"
LEGEND = "Legend: # wall, - floor, @ you, $ box, . goal, * box on a goal, + you on a goal."
ACTIONS_LINE = "Actions: up, down, left, right (move one cell; walking into a box pushes it)."
ACTION_PATTERN = re.compile(r"\b(up|down|left|right|north|south|west|east)\b", re.IGNORECASE)
COMPASS = {"north": "up", "south": "down", "west": "left", "east": "right"}

SOKOBAN_PROMPTS = {
    "system": (
        "You move a worker in a Sokoban puzzle: push every box ($) onto a goal (.). "
        "Answer with exactly one move: up, down, left or right."
    ),
    "first_turn": "{observation}\nWhich move do you make: up, down, left or right?",
    "next_turn": "{observation}\nSteps left: {steps_left}. Which move do you make: up, down, left or right?",
    "note": "{turn}\n\nA note from an earlier attempt at this point: {note}",
}


def parse_move(text: str | None) -> str | None:
    """The first move word in the model's text (compass words too), or None."""
    match = ACTION_PATTERN.search(text or "")
    if match is None:
        return None
    word = match.group(1).lower()
    return COMPASS.get(word, word)


def place(cell: Cell) -> str:
    return f"row {cell[0]}, column {cell[1]}"


def offset_words(source: Cell, target: Cell) -> str:
    """`2 down and 1 left` from `source` to `target`."""
    parts = []
    if target[0] != source[0]:
        parts.append(f"{abs(target[0] - source[0])} {'down' if target[0] > source[0] else 'up'}")
    if target[1] != source[1]:
        parts.append(f"{abs(target[1] - source[1])} {'right' if target[1] > source[1] else 'left'}")
    return " and ".join(parts) or "here"


def nearest(cell: Cell, cells: frozenset[Cell]) -> Cell:
    return min(sorted(cells), key=lambda other: abs(other[0] - cell[0]) + abs(other[1] - cell[1]))


class SokobanEnvironment:
    """One Sokoban episode as text (the Environment protocol)."""

    def __init__(self, max_steps: int = 100) -> None:
        self.max_steps = max_steps
        self.level: Level | None = None
        self.walls: frozenset[Cell] = frozenset()
        self.boxes: frozenset[Cell] = frozenset()
        self.player: Cell = (0, 0)
        self.steps = 0
        self.score = 0.0
        self.over = False
        self.stuck: Cell | None = None
        """The box that a push left in a dead corner, once one did."""
        self.plan: dict[tuple, str] = {}
        """The expert's next move from each state of its last solution (solving once per detour)."""

    # -- protocol -------------------------------------------------------------------

    def reset(self, task: Task) -> str:
        self.level, self.walls = level_of(task)
        self.boxes, self.player = self.level.boxes, self.level.player
        self.steps, self.score, self.over, self.stuck = 0, 0.0, False, None
        self.plan = {}
        return self.render()

    def step(self, action: str) -> StepResult:
        if self.level is None:
            raise RuntimeError("SokobanEnvironment.step called before reset")
        if self.over:
            return self.failed_step("The episode is over; no move can change it.", counts=False)
        move = parse_move(action)
        if move is None:
            shown = " ".join(str(action or "").split())[:40]
            return self.failed_step(f"Unknown action {shown!r}; use one of: {', '.join(MOVES)}.")
        self.steps += 1
        before_on_goals = self.on_goals()
        target = step_cell(self.player, move)
        feedback: dict[str, Any] = {"action": move, "moved": False, "pushed": False}
        if target not in self.level.floor:
            feedback["blocked_by"] = "a wall"
            sentence = f"Blocked by a wall: you did not move {move}."
        elif target in self.boxes:
            beyond = step_cell(target, move)
            if beyond not in self.level.floor or beyond in self.boxes:
                feedback["blocked_by"] = "a box that cannot move"
                behind = "a wall" if beyond not in self.level.floor else "another box"
                sentence = f"Blocked: the box {move} of you cannot move, {behind} is behind it."
            else:
                self.boxes = (self.boxes - {target}) | {beyond}
                self.player = target
                feedback.update(moved=True, pushed=True, box=list(beyond))
                sentence = self.push_sentence(move, beyond, before_on_goals)
                if self.level.is_dead_corner(beyond):
                    self.stuck = beyond
        else:
            self.player = target
            feedback["moved"] = True
            sentence = f"You moved {move}."
        solved = self.boxes == self.level.goals
        self.score = 0.0 if self.stuck else round(self.on_goals() / len(self.level.goals), 4)
        self.over = solved or self.stuck is not None or self.steps >= self.max_steps
        if self.stuck is not None and feedback["pushed"]:
            feedback.update(hazard=HAZARD, stuck_box=list(self.stuck))
            sentence = (f"You pushed a box into the corner at {place(self.stuck)}, where no goal is: it can "
                        "never move again, so the level cannot be solved. The episode is over: a failure, score 0.")
        elif solved:
            sentence += " Every box is on a goal: solved!"
        elif self.over:
            sentence += " The episode is over."
        feedback.update(self.state_feedback(solved))
        return StepResult(f"{sentence}\n{self.render()}", feedback, self.score, self.over)

    def snapshot(self) -> dict[str, Any]:
        # Every field is immutable (frozensets, tuples, numbers), so a shallow copy is exact.
        return {key: getattr(self, key) for key in ("level", "walls", "boxes", "player", "steps", "score",
                                                    "over", "stuck", "max_steps")}

    def restore(self, state: dict[str, Any]) -> None:
        if state["level"] is not self.level:
            self.plan = {}  # the expert's plan was for another level
        for key, value in state.items():
            setattr(self, key, value)

    # -- state and text -------------------------------------------------------------

    def on_goals(self) -> int:
        assert self.level is not None
        return len(self.boxes & self.level.goals)

    def state_feedback(self, solved: bool) -> dict[str, Any]:
        assert self.level is not None
        return {"boxes_on_goals": self.on_goals(), "boxes": len(self.level.goals), "success": solved,
                "steps": self.steps, "position": list(self.player)}

    def push_sentence(self, move: str, box: Cell, before_on_goals: int) -> str:
        assert self.level is not None
        total = len(self.level.goals)
        if box in self.level.goals:
            return f"You pushed a box {move} onto a goal: {self.on_goals()} of {total} boxes on goals."
        if self.on_goals() < before_on_goals:
            return f"You pushed a box {move} off its goal: {self.on_goals()} of {total} boxes on goals."
        return f"You pushed a box {move}."

    def failed_step(self, error: str, counts: bool = True) -> StepResult:
        """A turn that moved nothing: it spends one step of the budget unless the episode is over."""
        self.steps += 1 if counts else 0
        self.over = self.over or self.steps >= self.max_steps
        feedback = {"action": None, "moved": False, "pushed": False, "error": error,
                    **self.state_feedback(self.level is not None and self.boxes == self.level.goals)}
        return StepResult(f"{error}\n{self.render()}", feedback, self.score, self.over)

    def render(self) -> str:
        assert self.level is not None
        level = self.level
        lines = [*level.text_rows(self.boxes, self.player, self.walls), LEGEND,
                 f"You (@) are at {place(self.player)}. Boxes on goals: {self.on_goals()} of {len(level.goals)}."]
        # Where each loose box stands against its nearest free goal, in words: a small model
        # reads this far more easily than it counts characters.
        free_goals = level.goals - self.boxes
        for box in sorted(self.boxes - level.goals):
            goal = nearest(box, free_goals) if free_goals else None
            if goal is not None:
                lines.append(f"Box at {place(box)}: the nearest free goal is {offset_words(box, goal)} of it, "
                             f"at {place(goal)}.")
        lines.append(ACTIONS_LINE)
        return "\n".join(lines)

    def expert_move(self) -> str | None:
        """The first move of a fewest-pushes solution from here; None when none is found."""
        if self.level is None or self.over:
            return None
        state = (self.boxes, self.player)
        if state not in self.plan:
            solution = solve(self.level, self.boxes, self.player)
            self.plan = plan_states(self.boxes, self.player, solution.moves) if solution is not None else {}
        return self.plan.get(state)


def plan_states(boxes: frozenset[Cell], player: Cell, moves: tuple[str, ...]) -> dict[tuple, str]:
    """Each state along a solution with its next move, so following the expert solves once."""
    plan = {}
    for move in moves:
        plan[(boxes, player)] = move
        target = step_cell(player, move)
        if target in boxes:
            boxes = (boxes - {target}) | {step_cell(target, move)}
        player = target
    return plan


# -- tasks ------------------------------------------------------------------------------


def level_of(task: Task) -> tuple[Level, frozenset[Cell]]:
    """The level a task names: its XSB text, or its room size and seed."""
    spec = task.spec
    if "xsb" in spec:
        return parse_xsb(spec["xsb"])
    rows, columns, boxes, min_pushes = spec["size"]
    return generate(rows, columns, boxes, int(spec["seed"]), min_pushes)


def room_size(suite: str) -> tuple[int, int, int, int] | None:
    """(rows, columns, boxes, fewest pushes) for a preset or `ROWSxCOLUMNS-BOXES`; None otherwise."""
    if suite in PRESETS:
        return PRESETS[suite]
    match = SIZE_PATTERN.match(suite)
    if match is None:
        return None
    rows, columns, boxes = (int(group) for group in match.groups())
    if rows < 4 or columns < 4 or boxes < 1 or (rows - 2) * (columns - 2) < 2 * boxes + 2:
        raise EnvironmentSetupError(
            f"sokoban: room {suite!r} is too small: it needs at least 4x4 cells and room for {boxes} boxes to move"
        )
    if rows * columns > 144 or boxes > 4:
        raise EnvironmentSetupError(f"sokoban: room {suite!r} is too large to generate (at most 12x12 cells, 4 boxes)")
    return rows, columns, boxes, 2 * boxes


@register_suite("sokoban")
class SokobanSuite(Suite):
    """Sokoban tasks: generated rooms by seed, or the levels of an XSB file."""

    default_prompts = SOKOBAN_PROMPTS
    supports_snapshot = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        suite = config.suite
        self.size = room_size(suite)
        self.file_levels: list[tuple[str, str]] = []
        if self.size is not None:
            self.prefix = f"sokoban-{suite}"
            return
        if not suite.endswith(LEVEL_FILE_SUFFIXES):
            raise EnvironmentSetupError(
                f"sokoban: env.suite {suite!r} is not a room size (small, medium, large, or ROWSxCOLUMNS-BOXES "
                f"such as 7x7-2) nor a level file ({', '.join(LEVEL_FILE_SUFFIXES)})"
            )
        path = Path(suite)
        if not path.is_file():
            raise EnvironmentSetupError(f"sokoban: level file not found: {suite}")
        try:
            self.file_levels = read_level_file(path)
        except (OSError, UnicodeDecodeError) as error:
            raise EnvironmentSetupError(f"sokoban: cannot read level file {suite}: {error}") from None
        if not self.file_levels:
            raise EnvironmentSetupError(f"sokoban: {suite} holds no level (rows of #, @, $, . and the like)")
        self.prefix = path.name

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        if selection is None:
            selection = self.config.tasks
        if isinstance(selection, bool) or not isinstance(selection, int | list):
            raise EnvironmentSetupError(f"sokoban: env.tasks must be a count or a list of seeds, got {selection!r}")
        first = 0 if self.size is not None else 1
        if isinstance(selection, int):
            if selection < 1:
                raise EnvironmentSetupError(f"sokoban: env.tasks must be at least 1, got {selection}")
            numbers = list(range(first, first + selection))
        else:
            numbers = [self.number_of(item) for item in selection]
        return [self.task(number) for number in numbers]

    def number_of(self, item: str | int) -> int:
        """A seed (or level number) from `7`, `"7"` or `"PREFIX/7"`."""
        text = str(item).strip()
        what = "seed" if self.size is not None else "level number"
        if isinstance(item, str) and "/" in text:
            prefix, _, text = text.rpartition("/")
            if prefix != self.prefix:
                raise EnvironmentSetupError(f"sokoban: task {item!r} is not from the suite {self.prefix!r}")
        if isinstance(item, bool) or not text.isdigit():
            raise EnvironmentSetupError(f"sokoban: task {item!r} is not a {what} (a whole number, or {self.prefix}/N)")
        return int(text)

    def task(self, number: int) -> Task:
        name = f"{self.prefix}/{number}"
        if self.size is not None:
            return Task(name, {"size": list(self.size), "seed": number})
        if not 1 <= number <= len(self.file_levels):
            raise EnvironmentSetupError(
                f"sokoban: unknown task {name!r}: {self.config.suite} holds levels 1 to {len(self.file_levels)}"
            )
        title, text = self.file_levels[number - 1]
        try:
            parse_xsb(text)
        except ValueError as error:
            raise EnvironmentSetupError(f"sokoban: level {number} of {self.config.suite} is not playable: {error}") from None
        return Task(name, {"xsb": text, "title": title, "level": number})

    def new_environment(self) -> SokobanEnvironment:
        return SokobanEnvironment(self.config.max_steps)

    def expert_action(self, env: SokobanEnvironment) -> str | None:
        """The solver's next move from `env`'s state (None when no solution is found)."""
        return env.expert_move()

    def reflect_template(self, steps: list[dict[str, Any]]) -> tuple[str, int]:
        """An experience note from the pushes, walls and hazard of the steps, and the rollback depth."""
        return sokoban_reflect_template(steps)
