"""Every key of every screen and widget of the workbench has a description (the footer and
`?` show it) and an id (a person can remap it). Discovered, not listed: a new screen is
checked the day it is added."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.binding import Binding
from textual.dom import DOMNode

import screens
import screens.widgets


def workbench_classes() -> list[type[DOMNode]]:
    found = []
    for package in (screens, screens.widgets):
        for module_info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(module_info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, DOMNode) and value.__module__ == module.__name__:
                    found.append(value)
    return found


def test_every_binding_has_a_description_and_an_id():
    classes = workbench_classes()
    names = {cls.__name__ for cls in classes}
    assert {"RunsScreen", "EpisodeScreen", "SearchScreen", "LiveScreen", "TrajectoryTree"} <= names
    missing = []
    for cls in classes:
        for binding in cls.__dict__.get("BINDINGS", []):
            assert isinstance(binding, Binding), f"{cls.__name__}: {binding!r} is not a Binding"
            if not binding.description or not binding.id:
                missing.append(f"{cls.__name__}: {binding.key} -> {binding.action}")
    assert missing == []


def test_binding_ids_are_unique():
    seen: dict[str, str] = {}
    for cls in workbench_classes():
        for binding in cls.__dict__.get("BINDINGS", []):
            assert binding.id not in seen, f"{binding.id} in {cls.__name__} and {seen.get(binding.id)}"
            seen[binding.id] = cls.__name__
