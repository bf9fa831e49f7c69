"""What runs inside the forked child: confine the process, run the program and its checks.

The child reports over its own pipe, one JSON object per line: a `check` record per
check as it finishes (so a timeout still shows what ran) and one `final` record. Its
stdout and stderr go to a different pipe, so nothing the program prints can forge a
result. It always leaves through `os._exit`: the server's cleanup code must never run
here.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import errno
import json
import linecache
import os
import resource
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Any

REPR_LIMIT = 200
MESSAGE_LIMIT = 500
TRACE_FRAMES = 6
SUBMISSION = "<submission>"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_repr(value: Any) -> str:
    try:
        return shorten(repr(value), REPR_LIMIT)
    except BaseException as error:  # a broken __repr__ is the program's bug, not ours
        return f"<unprintable {type(value).__name__}: {type(error).__name__}>"


def describe(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:
        text = ""
    return shorten(text.splitlines()[0] if text else "", MESSAGE_LIMIT)


class Reporter:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, record: dict[str, Any]) -> None:
        data = memoryview((json.dumps(record) + "\n").encode("utf-8", "replace"))
        while data:
            data = data[os.write(self.fd, data) :]


# -- confinement -------------------------------------------------------------------


def confine(
    limits: dict[str, Any], workdir: str, output_fd: int, close_fds: list[int], server_pid: int,
    uid: int | None = None, user_namespace: bool = False, namespace_filter: Any = None,
) -> None:
    """Make this freshly forked process a sandbox: own process group, limits, scrubbed
    environment, private cwd, parent-death signal; then `uid` (when given) with no
    capabilities and no way to gain any, and (`namespace_filter`, a _seccomp
    Filter) no way into new namespaces."""
    from workbench.sandbox import _user as user
    from workbench.sandbox._procs import die_with_parent

    # Signal dispositions are the server's defaults (SIGINT ignored: Ctrl-C in the
    # workbench's terminal is not for submissions), so nothing to undo here.
    die_with_parent(server_pid)
    # Its own process group, so one killpg reaches everything it forks. Not setsid: the
    # server already runs in a session without a terminal, and setsid creates a scheduler
    # autogroup, which costs milliseconds per submission.
    os.setpgid(0, 0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    for fd in [null, output_fd, *close_fds]:
        os.close(fd)
    os.chdir(workdir)
    # Only PATH, HOME and LANG. The server's own environment is already that small, so
    # removing the few others is cheaper than rebuilding it.
    for name in [name for name in os.environ if name not in ("PATH", "LANG")]:
        del os.environ[name]
    os.environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    os.environ.setdefault("LANG", "C.UTF-8")
    os.environ["HOME"] = workdir
    import tempfile

    tempfile.tempdir = workdir
    megabyte = 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    # The soft CPU limit sends SIGXCPU (our "cpu" status); the hard one a second later is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    # POSIX message queues would outlive the submission in the server's IPC namespace.
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    if uid is not None:
        # Counts this uid's processes and threads: this submission's only (a uid per server).
        budget = user.process_budget(int(limits["max_processes"]))
        resource.setrlimit(resource.RLIMIT_NPROC, (budget, budget))
        user.become(uid)
    else:
        if user_namespace:
            user.drop_capabilities()
        user.no_new_privileges()
    if namespace_filter is not None and not namespace_filter.install():
        raise OSError("the seccomp filter the server tested was refused")
    die_with_parent(server_pid)  # again: a change of uid clears the parent-death signal
    sys.stdout.reconfigure(line_buffering=True)  # a killed program still shows what it printed
    sys.stderr.reconfigure(line_buffering=True)
    if "random" in sys.modules:
        sys.modules["random"].seed()  # a fresh process would not share the server's sequence


# -- running -----------------------------------------------------------------------


class Finished(Exception):
    """The submission ended early (exception, exit, memory); carries the final record."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record.get("status"))
        self.record = record


