"""What runs in the child for a stdin/stdout task: the program once per test, each in a fork.

The child never runs the submitted program itself: it is the tests' harness. Per test it
forks a grandchild in a process group of its own, with the test's input as fd 0 (a
memfd, so `input()`, `sys.stdin.buffer` and `open(0)` all read it), stdout and stderr on
pipes, and fresh globals (a fork of the harness, so nothing one test changes reaches the
next). The harness reads stdout up to a cap, stops the grandchild at the test's time
limit, kills its process group, and judges the output. One fork per test costs about a
millisecond, so hundreds of tests take well under a second beside the programs' own time
(README: the 300-test figure); running them all in one process with exec would be
cheaper still but lets one test's state (a module cache, a patched builtin, an
`os._exit`) reach the others.

What a test's grandchild reports (its exception, on a pipe of its own) is untrusted, and
so is everything the harness sends on: the server reads these records like any other.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import math
import os
import resource
import select
import signal
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

from workbench.sandbox._child import (
    MESSAGE_LIMIT,
    Compiled,
    Reporter,
    exception_record,
    flush_output,
    shorten,
    syntax_error_record,
)

VERDICTS = (
    "passed", "wrong_answer", "runtime_error", "time_limit", "memory_limit", "output_limit", "not_run",
)
"""What became of one test; a check record's `verdict` is one of these."""
SHOWN_CHARACTERS = 600
"""Characters of a test's input, expected and actual output kept in its record."""
MEMORY_EXIT = 86
"""The grandchild's exit code after a MemoryError (its report pipe may need memory too)."""
ERROR_BYTES = 32 * 1024
STDERR_BYTES = 4 * 1024
STOP_AFTER_TIMEOUTS = 2
"""Tests past the time limit before the rest are not run: a program that timed out twice
would most likely time out on every test, and hundreds of time limits would add up."""
BUDGET_MARGIN = 0.05
"""Seconds kept back from the submission's budget for the final record."""


@dataclass
class Outcome:
    """What one run of the program did, before its output is judged."""

    stdout: bytes = b""
    stderr: bytes = b""
    report: bytes = b""
    exit_status: int | None = None
    timed_out: bool = False
    output_capped: bool = False
    seconds: float = 0.0


def run_tests(request: dict[str, Any], reporter: Reporter, code: Compiled) -> None:
    """Run the program on every test of `request["stdio"]`; one check record per test, then
    the final record (with the first runtime error's trace)."""
    if isinstance(code.program, BaseException):
        reporter.send(syntax_error_record(code.program))
        return
    spec = request["stdio"]
    per_test = float(spec["time_limit"])
    memory_mb = int(spec["memory_mb"])
    tolerance = float(spec.get("float_tolerance") or 0.0)
    output_cap = int(spec["output_limit_kb"]) * 1024
    deadline = time.monotonic() + float(spec["budget"]) - BUDGET_MARGIN
    first_error: dict[str, Any] | None = None
    timeouts = 0
    for index, test in enumerate(spec["tests"]):
        expected = test["output"]
        left = deadline - time.monotonic()
        if timeouts >= STOP_AFTER_TIMEOUTS or left <= 0:
            why = (f"not run: {timeouts} tests already went past the time limit" if timeouts
                   else "not run: the submission's time for all its tests ran out")
            record = test_record(index, "not_run", test["input"], expected, "", why)
        else:
            keep = len(expected.encode("utf-8", "replace")) + output_cap
            outcome = run_one(code.program, test["input"], min(per_test, left), memory_mb, keep, reporter.fd)
            record, error = judged(index, test, outcome, per_test, memory_mb, tolerance)
            if record["verdict"] == "time_limit":
                timeouts += 1
            if error is not None and first_error is None:
                first_error = error
        reporter.send(record)
    final: dict[str, Any] = {"kind": "final", "status": "ok"}
    if first_error is not None:
        final.update({"error": first_error.get("error"), "trace": first_error.get("trace", "")})
    flush_output()
    reporter.send(final)


