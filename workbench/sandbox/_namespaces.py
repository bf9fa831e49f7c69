"""Namespaces a sandbox server enters: network, IPC and, for a user, a user namespace.

What needs privileges reports failure instead of raising, and the server carries on
with what it has (`Sandbox.isolation` says what it got).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from workbench.sandbox._procs import libc

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWIPC = 0x08000000


@dataclass
class Namespaces:
    """Which namespaces of its own a server entered."""

    network: bool = False
    """A network namespace with no interface up: no network."""
    user: bool = False
    """A user namespace (a server not started by root)."""
    ipc: bool = False
    """An IPC namespace: every System V object in it is a submission's (see _ipc)."""


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
