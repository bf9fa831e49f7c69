"""The sokoban kind: push every box onto a goal, with the level drawn as text.

Tasks are generated rooms, one per seed (`env.suite` = `small`, `medium`, `large`, or
`ROWSxCOLUMNS-BOXES` such as `7x7-2`), or the levels of an XSB file the user gives
(`env.suite` = a path ending in `.xsb`, `.sok` or `.txt`; tasks are level numbers from 1).
No package is needed: the generator and the solver are the module `levels` (gym-sokoban,
the package the field used, last released in 2019 for the old `gym`).

The policy answers with one move (up, down, left, right); walking into a box pushes it.
Feedback names a move into a wall or a box that cannot move, boxes placed on or pushed off
goals, and a push into a corner with no goal: a box there can never move again, so the
level is dead; that is a hazard (`hazard`), which ends the episode as a failure with score
0, as lava does in navigation. Otherwise the score is the fraction of boxes on goals. The
state is a few immutable values, so snapshots are exact copies; the solver is the expert.

One job per module:

- `suite`: `SokobanSuite` (registered as `sokoban`) and `SokobanEnvironment`;
- `levels`: reading XSB text, generating rooms from a seed, and the solver;
- `reflect`: the template note of a failed attempt.

Importing the package registers the suite, so `env.kind = "sokoban"` finds it by name.
"""

from workbench.envs.sokoban.suite import (
    SokobanEnvironment,
    SokobanSuite,
    parse_move,
)

__all__ = ["SokobanEnvironment", "SokobanSuite", "parse_move"]
