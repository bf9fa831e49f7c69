"""Stdin/stdout coding tasks (the shape of CodeContests, APPS, LiveCodeBench).

A record is {task_id, prompt, tests} with `tests` a list of {input, output}, or
CodeContests' `public_tests` / `private_tests`, each either a list of {input, output} or
one {input: [...], output: [...]} of parallel lists; optional `time_limit` (seconds, or
CodeContests' {seconds, nanos}), `memory_limit` (MiB; or CodeContests'
`memory_limit_bytes`), `float_tolerance` and `solution` (a reference program). Public
tests are shown in the feedback and the statement's examples; private ones are scored
(all tests when there are none) and never shown.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.config import EnvConfig
from workbench.envs.coding.feedback import one_line
from workbench.errors import EnvironmentSetupError
from workbench.sandbox import SandboxResult

TEST_KEYS = ("tests", "public_tests", "private_tests")
SHOWN_EXAMPLES = 2
EXAMPLE_CHARACTERS = 300
SHOWN_FAILURES = 3
MAX_FAILURES = 5
INSTRUCTION = (
    "Write a whole Python 3 program that reads the input from standard input and prints the "
    "answer to standard output. Answer with the program in a ```python code block."
)


def is_stdio_record(record: dict[str, Any]) -> bool:
    return any(key in record for key in TEST_KEYS)


def stdio_spec(record: dict[str, Any], where: str) -> dict[str, Any]:
    """The task's spec from a JSONL record; a malformed one is an error naming `where` and
    the task."""
    name = record.get("task_id")
    if not isinstance(name, str) or not isinstance(record.get("prompt"), str):
        raise EnvironmentSetupError(f"{where}: missing or non-text task_id or prompt")
    task = f"task {name!r}"
    if "test" in record and "tests" in record:
        raise EnvironmentSetupError(
            f"{where}: {task} has both `test` (assert code) and `tests` (stdin/stdout); give one"
        )
    if "tests" in record and ("public_tests" in record or "private_tests" in record):
        raise EnvironmentSetupError(
            f"{where}: {task} has both `tests` and public_tests/private_tests; give one or the other"
        )
    public = test_list(record.get("public_tests", record.get("tests")), where, task)
    private = test_list(record.get("private_tests"), where, task)
    if not public and not private:
        raise EnvironmentSetupError(f"{where}: {task} has no tests: it would pass any program")
    spec: dict[str, Any] = {"kind": "stdio", "prompt": record["prompt"], "public": public, "private": private}
    time_limit = seconds_of(record.get("time_limit"), where, task)
    if time_limit is not None:
        spec["time_limit"] = time_limit
    memory = record.get("memory_limit")
    if memory is None and isinstance(record.get("memory_limit_bytes"), int) and record["memory_limit_bytes"] > 0:
        memory = record["memory_limit_bytes"] / (1024 * 1024)
    if memory is not None:
        spec["memory_limit"] = positive(memory, "memory_limit", where, task, low=16)
    tolerance = record.get("float_tolerance")
    if tolerance is not None:
        spec["float_tolerance"] = positive(tolerance, "float_tolerance", where, task, low=0)
    solution = record.get("solution")
    if solution is not None:
        if not isinstance(solution, str):
            raise EnvironmentSetupError(f"{where}: {task}: solution must be text (a program)")
        spec["solution"] = solution
    return spec


def test_list(value: Any, where: str, task: str) -> list[dict[str, str]]:
    """[{input, output}] from either shape; None is no tests."""
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("input"), list) and isinstance(value.get("output"), list):
        if len(value["input"]) != len(value["output"]):
            raise EnvironmentSetupError(
                f"{where}: {task}: {len(value['input'])} inputs but {len(value['output'])} outputs"
            )
        value = [{"input": i, "output": o} for i, o in zip(value["input"], value["output"], strict=True)]
    if not isinstance(value, list):
        raise EnvironmentSetupError(
            f"{where}: {task}: tests must be a list of {{\"input\": ..., \"output\": ...}} "
            "or {\"input\": [...], \"output\": [...]}"
        )
    tests = []
    for number, test in enumerate(value, start=1):
        if not (isinstance(test, dict) and isinstance(test.get("input"), str) and isinstance(test.get("output"), str)):
            raise EnvironmentSetupError(f"{where}: {task}: test {number} needs text `input` and `output`")
        tests.append({"input": test["input"], "output": test["output"]})
    return tests


def seconds_of(value: Any, where: str, task: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict):  # CodeContests: {"seconds": 2, "nanos": 500000000}
        value = (value.get("seconds") or 0) + (value.get("nanos") or 0) / 1e9
    return positive(value, "time_limit", where, task, low=0, above=True)


def positive(value: Any, name: str, where: str, task: str, *, low: float, above: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or (value <= low if above else value < low):
        bound = f"above {low:g}" if above else f"at least {low:g}"
        raise EnvironmentSetupError(f"{where}: {task}: {name} must be a number {bound}, got {value!r}")
    return float(value)


# -- running ----------------------------------------------------------------------------


def stdio_request(spec: dict[str, Any], config: EnvConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the sandbox's `stdio` request, the submission's own limits) for a task: its time and
    memory limits per test (else env.sandbox's timeout and memory), within the ranges
    env.sandbox allows."""
    sandbox = config.sandbox
    tests = spec["public"] + spec["private"]
    per_test = min(float(spec.get("time_limit") or sandbox.timeout), 600.0)
    memory = int(spec.get("memory_limit") or sandbox.memory_mb)
    # Every test may take its whole limit, plus a fork's worth each; at most 600 s.
    budget = min(600.0, per_test * min(len(tests), 3) + 0.05 * len(tests) + sandbox.timeout)
    tolerance = spec.get("float_tolerance", config.float_tolerance)
    stdio = {"tests": tests, "time_limit": per_test, "memory_mb": memory,
             "output_limit_kb": sandbox.output_limit_kb, "float_tolerance": float(tolerance or 0.0),
             "budget": budget}
    limits = {"timeout": budget + 1.0, "cpu_seconds": min(600, max(sandbox.cpu_seconds, math.ceil(budget))),
              "memory_mb": max(memory, sandbox.memory_mb)}
    return stdio, limits


