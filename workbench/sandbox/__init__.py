"""Run untrusted programs (a model's code) away from the workbench process.

`Sandbox(limits).run(program, checks=..., setup=..., entry_point=...)` sends the
program to one of a pool of pre-started servers, which forks a fresh child per
submission: its own process group (in the server's own session, which has no terminal),
an empty private directory as cwd and HOME, CPU-time, address-space, file-size, core
and open-file limits, a scrubbed environment, output capped, a wall-clock timeout, and
afterwards its whole process group and every escaped descendant killed and the System V
IPC objects it made removed. The workbench is never the parent of submitted code, and
what comes back from a submission is untrusted input: only well-formed records count,
and `passed` never exceeds `total`.

`limits.process_cap` says how a submission's processes are capped and found: `cgroup` (a
pids cgroup: forks past the cap fail, even for root, and membership survives the
server), `scan` (the server, a child subreaper, polls /proc), `auto` (the cgroup where
one can be made). When the workbench runs as root, each server runs its submissions as
a uid of its own with no capabilities: they read only what any user may read, signal
only their own processes, and cannot read the workbench's or the server's environment
through /proc. Where the OS allows, each server has network and IPC namespaces of its
own and its children a seccomp filter that refuses new namespaces (`isolation` says what
holds). docs/threat-model.md has what holds in each case, what does not, and how to add
a container around it all.

Statuses: ok, syntax_error, exception, timeout, memory, cpu, output_limit, file_size,
process_limit, exited, killed, server_died.

One job per module:

- `_pool`: the `Sandbox` the workbench uses, a pool of servers;
- `_result`: `SandboxResult`, what one submission did;
- `server`: the pre-started server process (`python -m workbench.sandbox.server`);
- `_child`: what runs in the forked child: confinement, the program and its checks;
- `_records`: the child's reports, read as untrusted input;
- `_protocol`: length-prefixed JSON frames between the pool and a server;
- `_procs`: prctl, /proc scans, killing what is found;
- `_cgroup`: the pids cgroup of a server;
- `_namespaces`: the network, IPC and user namespaces a server enters;
- `_user`: a uid of its own per server (root), private mounts and /tmp;
- `_seccomp`: the filter that keeps submissions out of new namespaces;
- `_ipc`: System V IPC objects a submission leaves;
- `_workspace`: the folder a submission runs in.
"""

from workbench.sandbox._pool import PROCESS_CAPS, Sandbox, remove_stale_folders, require_process_cap
from workbench.sandbox._result import STATUSES, SandboxResult

__all__ = ["PROCESS_CAPS", "STATUSES", "Sandbox", "SandboxResult", "remove_stale_folders", "require_process_cap"]
