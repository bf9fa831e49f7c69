"""The gymnasium kind: any Gymnasium environment with discrete actions, as text.

`env.suite` is an environment id (`FrozenLake-v1`, or `module:Id` for one a package
registers when imported), `env.options` the keyword arguments for `gymnasium.make`, and
each task a reset seed (`ID/SEED`). The policy reads the environment's `ansi` render, or
the text a function the user names returns (`env.observation_text = "module:function"`,
called with the observation), and answers with an action number or one of
`env.action_names`.

Reward and termination become score and done. Unless `env.success_return` is set, an
episode succeeds when it terminates on a positive reward (FrozenLake's goal, Taxi's drop
off), scoring 1, and scores 0 otherwise; with it, the score is the return so far divided
by it (at most 1) and success is reaching it (CartPole kept up for that many steps).

Backtracking copies the whole environment only where a probe, run once when the suite
opens, shows that a deep copy behaves as the original (the same actions on both give
equal observations, rewards and ends); otherwise it replays the actions from the seed.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import math
import os
import random
import re
import sys
from collections.abc import Callable
from typing import Any

from workbench.envs import register_suite
from workbench.envs.base import StepResult, Suite, Task
from workbench.envs.seeded_tasks import seeded_tasks
from workbench.errors import EnvironmentSetupError

GYMNASIUM_PROMPTS = {
    "system": "You act in an environment shown as text. Answer with exactly one action: its name or its number.",
    "first_turn": "{observation}\nWhich action do you take?",
    "next_turn": "{observation}\nSteps left: {steps_left}. Which action do you take?",
    "note": "{turn}\n\nA note from an earlier attempt at this point: {note}",
}
PROBE_STEPS = 12
SGR = re.compile(r"\x1b\[([0-9;]*)m")
OTHER_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def plain_text(text: str) -> str:
    """An ansi render without its colour codes: text a colour highlights (FrozenLake's
    agent, Taxi's taxi) is wrapped in [ ] so the policy still sees where it is."""
    pieces, highlighted, position = [], False, 0
    for match in SGR.finditer(text):
        pieces.append(text[position:match.start()])
        position = match.end()
        reset = match.group(1) in ("", "0")
        if reset and highlighted:
            pieces.append("]")
        elif not reset and not highlighted:
            pieces.append("[")
        highlighted = not reset
    pieces.append(text[position:])
    if highlighted:
        pieces.append("]")
    return OTHER_ESCAPES.sub("", "".join(pieces)).strip("\n")


def json_safe(info: dict[str, Any]) -> dict[str, Any]:
    """The plain scalar entries of a step's info dict (numpy scalars as Python numbers)."""
    safe = {}
    for key, value in info.items():
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()
        if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            safe[str(key)] = value
    return safe


def same(left: Any, right: Any) -> bool:
    """Equality for observations that may be numpy arrays, tuples or dicts of them."""
    import numpy

    try:
        return bool(numpy.array_equal(numpy.asarray(left), numpy.asarray(right)))
    except (TypeError, ValueError):
        return left == right


def load_function(spec: str) -> Callable[[Any], Any]:
    """The function `module:function` names, imported from the working folder first."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise EnvironmentSetupError(f"gymnasium: env.observation_text {spec!r}: write module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EnvironmentSetupError(f"gymnasium: env.observation_text {spec!r}: cannot import {module_name}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise EnvironmentSetupError(f"gymnasium: env.observation_text {spec!r}: {module_name} has no function {name}")
    return function


def make_env(env_id: str, options: dict[str, Any]) -> Any:
    """`gymnasium.make(env_id, **options)`, or one clear line for what went wrong."""
    try:
        import gymnasium
    except ImportError:
        raise EnvironmentSetupError("gymnasium: the gymnasium package is not installed (pip install gymnasium)") from None
    if ":" not in env_id and env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise EnvironmentSetupError(f"gymnasium: unknown environment id {env_id!r}{hint}")
    try:
        return gymnasium.make(env_id, **options)
    except gymnasium.error.DependencyNotInstalled as error:
        raise EnvironmentSetupError(f"gymnasium: {env_id} needs a package that is not installed: {error}") from None
    except ModuleNotFoundError as error:
        raise EnvironmentSetupError(f"gymnasium: {env_id} needs a package that is not installed: {error}") from None
    except (TypeError, ValueError, gymnasium.error.Error) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EnvironmentSetupError(f"gymnasium: cannot make {env_id} with env.options {options}: {first}") from None


class GymnasiumEnvironment:
    """One episode of a Gymnasium environment as text (the Environment protocol)."""

    def __init__(self, suite: GymnasiumSuite) -> None:
        self.suite = suite
        self.env: Any = None
        self.steps = 0
        self.total = 0.0
        self.score = 0.0
        self.over = False
        self.success = False
        self.text = ""

    def reset(self, task: Task) -> str:
        if self.env is None:
            self.env = self.suite.make()
        observation, _ = self.env.reset(seed=int(task.spec["seed"]))
        self.steps, self.total, self.score, self.over, self.success = 0, 0.0, 0.0, False, False
        self.text = self.suite.text_of(self.env, observation)
        return self.render()

    def step(self, action: str) -> StepResult:
        if self.env is None:
            raise RuntimeError("GymnasiumEnvironment.step called before reset")
        if self.over:
            return self.failed_step("The episode is over; no action can change it.", counts=False)
        index = self.suite.parse_action(action)
        if index is None:
            shown = " ".join(str(action or "").split())[:40]
            return self.failed_step(f"Unknown action {shown!r}; answer with one of: {self.suite.actions_text()}.")
        observation, reward, terminated, truncated, info = self.env.step(index)
        reward = float(reward)
        self.steps += 1
        self.total += reward
        self.text = self.suite.text_of(self.env, observation)
        self.success = self.suite.succeeded(self.total, reward, bool(terminated))
        self.score = self.suite.score(self.total, self.success)
        self.over = self.success or bool(terminated) or bool(truncated) or self.steps >= self.suite.config.max_steps
        feedback: dict[str, Any] = {
            "action": index, "action_name": self.suite.name_of(index), "reward": reward,
            "return": round(self.total, 6), "terminated": bool(terminated), "truncated": bool(truncated),
            "success": self.success, "steps": self.steps, "info": json_safe(info),
        }
        sentence = f"Action {self.suite.label(index)}: reward {reward:g}, return so far {self.total:g}."
        if self.success:
            sentence += " Success!"
        elif terminated or truncated:
            how = "terminated" if terminated else "was cut off (truncated)"
            feedback["message"] = f"the episode {how} without success, reward {reward:g}, return {self.total:g}"
            sentence += f" The episode {how} without success."
        elif self.over:
            sentence += " The episode is over."
        return StepResult(f"{sentence}\n{self.render()}", feedback, self.score, self.over)

    def failed_step(self, error: str, counts: bool = True) -> StepResult:
        """A turn that took no action: it spends one step of the budget unless the episode is over."""
        self.steps += 1 if counts else 0
        self.over = self.over or self.steps >= self.suite.config.max_steps
        feedback = {"action": None, "error": error, "reward": 0.0, "return": round(self.total, 6),
                    "success": self.success, "steps": self.steps}
        return StepResult(f"{error}\n{self.render()}", feedback, self.score, self.over)

    def render(self) -> str:
        return f"{self.text}\nActions: {self.suite.actions_text()}."

    def snapshot(self) -> dict[str, Any]:
        counters = {key: getattr(self, key) for key in ("steps", "total", "score", "over", "success", "text")}
        return {"env": copy.deepcopy(self.env), "counters": counters}

    def restore(self, state: dict[str, Any]) -> None:
        # Copied again so one snapshot can be restored for every branch at a rollback point.
        if self.env is not None and self.env is not state["env"]:
            self.env.close()
        self.env = copy.deepcopy(state["env"])
        for key, value in state["counters"].items():
            setattr(self, key, value)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


@register_suite("gymnasium")
class GymnasiumSuite(Suite):
    """A Gymnasium environment id (`env.suite`); one task per reset seed."""

    default_prompts = GYMNASIUM_PROMPTS

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.env_id = config.suite
        self.options = dict(getattr(config, "options", {}) or {})
        spec = getattr(config, "observation_text", "")
        self.text_function = load_function(spec) if spec else None
        self.success_return = getattr(config, "success_return", None)
        if self.success_return is not None and not self.success_return > 0:
            raise EnvironmentSetupError(f"gymnasium: env.success_return must be above 0, got {self.success_return}")
        # Everything is checked now, not mid-run: the id, its packages, the options, the
        # actions, the text; then whether a deep copy is a faithful snapshot.
        probe = make_env(self.env_id, self.options)
        try:
            self.check_text(probe)
            if self.text_function is None and probe.render_mode != "ansi":
                probe.close()
                probe = make_env(self.env_id, {**self.options, "render_mode": "ansi"})
            self.action_count = self.check_actions(probe)
            self.action_names = [str(name).strip().lower() for name in getattr(config, "action_names", [])]
            if self.action_names and len(self.action_names) != self.action_count:
                raise EnvironmentSetupError(
                    f"gymnasium: env.action_names has {len(self.action_names)} names but {self.env_id} has "
                    f"{self.action_count} actions"
                )
            self.text_of(probe, probe.reset(seed=0)[0])
            self.supports_snapshot = copies_agree(probe, self.action_count, self.text_of)
        finally:
            probe.close()
        names = sorted(self.action_names, key=len, reverse=True)
        words = "|".join(re.escape(name) for name in names)
        self.action_pattern = re.compile(rf"\b({words + '|' if words else ''}\d+)\b", re.IGNORECASE)

    # -- checks made once ----------------------------------------------------------

    def check_text(self, env: Any) -> None:
        if self.text_function is not None:
            return
        modes = list(env.metadata.get("render_modes", []))
        if "ansi" not in modes:
            raise EnvironmentSetupError(
                f"gymnasium: {self.env_id} has no text render (its render modes: {', '.join(modes) or 'none'}); "
                "name a function that writes its observation as text: env.observation_text = \"module:function\""
            )

    def check_actions(self, env: Any) -> int:
        from gymnasium.spaces import Discrete

        space = env.action_space
        if not isinstance(space, Discrete) or int(space.start) != 0:
            raise EnvironmentSetupError(
                f"gymnasium: {self.env_id} has actions {space}; only discrete actions numbered from 0 are supported"
            )
        return int(space.n)

    # -- what environments ask -----------------------------------------------------

    def make(self) -> Any:
        options = self.options if self.text_function is not None else {**self.options, "render_mode": "ansi"}
        return make_env(self.env_id, options)

    def text_of(self, env: Any, observation: Any) -> str:
        if self.text_function is None:
            return plain_text(str(env.render() or ""))
        try:
            return str(self.text_function(observation)).strip("\n")
        except Exception as error:  # the user's function: say whose it is
            raise EnvironmentSetupError(
                f"gymnasium: env.observation_text {self.config.observation_text!r} failed: {type(error).__name__}: {error}"
            ) from None

    def parse_action(self, text: str | None) -> int | None:
        """The first action name or number in the model's text, or None."""
        for match in self.action_pattern.finditer(text or ""):
            word = match.group(1).lower()
            if word.isdigit():
                if int(word) < self.action_count:
                    return int(word)
                continue
            return self.action_names.index(word)
        return None

    def name_of(self, index: int) -> str | None:
        return self.action_names[index] if self.action_names else None

    def label(self, index: int) -> str:
        return f"{index} ({self.action_names[index]})" if self.action_names else str(index)

    def actions_text(self) -> str:
        return ", ".join(self.label(index) for index in range(self.action_count))

    def succeeded(self, total: float, reward: float, terminated: bool) -> bool:
        if self.success_return is not None:
            return total >= self.success_return
        return terminated and reward > 0

    def score(self, total: float, success: bool) -> float:
        if self.success_return is None:
            return 1.0 if success else 0.0
        return round(min(1.0, max(0.0, total / self.success_return)), 4)

    # -- the suite ---------------------------------------------------------------------

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        return seeded_tasks("gymnasium", self.env_id, self.config.tasks if selection is None else selection)

    def new_environment(self) -> GymnasiumEnvironment:
        return GymnasiumEnvironment(self)

    def close_environment(self, env: GymnasiumEnvironment) -> None:
        env.close()


def copies_agree(env: Any, action_count: int, text_of: Callable[[Any, Any], str]) -> bool:
    """Whether a deep copy of `env` is a faithful snapshot: after a reset, a copy and the
    original given the same actions answer with equal observations, rewards, ends and text.
    A copy that fails, or that shares state with its original (a simulator outside
    Python), answers differently and the suite rewinds by replay instead."""
    rng = random.Random(0)
    try:
        env.reset(seed=0)
        # A state past the reset, which the reset seed alone would not give.
        if any(env.step(rng.randrange(action_count))[2:4]):
            env.reset(seed=0)
        twin = copy.deepcopy(env)
    except Exception:
        return False
    try:
        for _ in range(PROBE_STEPS):
            action = rng.randrange(action_count)
            first, second = env.step(action), twin.step(action)
            if not (same(first[0], second[0]) and first[1:4] == second[1:4]
                    and text_of(env, first[0]) == text_of(twin, second[0])):
                return False
            if first[2] or first[3]:
                break
        return True
    except Exception:
        return False
    finally:
        twin.close()
