"""Sokoban levels: reading XSB text, generating small rooms from a seed, and solving.

A level is its floor (the cells the worker can ever stand on), its goals, and a state:
the boxes and the worker. Cells are (row, column), counted from 0 at the top left of the
drawn level, walls included.

Generated rooms are built backwards from a solved state: boxes start on their goals and
the worker walks about at random, sometimes pulling a box behind it. Every pull undone is
a push, so a generated level is always solvable; the solver then checks it needs enough
pushes to be a puzzle. The solver searches over pushes (worker positions that reach each
other count as one state), which keeps small rooms to a few thousand states.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path

Cell = tuple[int, int]
MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
LEVEL_CHARACTERS = set("#@+$*.-_ ")
SOLVER_STATE_LIMIT = 200_000
"""Push states the solver visits before giving up (a big level from a file may need more)."""


def step_cell(cell: Cell, move: str) -> Cell:
    delta = MOVES[move]
    return cell[0] + delta[0], cell[1] + delta[1]


@dataclass(frozen=True)
class Level:
    """A level's fixed parts and its starting state."""

    rows: int
    columns: int
    floor: frozenset[Cell]
    """Cells the worker can reach, ignoring boxes: everything else acts as a wall."""
    goals: frozenset[Cell]
    boxes: frozenset[Cell]
    player: Cell

    def is_dead_corner(self, cell: Cell) -> bool:
        """A box here can never move again: a non-goal cell with walls on two sides at a right angle."""
        if cell in self.goals:
            return False
        row, column = cell
        vertical = (row - 1, column) not in self.floor or (row + 1, column) not in self.floor
        horizontal = (row, column - 1) not in self.floor or (row, column + 1) not in self.floor
        return vertical and horizontal

    def text_rows(self, boxes: frozenset[Cell], player: Cell, walls: frozenset[Cell]) -> list[str]:
        """The level drawn in XSB characters, with `-` for floor (spaces are hard to count)."""
        lines = []
        for row in range(self.rows):
            line = []
            for column in range(self.columns):
                cell = (row, column)
                if cell == player:
                    line.append("+" if cell in self.goals else "@")
                elif cell in boxes:
                    line.append("*" if cell in self.goals else "$")
                elif cell in self.goals:
                    line.append(".")
                elif cell in self.floor:
                    line.append("-")
                else:
                    line.append("#" if cell in walls else " ")
            lines.append("".join(line).rstrip())
        return lines


def flood(start: Cell, open_cells: set[Cell] | frozenset[Cell]) -> set[Cell]:
    """Every cell of `open_cells` reachable from `start` in steps of one cell."""
    seen, queue = {start}, deque([start])
    while queue:
        cell = queue.popleft()
        for move in MOVES:
            near = step_cell(cell, move)
            if near in open_cells and near not in seen:
                seen.add(near)
                queue.append(near)
    return seen


# -- XSB text -------------------------------------------------------------------------


def parse_xsb(text: str) -> tuple[Level, frozenset[Cell]]:
    """A level and its wall cells from XSB rows (`#` wall, `@` worker, `$` box, `.` goal,
    `*` box on goal, `+` worker on goal, space, `-` or `_` floor); ValueError says what is wrong."""
    rows = [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]
    walls, goals, boxes, players, open_cells = set(), set(), set(), [], set()
    for row, line in enumerate(rows):
        for column, char in enumerate(line):
            cell = (row, column)
            if char not in LEVEL_CHARACTERS:
                raise ValueError(f"unknown character {char!r} at row {row}, column {column}")
            if char == "#":
                walls.add(cell)
                continue
            open_cells.add(cell)
            if char in "@+":
                players.append(cell)
            if char in "$*":
                boxes.add(cell)
            if char in ".*+":
                goals.add(cell)
    if len(players) != 1:
        raise ValueError(f"a level needs exactly one worker (@ or +), found {len(players)}")
    if not boxes or len(boxes) != len(goals):
        raise ValueError(f"a level needs as many goals as boxes, at least one: {len(boxes)} boxes, {len(goals)} goals")
    floor = frozenset(flood(players[0], open_cells))
    if not boxes <= floor or not goals <= floor:
        raise ValueError("a box or goal lies where the worker can never reach")
    level = Level(len(rows), max(len(line) for line in rows), floor, frozenset(goals), frozenset(boxes), players[0])
    return level, frozenset(walls)


def read_level_file(path: Path) -> list[tuple[str, str]]:
    """(title, XSB text) of every level in a file: levels are blocks of level rows; a line
    that starts with `;` or any other text between levels is a comment, and the last one
    before a level is its title."""
    levels: list[tuple[str, str]] = []
    block: list[str] = []
    title = ""
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip() and "#" in line and set(line) <= LEVEL_CHARACTERS:
            block.append(line)
            continue
        if block:
            levels.append((title, "\n".join(block)))
            block, title = [], ""
        text = line.strip().lstrip(";").strip()
        if text:
            title = text.removeprefix("Title:").strip()
    return levels


