"""The pre-started sandbox server: `python -m workbench.sandbox.server CONFIG_JSON`.

It reads submissions as length-prefixed JSON on stdin, forks a fresh child for each
(see _child), watches it (wall clock, output size, process count), then kills
its process group and every descendant that escaped it, removes the System V IPC
objects it left (_ipc), and answers on stdout. The server is a child subreaper,
so a setsid'd grandchild whose parent exits reparents here instead of to init and the
sweep still finds it; the sweep runs whatever happened while the submission ran. What
the child reports is untrusted input (_records). It dies with the workbench
(PR_SET_PDEATHSIG) and its children die with it.

Started by root, it runs every child as a uid of its own (see _user). It makes
itself undumpable, so its /proc files (environ, mem) belong to root and a child running
as the same user cannot read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import linecache
import os
import select
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.sandbox import _ipc as ipc
from workbench.sandbox import _procs as procs
from workbench.sandbox import _seccomp as seccomp
from workbench.sandbox import _user as user
from workbench.sandbox._cgroup import CGROUP_PREFIX, PidsCgroup, remove_stale_cgroups
from workbench.sandbox._namespaces import enter_namespaces
from workbench.sandbox._protocol import ChannelClosed, receive_frame, send_frame
from workbench.sandbox._records import Records
from workbench.sandbox._workspace import Workspace

# Imported once here so each forked child finds them ready instead of paying for imports.
PRELOAD = (
    "ast", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "fractions",
    "functools", "hashlib", "heapq", "itertools", "json", "math", "operator", "random", "re",
    "statistics", "string", "typing", "workbench.sandbox._child", "workbench.sandbox._stdio",
)
SCAN_INTERVAL = 0.025
"""Seconds between process counts while a submission runs (a /proc scan without a cgroup)."""
SWEEP_TIMEOUT = 5.0
NO_PIDFD_TICK = 0.002
PRECOMPILE_LIMIT = 256 * 1024
"""Characters of source the server compiles itself; beyond that a slow compile could stall it."""
EXIT_GRACE = 0.2
"""A child that sent its final record exits at once; after this it is killed like the rest."""
RECORD_BYTES = 1 << 20
RECORD_BYTES_PER_CHECK = 16 * 1024
"""Bytes of records a submission may send (its real records are far smaller): past
RECORD_BYTES plus this per check, it is stopped for flooding its result pipe."""
REQUEST_LIMITS = {"timeout": (0.001, 600.0), "cpu_seconds": (1, 600), "memory_mb": (16, 1 << 20)}
"""Limits one request may set for itself (a stdin/stdout task's own time and memory), and
the range each is held to: the same ranges env.sandbox allows."""


@dataclass
class Watch:
    """What the server saw of one submission while it ran."""

    pid: int
    refused_before: int = 0
    exit_status: int | None = None
    stop: str = ""
    output: bytearray = field(default_factory=bytearray)
    output_total: int = 0
    records: Records = field(default_factory=lambda: Records(0, RECORD_BYTES))
    leftovers: int = 0
    limits: dict[str, Any] = field(default_factory=dict)
    """The limits this submission ran under: the server's, with the request's own."""
    unit: str = "checks"
    """What its records count: checks, or a stdin/stdout task's tests."""


class Server:
    def __init__(self, config: dict[str, Any]) -> None:
        self.limits = config["limits"]
        self.base = config["base"]
        self.pid = os.getpid()
        self.output_cap = int(self.limits["output_limit_kb"]) * 1024
        # Output past the cap is dropped; a program that keeps printing far past it is stopped.
        self.output_ceiling = max(16 * self.output_cap, 1 << 20)
        self.max_processes = int(self.limits["max_processes"])
        self.cgroup: PidsCgroup | None = None
        self.protocol_fds: list[int] = []
        self.workspace = Workspace(self.base)
        # The cgroup's count of refused forks only moves while a submission runs, so the
        # count read after one submission is the baseline of the next.
        self.refused_seen = 0
        self.uid: int | None = None
        """The uid children run as; None: the server's own."""
        self.user_namespace = False
        self.ipc_namespace = False
        """Whether every System V IPC object this server sees is a submission's."""
        self.seccomp: seccomp.Filter | None = None
        """The filter children install to keep out of new namespaces; None: not available."""

    # -- one submission --------------------------------------------------------------

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        limits = request_limits(self.limits, request)
        workdir = self.workspace.ready()
        code = precompile(request)
        output_read, output_write = os.pipe()
        result_read, result_write = os.pipe()
        # Forked per submission, not ahead of time: a child parked while the server works
        # would make every page the server touches a copy-on-write fault, which costs more
        # CPU than the fork saves.
        pid = os.fork()
        if pid == 0:
            self.child(request, limits, code, workdir, output_write, result_write, [output_read, result_read])
        os.close(output_write)
        os.close(result_write)
        total = request_total(request)
        watch = Watch(pid, refused_before=self.refused_seen,
                      records=Records(total, RECORD_BYTES + RECORD_BYTES_PER_CHECK * total),
                      limits=limits, unit="tests" if request.get("stdio") else "checks")
        try:
            try:
                self.supervise(watch, output_read, result_read, started)
                if self.refused_forks() > watch.refused_before:
                    watch.stop = watch.stop or "process_limit"
            finally:
                # Whatever went wrong above, nothing the submission started outlives it.
                self.sweep(watch)
                self.remove_ipc_objects()
            # Read after the sweep: a fork bomb goes on being refused until it is killed.
            self.refused_seen = self.refused_forks()
            self.drain(watch, output_read, result_read)
        finally:
            os.close(output_read)
            os.close(result_read)
            self.workspace.clean()
        return self.answer(request, watch, time.monotonic() - started)

    def child(
        self, request: dict, limits: dict, code: Any, workdir: str, output_fd: int, result_fd: int,
        others: list[int],
    ) -> None:
        from workbench.sandbox import _child as child

        status = 120
        try:
            close = [*others, *self.protocol_fds]
            child.confine(limits, workdir, output_fd, close, self.pid, self.uid, self.user_namespace,
                          self.seccomp)
            run_request(request, child.Reporter(result_fd), code)
            status = 0
        except BaseException:
            status = 121
        finally:
            os._exit(status)

    def supervise(self, watch: Watch, output_fd: int, result_fd: int, started: float) -> None:
        deadline = started + float(watch.limits["timeout"])
        poller = select.poll()  # no kernel object to create per submission, unlike epoll
        for fd in (output_fd, result_fd):
            os.set_blocking(fd, False)
        # Records are not a reason to wake up: they are read whenever the loop runs (output,
        # exit, or the periodic count), so a run of many checks costs no wake-up per check.
        poller.register(output_fd, select.POLLIN)
        # A pidfd turns readable the moment the child exits. Without one (Linux < 5.3) the
        # loop wakes every few milliseconds to ask. No SIGCHLD handler: a child would have
        # to undo it, and changing signal handlers after the fork costs it page faults.
        exited = child_exit_fd(watch.pid)
        if exited is not None:
            poller.register(exited, select.POLLIN)
        try:
            self.watch_loop(watch, poller, output_fd, result_fd, exited, deadline)
        finally:
            if exited is not None:
                os.close(exited)

    def watch_loop(
        self, watch: Watch, poller: Any, output_fd: int, result_fd: int, exited: int | None,
        deadline: float,
    ) -> None:
        """Read output and records until the child ends, a limit is hit, or time is up."""
        next_count = time.monotonic() + SCAN_INTERVAL
        finished_at: float | None = None
        while True:
            now = time.monotonic()
            if finished_at is not None and now > finished_at + EXIT_GRACE:
                return
            if now >= deadline:
                watch.stop = "timeout"
                return
            wake = min(deadline, next_count, finished_at + EXIT_GRACE if finished_at else deadline)
            if exited is None:  # no pidfd to wake us when the child exits: ask often
                wake = min(wake, now + NO_PIDFD_TICK)
            for fd, _ in poller.poll(max(0.0, wake - now) * 1000):
                if fd == exited or self.read_into(watch, fd, True) == "eof":
                    poller.unregister(fd)
            while self.read_into(watch, result_fd, False) == "data":
                pass
            if watch.stop:
                return
            if finished_at is None and watch.records.final is not None:
                finished_at = time.monotonic()
            self.reap(watch)
            if watch.exit_status is not None:
                return
            if time.monotonic() >= next_count:
                next_count = time.monotonic() + SCAN_INTERVAL
                if self.too_many_processes(watch):
                    watch.stop = "process_limit"
                    return

    def read_into(self, watch: Watch, fd: int, is_output: bool) -> str:
        """Read what is there: "data", "empty" (nothing yet) or "eof"."""
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return "empty"
        if not chunk:
            return "eof"
        if is_output:
            room = self.output_cap - len(watch.output)
            if room > 0:
                watch.output += chunk[:room]
            watch.output_total += len(chunk)
            if watch.output_total > self.output_ceiling:
                watch.stop = watch.stop or "output_limit"
        else:
            watch.records.feed(chunk)
            if watch.records.flooded:
                watch.stop = watch.stop or "record_flood"
        return "data"

    def reap(self, watch: Watch) -> bool:
        """Collect every exited child (orphans land here too); True when none is left at all."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False
            if pid == watch.pid:
                watch.exit_status = status

    def refused_forks(self) -> int:
        return self.cgroup.refused_forks() if self.cgroup else 0

    def too_many_processes(self, watch: Watch) -> bool:
        if self.cgroup is not None:
            # The cgroup refused the fork that would have gone past the cap.
            return self.refused_forks() > watch.refused_before
        return procs.alive(procs.descendants(self.pid)) > self.max_processes

    def sweep(self, watch: Watch) -> None:
        """Kill the submission's process group and every descendant, and reap them all."""
        # Counted before anything is killed: a fork refused by the uid's RLIMIT_NPROC
        # between two polls ends the program with an exception, and its children, still
        # alive here, show what it tried.
        if (self.cgroup is None and not watch.stop and not self.reap(watch)
                and procs.alive(procs.descendants(self.pid)) > self.max_processes):
            watch.stop = "process_limit"
        with contextlib.suppress(OSError):
            os.killpg(watch.pid, signal.SIGKILL)
        deadline = time.monotonic() + SWEEP_TIMEOUT
        leftovers: set[int] = set()
        while True:
            none_left = self.reap(watch)
            members = [p for p in self.cgroup.members() if p != self.pid] if self.cgroup else []
            if none_left and not members:
                break
            if not none_left:
                found = procs.descendants(self.pid)
                tree = {self.pid, *found}
                for pid in found:
                    if procs.kill_if_still(pid, tree):
                        leftovers.add(pid)
            for pid in members:
                if procs.kill_if_still(pid, None):
                    leftovers.add(pid)
            if time.monotonic() > deadline:
                break
            time.sleep(0.001)
        leftovers.discard(watch.pid)
        watch.leftovers = len(leftovers)

    def remove_ipc_objects(self) -> None:
        """System V objects outlive the processes that made them: remove the submission's."""
        if self.ipc_namespace:
            ipc.remove_left(None)  # the server makes none: every object here is a submission's
        elif self.uid is not None:
            ipc.remove_left(self.uid)

    def drain(self, watch: Watch, output_fd: int, result_fd: int) -> None:
        """Everything left in the pipes; every writer is dead now, so this ends."""
        for fd, is_output in ((output_fd, True), (result_fd, False)):
            while self.read_into(watch, fd, is_output) == "data":
                pass

    # -- the answer -----------------------------------------------------------------

    def answer(self, request: dict[str, Any], watch: Watch, duration: float) -> dict[str, Any]:
        checks = watch.records.ran()  # well-formed, one per check sent, in order
        final = watch.records.final
        passed = sum(1 for check in checks if check["passed"])
        status, message = self.verdict(watch, final, len(checks), passed, request_total(request))
        if watch.leftovers:
            plural = "es" if watch.leftovers > 1 else ""
            message += f"; {watch.leftovers} leftover process{plural} stopped"
        final = final or {}
        return {
            "status": status,
            "message": message,
            "stdout": bytes(watch.output).decode("utf-8", "replace"),
            "output_bytes": watch.output_total,
            "checks": checks,
            "passed": passed,
            "total": request_total(request),
            "trace": final.get("trace", ""),
            "error": final.get("error"),
            "duration": round(duration, 6),
        }

    def verdict(
        self, watch: Watch, final: dict | None, ran: int, passed: int, total: int
    ) -> tuple[str, str]:
        limits = watch.limits
        progress = f" ({ran}/{total} {watch.unit} had run)" if total else ""
        if watch.stop == "timeout":
            return "timeout", f"did not finish within {limits['timeout']:g} s; stopped{progress}"
        if watch.stop == "output_limit":
            return "output_limit", (
                f"printed more than {self.output_ceiling // 1024} KiB; stopped "
                f"(the first {limits['output_limit_kb']} KiB are kept){progress}"
            )
        if watch.stop == "record_flood":
            return "output_limit", (
                f"wrote more than {watch.records.byte_limit // 1024} KiB to the pipe that reports "
                f"its checks; stopped{progress}"
            )
        if watch.stop == "process_limit":
            # A pids cgroup counts threads as well; the /proc count sees processes only.
            what = "processes or threads" if self.cgroup else "processes"
            return "process_limit", (
                f"tried to run more than {self.max_processes} {what} at once; stopped{progress}"
            )
        if final is not None:
            status = final["status"]
            if status == "ok":
                return "ok", f"ran; {passed}/{total} {watch.unit} passed" if total else "ran"
            if status == "memory":
                return "memory", f"ran out of memory (limit {limits['memory_mb']} MiB){progress}"
            if status == "file_size":
                return "file_size", f"wrote a file larger than {limits['file_size_mb']} MiB{progress}"
            return status, final.get("message") or status
        return self.death_verdict(watch.exit_status, progress, limits)

    def death_verdict(self, status: int | None, progress: str, limits: dict[str, Any]) -> tuple[str, str]:
        """The child ended without its final record: an exit call or a signal."""
        if status is None:
            return "killed", f"the process could not be stopped cleanly{progress}"
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            return "exited", f"the program exited with code {code} before finishing{progress}"
        number = os.WTERMSIG(status)
        if number == signal.SIGXCPU:
            return "cpu", f"used more than {limits['cpu_seconds']} s of CPU time; killed{progress}"
        if number == signal.SIGXFSZ:
            return "file_size", f"wrote a file larger than {limits['file_size_mb']} MiB{progress}"
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return "killed", f"killed by {name}{progress}"


WARM_UP = {
    "program": "def add(a, b):\n    return a + b\n",
    "checks": ["assert candidate(1, 2) == 3", "assert candidate(2, 2) == 5"],
    "setup": "import math\n", "entry_point": "add", "main": False,
}


def run_request(request: dict, reporter: Any, code: Any = None) -> None:
    """One submission in the forked child: a function and its checks (`_child`), or a
    program and its stdin/stdout tests (`_stdio`, which uses `_child`'s helpers)."""
    from workbench.sandbox import _child as child
    from workbench.sandbox import _stdio

    if request.get("stdio"):
        _stdio.run_tests(request, reporter, code or child.compile_request(request, child.compile_codes(request)))
    else:
        child.run_submission(request, reporter, code)


def warm_up() -> None:
    """Run a known program through the child's code path once, here in the server.

    A forked child pays a page fault for every page its parent never touched: compiling
    and running code for the first time after the fork cost about a millisecond more."""
    from workbench.sandbox import _child as child

    null = os.open(os.devnull, os.O_WRONLY)
    try:
        run_request(dict(WARM_UP), child.Reporter(null))
    finally:
        os.close(null)
        sys.modules.pop("submission", None)
        for filename in child.SOURCES:
            linecache.cache.pop(filename, None)
        child.SOURCES.clear()


def precompile(request: dict[str, Any]) -> Any:
    """The request's code objects, compiled here (they reach the child through the fork)
    unless the sources are large: then the child compiles them, under its limits. A child
    compiling for the first time after the fork pays page faults for it. Compiling runs
    none of the code."""
    from workbench.sandbox import _child as child

    size = sum(len(request.get(key) or "") for key in ("program", "prelude", "setup"))
    size += sum(len(check) for check in request.get("checks") or [])
    if size > PRECOMPILE_LIMIT:
        return None
    return child.compile_request(request, child.compile_codes(request))


def request_total(request: dict[str, Any]) -> int:
    """How many check records the request asks for: its checks, or a stdin/stdout task's tests."""
    stdio = request.get("stdio")
    if isinstance(stdio, dict):
        return len(stdio.get("tests") or [])
    return len(request.get("checks") or [])


def request_limits(limits: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The server's limits with those the request sets for itself, each held to its range."""
    own = request.get("limits")
    merged = dict(limits)
    if not isinstance(own, dict):
        return merged
    for key, (low, high) in REQUEST_LIMITS.items():
        value = own.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            merged[key] = type(low)(min(max(value, low), high))
    return merged


def child_exit_fd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


# -- the process --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    config = json.loads(argv[1])
    procs.die_with_parent(int(config["parent"]))
    # The protocol moves to private descriptors; 0 and 1 become /dev/null so a stray print
    # (ours or a library's) cannot corrupt a frame.
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    for fd in (protocol_in, protocol_out):
        fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the workbench
    subreaper = procs.become_subreaper()
    os.makedirs(config["base"], exist_ok=True)
    server = Server(config)
    server.protocol_fds = [protocol_in, protocol_out]
    remove_stale_cgroups()
    # The server joins its own pids cgroup once, so every child it forks is born inside it:
    # moving each child in (a cgroup v1 attach) would cost milliseconds per submission.
    # The server counts as one member, hence the + 1. Before any namespace: a user
    # namespace would no longer own the cgroup files.
    process_cap = config.get("process_cap", "auto")
    if process_cap in ("auto", "cgroup"):
        server.cgroup = PidsCgroup.create(
            f"{CGROUP_PREFIX}{os.getpid()}", int(config["limits"]["max_processes"]) + 1
        )
    if server.cgroup is not None and not server.cgroup.join(os.getpid()):
        server.cgroup.remove()
        server.cgroup = None
    if server.cgroup is None and process_cap == "cgroup":
        print("process_cap is cgroup but this server may not make a pids cgroup", file=sys.stderr)
        return 2
    namespaces = enter_namespaces(config["limits"]["network"] == "isolated")
    server.user_namespace, server.ipc_namespace = namespaces.user, namespaces.ipc
    server.seccomp = seccomp.namespace_filter()
    if server.seccomp is not None and not server.seccomp.works():
        server.seccomp = None
    preparation = user.Preparation()
    if config.get("run_as", "auto") == "auto" and os.geteuid() == 0:
        scratch_mb = max(64, 4 * int(config["limits"]["file_size_mb"]))
        preparation = user.prepare(os.getpid(), [os.path.dirname(config["base"])], scratch_mb)
    server.uid = preparation.uid
    if server.uid is not None:
        # A uid follows from the server's pid, and pids are reused: whatever still runs as
        # this uid was left by a dead server (its workbench SIGKILLed) and would share it,
        # able to signal these submissions and counted in their process limit.
        procs.kill_user(server.uid)
    server.workspace.scratch = preparation.scratch
    if server.uid is not None:
        os.chown(config["base"], server.uid, server.uid)
        os.chmod(config["base"], 0o700)
        server.workspace.owner = server.uid
    # A new namespace or credentials may have cleared the parent-death signal.
    procs.die_with_parent(int(config["parent"]))
    procs.prctl(user.PR_SET_DUMPABLE, 0)
    # glibc reserves 64 MiB of address space per thread for a malloc arena, so under the
    # address-space limit a submission could start only a few threads. Children inherit this.
    procs.limit_malloc_arenas(2)
    for name in PRELOAD:
        __import__(name)
    warm_up()
    # Objects that exist now are never traversed by a child's garbage collector, so a
    # child does not copy-on-write every page of the server it was forked from.
    gc.collect()
    gc.freeze()
    send_frame(protocol_out, {
        "ready": True, "pid": os.getpid(), "network_isolated": namespaces.network, "subreaper": subreaper,
        "ipc_namespace": server.ipc_namespace, "namespaces_denied": server.seccomp is not None,
        "cgroup": str(server.cgroup.path) if server.cgroup else None,
        "uid": server.uid if server.uid is not None else os.geteuid(),
        "own_user": server.uid is not None, "user_namespace": server.user_namespace,
        "note": preparation.note, "private_tmp": [folder for folder, _ in preparation.scratch],
    })
    try:
        while True:
            try:
                request = receive_frame(protocol_in)
            except ChannelClosed:
                return 0
            send_frame(protocol_out, server.run(request))
    except ChannelClosed:
        return 0
    finally:
        if server.cgroup is not None:
            server.cgroup.leave(os.getpid())
            server.cgroup.remove()
        shutil.rmtree(config["base"], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
