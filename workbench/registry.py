"""Extension points found by name: environment suites and reflectors.

Each extension point is one `Registry`. A name given in a config resolves, in order, to:

1. what is registered already: a decorator such as `@register_suite("coding")` registers
   its class when its module is imported;
2. `module:attribute`, imported from the working folder first (like `python -m`: users keep
   their code beside their config), then from `sys.path`;
3. a built-in: the module or package of that name in the registry's home package
   (`coding` is the package `workbench/envs/coding/`, `gymnasium` the module
   `workbench/envs/gymnasium.py`), which registers itself when imported; a built-in named
   otherwise is found by importing every public module and package of the home package;
4. an entry point of that name in the registry's group (`leafe_tui.environments`,
   `leafe_tui.reflectors`), which is how an installed third-party package adds its own.

So adding a built-in is one new module (or package) in the home package, and nothing
else changes.
A name that resolves to nothing raises the registry's error: one line listing the names
it knows. Built-ins win over an entry point of the same name, so an installed package
can add names but never change what `coding` means.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

from workbench.errors import LeafeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to objects (classes, functions) for one extension point; see the module."""

    def __init__(
        self, *, what: str, setting: str, home: str, group: str, spec: str,
        error: type[LeafeError] = LeafeError,
    ) -> None:
        self.what = what
        """What one entry is, for messages: `environment`, `reflector`."""
        self.setting = setting
        """The config key that names an entry (`env.kind`), so a message says where to look."""
        self.home = home
        """The package whose public modules and packages are the built-ins (`workbench.envs`)."""
        self.group = group
        """The entry-point group third-party packages declare their entries in."""
        self.spec = spec
        """How a `module:attribute` entry is described in messages (`a class as module:Class`)."""
        self.error = error
        self.entries: dict[str, T] = {}
        self.home_imported = False

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that registers what it decorates under `name` and returns it unchanged."""

        def decorate(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorate

    def add(self, name: str, entry: T) -> None:
        """Register `entry` under `name`; a second, different entry for one name is refused."""
        if not name or ":" in name:
            raise self.error(f"{self.what} name {name!r} must be non-empty and hold no ':'")
        known = self.entries.get(name)
        if known is not None and known is not entry and qualified_name(known) != qualified_name(entry):
            raise self.error(
                f"{self.what} {name!r} is registered twice: by {qualified_name(known)} and by {qualified_name(entry)}"
            )
        self.entries[name] = entry

    def find(self, name: str) -> T:
        """The entry for `name` (see the module for the order), or the registry's error."""
        if name in self.entries:
            return self.entries[name]
        if ":" in name:
            return self.load_spec(name)
        if self.import_builtin(name) or self.load_entry_point(name):
            return self.entries[name]
        self.import_home()
        if name in self.entries:
            return self.entries[name]
        known = ", ".join(self.known()) or "none"
        raise self.error(f"{self.setting} {name!r} is unknown (known: {known}; or {self.spec})")

    def known(self) -> list[str]:
        """Every name this registry can find: built-ins, registered ones, entry points."""
        self.import_home()
        return sorted(set(self.entries) | {entry.name for entry in self.entry_points()})

    # -- the ways a name resolves ------------------------------------------------------

    def load_spec(self, spec: str) -> T:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise self.error(f"{self.setting} {spec!r}: write {self.spec}")
        # Like `python -m`, look in the working folder first: users keep their code beside the config.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise self.error(f"{self.setting} {spec!r}: cannot import {module_name}: {error}") from None
        try:
            return vars(module)[attribute]
        except KeyError:
            raise self.error(f"{self.setting} {spec!r}: {module_name} has no {attribute}") from None

    def import_builtin(self, name: str) -> bool:
        """Import the home module or package called `name`, if any; whether it registered `name`."""
        if not name.isidentifier() or name.startswith("_"):
            return False
        module_name = f"{self.home}.{name}"
        if importlib.util.find_spec(module_name) is None:
            return False
        importlib.import_module(module_name)
        return name in self.entries

    def import_home(self) -> None:
        """Import every public module and package of the home once, so each registers its names."""
        if self.home_imported:
            return
        package = importlib.import_module(self.home)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.home}.{module.name}")
        self.home_imported = True

    def entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return list(importlib.metadata.entry_points(group=self.group))

    def load_entry_point(self, name: str) -> bool:
        """Load the entry point called `name` from installed packages; whether there was one."""
        for entry_point in self.entry_points():
            if entry_point.name != name:
                continue
            try:
                entry = entry_point.load()
            except (ImportError, AttributeError) as error:
                raise self.error(
                    f"{self.setting} {name!r}: the entry point {entry_point.value!r} "
                    f"({self.group}) cannot be loaded: {error}"
                ) from None
            # Loading may have registered it (a decorator in the package); else register it here.
            if name not in self.entries:
                self.add(name, entry)
            return True
        return False


def qualified_name(entry: object) -> str:
    """`module.Name` of a class or function (how two registrations of one name are told apart)."""
    module = getattr(entry, "__module__", None) or type(entry).__module__
    name = getattr(entry, "__qualname__", None) or type(entry).__qualname__
    return f"{module}.{name}"
