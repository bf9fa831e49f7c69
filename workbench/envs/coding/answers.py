"""From a model's answer to the program the sandbox runs.

The code is the first fenced block of the answer, else the whole text. An answer that
defines the entry point runs after the prompt's imports and helpers; one that is only
the function's body completes the prompt, as in HumanEval's own harness.
"""

from __future__ import annotations

import ast
import re
import textwrap
from functools import lru_cache

from workbench.envs.coding.checks import parse_python, source_of

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The code in a model's answer: the first ```python / ```py / ``` block, else the text.

    An unclosed block (the answer ran out of tokens) runs to the end of the text."""
    match = FENCE.search(text)
    return (match.group(1) if match else text).strip("\n")


def submitted_block(code: str) -> str:
    """The code the sandbox ran (`extract_code`'s), in the ```python block the instruction
    asks for: what `[export] targets = "action"` teaches for code, so that prose after the
    block (which can quote the experience note's failing assert) is never a training target."""
    return f"```python\n{code}\n```"


@lru_cache(maxsize=512)
def prompt_parts(prompt: str, entry_point: str) -> tuple[str, bool]:
    """(the prompt without the entry point's definition, whether the prompt defines it).

    The rest (imports, helper functions such as HumanEval/10's is_palindrome) runs before
    an answer that defines the function itself."""
    try:
        tree = parse_python(prompt)
    except SyntaxError:
        return "", False
    kept = [node for node in tree.body if not defines_name(node, entry_point)]
    return "\n".join(source_of(prompt, node) for node in kept), len(kept) < len(tree.body)


def defines_name(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(target, ast.Name) and target.id == name for target in node.targets)
    return False


def compose_program(prompt: str, entry_point: str, code: str) -> tuple[str, str]:
    """(program, prelude) for an answer: the whole function, or only its body.

    An answer that defines `entry_point` runs as it is, after the prompt's imports and
    helpers (so its line numbers are its own). An answer that is only the body (indented,
    or unindented but not valid on its own) completes the prompt, as in HumanEval's own
    harness."""
    prelude, prompt_defines = prompt_parts(prompt, entry_point)
    if defines_entry_point(code, entry_point) or not prompt_defines:
        return code, prelude
    head = prompt if prompt.endswith("\n") else prompt + "\n"
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first[:1] in (" ", "\t"):
        return head + code, ""
    if not compiles(code) and compiles(head + textwrap.indent(code, "    ")):
        return head + textwrap.indent(code, "    "), ""
    return code, prelude


def defines_entry_point(code: str, entry_point: str) -> bool:
    if re.search(rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return True  # a def at column 0 is top level: no need to parse (the common answer)
    try:
        return any(defines_name(node, entry_point) for node in parse_python(code).body)
    except SyntaxError:
        # Broken code that still says `def name(` is meant as the whole function: its syntax
        # error should point at its own lines.
        return re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def compiles(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False