def stdio_feedback(result: SandboxResult, spec: dict[str, Any]) -> dict[str, Any]:
    """The step's feedback: the shared coding shape (success, passed, total, score, status,
    error, trace, failures, message) plus `kind: stdio` and the verdict counts. Score is the
    fraction of private tests passed (all tests when there are none); a failing private
    test is counted, never shown."""
    public_count = len(spec["public"])
    scored = range(public_count, public_count + len(spec["private"])) if spec["private"] \
        else range(public_count)
    by_index = dict(enumerate(result.checks))
    total = len(scored)
    finished = result.status == "ok"
    passed = sum(1 for index in scored if by_index.get(index, {}).get("passed") is True) if finished else 0
    verdicts: dict[str, int] = {}
    failures = []
    for index in range(public_count + len(spec["private"])):
        check = by_index.get(index)
        verdict = str(check.get("verdict") or "failed") if check else "not_run"
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        if verdict == "passed" or len(failures) >= MAX_FAILURES or not finished:
            continue
        public = index < public_count
        failure: dict[str, Any] = {
            "check": f"test {index + 1}" if public else f"hidden test {index - public_count + 1}",
            "verdict": verdict, "error": (check or {}).get("error"),
        }
        if public:  # a hidden test's input and output stay hidden
            failure.update(input=(check or {}).get("input"), expected=(check or {}).get("expected"),
                           actual=(check or {}).get("actual"))
        failures.append(failure)
    failures.sort(key=lambda failure: failure["check"].startswith("hidden"))  # shown ones first
    success = finished and passed == total
    score = passed / total if finished and total else 0.0
    error = result.error
    if error is not None:
        error = {"type": error.get("type"), "message": error.get("message"), "line": error.get("line")}
    if success:
        message = f"all {total} tests passed"
    elif finished:
        message = f"{passed}/{total} {'hidden ' if spec['private'] else ''}tests passed"
    else:
        message = result.message
    return {
        "kind": "stdio", "success": success, "passed": passed, "total": total, "score": score,
        "status": result.status, "error": error, "trace": result.trace, "failures": failures,
        "verdicts": verdicts, "message": message,
    }


VERDICT_WORDS = {
    "wrong_answer": "wrong answer", "runtime_error": "runtime error", "time_limit": "time limit exceeded",
    "memory_limit": "memory limit exceeded", "output_limit": "printed far too much", "not_run": "not run",
}


