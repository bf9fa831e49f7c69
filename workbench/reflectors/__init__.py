"""Reflectors, found by name (`reflect.reflector`) through one registry.

A reflector reads failed lines of play and writes, for each, an experience note and the
step to redo. It is a function registered with `@register_reflector("name")`:

    reflector(context, paths, task_names) -> list[Reflection]

`paths` are the lines of play (each a list of step dicts from the root, `path[0]`, to the
step reflected on, `path[-1]`), `task_names` their tasks; one call holds many paths so a
model reflector can answer them in one batched generate call. `reflect.reflector` finds a
reflector as a built-in (the module of that name in this package: `template`, `model`),
as `module:function`, or as an entry point of the `leafe_tui.reflectors` group of an
installed package (workbench/registry.py says how). Notes written by a person in the TUI
(author `human`) need no reflector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.errors import ConfigError
from workbench.registry import Registry

if TYPE_CHECKING:
    from workbench.context import StageContext

MAX_NOTE_CHARS = 600


@dataclass
class Reflection:
    """One experience note and where to rewind to."""

    text: str
    rollback_depth: int
    """Depth of the step to redo (1 = the first action)."""
    author: str
    """Who wrote it, stored with the note: the reflector's name (`template`, `model`, ...)."""
    fallback_reason: str = ""
    """Why a model reflector's answer was not used and the template wrote the note instead."""


Reflector = Callable[["StageContext", Sequence[Sequence[dict]], Sequence[str]], list[Reflection]]

REFLECTORS: Registry[Reflector] = Registry(
    what="reflector", setting="reflect.reflector", home="workbench.reflectors",
    group="leafe_tui.reflectors", spec="a function as module:function", error=ConfigError,
)
register_reflector = REFLECTORS.register
"""`@register_reflector("name")` on a reflector function makes `reflect.reflector = "name"` use it."""


def find_reflector(name: str) -> Reflector:
    """The reflector `name` names; one clear line (ConfigError) when there is none."""
    found = REFLECTORS.find(name)
    if not callable(found):
        raise ConfigError(f"reflect.reflector {name!r} is {found!r}, not a reflector function")
    return found