@dataclass
class Compiled:
    """A request's code objects; a source that does not compile holds its SyntaxError."""

    program: types.CodeType | BaseException
    prelude: types.CodeType | BaseException | None
    setup: types.CodeType | BaseException | None
    checks: list[types.CodeType | BaseException]


def compile_codes(request: dict[str, Any]) -> tuple:
    """(program, prelude, setup, [checks]) as code objects, None where absent or not
    compiling (the server compiles before forking; see server.precompile)."""
    checks = request.get("checks") or []
    return (
        compiled_or_none(request.get("program") or "", SUBMISSION),
        compiled_or_none(request.get("prelude") or "", "<prelude>"),
        compiled_or_none(request.get("setup") or "", "<setup>"),
        [compiled_or_none(source, f"<check {i + 1}>") for i, source in enumerate(checks)],
    )


def compiled_or_none(source: str, filename: str) -> types.CodeType | None:
    if not source:
        return None
    code = compiled(source, filename)
    return None if isinstance(code, BaseException) else code


def compile_request(request: dict[str, Any], codes: tuple | None = None) -> Compiled:
    """The request's code objects: those compiled ahead (`codes`), the rest compiled here
    (a source that fails to compile becomes its exception, raised when it would run)."""
    checks = request.get("checks") or []
    SOURCES.clear()
    SOURCES[SUBMISSION] = request.get("program") or ""
    SOURCES.update((f"<check {i + 1}>", source) for i, source in enumerate(checks))
    program, prelude, setup, check_codes = codes or (None, None, None, [None] * len(checks))

    def ready(code: types.CodeType | None, source: str, filename: str) -> Any:
        return code if code is not None else compiled(source, filename)

    return Compiled(
        program=ready(program, SOURCES[SUBMISSION], SUBMISSION),
        prelude=ready(prelude, request["prelude"], "<prelude>") if request.get("prelude") else None,
        setup=ready(setup, request["setup"], "<setup>") if request.get("setup") else None,
        checks=[ready(code, source, f"<check {i + 1}>")
                for i, (code, source) in enumerate(zip(check_codes, checks, strict=True))],
    )


