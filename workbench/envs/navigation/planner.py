"""The expert: a shortest plan over the real MiniGrid state.

Breadth-first search over what the agent can change: its cell, its heading, what it
carries, which doors it has opened and which objects it has taken. Actions are the
ones that can shorten a way to the goal: turns, forward, `toggle` on a closed door
(a locked one only with the key of its colour, as minigrid's Door.toggle demands) and
`pickup`. `drop` is left out: no Empty, FourRooms, DoorKey or MultiRoom task needs it,
and it would multiply the states searched.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from workbench.envs.navigation.text import STEPS, Cell, goal_cells


class PlanState(NamedTuple):
    cell: Cell
    heading: int
    carrying: tuple[str, str] | None
    opened: frozenset[Cell]
    taken: frozenset[Cell]


def first_expert_action(env: Any) -> str | None:
    """The first action of a shortest plan from `env`'s state (an unwrapped MiniGridEnv).

    None when the agent stands on a goal or no plan reaches one."""
    grid = env.grid
    goals = set(goal_cells(grid))
    carrying = (env.carrying.type, env.carrying.color) if env.carrying is not None else None
    start = PlanState(cell_of(env.agent_pos), int(env.agent_dir), carrying, frozenset(), frozenset())
    if start.cell in goals or not goals:
        return None
    moves = moves_only(env)
    seen = {start}
    queue: deque[tuple[PlanState, str]] = deque()
    for action, state in successors(grid, start, moves_only=moves):
        if state not in seen:
            seen.add(state)
            queue.append((state, action))
    while queue:
        state, first_action = queue.popleft()
        if state.cell in goals:
            return first_action
        for _, following in successors(grid, state, moves_only=moves):
            if following not in seen:
                seen.add(following)
                queue.append((following, first_action))
    return None


def cell_of(position: Any) -> Cell:
    return int(position[0]), int(position[1])


def moves_only(env: Any) -> bool:
    """Whether the env has only left, right and forward (MiniGrid's Dynamic-Obstacles rooms,
    where a forward into a wall or a ball ends the episode): there, the plan goes around
    every object as it stands now, and never picks one up."""
    space = getattr(env, "action_space", None)
    return getattr(space, "n", 7) <= 3


def successors(grid: Any, state: PlanState, *, moves_only: bool = False) -> list[tuple[str, PlanState]]:
    """Every (action, next state) that changes something; no-op actions are pruned."""
    result = [
        ("left", state._replace(heading=(state.heading - 1) % 4)),
        ("right", state._replace(heading=(state.heading + 1) % 4)),
    ]
    dx, dy = STEPS[state.heading]
    front = (state.cell[0] + dx, state.cell[1] + dy)
    if not (0 <= front[0] < grid.width and 0 <= front[1] < grid.height):
        return result
    obj = None if front in state.taken else grid.get(*front)
    if obj is None or obj.type in ("goal", "floor") or (obj.type == "door" and door_open(obj, front, state)):
        result.append(("forward", state._replace(cell=front)))
    elif moves_only:
        return result
    elif obj.type == "door" and can_open(obj, state):
        result.append(("toggle", state._replace(opened=state.opened | {front})))
    elif obj.can_pickup() and state.carrying is None:
        result.append(
            ("pickup", state._replace(carrying=(obj.type, obj.color), taken=state.taken | {front}))
        )
    return result


def door_open(door: Any, cell: Cell, state: PlanState) -> bool:
    return bool(door.is_open) or cell in state.opened


def can_open(door: Any, state: PlanState) -> bool:
    if not door.is_locked:
        return True
    return state.carrying == ("key", door.color)
