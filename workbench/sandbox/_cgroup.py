"""A pids cgroup per sandbox server: a hard process cap that binds root, and a membership
list that outlives the server.

Needs root and a writable cgroup hierarchy with the pids controller (v1 or v2); where
there is none, `create` returns None and `process_cap = "auto"` falls back to scanning.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from workbench.sandbox._procs import kill_if_still

CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup", "/sys/fs/cgroup/unified")
CGROUP_PREFIX = "leafe-sandbox-"


class PidsCgroup:
    """A pids cgroup holding one server's submissions: a hard process cap that binds root.

    Forks beyond `pids.max` fail with EAGAIN, and membership follows every fork (setsid
    included), so the members list is everything a submission started."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, name: str, limit: int) -> PidsCgroup | None:
        for root in CGROUP_ROOTS:
            path = Path(root) / name
            try:
                path.mkdir(exist_ok=True)
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(limit))
                return cls(str(path))
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
        return None

    def join(self, pid: int) -> bool:
        try:
            (self.path / "cgroup.procs").write_text(str(pid))
            return True
        except OSError:
            return False

    def leave(self, pid: int) -> None:
        """Move `pid` back to the hierarchy's root cgroup (so removing this one spares it)."""
        with contextlib.suppress(OSError):
            (self.path.parent / "cgroup.procs").write_text(str(pid))

    def members(self) -> list[int]:
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def refused_forks(self) -> int:
        """How many forks the cap has refused since the cgroup was made."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self, timeout: float = 2.0) -> int:
        """SIGKILL every member until none is left; returns how many were killed."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout
        while (members := self.members()) and time.monotonic() < deadline:
            for pid in members:
                if kill_if_still(pid, None):
                    killed.add(pid)
            time.sleep(0.002)
        return len(killed)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if error.errno != errno.EBUSY:
                    return
                time.sleep(0.01)


def pids_cgroup_available() -> bool:
    """Whether this process may make a pids cgroup (a server started from it may too)."""
    probe = PidsCgroup.create(f"{CGROUP_PREFIX}{os.getpid()}-probe", 1)
    if probe is None:
        return False
    probe.remove()
    return True


def remove_stale_cgroups() -> None:
    """Remove cgroups left by servers that were killed (their pid is in the name)."""
    for root in CGROUP_ROOTS:
        try:
            entries = list(Path(root).glob(CGROUP_PREFIX + "*"))
        except OSError:
            continue
        for path in entries:
            owner = path.name[len(CGROUP_PREFIX) :].split("-", 1)[0]  # "<pid>" or "<pid>-probe"
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                PidsCgroup(str(path)).remove()