def compiled(source: str, filename: str) -> types.CodeType | BaseException:
    try:
        return compile(source, filename, "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        return error


def run_submission(request: dict[str, Any], reporter: Reporter, code: Compiled | None = None) -> None:
    """A function submission and its checks. A stdin/stdout one goes to `_stdio` instead;
    `server.run_request` chooses, so this module and `_stdio` (which uses its helpers) do
    not import each other."""
    code = code or compile_request(request, compile_codes(request))
    try:
        namespace = execute_program(request, code)
        failure = run_checks(request.get("checks") or [], code.checks, namespace,
                             request.get("entry_point") or "", reporter)
        final = {"kind": "final", "status": "ok"}
        if failure is not None:
            final.update(failure)
    except Finished as finished:
        final = finished.record
    flush_output()
    reporter.send(final)


def execute_program(request: dict[str, Any], code: Compiled) -> dict[str, Any]:
    if isinstance(code.program, BaseException):
        raise Finished(syntax_error_record(code.program))
    module = types.ModuleType("__main__" if request.get("main", True) else "submission")
    module.__dict__["__builtins__"] = builtins
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    if code.prelude is not None:
        run_guarded(code.prelude, namespace, "the task's own code")
    run_guarded(code.program, namespace, "")
    entry_point = request.get("entry_point") or ""
    if entry_point:
        if not callable(namespace.get(entry_point)):
            message = f"the code does not define {entry_point}()"
            raise Finished(
                {"kind": "final", "status": "exception", "message": f"NameError: {message}",
                 "error": {"type": "NameError", "message": message, "line": None}}
            )
        namespace["candidate"] = namespace[entry_point]
    if code.setup is not None:
        run_guarded(code.setup, namespace, "the test setup")
    return namespace


def run_guarded(code: types.CodeType | BaseException, namespace: dict, where: str) -> None:
    """exec with every way out of a program turned into a final record."""
    try:
        if isinstance(code, BaseException):
            raise code
        exec(code, namespace)
    except SystemExit as error:
        raise Finished(exit_record(error, where or "the program")) from None
    except MemoryError:
        namespace.clear()  # free what the program holds so the report itself can be built
        raise Finished({"kind": "final", "status": "memory"}) from None
    except BaseException as error:
        record = exception_record(error)
        if where:
            record["message"] = f"{where} failed: {record['message']}"
        raise Finished(record) from None


def run_checks(
    checks: list[str], codes: list[types.CodeType | BaseException], namespace: dict[str, Any],
    entry_point: str, reporter: Reporter,
) -> dict[str, Any] | None:
    """Run each check; returns error/trace of the first check that raised a non-assert error."""
    first_error: dict[str, Any] | None = None
    for index, (source, code) in enumerate(zip(checks, codes, strict=True)):
        filename = f"<check {index + 1}>"
        record: dict[str, Any] = {
            "kind": "check", "index": index, "passed": False,  # the Sandbox adds the source it sent
            "expected": None, "actual": None, "error": None,
        }
        try:
            if isinstance(code, BaseException):
                raise code
            exec(code, namespace)
            record["passed"] = True
        except SystemExit as error:
            raise Finished(exit_record(error, f"check {index + 1}")) from None
        except MemoryError:
            namespace.clear()
            raise Finished({"kind": "final", "status": "memory"}) from None
        except BaseException as error:
            explain_failure(record, source, filename, error, namespace, entry_point)
            if first_error is None and not isinstance(error, AssertionError):
                described = exception_record(error)
                first_error = {"error": described["error"], "trace": described["trace"]}
        reporter.send(record)
    return first_error


# -- describing failures ----------------------------------------------------------


def explain_failure(
    record: dict[str, Any], source: str, filename: str, error: BaseException,
    namespace: dict[str, Any], entry_point: str,
) -> None:
    """Fill expected/actual/error of a failed check, evaluating the assert's sides again."""
    remember_sources()
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, AssertionError):
        message = describe(error)
        record["error"] = f"AssertionError: {message}" if message else "assertion failed"
        line = next((f.lineno for f in reversed(frames) if f.filename == filename), None)
        node = failing_assert(source, line)
        if node is not None:
            record["expected"], record["actual"], record["actual_of"] = assert_sides(
                node, namespace, entry_point
            )
            text = ast.get_source_segment(source, node) or ""
            if text.strip() != source.strip():
                record["assert"] = shorten(text, MESSAGE_LIMIT)  # the one that failed in a loop
        return
    where = next((f.lineno for f in reversed(frames) if f.filename == SUBMISSION), None)
    suffix = f" (line {where})" if where else ""
    record["error"] = shorten(f"{type(error).__name__}: {describe(error)}{suffix}", MESSAGE_LIMIT)


