"""MiniGrid state as text, and walking distances over the grid.

Helpers of `workbench/envs/navigation/`: one character per cell so a small model can
read the whole map, and a breadth-first flood over cells for the distance feedback.
Coordinates here are minigrid's own: x grows east (columns), y grows south (rows).
"""

from __future__ import annotations

from collections import deque
from typing import Any

Cell = tuple[int, int]

HEADINGS = ("east", "south", "west", "north")
"""minigrid's `agent_dir` 0..3 as words."""

AGENT_SYMBOLS = (">", "v", "<", "^")
STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""The cell offset of one step east, south, west and north (same order as HEADINGS)."""

# Object type -> map symbol. Doors get theirs from their state (see `cell_symbol`).
SYMBOLS = {"wall": "#", "goal": "G", "key": "K", "ball": "B", "box": "X", "lava": "~", "floor": "."}
LEGEND = {
    "#": "wall",
    ".": "floor",
    "G": "goal",
    "D": "closed door",
    "L": "locked door",
    "_": "open door",
    "K": "key",
    "B": "ball",
    "X": "box",
    "~": "lava",
}

# Cells the distance flood never enters. Doors count as passable whatever their state (a
# closed or locked door is a cell the agent can open), and so do keys, balls and boxes (the
# agent can pick them up): the distance says how far the goal is, not how hard the way is.
BLOCKING_TYPES = frozenset({"wall", "lava"})

# Cells that end the episode as a failure when the agent steps in (minigrid terminates
# the episode there): the feedback names them and the episode scores 0, whatever distance
# it had covered, so a step into lava never looks better than standing still.
HAZARD_TYPES = frozenset({"lava"})


def hazard_at(grid: Any, cell: Cell) -> str | None:
    """The hazard (`lava`) the agent stands in at `cell`, or None."""
    obj = grid.get(*cell)
    return obj.type if obj is not None and obj.type in HAZARD_TYPES else None


def hazard_words(hazard: str) -> str:
    """How an episode met its end: "stepped into lava", or in a room where a forward into a
    wall or a ball is a failure, "ran into the ball"."""
    return f"stepped into {hazard}" if hazard in HAZARD_TYPES else f"ran into the {hazard}"


def cell_symbol(obj: Any) -> str:
    """The map character of one grid object (None is open floor)."""
    if obj is None:
        return "."
    if obj.type == "door":
        if obj.is_open:
            return "_"
        return "L" if obj.is_locked else "D"
    return SYMBOLS.get(obj.type, "?")


def describe_object(obj: Any) -> str:
    """`a wall`, `a locked yellow door`, `a blue key` ... for feedback sentences."""
    if obj is None:
        return "nothing"
    if obj.type == "wall":
        return "a wall"
    if obj.type == "door":
        state = "an open" if obj.is_open else "a locked" if obj.is_locked else "a closed"
        return f"{state} {obj.color} door"
    return f"a {obj.color} {obj.type}"


def goal_cells(grid: Any) -> tuple[Cell, ...]:
    """Every goal square of the grid (most tasks have one)."""
    return tuple(
        (x, y)
        for y in range(grid.height)
        for x in range(grid.width)
        if (obj := grid.get(x, y)) is not None and obj.type == "goal"
    )


def walk_distances(grid: Any, start: Cell) -> dict[Cell, int]:
    """Cells reachable from `start` on foot, heading ignored, with their step counts."""
    distances = {start: 0}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        for dx, dy in STEPS:
            nx, ny = x + dx, y + dy
            if (nx, ny) in distances or not (0 <= nx < grid.width and 0 <= ny < grid.height):
                continue
            obj = grid.get(nx, ny)
            if obj is not None and obj.type in BLOCKING_TYPES:
                continue
            distances[(nx, ny)] = distances[(x, y)] + 1
            queue.append((nx, ny))
    return distances


def goal_distance(distances: dict[Cell, int], goals: tuple[Cell, ...]) -> int | None:
    """Cells to the nearest goal, or None when no goal can be reached."""
    reachable = [distances[goal] for goal in goals if goal in distances]
    return min(reachable) if reachable else None


def map_bounds(grid: Any) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) around every object, inclusive.

    MultiRoom draws its rooms somewhere inside a 25x25 grid of nothing; cropping to the
    objects keeps the map a few lines long. Bordered grids (Empty, FourRooms, DoorKey)
    crop to themselves, so their coordinates stay minigrid's."""
    cells = [
        (x, y)
        for y in range(grid.height)
        for x in range(grid.width)
        if grid.get(x, y) is not None
    ]
    if not cells:
        return 0, 0, grid.width - 1, grid.height - 1
    xs = [x for x, _ in cells]
    ys = [y for _, y in cells]
    return min(xs), min(ys), max(xs), max(ys)


