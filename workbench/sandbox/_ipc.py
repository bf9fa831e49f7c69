"""System V IPC objects a submission leaves behind: shared memory, semaphores, message queues.

They belong to no process, so killing a submission frees none of them: six 300 MiB
segments stayed held after a run until `ipcrm`, and a later submission read the bytes an
earlier one had left. Each server therefore gets an IPC namespace of its own where the
OS allows one (root; a user inside the server's own user namespace). Every object in
that namespace is then a submission's, and the server removes them all after each
submission, so neither memory nor bytes pass from one submission to the next, nor to
another server's. Without a namespace of its own, the server removes the objects whose
owner or creator is the submission's own uid (when it has one).

POSIX message queues live in the IPC namespace too; submissions may not create any
(RLIMIT_MSGQUEUE is 0). POSIX shared memory and semaphores are files in /dev/shm,
emptied after each submission where the server has a private one (_user).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass

from workbench.sandbox._procs import libc

IPC_RMID = 0
KINDS = {"shm": "shmid", "sem": "semid", "msg": "msqid"}
"""/proc/sysvipc file -> the column holding an object's id."""


@dataclass(frozen=True)
class IpcObject:
    kind: str
    """shm, sem or msg."""
    id: int
    owner: int
    creator: int


def objects() -> list[IpcObject]:
    """Every System V object of this process's IPC namespace."""
    found = []
    for kind, id_column in KINDS.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as file:
                header, *rows = file.read().splitlines()
        except (OSError, ValueError):
            continue
        columns = header.split()
        at = {name: columns.index(name) for name in (id_column, "uid", "cuid")}
        for row in rows:
            fields = row.split()
            with contextlib.suppress(ValueError, IndexError):
                found.append(IpcObject(kind, int(fields[at[id_column]]), int(fields[at["uid"]]),
                                       int(fields[at["cuid"]])))
    return found


def remove(item: IpcObject) -> bool:
    """IPC_RMID: a segment still attached goes when its last user detaches (none: all killed)."""
    call = libc()
    if item.kind == "shm":
        done = call.shmctl(item.id, IPC_RMID, None)
    elif item.kind == "sem":
        done = call.semctl(item.id, 0, IPC_RMID)
    else:
        done = call.msgctl(item.id, IPC_RMID, None)
    return done == 0 or ctypes.get_errno() in (22, 43)  # EINVAL, EIDRM: already gone


def remove_left(owner: int | None) -> int:
    """Remove what submissions left: every object (`owner` None: this namespace is the
    server's own) or those `owner` owns or created. Returns how many were removed."""
    left = [item for item in objects() if owner is None or owner in (item.owner, item.creator)]
    refused = [item for item in left if not remove(item)]
    if refused and owner is not None and os.geteuid() == 0:
        # Root without CAP_SYS_ADMIN (a container's default) may not remove another user's
        # object, but that user may: a short-lived process becomes it to do so.
        remove_as(owner, refused)
    return len(left)


def remove_as(uid: int, items: list[IpcObject]) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            for item in items:
                remove(item)
        finally:
            os._exit(0)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
