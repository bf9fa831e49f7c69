"""Linux process tools the sandbox needs: prctl, namespaces, /proc scans, pids cgroups.

Everything here works on plain Linux as root or as a user; what needs privileges
(a network namespace, a pids cgroup) reports failure instead of raising, and the
server carries on with what it has.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWIPC = 0x08000000

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def prctl(option: int, value: int) -> bool:
    zero = ctypes.c_ulong(0)  # full-width: some options insist the unused arguments are 0
    return libc().prctl(option, ctypes.c_ulong(value), zero, zero, zero) == 0


def die_with_parent(expected_parent: int, signal_number: int = signal.SIGKILL) -> None:
    """Get `signal_number` when the parent dies; exit now if it already has (the prctl race)."""
    prctl(PR_SET_PDEATHSIG, signal_number)
    if os.getppid() != expected_parent:
        os._exit(1)


def become_subreaper() -> bool:
    """Orphaned descendants (a setsid'd grandchild whose parent exited) reparent to us, not init."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def limit_malloc_arenas(count: int) -> bool:
    """mallopt(M_ARENA_MAX, count) where the C library is glibc; False elsewhere."""
    try:
        return bool(libc().mallopt(-8, count))  # -8 is glibc's M_ARENA_MAX
    except AttributeError:
        return False


@dataclass
class Namespaces:
    """Which namespaces of its own a server entered."""

    network: bool = False
    """A network namespace with no interface up: no network."""
    user: bool = False
    """A user namespace (a server not started by root)."""
    ipc: bool = False
    """An IPC namespace: every System V object in it is a submission's (see _sandbox_ipc)."""


def enter_namespaces(network: bool, user_namespace: bool = True) -> Namespaces:
    """Move this process into an IPC namespace of its own, a network namespace with no
    interface up (`network`) and, when not root, a user namespace first.

    Root (CAP_SYS_ADMIN) makes the network and IPC namespaces directly. Another user makes
    a user namespace first, where the kernel allows it (`user_namespace`): its uid and gid
    map to themselves, so files and signals work as before, while the kernel refuses
    ptrace, /proc/<pid>/environ and /proc/<pid>/mem of the user's processes outside it to
    anything inside (they live in another user namespace). The capabilities the new
    namespace gives stay inside it; children drop them."""
    if os.geteuid() == 0 or not user_namespace:
        return Namespaces(network=network and unshare(CLONE_NEWNET), ipc=unshare(CLONE_NEWIPC))
    uid, gid = os.geteuid(), os.getegid()
    if unshare(CLONE_NEWUSER | CLONE_NEWIPC | (CLONE_NEWNET if network else 0)):
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with contextlib.suppress(OSError), open(f"/proc/self/{name}", "w") as file:
                file.write(text)
        return Namespaces(network=network, user=True, ipc=True)
    return Namespaces(network=network and unshare(CLONE_NEWNET), ipc=unshare(CLONE_NEWIPC))


def unshare_network(user_namespace: bool = True) -> bool:
    """Whether this process now runs in a network namespace of its own (see enter_namespaces)."""
    return enter_namespaces(True, user_namespace).network


def unshare(flags: int) -> bool:
    try:
        if hasattr(os, "unshare"):  # Python 3.12+
            os.unshare(flags)
            return True
        return libc().unshare(flags) == 0
    except OSError:
        return False


# -- /proc -------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) for every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        entry = read_stat(int(name))
        if entry is not None:
            table[int(name)] = entry
    return table


def read_stat(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold ')' or spaces.
    fields = data[data.rfind(b")") + 2 :].split(b" ", 2)
    return int(fields[1]), fields[0].decode("ascii", "replace")


def descendants(root: int, table: dict[int, tuple[int, str]] | None = None) -> dict[int, str]:
    """Every process below `root` (not `root` itself) -> its state letter."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: dict[int, str] = {}
    stack = list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = table[pid][1]
        stack.extend(children.get(pid, ()))
    return found


def alive(states: dict[int, str]) -> int:
    """How many of the processes are running or sleeping (zombies and dead ones do not count)."""
    return sum(1 for state in states.values() if state not in ("Z", "X"))


def real_uid(pid: int) -> int | None:
    """The real uid of `pid` from /proc/<pid>/status (readable for every process, unlike
    the owner of /proc/<pid>, which an undumpable process turns into root)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def kill_user(uid: int, timeout: float = 2.0) -> int:
    """SIGKILL every process whose real uid is `uid` until none is left; how many there were.

    A submission's own uid (one per server) finds all it started, whatever became of the
    server: orphans that went to init, a setsid'd grandchild, an exec'd `sleep`. A uid
    cannot be shed without privileges the submission does not have."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while True:
        found = [int(name) for name in os.listdir("/proc")
                 if name.isdigit() and int(name) != me and real_uid(int(name)) == uid]
        found = [pid for pid in found if (read_stat(pid) or (0, "Z"))[1] not in ("Z", "X")]
        if not found or time.monotonic() > deadline:
            return len(killed)
        for pid in found:
            if kill_if_still(pid, None):
                killed.add(pid)
        time.sleep(0.002)


def kill_if_still(pid: int, belongs: Iterable[int] | None) -> bool:
    """SIGKILL `pid` unless its number was reused meanwhile by a process outside our tree.

    A pidfd pins the process we check, so the check and the kill see the same one.
    `belongs`: parents that prove membership (None: no check, e.g. cgroup members)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if belongs is not None:
            entry = read_stat(pid)
            if entry is None or entry[0] not in belongs:
                return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


# -- pids cgroup -------------------------------------------------------------------

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