def render_map(grid: Any, agent: Cell, heading: int, reachable: set[Cell] | dict[Cell, int],
               bounds: tuple[int, int, int, int]) -> tuple[list[str], list[str]]:
    """The map lines and the legend entries for the symbols it uses.

    Empty cells the agent cannot reach (outside MultiRoom's rooms) are blanks, so the map
    shows only the space that matters."""
    left, top, right, bottom = bounds
    lines, used = [], set()
    for y in range(top, bottom + 1):
        row = []
        for x in range(left, right + 1):
            if (x, y) == agent:
                symbol = AGENT_SYMBOLS[heading]
            else:
                obj = grid.get(x, y)
                symbol = " " if obj is None and (x, y) not in reachable else cell_symbol(obj)
                used.add(symbol)
            row.append(symbol)
        lines.append("".join(row).rstrip())
    legend = [f"{symbol} {name}" for symbol, name in LEGEND.items() if symbol in used]
    legend.append(f"{AGENT_SYMBOLS[heading]} you")
    return lines, legend


def place(cell: Cell, bounds: tuple[int, int, int, int]) -> str:
    """`row 2, column 3` in the shown map's coordinates (counted from 0, top left)."""
    left, top, _, _ = bounds
    return f"row {cell[1] - top}, column {cell[0] - left}"


def direction_words(source: Cell, target: Cell) -> str:
    """`2 east and 3 south` from `source` to `target`; empty when they are the same cell."""
    dx, dy = target[0] - source[0], target[1] - source[1]
    parts = []
    if dx:
        parts.append(f"{abs(dx)} {'east' if dx > 0 else 'west'}")
    if dy:
        parts.append(f"{abs(dy)} {'south' if dy > 0 else 'north'}")
    return " and ".join(parts)


HEADING_VECTORS = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""minigrid's agent_dir 0..3: east, south, west, north, as (dx, dy) on the grid."""


def relative_words(source: Cell, heading: int, target: Cell) -> str:
    """Where `target` lies as the agent sees it: `2 forward and 1 to your right`.

    The part that names the useful action comes first (forward when the target is ahead,
    else the side to turn to), so the sentence reads as advice a small model can follow.
    """
    dx, dy = target[0] - source[0], target[1] - source[1]
    ahead_x, ahead_y = HEADING_VECTORS[heading]
    ahead = dx * ahead_x + dy * ahead_y
    right = dx * -ahead_y + dy * ahead_x  # the heading turned clockwise
    side = f"{abs(right)} to your {'right' if right > 0 else 'left'}" if right else ""
    if ahead > 0:
        parts = [f"{ahead} forward", side]
    else:
        parts = [side, f"{-ahead} behind you" if ahead else ""]
    return " and ".join(part for part in parts if part)


def action_outcome(word: str, before: dict[str, Any], after: dict[str, Any], cell: Cell) -> str:
    """One sentence on what the action did, from the front cell before and after it."""
    if word in ("left", "right"):
        return f"You turned {word}."
    if word == "forward":
        if cell == before["cell"]:
            return blocked_sentence(before["what"])
        return "You moved forward."
    if word == "pickup":
        if after["carrying"] and not before["carrying"]:
            return f"You picked up {after['carrying']}."
        return "Your hands are full." if before["carrying"] else f"There is nothing to pick up ahead ({before['what']})."
    if word == "drop":
        if before["carrying"] and not after["carrying"]:
            return f"You dropped {before['carrying']}."
        return "You carry nothing to drop." if not before["carrying"] else "There is no room to drop it ahead."
    if word == "toggle":
        if before["what"] != after["what"]:
            if "door" in before["what"]:
                return "You opened the door." if "open" in after["what"] else "You closed the door."
            return f"You toggled {before['what']}; now there is {after['what']}."
        if "locked" in before["what"]:
            return f"{before['what'].capitalize()} stays shut; it needs the key of its colour."
        return f"Nothing to toggle ahead ({before['what']})."
    return "You said done, but you are not on the goal."


def blocked_sentence(what: str) -> str:
    if "locked" in what:
        return f"Blocked by {what}; it opens with the key of its colour."
    if "door" in what:
        return f"Blocked by {what}; toggle opens it."
    if "key" in what or "ball" in what or "box" in what:
        return f"Blocked by {what}; pickup takes it."
    return f"Blocked by {what}."
