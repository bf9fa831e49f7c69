"""What a submission's run becomes: the step's feedback dict and the text the model reads."""

from __future__ import annotations

from typing import Any

from workbench.envs.coding.checks import TestPlan
from workbench.sandbox import SandboxResult

MAX_FAILURES = 5
SHOWN_FAILURES = 3


def feedback_from(result: SandboxResult, plan: TestPlan) -> dict[str, Any]:
    """The step's feedback dict (JSON-serialisable). Only a run that finished earns partial
    credit: a syntax error, timeout or any stopped run scores 0."""
    total = len(plan.checks)
    # The sandbox already clamps what a submission reports; a score stays within 0..1 anyway.
    passed = max(0, min(int(result.passed), total))
    finished = result.status == "ok"
    success = finished and passed == total
    score = (passed / total if total else 1.0) if finished else 0.0
    failures = []
    for index, check in enumerate(result.checks):
        if not check.get("passed") and len(failures) < MAX_FAILURES:
            shown = plan.shown[index] if index < len(plan.shown) else check.get("source", "")
            failure = {"check": shown, "expected": check.get("expected"),
                       "actual": check.get("actual"), "error": check.get("error")}
            for extra in ("assert", "actual_of"):  # which assert failed in a loop; what `actual` is
                if check.get(extra):
                    failure[extra] = check[extra]
            failures.append(failure)
    error = result.error
    if error is not None:
        error = {"type": error.get("type"), "message": error.get("message"), "line": error.get("line")}
    if success:
        message = f"all {total} checks passed" if total else "ran without errors"
    elif finished:
        message = f"{passed}/{total} checks passed"
    else:
        message = result.message
    return {
        "success": success, "passed": passed, "total": total, "score": score,
        "status": result.status, "error": error, "trace": result.trace, "failures": failures,
        "message": message,
    }


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome(failure: dict[str, Any]) -> str:
    """`expected 3, got 4` / `candidate(1.33) gave 0.665` / the error, for one failed check."""
    expected, actual, error = failure.get("expected"), failure.get("actual"), failure.get("error")
    if actual is not None and expected is not None:
        return f"expected {one_line(expected, 80)}, got {one_line(actual, 80)}"
    if actual is not None:
        return f"{one_line(failure.get('actual_of') or 'it', 80)} gave {one_line(actual, 80)}"
    return one_line(error or "failed", 120)


def failed_check(failure: dict[str, Any], limit: int) -> str:
    """The failing assert; inside a loop, that assert and the loop's first line."""
    check = failure.get("check", "")
    if failure.get("assert"):
        return f"{one_line(failure['assert'], limit)} (in `{one_line(check.splitlines()[0], 60)}`)"
    return one_line(check, limit)


def observation_text(feedback: dict[str, Any]) -> str:
    """The feedback as the model reads it on its next turn."""
    status, error = feedback["status"], feedback.get("error") or {}
    if feedback["success"]:
        return f"All {feedback['total']} checks passed."
    if status == "syntax_error":
        return f"Your code does not compile: {feedback['message']}."
    lines = []
    if status == "ok":
        lines.append(f"{feedback['passed']}/{feedback['total']} checks passed.")
        for failure in feedback["failures"][:SHOWN_FAILURES]:
            lines.append(f"Failed: {failed_check(failure, 120)} -> {outcome(failure)}")
        if error.get("type"):
            lines.append(trace_tail(feedback))
    elif status == "exception":
        lines.append(f"Your code raised {feedback['message']}.")
        lines.append(trace_tail(feedback))
    else:
        lines.append(f"Your code was stopped: {feedback['message']}.")
    return "\n".join(line for line in lines if line)


def trace_tail(feedback: dict[str, Any]) -> str:
    trace = (feedback.get("trace") or "").strip().splitlines()
    return "\n".join(trace[-6:]) if len(trace) > 1 else ""