def judged(
    index: int, test: dict[str, str], outcome: Outcome, per_test: float, memory_mb: int, tolerance: float,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the test's check record, the runtime error's {error, trace} if it raised)."""
    actual = outcome.stdout.decode("utf-8", "replace")
    source_input, expected = test["input"], test["output"]
    status = outcome.exit_status
    error = None
    if outcome.output_capped:
        return test_record(index, "output_limit", source_input, expected, actual,
                           "printed far more than the expected output; stopped"), None
    if outcome.timed_out or (status is not None and os.WIFSIGNALED(status)
                             and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL)):
        return test_record(index, "time_limit", source_input, expected, actual,
                           f"time limit exceeded ({per_test:g} s)"), None
    if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == MEMORY_EXIT:
        return test_record(index, "memory_limit", source_input, expected, actual,
                           f"memory limit exceeded ({memory_mb} MiB)"), None
    if status is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        error = reported_error(outcome.report)
        if error is not None:
            message = error["error"].get("message") or ""
            line = error["error"].get("line")
            where = f" at line {line}" if line else ""
            text = f"{error['error'].get('type')}{where}: {message}" if message else f"{error['error'].get('type')}{where}"
        elif status is not None and os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name if os.WTERMSIG(status) in signal.Signals._value2member_map_ \
                else str(os.WTERMSIG(status))
            text = f"killed by {name}"
        else:
            code = os.WEXITSTATUS(status) if status is not None else "?"
            text = f"exited with code {code}"
        stderr = outcome.stderr.decode("utf-8", "replace").strip()
        if error is None and stderr:
            error = {"error": {"type": "RuntimeError", "message": shorten(stderr.splitlines()[-1], MESSAGE_LIMIT),
                               "line": None}, "trace": stderr[-STDERR_BYTES:]}
        return test_record(index, "runtime_error", source_input, expected, actual, shorten(text, MESSAGE_LIMIT)), error
    verdict = "passed" if same_output(actual, expected, tolerance) else "wrong_answer"
    return test_record(index, verdict, source_input, expected, actual, None), None


def test_record(
    index: int, verdict: str, source_input: str, expected: str, actual: str, error: str | None,
) -> dict[str, Any]:
    return {
        "kind": "check", "index": index, "passed": verdict == "passed", "verdict": verdict,
        "input": shorten(source_input, SHOWN_CHARACTERS), "expected": shorten(expected, SHOWN_CHARACTERS),
        "actual": shorten(actual, SHOWN_CHARACTERS), "error": error,
    }


def reported_error(report: bytes) -> dict[str, Any] | None:
    """The grandchild's exception record as {error: {type, message, line}, trace}; None if
    it sent none that is well formed (it is the program's process: anything may be there)."""
    try:
        value = json.loads(report.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("error"), dict):
        return None
    error = value["error"]
    line = error.get("line")
    return {
        "error": {"type": shorten(str(error.get("type") or "Error"), 100),
                  "message": shorten(str(error.get("message") or ""), MESSAGE_LIMIT),
                  "line": line if type(line) is int else None},
        "trace": shorten(str(value.get("trace") or ""), ERROR_BYTES),
    }


# -- comparing outputs ------------------------------------------------------------------


def output_lines(text: str) -> list[str]:
    """The output as judged: trailing whitespace off each line, trailing blank lines off."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def same_output(actual: str, expected: str, tolerance: float = 0.0) -> bool:
    """Equal after trimming (output_lines); with a tolerance, numbers on the same line at
    the same place may differ by it (absolute, or relative to the expected number)."""
    got, want = output_lines(actual), output_lines(expected)
    if got == want:
        return True
    if tolerance <= 0 or len(got) != len(want):
        return False
    for line, wanted in zip(got, want, strict=True):
        tokens, wanted_tokens = line.split(), wanted.split()
        if len(tokens) != len(wanted_tokens):
            return False
        if not all(a == b or close_numbers(a, b, tolerance) for a, b in zip(tokens, wanted_tokens, strict=True)):
            return False
    return True


def close_numbers(actual: str, expected: str, tolerance: float) -> bool:
    try:
        got, want = float(actual), float(expected)
    except ValueError:
        return False
    if not (math.isfinite(got) and math.isfinite(want)):
        return False
    return abs(got - want) <= tolerance * max(1.0, abs(want))


# -- one run ------------------------------------------------------------------------------


def run_one(program: types.CodeType, stdin: str, seconds: float, memory_mb: int, keep: int, report_fd: int) -> Outcome:
    """Run the program once in a fork with `stdin` as its input; stop it after `seconds` or
    once it printed more than `keep` bytes; kill its whole process group afterwards."""
    input_fd = os.memfd_create("stdin", 0)
    data = memoryview(stdin.encode("utf-8", "replace"))
    while data:
        data = data[os.write(input_fd, data) :]
    os.lseek(input_fd, 0, os.SEEK_SET)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    rep_read, rep_write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the grandchild: never returns
        status = 120
        try:
            os.setpgid(0, 0)
            os.dup2(input_fd, 0)
            os.dup2(out_write, 1)
            os.dup2(err_write, 2)
            for fd in (input_fd, out_read, out_write, err_read, err_write, rep_read, report_fd):
                os.close(fd)  # the harness's record pipe above all: the program never holds it
            confine_test(seconds, memory_mb)
            status = execute(program, rep_write)
        finally:
            os._exit(status)
    for fd in (input_fd, out_write, err_write, rep_write):
        os.close(fd)
    outcome = Outcome()
    try:
        watch(pid, outcome, out_read, err_read, rep_read, started + seconds, keep)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # whatever the test forked goes with it
        if outcome.exit_status is None:
            with contextlib.suppress(ChildProcessError):
                outcome.exit_status = os.waitpid(pid, 0)[1]
        reap_others()
        outcome.stdout += read_available(out_read, keep - len(outcome.stdout))
        outcome.stderr += read_available(err_read, STDERR_BYTES)
        outcome.report += read_available(rep_read, ERROR_BYTES)
        for fd in (out_read, err_read, rep_read):
            os.close(fd)
    outcome.seconds = time.monotonic() - started
    return outcome


def confine_test(seconds: float, memory_mb: int) -> None:
    """The test's own CPU and memory limits (its CPU clock starts at 0 with the fork)."""
    cpu = max(1, math.ceil(seconds))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:  # the harness's own limit is the ceiling
        cpu, hard = min(cpu, hard), min(cpu + 1, hard)
    else:
        hard = cpu + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    _, memory_hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = memory_mb * 1024 * 1024
    if memory_hard != resource.RLIM_INFINITY:
        memory = min(memory, memory_hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def execute(program: types.CodeType, report_fd: int) -> int:
    """Run the program as `__main__` with fresh standard streams; its exit code."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
                                 errors="replace")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False), 1 << 16),
                                  encoding="utf-8", errors="replace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace",
                                  write_through=True)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    code = 0
    try:
        exec(program, module.__dict__)
    except SystemExit as error:
        code = exit_code(error.code)
    except MemoryError:
        module.__dict__.clear()
        return MEMORY_EXIT
    except BaseException as error:  # the program's own failure: reported, not ours
        record = exception_record(error)
        with contextlib.suppress(BaseException):
            os.write(report_fd, json.dumps({"error": record["error"], "trace": record["trace"]}).encode()[:ERROR_BYTES])
        code = 1
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
    return code


def exit_code(value: Any) -> int:
    """sys.exit's argument as the process would exit: None is 0, a number itself, text 1."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 0xFF
    with contextlib.suppress(BaseException):
        sys.stderr.write(f"{value}\n")
    return 1


def watch(pid: int, outcome: Outcome, out_read: int, err_read: int, rep_read: int, deadline: float, keep: int) -> None:
    """Read the test's pipes until it exits, time is up, or it printed more than `keep`."""
    exited = pidfd(pid)
    poller = select.poll()
    for fd in (out_read, err_read, rep_read):
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    if exited is not None:
        poller.register(exited, select.POLLIN)
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                outcome.timed_out = True
                return
            wait = deadline - now if exited is not None else min(deadline - now, 0.002)
            for fd, _ in poller.poll(wait * 1000):
                if fd == exited:
                    continue
                chunk = read_chunk(fd)
                if chunk is None:
                    poller.unregister(fd)
                elif fd == out_read:
                    outcome.stdout += chunk
                    if len(outcome.stdout) > keep:
                        outcome.stdout = outcome.stdout[:keep]
                        outcome.output_capped = True
                        return
                elif fd == err_read:
                    outcome.stderr = (outcome.stderr + chunk)[-STDERR_BYTES:]
                else:
                    outcome.report = (outcome.report + chunk)[-ERROR_BYTES:]
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                outcome.exit_status = status
                return
    finally:
        if exited is not None:
            os.close(exited)


def read_chunk(fd: int) -> bytes | None:
    """What the pipe holds now (b"" if nothing yet), None at its end."""
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""
    return chunk or None


def read_available(fd: int, room: int) -> bytes:
    """Whatever is left in a pipe, without waiting (a process the test left may hold it open)."""
    os.set_blocking(fd, False)
    room = max(0, room)
    found = bytearray()
    read = 0
    while read <= room + (1 << 20):  # an escaped writer cannot keep the harness here
        chunk = read_chunk(fd)
        if not chunk:
            break
        read += len(chunk)
        if len(found) < room:
            found += chunk
    return bytes(found[:room])


def reap_others() -> None:
    """Collect any other child that exited (a test's process that outlived its group)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
