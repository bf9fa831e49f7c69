"""The pool of sandbox servers the workbench talks to: `Sandbox`.

`Sandbox(limits).run(...)` sends a submission to an idle pre-started server
(`python -m workbench.sandbox.server`, started on demand up to `limits.workers`) and
reads its answer; a server that dies or stops answering is killed, swept (its pids
cgroup, or every process of the uid of its own its submissions ran as) before a new
server can be given its pid, and replaced. The servers start from one long-lived
thread with a minimal environment, and die with the workbench.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import SandboxConfig
from workbench.errors import EnvironmentSetupError
from workbench.sandbox._cgroup import PidsCgroup, pids_cgroup_available
from workbench.sandbox._procs import kill_user
from workbench.sandbox._protocol import ChannelClosed, receive_frame, send_frame
from workbench.sandbox._result import SandboxResult

FOLDER_PREFIX = "leafe-sandbox-"
PROCESS_CAPS = ("auto", "cgroup", "scan")
START_TIMEOUT = 60.0
ANSWER_MARGIN = 30.0
"""Seconds past the submission's own timeout before a silent server counts as dead."""




@dataclass(eq=False)
class _Server:
    process: subprocess.Popen
    info: dict[str, Any]
    log: Any

    @property
    def pid(self) -> int:
        return self.process.pid


