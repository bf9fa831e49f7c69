"""A seccomp filter that keeps submissions out of new namespaces.

Where the kernel allows unprivileged user namespaces, any process may call
`unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)` and hold every capability inside
the namespaces it made: mount what it likes there, become pid 1 of its own tree, and
reach kernel code that only "root" was meant to reach, which is where kernel bugs have
been found. A submission has no use for that. Each child installs this filter (after
PR_SET_NO_NEW_PRIVS, as the kernel requires of a process without CAP_SYS_ADMIN); it is
inherited by everything the child forks or executes and cannot be removed:

- `unshare` and `clone` with any namespace flag fail with EPERM;
- `setns` fails with EPERM;
- `clone3` fails with ENOSYS: its flags sit in memory a filter cannot read, and the C
  library then falls back to `clone` (threads and subprocesses still work);
- a system call made through another ABI (32-bit `int 0x80`, x32) fails with EPERM, so
  the numbers checked here are the only ones that reach the kernel.

Every other system call is allowed. Built for x86-64 and arm64; elsewhere `program()`
is None and the server reports that namespaces are not denied.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

from workbench.sandbox._namespaces import CLONE_NEWUSER
from workbench.sandbox._procs import libc, prctl

PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

# Classic BPF, as seccomp reads it: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}.
LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JUMP_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RETURN = 0x06  # BPF_RET | BPF_K
ALLOW = 0x7FFF0000
ERRNO = 0x00050000

# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6]}; flags
# are the low half of args[0] on these little-endian machines.
NUMBER_AT, ARCH_AT, FIRST_ARGUMENT_AT = 0, 4, 16

ARCHES = {
    # machine: (AUDIT_ARCH_*, unshare, clone, clone3, setns)
    "x86_64": (0xC000003E, 272, 56, 435, 308),
    "aarch64": (0xC00000B7, 97, 220, 435, 268),
}
X32_BIT = 0x40000000
"""x86-64's x32 ABI sets this bit in the system call number."""

NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
CLONE_NEWTIME = 0x00000080
"""unshare only: in clone's flags these bits are the exit signal."""


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def instructions(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The filter as (code, jump if true, jump if false, k), or None for an unknown machine."""
    if machine not in ARCHES:
        return None
    arch, unshare, clone, clone3, setns = ARCHES[machine]
    # Jumps count instructions forward from the next one; the targets are the returns at the end.
    program = [
        (LOAD_WORD, 0, 0, ARCH_AT),
        (JUMP_EQUAL, 0, 11, arch),  # another ABI -> EPERM (index 13)
        (LOAD_WORD, 0, 0, NUMBER_AT),
        (JUMP_AT_LEAST, 9, 0, X32_BIT),  # x32 -> EPERM (13)
        (JUMP_EQUAL, 3, 0, unshare),  # -> 8
        (JUMP_EQUAL, 4, 0, clone),  # -> 10
        (JUMP_EQUAL, 7, 0, clone3),  # -> ENOSYS (14)
        (JUMP_EQUAL, 5, 4, setns),  # -> EPERM (13), else ALLOW (12)
        (LOAD_WORD, 0, 0, FIRST_ARGUMENT_AT),  # 8: unshare's flags
        (JUMP_ANY_BIT, 3, 2, NAMESPACE_FLAGS | CLONE_NEWTIME),  # -> EPERM (13) / ALLOW (12)
        (LOAD_WORD, 0, 0, FIRST_ARGUMENT_AT),  # 10: clone's flags
        (JUMP_ANY_BIT, 1, 0, NAMESPACE_FLAGS),  # -> EPERM (13) / ALLOW (12)
        (RETURN, 0, 0, ALLOW),  # 12
        (RETURN, 0, 0, ERRNO | errno.EPERM),  # 13
        (RETURN, 0, 0, ERRNO | errno.ENOSYS),  # 14
    ]
    return program


class Filter:
    """A built filter, ready to install in a forked child (built once, in the server)."""

    def __init__(self, program: list[tuple[int, int, int, int]]) -> None:
        self.instructions = (SockFilter * len(program))(*(SockFilter(*step) for step in program))
        self.fprog = SockFprog(len(program), self.instructions)

    def install(self) -> bool:
        """Apply to this process and everything it starts from now on (after
        PR_SET_NO_NEW_PRIVS, unless the process holds CAP_SYS_ADMIN)."""
        zero = ctypes.c_ulong(0)
        return libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER),
                            ctypes.byref(self.fprog), zero, zero) == 0

    def works(self) -> bool:
        """Whether the kernel takes the filter, tried once in a forked process (a kernel
        without seccomp filters refuses it; the server then says so instead of failing
        every submission)."""
        pid = os.fork()
        if pid == 0:
            try:
                prctl(PR_SET_NO_NEW_PRIVS, 1)
                os._exit(0 if self.install() and libc().unshare(CLONE_NEWUSER) != 0 else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0


def namespace_filter() -> Filter | None:
    """The filter for this machine, or None where it is not built for it."""
    program = instructions(platform.machine())
    return Filter(program) if program is not None else None
