"""The template reflection: an experience note written from the structured feedback only.

It quotes the tests and the submitted code's behaviour, never a solution.
"""

from __future__ import annotations

from typing import Any

from workbench.envs.coding.feedback import failed_check, one_line
from workbench.envs.coding.stdio import stdio_note

NOTE_WORDS = 60


def experience_note(feedback: dict[str, Any]) -> str:
    """What went wrong and what to change, from the structured feedback only: it quotes the
    tests and the submitted code's behaviour, never a solution."""
    if feedback.get("kind") == "stdio":
        return limit_words(stdio_note(feedback), NOTE_WORDS)
    status = feedback.get("status")
    error = feedback.get("error") or {}
    line = f" at line {error['line']}" if error.get("line") else ""
    failures = feedback.get("failures") or []
    if feedback.get("success"):
        return "All checks passed; keep this approach."
    if status == "syntax_error":
        note = (f"The code did not compile: {error.get('type', 'SyntaxError')}{line} "
                f"({one_line(error.get('message', ''), 80)}). Fix brackets, colons and indentation "
                "there, and answer with the whole function.")
    elif status == "exception" and "does not define" in str(error.get("message")):
        missing = one_line(error["message"], 80).removeprefix("the code ")
        note = (f"The answer {missing}. Answer with the whole function "
                "under exactly that name and signature.")
    elif status == "exception":
        note = (f"Running the code raised {error.get('type', 'an error')}{line}: "
                f"{one_line(error.get('message', ''), 90)}. Define or import every name used, "
                "and keep the required function name and signature.")
    elif status in ("timeout", "cpu"):
        note = ("The code did not finish in time: a loop that never ends or a far too slow "
                "method. Make every loop progress and end; avoid brute force.")
    elif status == "memory":
        note = "The code ran out of memory. Avoid building huge lists or unbounded recursion."
    elif status == "output_limit":
        note = "The code printed far too much. Remove the prints; return the result instead."
    elif status == "exited":
        note = "The code exited the program before the checks. Never call exit(); return values."
    elif status != "ok":
        note = f"The run was stopped ({one_line(feedback.get('message', status), 80)}). Keep the code simple."
    elif failures:
        note = failure_note(feedback, failures[0])
    else:
        note = f"{feedback.get('message', 'Some checks failed')}. Recheck the logic against the examples."
    return limit_words(note, NOTE_WORDS)


def failure_note(feedback: dict[str, Any], failure: dict[str, Any]) -> str:
    check = failed_check(failure, 110)
    counts = f"{feedback.get('passed', 0)}/{feedback.get('total', 0)} checks passed."
    expected, actual, error = failure.get("expected"), failure.get("actual"), failure.get("error")
    if actual is not None and isinstance(actual, str) and actual.startswith("raised "):
        return f"{counts} `{check}` {one_line(actual, 90)}. Handle that input without errors."
    if actual is not None:
        if expected is not None:
            what = f"expected {one_line(expected, 60)} but got {one_line(actual, 60)}"
        else:
            what = f"{one_line(failure.get('actual_of') or 'the result', 60)} gave {one_line(actual, 60)}"
        return (f"{counts} `{check}` failed: {what}. "
                "Trace this input by hand and fix the logic or edge case it exposes.")
    return (f"{counts} `{check}` failed with {one_line(error or 'an error', 90)}. "
            "Handle that input correctly.")


def limit_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit]) + " ..."
