"""A task's tests as the sandbox runs them: one check per top-level assert.

HumanEval's tests are `def check(candidate)` with asserts in its body; each top-level
assert (or a loop, `if` or `with` holding asserts) becomes one check, so the feedback
names each failing assert and the score is the fraction that passed.
"""

from __future__ import annotations

import ast
import textwrap
import threading
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class TestPlan:
    """A task's tests as the sandbox runs them: setup code, then one source per check."""

    setup: str
    checks: tuple[str, ...]
    shown: tuple[str, ...]
    """Each check as a person reads it (the assert or loop, without the statements before it)."""


# CPython 3.11 before 3.11.8 tracks the AST converter's recursion depth in state shared by
# every thread, so two threads parsing at once can raise "SystemError: AST constructor
# recursion depth mismatch" (gh-106905). Episodes are checked from a thread pool: parse
# one source at a time.
_PARSE_LOCK = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """`ast.parse`, safe to call from several threads at once."""
    with _PARSE_LOCK:
        return ast.parse(source)


@lru_cache(maxsize=512)
def plan_tests(test: str) -> TestPlan:
    """One check per top-level assert of `def check(candidate)`; a loop, `if` or `with`
    holding asserts is one check. Statements between checks run just before the next one
    (they may depend on what ran before). Module-level code runs first, as setup. A test
    without `check` counts its own top-level asserts, calling the function by name."""
    tree = parse_python(test)
    check = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None)
    module = [node for node in tree.body if node is not check]
    body = check.body if check is not None else []
    if check is None:
        module, body = [n for n in tree.body if not holds_assert(n)], [n for n in tree.body if holds_assert(n)]
    setup = [source_of(test, node) for node in module]
    checks, shown, pending = [], [], []
    started = False
    for node in body:
        if holds_assert(node) and not trivially_true(node):
            text = source_of(test, node)
            checks.append("\n".join([*pending, text]))
            shown.append(text)
            pending, started = [], True
        elif not trivially_true(node):
            (pending if started else setup).append(source_of(test, node))
    if pending and checks:  # statements after the last check still run, with it
        checks[-1] = "\n".join([checks[-1], *pending])
    return TestPlan("\n".join(setup), tuple(checks), tuple(shown))


def holds_assert(node: ast.stmt) -> bool:
    return any(isinstance(inner, ast.Assert) for inner in ast.walk(node))


def trivially_true(node: ast.stmt) -> bool:
    """`assert True, "..."`: HumanEval's debugging markers check nothing, so they do not count."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant) and bool(node.test.value)


def source_of(text: str, node: ast.stmt) -> str:
    return textwrap.dedent(ast.get_source_segment(text, node, padded=True) or ast.unparse(node))
