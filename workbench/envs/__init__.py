"""Environment kinds, found by name (`env.kind`) through one registry.

A kind is a `Suite` subclass (workbench/envs/base.py) registered with
`@register_suite("name")`. `env.kind` finds it as a built-in (the module of that name in
this package: `coding`, `navigation`), as `module:Class`, or as an entry point of the
`leafe_tui.environments` group of an installed package (workbench/registry.py says how).
Built-ins are imported only when named, so naming a kind loads nothing else.

`module:Class` (or an entry point) may also name a plain environment class, the README's
"your own" contract: `load_tasks(suite, selection)` as a class method, `reset(task)`,
`step(action)`, and optionally `snapshot()`/`restore()` (both or neither) and
`expert_action()`. `PlainEnvironmentSuite` turns it into a suite, reading once, when the
class is loaded, which of the optional methods it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.envs.base import Environment, Suite, Task
from workbench.errors import EnvironmentSetupError
from workbench.registry import Registry

if TYPE_CHECKING:
    from workbench.config import EnvConfig

__all__ = ["SUITES", "PlainEnvironmentSuite", "Suite", "load_user_class", "open_suite", "register_suite"]

SUITES: Registry[type] = Registry(
    what="environment", setting="env.kind", home="workbench.envs", group="leafe_tui.environments",
    spec="a class as module:Class", error=EnvironmentSetupError,
)
register_suite = SUITES.register
"""`@register_suite("name")` on a `Suite` subclass makes `env.kind = "name"` open it."""


def open_suite(config: EnvConfig) -> Suite:
    """The suite for `config.kind`; one clear line for an unknown kind or a bad class."""
    found = SUITES.find(config.kind)
    if isinstance(found, type) and issubclass(found, Suite):
        return found(config)
    return PlainEnvironmentSuite(config, checked_environment_class(found, config.kind))


def suite_prompts(kind: str) -> dict[str, str] | None:
    """The default prompts the suite class for `kind` declares, without opening it; None
    for a plain environment class or a suite that declares none."""
    found = SUITES.find(kind)
    if isinstance(found, type) and issubclass(found, Suite) and found.default_prompts is not None:
        return dict(found.default_prompts)
    return None


def load_user_class(spec: str) -> type:
    """The plain environment class `spec` names (`module:Class`), checked as `open_suite` checks it."""
    return checked_environment_class(SUITES.find(spec), spec)


def has_method(cls: type, name: str) -> bool:
    return callable(getattr(cls, name, None))


def checked_environment_class(found: Any, spec: str) -> type:
    """`found` if it is a class with the plain environment contract, else one clear line."""
    if not isinstance(found, type):
        raise EnvironmentSetupError(f"env.kind {spec!r} is {found!r}, not a Suite subclass or an environment class")
    name = found.__name__
    for method in ("reset", "step"):
        if not has_method(found, method):
            raise EnvironmentSetupError(f"env.kind {spec!r}: {name} has no {method}() method")
    # snapshot()/restore() are optional (backtracking replays the actions without them),
    # but one without the other means a state that can be taken and never given back.
    has_snapshot, has_restore = has_method(found, "snapshot"), has_method(found, "restore")
    if has_snapshot != has_restore:
        missing = "restore" if has_snapshot else "snapshot"
        raise EnvironmentSetupError(
            f"env.kind {spec!r}: {name} has {'snapshot' if has_snapshot else 'restore'}() but no "
            f"{missing}() method; define both, or neither to rewind by replaying actions"
        )
    if not has_method(found, "load_tasks"):
        raise EnvironmentSetupError(f"env.kind {spec!r}: {name} needs a load_tasks(suite, selection) class method")
    return found


class PlainEnvironmentSuite(Suite):
    """A plain environment class as a suite (see the module): what the class offers is read
    here, once, so the stages ask the suite like any other."""

    def __init__(self, config: EnvConfig, cls: type) -> None:
        super().__init__(config)
        self.cls = cls
        self.supports_snapshot = has_method(cls, "snapshot") and has_method(cls, "restore")
        self.has_expert = has_method(cls, "expert_action")
        self.has_close = has_method(cls, "close")

    def load_tasks(self, selection: int | list[str | int] | None) -> list[Task]:
        return list(self.cls.load_tasks(self.config.suite, selection))

    def new_environment(self) -> Environment:
        try:
            return self.cls(self.config)
        except TypeError:
            return self.cls()

    def close_environment(self, env: Environment) -> None:
        if self.has_close:
            env.close()

    def expert_action(self, env: Environment) -> str | None:
        return str(env.expert_action()) if self.has_expert else None
