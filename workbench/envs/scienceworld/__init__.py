"""The scienceworld kind: ScienceWorld (PyPI `scienceworld`), a text simulator of science tasks.

`env.suite` names one task (`boil`, `find-animal`, or its id `4-4`); its tasks are the
task's variations, named `TASK/VARIATION` (`boil/3`). ScienceWorld splits each task's
variations into train, dev and test sets; `env.tasks = N` takes the first N training
variations, and a list may name variations (`3`, `"boil/3"`) or splits (`"test:5"`, the
first 5 test variations; `"dev"`, all of them).

The policy types one command per turn (`open door to kitchen`). Feedback is the
simulator's answer, the score change, whether the command was understood, and the score:
ScienceWorld's own, 0..1. A score below 0 means the task failed (focusing on the wrong
thing does it): the episode ends, a failure scoring 0. ScienceWorld offers no save and
load of a world, so backtracking rewinds by loading the variation again and replaying the
stored commands; the simulator is deterministic given the variation and the commands
(tested). The expert is ScienceWorld's gold command sequence for the variation.

One job per module:

- `suite`: `ScienceWorldSuite` (registered as `scienceworld`) and `ScienceWorldEnvironment`;
- `jvm`: the one JVM per process the simulators share;
- `notes`: the template note of a failed attempt.

Importing the package registers the suite, so `env.kind = "scienceworld"` finds it by name.
"""

from workbench.envs.scienceworld.suite import (
    VALID_ACTIONS_CHARS,
    ScienceWorldEnvironment,
    ScienceWorldSuite,
    parse_command,
    variations_of,
)

__all__ = ["VALID_ACTIONS_CHARS", "ScienceWorldEnvironment", "ScienceWorldSuite", "parse_command", "variations_of"]