# -- generation -----------------------------------------------------------------------


def generate(rows: int, columns: int, box_count: int, seed: int, min_pushes: int) -> tuple[Level, frozenset[Cell]]:
    """A solvable room of `rows` x `columns` cells (walls included) with `box_count` boxes,
    the same for the same arguments on every machine (the random stream is seeded by them)."""
    rng = random.Random(f"sokoban/{rows}x{columns}/{box_count}/{seed}")
    interior = [(row, column) for row in range(1, rows - 1) for column in range(1, columns - 1)]
    for _ in range(500):
        floor = set(interior)
        for cell in rng.sample(interior, rng.randint(0, len(interior) // 8)):
            # An inner wall stays only where the floor remains one connected room.
            floor.discard(cell)
            if len(flood(next(iter(floor)), floor)) != len(floor):
                floor.add(cell)
        if len(floor) < 2 * box_count + 2:
            continue
        goals = frozenset(rng.sample(sorted(floor), box_count))
        boxes, player = set(goals), rng.choice(sorted(floor - goals))
        for _ in range(rng.randint(10, 40) * box_count):
            move = rng.choice(list(MOVES))
            target = step_cell(player, move)
            if target not in floor or target in boxes:
                continue
            behind = (2 * player[0] - target[0], 2 * player[1] - target[1])
            if behind in boxes and rng.random() < 0.7:  # pull the box behind into the worker's cell
                boxes.remove(behind)
                boxes.add(player)
            player = target
        if boxes & goals:
            continue
        all_cells = {(row, column) for row in range(rows) for column in range(columns)}
        level = Level(rows, columns, frozenset(floor), goals, frozenset(boxes), player)
        solution = solve(level, level.boxes, level.player)
        if solution is not None and solution.pushes >= min_pushes:
            return level, frozenset(all_cells - floor)
    raise ValueError(f"no {rows}x{columns} room with {box_count} boxes needing {min_pushes} pushes for seed {seed}")


# -- solving --------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    moves: tuple[str, ...]
    pushes: int


def walk(start: Cell, floor: frozenset[Cell], boxes: frozenset[Cell]) -> dict[Cell, tuple[Cell, str] | None]:
    """Every cell the worker reaches from `start` without pushing, with the step that got there first."""
    came: dict[Cell, tuple[Cell, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for move in MOVES:
            near = step_cell(cell, move)
            if near in floor and near not in boxes and near not in came:
                came[near] = (cell, move)
                queue.append(near)
    return came


def path_to(came: dict[Cell, tuple[Cell, str] | None], target: Cell) -> list[str]:
    moves = []
    while came[target] is not None:
        target, move = came[target]  # type: ignore[misc]
        moves.append(move)
    return moves[::-1]


def solve(level: Level, boxes: frozenset[Cell], player: Cell, limit: int = SOLVER_STATE_LIMIT) -> Solution | None:
    """The fewest-pushes solution from this state as moves, or None when there is none
    (or none within `limit` states)."""
    if boxes == level.goals:
        return Solution((), 0)
    start_reach = walk(player, level.floor, boxes)
    start_key = (boxes, min(start_reach))
    # Each state records how it was reached: the previous state's key, the worker's cell
    # there, and the moves from that cell (a walk, then the push).
    came: dict[tuple, tuple | None] = {start_key: None}
    queue = deque([(boxes, player, start_reach, start_key)])
    while queue and len(came) <= limit:
        boxes_now, _, reach, key = queue.popleft()
        for box in boxes_now:
            for move in MOVES:
                delta = MOVES[move]
                pusher, destination = (box[0] - delta[0], box[1] - delta[1]), step_cell(box, move)
                if pusher not in reach or destination not in level.floor or destination in boxes_now:
                    continue
                if level.is_dead_corner(destination):
                    continue
                moved = (boxes_now - {box}) | {destination}
                next_reach = walk(box, level.floor, moved)
                next_key = (moved, min(next_reach))
                if next_key in came:
                    continue
                came[next_key] = (key, path_to(reach, pusher) + [move])
                if moved == level.goals:
                    return unwind(came, next_key)
                queue.append((moved, box, next_reach, next_key))
    return None


def unwind(came: dict[tuple, tuple | None], key: tuple) -> Solution:
    pieces = []
    while came[key] is not None:
        key, moves = came[key]  # type: ignore[misc]
        pieces.append(moves)
    pieces.reverse()
    return Solution(tuple(move for piece in pieces for move in piece), len(pieces))
