"""Linux process tools the sandbox needs: prctl, /proc scans, and killing what is found.

Everything here works on plain Linux as root or as a user. Namespaces are in
_namespaces, pids cgroups in _cgroup.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

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
