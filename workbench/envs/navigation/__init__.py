"""The navigation kind: MiniGrid (Farama `minigrid`) rendered as text.

The policy reads the whole map, one character per cell, and answers with one action
word. Feedback after every action is the walking distance to the goal, whether a
`forward` was blocked, and a completion score that grows as the agent closes in (only
reaching the goal scores 1). Stepping into a hazard (lava) ends the episode as a failure:
the feedback names it (`hazard`) and the score is 0. So does a forward into a wall or a
ball in the Dynamic-Obstacles rooms (their own rule; there only left, right and forward
exist, and the expert plans around the balls as they stand). The distance is counted in cells on foot around walls and
lava, with doors passable whatever their state (a door is a cell the agent can open) and
keys, balls and boxes passable too (the agent can pick them up). `snapshot`/`restore`
copy the whole minigrid state, so a branch at a rollback point replays exactly what the
original would have seen.

One job per module:

- `suite`: `NavigationSuite` (registered as `navigation`) and `NavigationEnvironment`, the
  minigrid wrapper;
- `text`: the map as text, walking distances and the words for directions;
- `planner`: the expert, a shortest plan over the real MiniGrid state;
- `reflect`: the template note of a failed attempt.

Importing the package registers the suite, so `env.kind = "navigation"` finds it by name.
"""

from workbench.envs.navigation.suite import (
    NavigationEnvironment,
    NavigationSuite,
    parse_action,
)

__all__ = ["NavigationEnvironment", "NavigationSuite", "parse_action"]
