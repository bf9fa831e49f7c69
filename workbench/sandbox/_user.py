"""Who a submission runs as: a user of its own when the workbench runs as root.

A submission running as root could read every file (the workbench's /proc/<pid>/environ
with its API keys included), signal every process (`kill(-1, SIGKILL)` ends them all),
leave its pids cgroup, or join the host's network namespace again. So a server started
by root runs each child as a uid of its own, `UID_BASE` + the server's pid: no
supplementary groups, no capabilities, no way to gain any (PR_SET_NO_NEW_PRIVS, an
empty capability bounding set). That uid owns the submission's folder and nothing
else: the child reads only what every user may read and signals only its own
processes. One uid per server, so a `kill(-1)` in one submission never reaches another
submission running at the same time; pids are unique among live processes, so are
these uids.

The server also moves into a private mount namespace (root may). Python itself must
stay readable to that uid: an installation below a private folder (pyenv in /root, a
virtual environment in a 0700 home) would make every import of a module the server has
not loaded fail, so each such private folder is covered with an empty tmpfs (mode 0711)
that holds only the Python folders, bound at their own paths. And the folders every
user may write to (/tmp, /var/tmp, /dev/shm, /run/lock) are covered with private tmpfs
the server empties after every submission, so nothing a submission writes outlives it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from workbench.sandbox._procs import libc, prctl

UID_BASE = 0x7A000000
"""2046820352: with pids below 2**22, these uids stay below the ranges systemd assigns
(its foreign-image range starts at 0x7FFE0000) and above every account's. Inside a user
namespace that does not map them, see own_uid."""

SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
"""Folders every user may write to: with a uid of its own, a submission could leave files
there. The server covers them with private ones it empties after every submission."""

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000


def own_uid(server_pid: int) -> int | None:
    """`UID_BASE` + the server's pid where this user namespace maps it (the machine's own
    maps every id). A namespace that maps fewer ids (a rootless container maps 65536) gets
    one of the 4096 highest mapped ids below nobody (65534) that no process uses, picked
    from the pid; None if there is none."""
    wanted = UID_BASE + server_pid
    ranges = mapped_ids()
    if all(any(start <= wanted < start + count for start, count in mapped) for mapped in ranges):
        return wanted
    start, count = max(ranges[0], key=lambda pair: pair[1])
    top = min(start + count - 1, 65533)
    span = min(4096, top - max(start, 1) + 1)
    used = uids_in_use()
    # Starting from the pid keeps servers started one after the other (none of whose uids
    # runs a process yet) apart.
    for step in range(max(span, 0)):
        uid = top - (server_pid + step) % span
        if uid not in used and all(any(s <= uid < s + c for s, c in mapped) for mapped in ranges):
            return uid
    return None


def mapped_ids() -> list[list[tuple[int, int]]]:
    """[uid ranges, gid ranges] this user namespace maps, as (first id, count)."""
    ranges = []
    for name in ("uid_map", "gid_map"):
        try:
            with open(f"/proc/self/{name}") as file:
                rows = [line.split() for line in file if line.strip()]
            ranges.append([(int(row[0]), int(row[2])) for row in rows])
        except (OSError, ValueError, IndexError):
            ranges.append([(0, 4294967295)])
    return ranges


def uids_in_use() -> set[int]:
    used = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                used.add(os.stat(f"/proc/{name}").st_uid)
    return used


def process_budget(max_processes: int) -> int:
    """RLIMIT_NPROC of a child with its own uid: a hard ceiling on its processes and threads
    even where no pids cgroup is available. Set above the cap the server enforces, so the
    server's own count still names the stop ("process_limit")."""
    return 2 * max_processes + 16


# -- the server, once --------------------------------------------------------------


def python_paths() -> list[str]:
    """The folders a child must be able to read to import modules: the installation(s)
    and every existing sys.path entry, resolved."""
    found = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), *sys.path]
    paths: list[str] = []
    for path in found:
        if path and os.path.exists(path):
            real = os.path.realpath(path)
            if real not in paths:
                paths.append(real)
    return paths


def private_ancestors(paths: Iterable[str]) -> dict[str, list[str]]:
    """For the paths an unrelated user cannot reach (a folder above them lacks o+x):
    the highest such folder -> the paths below it. A folder's own mode does not count:
    binding it elsewhere would not change who may read it."""
    hidden: dict[str, list[str]] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for depth in range(len(parts) - 1):
            ancestor = "/" + "/".join(parts[: depth + 1])
            try:
                mode = os.stat(ancestor).st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                hidden.setdefault(ancestor, []).append(path)
                break
    for top, below in hidden.items():
        # A path inside another one of the list comes with it.
        hidden[top] = sorted(p for p in below if not any(p.startswith(q + "/") for q in below if q != p))
    return hidden


def private_mount_namespace() -> str:
    """Move this process into a mount namespace of its own whose mounts never reach the
    rest of the machine. "" when done, else why not."""
    global _private_namespace
    if libc().unshare(CLONE_NEWNS) != 0:
        return f"no private mount namespace ({os.strerror(_errno())})"
    if _mount(None, "/", None, MS_REC | MS_PRIVATE) != 0:
        return f"could not make mounts private ({os.strerror(_errno())})"
    _private_namespace = os.readlink("/proc/self/ns/mnt")
    return ""


_private_namespace: str | None = None
"""The mount namespace private_mount_namespace made (forked children share it)."""


