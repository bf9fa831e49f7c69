"""Environment kinds behind one `Suite` interface, chosen by `env.kind`.

A suite lists its tasks, makes one `Environment` per live episode, and may offer the
extras that later stages use: a template reflection over its feedback, expert actions
(for the Early Experience baseline), a canonical solution. Imports are lazy so naming a
kind loads nothing until it is used.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, Protocol

from workbench.errors import EnvironmentSetupError

if TYPE_CHECKING:
    from workbench.config import EnvConfig
    from workbench.envs.base import Environment, Task


class Suite(Protocol):
    """What an environment kind provides to the stages."""

    kind: str
    """`coding`, `navigation`, or the user's `module:Class`."""

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        """The tasks named by `env.tasks` (a count of first tasks or a list of names/seeds)."""
        ...

    def new_environment(self) -> Environment:
        """A fresh environment for one episode."""
        ...

    def close(self) -> None:
        """Stop anything the suite started (sandbox servers ...)."""
        ...


def open_suite(config: EnvConfig) -> Suite:
    """The suite for `config.kind`; a clear error for an unknown kind or a bad suite."""
    if config.kind == "coding":
        from workbench.envs.coding import CodingSuite

        return CodingSuite(config)
    if config.kind == "navigation":
        from workbench.envs.navigation import NavigationSuite

        return NavigationSuite(config)
    if ":" in config.kind:
        return UserSuite(config, load_user_class(config.kind))
    raise EnvironmentSetupError(
        f"env.kind {config.kind!r} is not coding, navigation, or a class as module:Class"
    )


def load_user_class(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    # Like `python -m`, look in the working folder first: users keep their env beside the config.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EnvironmentSetupError(f"env.kind {spec!r}: cannot import {module_name}: {error}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise EnvironmentSetupError(f"env.kind {spec!r}: {module_name} has no {class_name}")
    for method in ("reset", "step"):
        if not callable(getattr(cls, method, None)):
            raise EnvironmentSetupError(f"env.kind {spec!r}: {class_name} has no {method}() method")
    # snapshot()/restore() are optional (backtracking replays the actions without them),
    # but one without the other means a state that can be taken and never given back.
    has_snapshot, has_restore = (callable(getattr(cls, method, None)) for method in ("snapshot", "restore"))
    if has_snapshot != has_restore:
        missing = "restore" if has_snapshot else "snapshot"
        raise EnvironmentSetupError(
            f"env.kind {spec!r}: {class_name} has {'snapshot' if has_snapshot else 'restore'}() but no "
            f"{missing}() method; define both, or neither to rewind by replaying actions"
        )
    if not callable(getattr(cls, "load_tasks", None)):
        raise EnvironmentSetupError(
            f"env.kind {spec!r}: {class_name} needs a load_tasks(suite, selection) class method"
        )
    return cls


class UserSuite:
    """A user's own environment class: `load_tasks(suite, selection)` plus the protocol."""

    def __init__(self, config: EnvConfig, cls: type) -> None:
        self.kind = config.kind
        self.config = config
        self.cls = cls

    def load_tasks(self, selection: Any) -> list[Task]:
        return list(self.cls.load_tasks(self.config.suite, selection))

    def new_environment(self) -> Environment:
        try:
            return self.cls(self.config)
        except TypeError:
            return self.cls()

    def close(self) -> None:
        pass