def failing_assert(source: str, line: int | None) -> ast.Assert | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    asserts = [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    if line is not None:
        inside = [n for n in asserts if n.lineno <= line <= (n.end_lineno or n.lineno)]
        if inside:
            return max(inside, key=lambda n: n.lineno)
    return asserts[0] if len(asserts) == 1 else None


OPERATORS = {
    ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.IsNot: "is not",
}
"""Comparisons other than == and `is`: the expected value is shown with its operator."""


def assert_sides(
    node: ast.Assert, namespace: dict[str, Any], entry_point: str
) -> tuple[str | None, str, str]:
    """(expected, actual, the expression `actual` is the value of), values as short reprs.

    `actual` is what the candidate returned whenever the assert shows the call."""
    names = {"candidate", entry_point}
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        if calls(right, names) and not calls(left, names):
            left, right = right, left
        operator = OPERATORS.get(type(test.ops[0]))
        if operator is None:  # == and is: both sides are values of the same kind
            return evaluate(right, namespace), *evaluate_shown(left, namespace)
        if is_call(left, names):
            return f"{operator} {evaluate(right, namespace)}", *evaluate_shown(left, namespace)
        # `abs(candidate(x) - y) < eps`: the bound says little; what the candidate returned does.
        return None, *evaluate_shown(first_call(left, names) or left, namespace)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return "False", *evaluate_shown(first_call(test.operand, names) or test.operand, namespace)
    return "True", *evaluate_shown(first_call(test, names) or test, namespace)


def is_call(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def calls(node: ast.AST, names: set[str]) -> bool:
    return first_call(node, names) is not None


def first_call(node: ast.AST, names: set[str]) -> ast.expr | None:
    return next((n for n in ast.walk(node) if is_call(n, names)), None)


def evaluate_shown(node: ast.expr, namespace: dict[str, Any]) -> tuple[str, str]:
    return evaluate(node, namespace), shorten(ast.unparse(node), REPR_LIMIT)


def evaluate(node: ast.expr, namespace: dict[str, Any]) -> str:
    try:
        return safe_repr(eval(compile(ast.Expression(node), "<check>", "eval"), namespace))
    except MemoryError:
        raise
    except BaseException as error:
        return f"raised {type(error).__name__}: {describe(error)}"


# -- records ------------------------------------------------------------------------


def syntax_error_record(error: SyntaxError | ValueError) -> dict[str, Any]:
    line = getattr(error, "lineno", None)
    message = getattr(error, "msg", None) or describe(error)
    text = (getattr(error, "text", None) or "").rstrip()
    return {
        "kind": "final", "status": "syntax_error",
        "message": f"SyntaxError at line {line}: {message}" if line else f"SyntaxError: {message}",
        "error": {"type": type(error).__name__, "message": message, "line": line,
                  "offset": getattr(error, "offset", None), "text": shorten(text, REPR_LIMIT)},
    }


def exception_record(error: BaseException) -> dict[str, Any]:
    remember_sources()
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename == SUBMISSION]
    line = ours[-1].lineno if ours else None
    name, text = type(error).__name__, describe(error)
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        status = "file_size"
    else:
        status = "exception"
    where = f" at line {line}" if line else ""
    return {
        "kind": "final", "status": status,
        "message": shorten(f"{name}{where}: {text}" if text else f"{name}{where}", MESSAGE_LIMIT),
        "error": {"type": name, "message": text, "line": line},
        "trace": trimmed_trace(ours, name, text),
    }


def trimmed_trace(frames: list[traceback.FrameSummary], name: str, text: str) -> str:
    """Only the submitted code's frames; deep recursions keep their first and last few."""
    if len(frames) > TRACE_FRAMES:
        hidden = len(frames) - TRACE_FRAMES
        head, tail = frames[:2], frames[-(TRACE_FRAMES - 2) :]
        body = traceback.format_list(head) + [f"  ... {hidden} more frames ...\n"]
        body += traceback.format_list(tail)
    else:
        body = traceback.format_list(frames)
    header = ["Traceback (most recent call last):\n"] if frames else []
    return "".join(header + body) + (f"{name}: {text}" if text else name)


def exit_record(error: SystemExit, where: str) -> dict[str, Any]:
    code = error.code
    return {
        "kind": "final", "status": "exited", "exit_code": code if isinstance(code, int) else None,
        "message": f"{where} called sys.exit({safe_repr(code) if code is not None else ''})"
                   " before the checks finished",
    }


SOURCES: dict[str, str] = {}
"""Filename -> source of what this submission runs, for tracebacks."""


def remember_sources() -> None:
    # Tracebacks of exec'd code show their lines only if linecache knows the text; done
    # only when a traceback is about to be read, not for every run.
    for filename, source in SOURCES.items():
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