class Sandbox:
    """A pool of sandbox servers; `run` is thread-safe and runs `workers` submissions at once."""

    def __init__(self, limits: SandboxConfig, *, run_as: str = "auto") -> None:
        """`limits.process_cap`: `auto` caps processes with a pids cgroup where the OS allows
        it (forks past the cap fail, even for root) and otherwise polls /proc; `scan` always
        polls (a submission is stopped once it has too many processes alive); `cgroup`
        insists on the cgroup and is refused (EnvironmentSetupError) where none can be made.

        `run_as`: `auto` runs submissions as a uid of their own when the workbench runs as
        root (see `user`); `same` keeps the workbench's user, root included, which gives a
        submission root's reach over files and processes (only for tests of the sandbox)."""
        if run_as not in ("auto", "same"):
            raise ValueError(f"run_as must be auto or same, not {run_as!r}")
        require_process_cap(limits)
        self.limits = limits
        self.process_cap = limits.process_cap
        self.run_as = run_as
        self.workers = limits.workers or os.cpu_count() or 1
        remove_stale_folders()
        self._base = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
        self._idle: queue.Queue[_Server | BaseException] = queue.Queue()
        self._servers: set[_Server] = set()
        self._starting = 0
        self._lock = threading.Lock()
        self._closed = False
        self._counter = 0
        # Servers are started from this one long-lived thread: PR_SET_PDEATHSIG fires when
        # the *thread* that forked a process ends, and callers' worker threads come and go.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self._finalizer = weakref.finalize(
            self, _shutdown, self._servers, self._idle, self._spawner, self._base
        )
        self._grow()

    # -- public ---------------------------------------------------------------------

    def run(
        self,
        program: str,
        *,
        checks: list[str] | None = None,
        setup: str = "",
        entry_point: str = "",
        prelude: str = "",
        main: bool = True,
        stdio: dict[str, Any] | None = None,
        limits: dict[str, Any] | None = None,
    ) -> SandboxResult:
        """Run `program`, then (when given) bind `candidate` to `entry_point`, run `setup`,
        and run each of `checks` (Python source, usually one assert) in the same namespace.

        `prelude` runs before the program (a task's imports and helpers) and keeps its line
        numbers out of the program's. `main=False` runs the program as an imported module,
        so its `if __name__ == "__main__":` block is skipped.

        `stdio` makes it a stdin/stdout task instead of checks: {tests: [{input, output}],
        time_limit (s, per test), memory_mb (per test), output_limit_kb, float_tolerance,
        budget (s, all tests)}; the whole program runs once per test, each in a fork of its
        own (see _stdio), and each test is one check record. `limits` ({timeout,
        cpu_seconds, memory_mb}) replaces the sandbox's own limits for this submission."""
        if self._closed:
            raise EnvironmentSetupError("the sandbox is closed")
        request = {
            "program": program, "checks": list(checks or []), "setup": setup,
            "entry_point": entry_point, "prelude": prelude, "main": main,
        }
        if stdio is not None:
            request["stdio"] = stdio
        if limits:
            request["limits"] = dict(limits)
        # A stdin/stdout task's records are its tests, named here as checks' sources are.
        sources = request["checks"] or [f"test {i + 1}" for i in range(len((stdio or {}).get("tests") or []))]
        timeout = float((limits or {}).get("timeout") or self.limits.timeout)
        server = self._acquire()
        started = time.monotonic()
        try:
            send_frame(server.process.stdin.fileno(), request)
            answer = receive_frame(
                server.process.stdout.fileno(), time.monotonic() + timeout + ANSWER_MARGIN
            )
        except ChannelClosed as closed:
            return self._server_died(server, closed.timed_out, len(sources), time.monotonic() - started)
        except ValueError:  # not JSON: not an answer our server would give
            answer = None
        result = SandboxResult.from_answer(answer, sources, time.monotonic() - started)
        if result is None:
            return self._server_died(server, True, len(sources), time.monotonic() - started)
        self._idle.put(server)
        return result

    @property
    def network_isolated(self) -> bool:
        """Whether submissions run without network (a fresh network namespace per server)."""
        return bool(self.isolation["network_isolated"])

    @property
    def process_counting(self) -> str:
        """`cgroup` (a pids cgroup caps forks, even for root) or `scan` (polling /proc)."""
        return "cgroup" if self.isolation["cgroup"] else "scan"

    @property
    def user(self) -> int:
        """The uid submissions run as: one of their own per server (from 2046820352 up) when
        the workbench runs as root, else the workbench's."""
        return int(self.isolation["uid"])

    @property
    def isolation(self) -> dict[str, Any]:
        """What one server set up: network_isolated, cgroup (path or None), uid, own_user
        (submissions run as a uid of their own), user_namespace, ipc_namespace (System V
        objects of its own, all removed after each submission), namespaces_denied (a seccomp
        filter refuses submissions new namespaces), private_tmp (shared folders such as /tmp
        replaced by private ones emptied after each submission), note (what could not be
        done)."""
        server = self._acquire()
        self._idle.put(server)
        return {key: server.info.get(key) for key in (
            "network_isolated", "cgroup", "uid", "own_user", "user_namespace", "ipc_namespace",
            "namespaces_denied", "private_tmp", "note")}

    def warm_up(self) -> None:
        """Start every server now rather than on demand (benchmarks, batch runs)."""
        with self._lock:
            missing = self.workers - len(self._servers) - self._starting
        for _ in range(missing):
            self._grow()
        ready = [self._acquire() for _ in range(self.workers)]
        for server in ready:
            self._idle.put(server)

    def close(self) -> None:
        """Stop every server (each kills what it still runs) and remove the temporary folder."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pool -------------------------------------------------------------------

    def _acquire(self) -> _Server:
        with self._lock:
            if self._idle.empty() and len(self._servers) + self._starting < self.workers:
                self._grow_locked()
        while True:
            try:
                item = self._idle.get(timeout=0.5)
                break
            except queue.Empty:
                if self._closed:  # closed by another thread while this one waited
                    raise EnvironmentSetupError("the sandbox is closed") from None
        if isinstance(item, BaseException):
            raise EnvironmentSetupError(f"the sandbox server did not start: {item}")
        return item

    def _grow(self) -> None:
        with self._lock:
            self._grow_locked()

    def _grow_locked(self) -> None:
        if self._closed:
            return
        self._starting += 1
        self._counter += 1
        number = self._counter
        future = self._spawner.submit(self._start_server, number)

        def arrived(done: Any) -> None:
            error = done.exception()
            with self._lock:
                self._starting -= 1
                if error is None:
                    self._servers.add(done.result())
            # A waiting `run` gets the error rather than waiting for ever.
            self._idle.put(error if error is not None else done.result())

        future.add_done_callback(arrived)

    def _start_server(self, number: int) -> _Server:
        config = {
            "limits": {
                "timeout": self.limits.timeout, "cpu_seconds": self.limits.cpu_seconds,
                "memory_mb": self.limits.memory_mb, "file_size_mb": self.limits.file_size_mb,
                "max_processes": self.limits.max_processes,
                "output_limit_kb": self.limits.output_limit_kb, "network": self.limits.network,
            },
            "base": os.path.join(self._base, f"server-{number}"),
            "process_cap": self.process_cap,
            "run_as": self.run_as,
            "parent": os.getpid(),
        }
        project = str(Path(__file__).resolve().parents[2])
        # A minimal environment: submissions never see the workbench's variables (API keys).
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": project,
        }
        # The server's stderr, read only when it fails to start; it lives as long as the server.
        log = tempfile.TemporaryFile(dir=self._base)  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.sandbox.server", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0,
            env=env, cwd=self._base, start_new_session=True,  # terminal Ctrl-C is not theirs
        )
        try:
            info = receive_frame(process.stdout.fileno(), time.monotonic() + START_TIMEOUT)
        except ChannelClosed:
            process.kill()
            process.wait()
            log.seek(0)
            tail = log.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
            raise EnvironmentSetupError(
                f"sandbox server exited at start: {tail[-1] if tail else 'no message'}"
            ) from None
        return _Server(process, info, log)

    def _server_died(
        self, server: _Server, silent: bool, total: int, duration: float
    ) -> SandboxResult:
        """A server that died or stopped answering is killed, its leftovers too, and replaced."""
        process = server.process
        try:
            code = process.wait(0 if silent else 5.0)
        except subprocess.TimeoutExpired:
            silent = True
        if silent:
            process.kill()
            code = process.wait()
        _sweep_after(server)  # before a new server can be given the dead one's pid (and uid)
        _dispose(server)
        with self._lock:
            self._servers.discard(server)
        self._grow()
        if silent:
            message = "the sandbox server stopped answering; it was stopped and replaced"
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
            message = f"the submission killed the sandbox server ({name}); a fresh server replaced it"
        else:
            message = f"the sandbox server exited with code {code}; a fresh server replaced it"
        return SandboxResult(status="server_died", message=message, total=total, duration=duration)


def require_process_cap(limits: SandboxConfig) -> None:
    """Refuse, in one line, a `process_cap` this machine cannot give."""
    if limits.process_cap not in PROCESS_CAPS:
        raise EnvironmentSetupError(
            f"env.sandbox.process_cap must be one of {', '.join(PROCESS_CAPS)}, not {limits.process_cap!r}"
        )
    if limits.process_cap == "cgroup" and not pids_cgroup_available():
        raise EnvironmentSetupError(
            'env.sandbox.process_cap = "cgroup" but no pids cgroup can be made here '
            '(needs root and a writable cgroup hierarchy with the pids controller); use "auto" or "scan"'
        )


def remove_stale_folders() -> None:
    """Remove temporary folders of sandboxes whose workbench was killed (its pid is in the name)."""
    for path in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        owner = path.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _sweep_after(server: _Server) -> None:
    """Kill whatever a dead server's submissions left, found without the server: the
    members of its pids cgroup, and every process of the uid of its own they ran as."""
    if server.info.get("cgroup"):
        PidsCgroup(server.info["cgroup"]).remove()
    if server.info.get("own_user"):
        kill_user(int(server.info["uid"]))


def _dispose(server: _Server) -> None:
    for stream in (server.process.stdin, server.process.stdout, server.log):
        with contextlib.suppress(OSError):
            stream.close()


def _shutdown(servers: set[_Server], idle: queue.Queue, spawner: ThreadPoolExecutor, base: str) -> None:
    """Close every server's input (it exits after killing what it runs), then make sure."""
    spawner.shutdown(wait=True)
    while True:
        try:
            item = idle.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, _Server):
            servers.add(item)
    for server in list(servers):
        with contextlib.suppress(OSError):
            server.process.stdin.close()
    deadline = time.monotonic() + 2.0
    for server in list(servers):
        try:
            server.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        _sweep_after(server)
        _dispose(server)
    servers.clear()
    shutil.rmtree(base, ignore_errors=True)