def shown(text: Any, limit: int = 120) -> str:
    """A test's text on one line with its line breaks visible (`\\n`), cut to `limit`."""
    text = str(text or "").rstrip("\n").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def stdio_observation(feedback: dict[str, Any]) -> str:
    """The feedback as the model reads it next."""
    if feedback["success"]:
        return f"All {feedback['total']} tests passed."
    status = feedback["status"]
    if status == "syntax_error":
        return f"Your program does not compile: {feedback['message']}."
    if status != "ok":
        return f"Your program was stopped: {feedback['message']}."
    lines = [f"{feedback['message'].capitalize()}."]
    for failure in feedback["failures"][:SHOWN_FAILURES]:
        lines.append(failure_line(failure))
    trace = (feedback.get("trace") or "").strip().splitlines()
    if len(trace) > 1:
        lines.append("\n".join(trace[-4:]))
    return "\n".join(lines)


def failure_line(failure: dict[str, Any]) -> str:
    verdict = failure.get("verdict")
    head = f"{failure['check']}: {VERDICT_WORDS.get(verdict, verdict)}"
    if "input" not in failure:
        return head if verdict == "wrong_answer" else f"{head} ({one_line(failure.get('error') or '', 100)})"
    where = f" on input {shown(failure['input'])}"
    if verdict == "wrong_answer":
        return f"{head}{where}: expected {shown(failure['expected'])}, got {shown(failure['actual']) or 'nothing'}"
    return f"{head}{where}: {one_line(failure.get('error') or '', 100)}"


def stdio_statement(spec: dict[str, Any]) -> str:
    """What the model reads first: the statement, its first public tests as examples, and
    what to answer."""
    parts = [spec["prompt"].rstrip()]
    for number, test in enumerate(spec["public"][:SHOWN_EXAMPLES], start=1):
        if test["input"][:EXAMPLE_CHARACTERS] in spec["prompt"]:
            continue  # the statement already shows it
        parts.append(f"Example {number} input:\n{cut(test['input'])}\nExample {number} output:\n{cut(test['output'])}")
    parts.append(INSTRUCTION)
    return "\n\n".join(parts)


def cut(text: str) -> str:
    text = text.rstrip("\n")
    return text if len(text) <= EXAMPLE_CHARACTERS else text[: EXAMPLE_CHARACTERS - 3] + "..."


# -- the template note -------------------------------------------------------------------


def stdio_note(feedback: dict[str, Any]) -> str:
    """What went wrong and what to change, from the structured feedback only: the tests'
    own inputs and outputs and the program's behaviour, never a solution."""
    if feedback.get("success"):
        return "All tests passed; keep this approach."
    status = feedback.get("status")
    error = feedback.get("error") or {}
    line = f" at line {error['line']}" if error.get("line") else ""
    if status == "syntax_error":
        return (f"The program did not compile: {error.get('type', 'SyntaxError')}{line} "
                f"({one_line(error.get('message', ''), 80)}). Fix it and answer with the whole program.")
    if status != "ok":
        return f"The run was stopped ({one_line(feedback.get('message', status), 80)}). Keep the program simple."
    failures = feedback.get("failures") or []
    counts = f"{feedback.get('passed', 0)}/{feedback.get('total', 0)} tests passed."
    if not failures:
        return f"{counts} Recheck the logic against the examples."
    failure = failures[0]
    verdict = failure.get("verdict")
    on = f" on input {shown(failure['input'], 60)}" if "input" in failure else ""
    if verdict == "wrong_answer" and "input" in failure:
        actual = shown(failure.get("actual"), 60)
        got = f"printed {actual}" if actual else "printed nothing"
        return (f"{counts} {failure['check']}{on} {got} but {shown(failure.get('expected'), 60)} was expected. "
                "Read the input exactly as given and print only the answer, in the format shown.")
    if verdict == "wrong_answer":
        return f"{counts} {failure['check']} gave a wrong answer. Check edge cases: smallest, largest, empty input."
    if verdict == "runtime_error":
        what = f"{error.get('type')}{line}: {one_line(error.get('message', ''), 70)}" if error.get("type") \
            else one_line(failure.get("error") or "an error", 70)
        return (f"{counts} The program raised {what}{on}. Read the input with input() or sys.stdin "
                "as the statement describes it, and define every name used.")
    if verdict == "time_limit":
        return f"{counts} The program was too slow{on}. Avoid brute force and loops that never end."
    if verdict == "memory_limit":
        return f"{counts} The program ran out of memory{on}. Avoid building huge lists."
    if verdict == "output_limit":
        return f"{counts} The program printed far too much{on}. Print only the answer, once."
    return f"{counts} {failure['check']} failed ({VERDICT_WORDS.get(verdict, verdict)}). Recheck the logic."