def in_private_mount_namespace() -> bool:
    """Whether this process runs in the mount namespace private_mount_namespace made, so
    what it mounts reaches nothing else (not one it merely inherited from a launcher)."""
    try:
        return _private_namespace is not None and os.readlink("/proc/self/ns/mnt") == _private_namespace
    except OSError:
        return False


def cover(top: str, keep: list[str], options: str) -> str:
    """Mount a fresh tmpfs on `top` (in this process's private mount namespace) holding
    only `keep`, each bound at its own path. "" when done, else why not."""
    if not in_private_mount_namespace():
        # Mounting here would cover the folder for the whole machine, not just the sandbox.
        return f"refusing to cover {top} outside a private mount namespace"
    handles = [os.open(path, os.O_PATH) for path in keep]  # held before the tmpfs hides them
    try:
        if _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
            return f"could not cover {top} ({os.strerror(_errno())})"
        for path, handle in zip(keep, handles, strict=True):
            _make_mount_point(top, path, stat.S_ISDIR(os.fstat(handle).st_mode))
            if _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC) != 0:
                return f"could not show {path} ({os.strerror(_errno())})"
    finally:
        for handle in handles:
            os.close(handle)
    return ""


def expose(hidden: dict[str, list[str]]) -> str:
    """Replace each private folder by a tmpfs (mode 0711: no listing) that holds only the
    given paths. "" when done, else why not."""
    for top, paths in hidden.items():
        problem = cover(top, paths, "mode=0711,size=1m")
        if problem:
            return problem
    return ""


def scratch_folders(needed: list[str], size_mb: int) -> tuple[list[tuple[str, set[str]]], str]:
    """Give this server private copies of the folders every user may write to (/tmp and
    the like): tmpfs of `size_mb` MiB, holding only the `needed` paths inside them (the
    workbench's own folder). ([(folder, names the server keeps there)], problem)."""
    folders: list[tuple[str, set[str]]] = []
    for folder in SCRATCH:
        try:
            info = os.stat(folder)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or not info.st_mode & stat.S_IWOTH:
            continue
        keep = [path for path in needed if path.startswith(folder + "/")]
        keep = [p for p in keep if not any(p.startswith(q + "/") for q in keep if q != p)]
        problem = cover(folder, keep, f"mode=1777,size={size_mb}m")
        if problem:
            return folders, problem
        folders.append((folder, {os.path.relpath(path, folder).split("/")[0] for path in keep}))
    return folders, ""


def _make_mount_point(top: str, path: str, is_dir: bool) -> None:
    current = top
    parts = os.path.relpath(path, top).split("/")
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        last = index == len(parts) - 1
        if os.path.lexists(current):
            continue
        if last and not is_dir:
            os.close(os.open(current, os.O_CREAT | os.O_WRONLY, 0o644))
        else:
            os.mkdir(current, 0o711)


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> int:
    encode = (lambda text: text.encode() if text is not None else None)  # noqa: E731
    return libc().mount(encode(source), encode(target), encode(kind), flags, encode(data))


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def empty_bounding_set() -> None:
    """Drop every capability from the bounding set: nothing this process or its children
    execute can gain one (set-uid programs, file capabilities). Needs CAP_SETPCAP; a
    process without it has none to gain anyway."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as file:
            last = int(file.read())
    except (OSError, ValueError):
        last = 63
    for number in range(last + 1):
        prctl(PR_CAPBSET_DROP, number)


@dataclass
class Preparation:
    uid: int | None = None
    """The uid children run as; None: the server's own."""
    note: str = ""
    """What could not be done, for the workbench to show."""
    scratch: list[tuple[str, set[str]]] = field(default_factory=list)
    """Private folders every submission may write to, emptied after each one, and the
    names inside them that belong to the server."""


def prepare(server_pid: int, keep_visible: list[str], scratch_mb: int) -> Preparation:
    """Called once by a server started as root; `keep_visible`: paths the server itself
    needs (its workbench's folder)."""
    needed = [*python_paths(), *keep_visible]
    hidden = private_ancestors(needed)
    problem = private_mount_namespace()
    if not problem:
        problem = expose(hidden)
    if problem and hidden:
        # Children would fail to import; they keep the server's user rather than break.
        return Preparation(note=f"submissions run as root: Python is in a private folder and {problem}")
    scratch: list[tuple[str, set[str]]] = []
    if not problem:
        covered = [path for path in SCRATCH if any(path.startswith(top + "/") for top in hidden)]
        if covered:
            problem = f"{', '.join(covered)} lie inside a private folder"
        else:
            scratch, problem = scratch_folders(needed, scratch_mb)
    uid = own_uid(server_pid)
    if uid is None:
        return Preparation(note="submissions run as root: this user namespace maps no spare uid",
                           scratch=scratch)
    empty_bounding_set()
    note = f"files written to /tmp and the like outlive a submission: {problem}" if problem else ""
    return Preparation(uid, note, scratch)


# -- each child --------------------------------------------------------------------


def become(uid: int) -> None:
    """Turn this (root) process into `uid` for good: group `uid` only, no capabilities,
    no way to gain any."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    no_new_privileges()
    os.setresuid(uid, uid, uid)  # a switch away from uid 0 clears every capability
    # The uid change made the process undumpable, so /proc/self would belong to root;
    # its own user owns it again (other users still cannot look inside).
    prctl(PR_SET_DUMPABLE, 1)


def no_new_privileges() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def drop_capabilities() -> None:
    """Clear the capability sets (a server in a user namespace holds them all there)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    with contextlib.suppress(AttributeError):
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (Data * 2)()
        libc().capset(ctypes.byref(header), data)
