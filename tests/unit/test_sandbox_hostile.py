"""Submissions written to get out of the sandbox: at the network, at the workbench's
secrets, at the user's files, at the processes around them, and at the limits while
fifteen others run at once, at the pipe that reports results, at System V IPC, at new
namespaces. Each ends as a recorded result with a message, the next submission runs, the
workbench goes on untouched, and after each test no process and no IPC object of any
submission is left (`leftovers`). Every test runs with both ways of capping processes
(`process_cap` cgroup and scan; the cgroup runs fail where none can be made), except
those of a workbench run by a user, which has no cgroup to use.

Where a guarantee holds only when the workbench runs as root (submissions then run as a
uid of their own), the test says so and is skipped otherwise; docs/threat-model.md has
what holds in each case.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fixtures.processes import (
    TogetherWatch,
    alive_with,
    alive_with_argument,
    leftovers,
    marked,
)
from workbench.config import SandboxConfig
from workbench.sandbox import Sandbox
from workbench.sandbox import _namespaces as namespaces
from workbench.sandbox._user import UID_BASE, private_ancestors

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

LIMITS = SandboxConfig(timeout=3, cpu_seconds=2, memory_mb=256, max_processes=16, workers=2)
AS_ROOT = os.geteuid() == 0
CAPS = ("cgroup", "scan")


def still_works(sandbox: Sandbox) -> None:
    result = sandbox.run("def add(a, b):\n    return a + b\n", checks=["assert candidate(1, 2) == 3"],
                         entry_point="add")
    assert (result.status, result.passed, result.total) == ("ok", 1, 1), result
    assert leftovers(sandbox) == []


def printed(result) -> dict:
    assert result.stdout.strip(), result
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=CAPS)
def process_cap(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def sandbox(process_cap: str):
    with Sandbox(replace(LIMITS, process_cap=process_cap)) as box:
        box.warm_up()
        assert box.process_counting == process_cap
        yield box


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After every test on the shared sandbox: no process and no IPC object of a submission."""
    yield
    if "sandbox" in request.fixturenames:
        assert leftovers(request.getfixturevalue("sandbox")) == []


@pytest.fixture
def listener():
    """A TCP port the test itself listens on, on the machine's loopback."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(2.0)
    yield server
    server.close()


# -- who a submission is -------------------------------------------------------------


@pytest.mark.skipif(not AS_ROOT, reason="submissions run as a uid of their own only when the workbench is root")
def test_as_root_submissions_run_as_their_own_uid_without_capabilities(sandbox: Sandbox) -> None:
    info = sandbox.isolation
    assert info["own_user"] and info["uid"] >= UID_BASE and info["note"] == ""
    program = textwrap.dedent("""
        import json, os
        status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines()
                      if line.startswith(('Cap', 'NoNewPrivs')))
        print(json.dumps({'ids': os.getresuid() + os.getresgid(), 'groups': os.getgroups(),
                          'status': {k: v.strip() for k, v in status.items()}}))
    """)
    found = printed(sandbox.run(program))
    uids = {server.info["uid"] for server in sandbox._servers}
    assert len(set(found["ids"])) == 1 and found["ids"][0] in uids and found["groups"] == []
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(found["status"][name], 16) == 0, name
    assert found["status"]["NoNewPrivs"] == "1"
    # Every server has its own uid, so one submission can never signal another's processes.
    assert len(uids) == len(sandbox._servers) == LIMITS.workers
    with Sandbox(SandboxConfig(workers=1)) as other:
        assert other.user not in uids


@pytest.mark.skipif(not AS_ROOT, reason="mount namespaces need root")
def test_servers_mount_only_inside_a_mount_namespace_of_their_own() -> None:
    """The tmpfs covers (Python's private folder, /tmp) must never reach the machine. A
    forked child in a namespace it did not make through private_mount_namespace (made
    private by hand, so even a failing guard would cover nothing outside it) is refused."""
    from workbench.sandbox import _user as user

    assert not user.in_private_mount_namespace()
    pid = os.fork()
    if pid == 0:
        try:
            if user.libc().unshare(user.CLONE_NEWNS) != 0 or user._mount(None, "/", None, user.MS_REC | user.MS_PRIVATE):
                os._exit(2)
            refused = user.cover("/tmp", [], "size=1m").startswith("refusing")
            os._exit(0 if refused and not os.path.ismount("/tmp") else 1)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_user_namespace_with_few_ids_gets_a_mapped_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rootless container maps 65536 ids: servers there pick distinct ids it maps."""
    from workbench.sandbox import _user as user

    monkeypatch.setattr(user, "mapped_ids", lambda: [[(0, 65536)], [(0, 65536)]])
    monkeypatch.setattr(user, "uids_in_use", lambda: {0, 65533})
    picked = {user.own_uid(pid) for pid in range(1000, 1016)}
    assert len(picked) == 16 and all(61438 <= uid < 65533 for uid in picked)
    monkeypatch.setattr(user, "mapped_ids", lambda: [[(0, 1)], [(0, 1)]])  # root only
    assert user.own_uid(1000) is None


# -- network -------------------------------------------------------------------------

NETWORK_PROBE = textwrap.dedent("""
    import json, socket
    port = PORT
    found = {}
    def attempt(name, action):
        try:
            action()
            found[name] = 'ok'
        except OSError as error:
            found[name] = type(error).__name__
    def connect(address, family=socket.AF_INET):
        with socket.socket(family) as s:
            s.settimeout(1.0)
            s.connect(address)
            s.sendall(b'hello from the sandbox')
    def udp():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b'x', ('8.8.8.8', 53))
    attempt('loopback', lambda: connect(('127.0.0.1', port)))
    attempt('loopback6', lambda: connect(('::1', port), socket.AF_INET6))
    attempt('resolve', lambda: socket.getaddrinfo('example.com', 443))
    attempt('internet', lambda: connect(('1.1.1.1', 53)))
    attempt('udp', udp)
    found['interfaces'] = [name for _, name in socket.if_nameindex()]
    print(json.dumps(found))
""")


def test_no_network_not_even_to_a_port_the_workbench_listens_on(sandbox: Sandbox, listener) -> None:
    if not sandbox.network_isolated:
        assert not AS_ROOT, "root may always make a network namespace"
        pytest.skip("this machine allows no network namespace (Sandbox.network_isolated is False)")
    port = listener.getsockname()[1]
    started = time.monotonic()
    result = sandbox.run(NETWORK_PROBE.replace("PORT", str(port)))
    found = printed(result)
    assert found.pop("interfaces") == ["lo"]  # its own namespace: a loopback that is down
    assert all(outcome != "ok" for outcome in found.values()), found
    assert time.monotonic() - started < 2.5  # refused at once, not waiting on timeouts
    listener.settimeout(0.0)
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever reached the workbench's port
    still_works(sandbox)


def test_network_inherit_is_recorded_and_reaches_the_workbench(listener) -> None:
    """The control for the test above: the same probe does connect without a namespace."""
    port = listener.getsockname()[1]
    limits = SandboxConfig(timeout=5, workers=1, network="inherit")
    with Sandbox(limits) as box:
        assert box.network_isolated is False
        received: list[bytes] = []

        def accept() -> None:
            connection, _ = listener.accept()
            with connection:
                received.append(connection.recv(100))

        waiter = threading.Thread(target=accept)
        waiter.start()
        found = printed(box.run(NETWORK_PROBE.replace("PORT", str(port))))
        waiter.join(5)
    assert found["loopback"] == "ok" and received == [b"hello from the sandbox"]


def test_a_server_that_may_not_make_a_network_namespace_says_so() -> None:
    """unshare_network reports False, not an error, without the privilege (the server then
    records network_isolated False). Run in a forked process that first gives up root."""
    pid = os.fork()
    if pid == 0:
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(UID_BASE - 1, UID_BASE - 1, UID_BASE - 1)
                os.setresuid(UID_BASE - 1, UID_BASE - 1, UID_BASE - 1)
            os._exit(0 if namespaces.unshare_network(user_namespace=False) is False else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- the workbench's secrets ---------------------------------------------------------

SECRET_PROBE = textwrap.dedent("""
    import json, os
    server = os.getppid()
    stat = open(f'/proc/{server}/stat').read()
    workbench = int(stat[stat.rfind(')') + 2:].split()[1])
    found = {'environ_names': sorted(os.environ), 'server': server, 'workbench': workbench}
    def attempt(name, action):
        try:
            found[name] = repr(action())
        except OSError as error:
            found[name] = type(error).__name__
    for who, pid in (('server', server), ('workbench', workbench)):
        attempt(f'{who}_environ', lambda pid=pid: open(f'/proc/{pid}/environ', 'rb').read())
        attempt(f'{who}_mem', lambda pid=pid: open(f'/proc/{pid}/mem', 'rb').read(1))
        attempt(f'{who}_cwd', lambda pid=pid: os.readlink(f'/proc/{pid}/cwd'))
        attempt(f'{who}_fds', lambda pid=pid: os.listdir(f'/proc/{pid}/fd'))
        attempt(f'{who}_cmdline', lambda pid=pid: open(f'/proc/{pid}/cmdline', 'rb').read())
    print(json.dumps(found))
""")

WORKBENCH = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from workbench.config import SandboxConfig
    from workbench.sandbox import Sandbox
    # The control: the secret is in this process's own environment block, which is what
    # /proc/<pid>/environ shows to whoever may read it.
    visible = os.environ['LEAFE_SECRET_TOKEN'].encode() in open('/proc/self/environ', 'rb').read()
    with Sandbox(SandboxConfig(timeout=10, workers=1, process_cap=sys.argv[2])) as box:
        result = box.run(sys.stdin.read())
        info = box.isolation
    print(json.dumps({'pid': os.getpid(), 'visible_to_itself': visible, 'result': result.to_dict(),
                      'info': info}))
""")


@pytest.mark.parametrize("cap", CAPS)
def test_the_workbench_environment_is_out_of_reach(cap: str) -> None:
    """A workbench started with a secret in its environment (an exported API key) runs a
    submission that looks for it in os.environ, in /proc/<server>/environ and in
    /proc/<workbench>/environ (the server's parent, read from /proc/<server>/stat)."""
    secret = "sk-" + uuid.uuid4().hex
    environment = {**os.environ, "LEAFE_SECRET_TOKEN": secret}
    run = subprocess.run(
        [sys.executable, "-c", WORKBENCH, str(ROOT), cap], input=SECRET_PROBE, env=environment,
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    found = json.loads(answer["result"]["stdout"].strip().splitlines()[-1])
    assert answer["visible_to_itself"]
    assert found["workbench"] == answer["pid"]  # the probe found the right process
    assert secret not in run.stdout
    assert found["environ_names"] == ["HOME", "LANG", "PATH"]
    # The server started with a minimal environment and is undumpable: unreadable to any
    # user but root, its own included.
    assert found["server_environ"] == "PermissionError"
    assert found["server_mem"] == "PermissionError"
    if AS_ROOT:
        for key in ("workbench_environ", "workbench_mem", "workbench_cwd", "workbench_fds",
                    "server_cwd", "server_fds"):
            assert found[key] == "PermissionError", key
    # Command lines are readable by every user of the machine: never put secrets in one.
    assert found["workbench_cmdline"].startswith("b")


USER_PROBE = textwrap.dedent("""
    import ctypes, json, os
    server = os.getppid()
    stat = open(f'/proc/{server}/stat').read()
    workbench = int(stat[stat.rfind(')') + 2:].split()[1])
    found = {'uid': os.getuid(), 'workbench_uid': os.stat(f'/proc/{workbench}').st_uid}
    def attempt(name, action):
        try:
            found[name] = repr(action())
        except OSError as error:
            found[name] = type(error).__name__
    for who, pid in (('server', server), ('workbench', workbench)):
        attempt(f'{who}_environ', lambda pid=pid: open(f'/proc/{pid}/environ', 'rb').read())
        attempt(f'{who}_mem', lambda pid=pid: open(f'/proc/{pid}/mem', 'rb').read(1))
    libc = ctypes.CDLL(None, use_errno=True)
    def seize():  # PTRACE_SEIZE: attaches without stopping the process
        if libc.ptrace(0x4206, workbench, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'ptrace')
    attempt('workbench_ptrace', seize)
    print(json.dumps(found))
""")


@pytest.mark.skipif(not AS_ROOT, reason="needs root to play a user's workbench")
def test_a_workbench_run_by_a_user_keeps_its_environment_from_submissions() -> None:
    """Submissions of a workbench run by a user run as that same user. The server makes
    itself undumpable and, where the kernel allows, enters a user namespace, so the
    user's own processes outside it refuse ptrace, environ and mem to submissions."""
    from workbench.sandbox import _user as user

    unprivileged = UID_BASE - 2

    def become_a_user() -> None:  # in the forked child, before it runs the workbench
        if user.private_mount_namespace() or user.expose(user.private_ancestors([*user.python_paths(), str(ROOT)])):
            os._exit(3)
        os.setgroups([])
        os.setresgid(unprivileged, unprivileged, unprivileged)
        os.setresuid(unprivileged, unprivileged, unprivileged)

    secret = "sk-" + uuid.uuid4().hex
    run = subprocess.run(
        [sys.executable, "-c", WORKBENCH, str(ROOT), "scan"], input=USER_PROBE, capture_output=True, text=True,
        env={**os.environ, "LEAFE_SECRET_TOKEN": secret}, preexec_fn=become_a_user, cwd="/", timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    found = json.loads(answer["result"]["stdout"].strip().splitlines()[-1])
    assert answer["visible_to_itself"] and not answer["info"]["own_user"]
    assert found["uid"] == found["workbench_uid"] == unprivileged  # the same user throughout
    assert secret not in run.stdout
    assert found["server_environ"] == found["server_mem"] == "PermissionError"  # undumpable
    if not answer["info"]["user_namespace"]:
        pytest.skip("no user namespace here: the workbench is open to ptrace by its submissions")
    for key in ("workbench_environ", "workbench_mem", "workbench_ptrace"):
        assert found[key] == "PermissionError", key


def test_variables_set_in_the_workbench_process_do_not_reach_submissions(monkeypatch) -> None:
    monkeypatch.setenv("LEAFE_TEST_API_KEY", "never-to-be-seen")
    with Sandbox(SandboxConfig(workers=1)) as box:
        result = box.run(
            "import os, json\n"
            "names = sorted(os.environ)\n"
            "try:\n    own = open('/proc/self/environ', 'rb').read().decode()\n"
            "except OSError as error:\n    own = str(error)\n"
            "print(json.dumps([names, own]))\n"
        )
    names, own = printed(result)
    assert names == ["HOME", "LANG", "PATH"]
    assert "never-to-be-seen" not in result.stdout and "LEAFE_TEST_API_KEY" not in own


# -- the user's files ----------------------------------------------------------------

FILES_PROBE = textwrap.dedent("""
    import json, os
    targets = json.loads(TARGETS)
    targets.update({
        'relative ../../../etc/shadow': '../../../etc/shadow',
        'relative ../ x15 etc/shadow': '../' * 15 + 'etc/shadow',
        'relative ../ x15 etc/passwd': '../' * 15 + 'etc/passwd',
        'absolute /etc/shadow': '/etc/shadow',
        'absolute /etc/passwd': '/etc/passwd',
    })
    for name, path in json.loads(TARGETS).items():
        targets['relative ' + name] = os.path.relpath(path)
    found = {}
    for name, path in targets.items():
        try:
            with open(path, 'rb') as file:
                found[name] = 'read: ' + file.read(100).decode(errors='replace')
        except OSError as error:
            found[name] = type(error).__name__
    print(json.dumps(found))
""")


@pytest.fixture
def private_files(monkeypatch: pytest.MonkeyPatch):
    """Two 0600 files (one in the workbench's cwd) and a 0644 control, in folders every
    user may enter, so only each file's own mode protects it. Not in /tmp: servers started
    by root give submissions a /tmp of their own."""
    cache = ROOT / ".pytest_cache"
    cache.mkdir(mode=0o755, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="leafe-hostile-", dir=cache))
    folder.chmod(0o755)
    cwd = folder / "cwd"
    cwd.mkdir(mode=0o755)
    monkeypatch.chdir(cwd)
    files = {"test tmp file": folder / "secret.txt", "workbench cwd file": cwd / "api-key.txt",
             "control": folder / "public.txt"}
    for name, path in files.items():
        path.write_text(f"PRIVATE {name} {uuid.uuid4().hex}" if name != "control" else "public")
        path.chmod(0o644 if name == "control" else 0o600)
    try:
        yield {name: str(path.resolve()) for name, path in files.items()}
    finally:
        for path in files.values():
            path.unlink()
        cwd.rmdir()
        folder.rmdir()


def test_private_files_are_unreadable_by_relative_and_absolute_paths(sandbox: Sandbox, private_files) -> None:
    if not sandbox.isolation["own_user"]:
        pytest.skip("submissions run as the workbench's user: they read what it may read")
    result = sandbox.run(FILES_PROBE.replace("TARGETS", repr(json.dumps(private_files))))
    found = printed(result)
    assert "PRIVATE" not in result.stdout
    for name in ("test tmp file", "workbench cwd file"):
        assert found[name] == "PermissionError"  # by absolute path: the file's own 0600
        assert found[f"relative {name}"] == "PermissionError"  # cannot climb out of its folder
    assert found["absolute /etc/shadow"] == "PermissionError"
    assert found["relative ../../../etc/shadow"] == "FileNotFoundError"  # inside its own folders
    assert found["relative ../ x15 etc/shadow"] == "PermissionError"
    assert found["relative ../ x15 etc/passwd"] == "PermissionError"
    # What every user may read stays readable by absolute path (docs/threat-model.md).
    if not private_ancestors([private_files["control"]]):
        assert found["control"] == "read: public"
    assert found["absolute /etc/passwd"].startswith("read: root:")
    still_works(sandbox)


@pytest.mark.skipif(not AS_ROOT, reason="private /tmp folders need a private mount namespace (root)")
def test_files_left_in_shared_folders_do_not_outlive_the_submission(sandbox: Sandbox) -> None:
    folders = sandbox.isolation["private_tmp"]
    assert "/tmp" in folders and "/dev/shm" in folders, sandbox.isolation
    name = f"left-behind-{uuid.uuid4().hex}"
    program = (
        f"import json, os\nfolders = {folders!r}\n"
        "seen = {f: [n for n in os.listdir(f) if n.startswith('left-behind-')] for f in folders}\n"
        f"for folder in folders:\n    open(os.path.join(folder, {name!r}), 'w').write('x')\n"
        "print(json.dumps(seen))\n"
    )
    for _ in range(2 * LIMITS.workers):  # every server, twice: nothing from a run before
        found = printed(sandbox.run(program))
        assert all(names == [] for names in found.values()), found
    assert not any(Path(folder, name).exists() for folder in folders)  # nor on the machine


# -- /proc and signals ---------------------------------------------------------------

KILL_ALL = (
    "import os, signal, time\nchild = os.fork()\nif child == 0:\n    time.sleep(60)\n    os._exit(0)\n"
    "os.kill(-1, signal.{signal})\n"
    "_, status = os.waitpid(child, os.WUNTRACED)\nassert status & 0x7f in (9, 0x7f), status\n"
    "print('own child got it')\n"
)
TRICKS = {
    "read the server's command line": (
        "import os\nprint(open(f'/proc/{os.getppid()}/cmdline', 'rb').read()[:20])\n", {"ok"}),
    "read the server's environment": (
        "import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n", {"exception"}),
    "raise, then lower oom_score_adj": (
        "for value in ('1000', '-1000'):\n"
        "    with open('/proc/self/oom_score_adj', 'w') as file:\n        file.write(value)\n",
        {"exception"}),
    "lower the server's oom_score_adj": (
        "import os\nwith open(f'/proc/{os.getppid()}/oom_score_adj', 'w') as file:\n"
        "    file.write('-1000')\n", {"exception"}),
    "open the server's memory": (
        "import os\nopen(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n", {"exception"}),
    "ptrace the server": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n    raise OSError(ctypes.get_errno(), 'ptrace')\n",
        {"exception"}),
    "SIGSTOP the server": ("import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n", {"exception"}),
    "SIGTERM the server": ("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n", {"exception"}),
    "SIGKILL the server": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", {"exception"}),
    "SIGKILL the workbench": (
        "import os, signal\nstat = open(f'/proc/{os.getppid()}/stat').read()\n"
        "os.kill(int(stat[stat.rfind(')') + 2:].split()[1]), signal.SIGKILL)\n", {"exception"}),
    # kill(-1) reaches every process the sender may signal but itself: with a uid of its
    # own, only its own children (as root it would be every process of the machine).
    "kill(-1, SIGKILL)": (KILL_ALL.format(signal="SIGKILL"), {"ok"}),
    "kill(-1, SIGSTOP)": (KILL_ALL.format(signal="SIGSTOP"), {"ok"}),
    "join the workbench's network namespace": (
        "import ctypes, os\nstat = open(f'/proc/{os.getppid()}/stat').read()\n"
        "workbench = int(stat[stat.rfind(')') + 2:].split()[1])\n"
        "fd = os.open(f'/proc/{workbench}/ns/net', os.O_RDONLY)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.setns(fd, 0x40000000) != 0:\n    raise OSError(ctypes.get_errno(), 'setns')\n",
        {"exception"}),
    "leave the pids cgroup": (
        "import os\nopen('/sys/fs/cgroup/pids/cgroup.procs', 'w').write(str(os.getpid()))\n",
        {"exception"}),
    "raise the CPU hard limit": (
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (hard + 60, hard + 60))\n", {"exception"}),
    "setsid and fork twice": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(300)\n    os._exit(0)\ntime.sleep(0.2)\n", {"ok"}),
}


@pytest.mark.skipif(not AS_ROOT, reason="as a user, a submission may signal its server (it is replaced)")
@pytest.mark.parametrize("trick", list(TRICKS))
def test_proc_and_signal_tricks_leave_the_run_untouched(sandbox: Sandbox, trick: str) -> None:
    body, expected = TRICKS[trick]
    marker, program = marked(body)
    servers = {server.pid for server in sandbox._servers}
    oom = {pid: Path(f"/proc/{pid}/oom_score_adj").read_text() for pid in servers}
    bystander = subprocess.Popen(["sleep", "30"])  # a process of the workbench's user
    try:
        result = sandbox.run(program, checks=["assert True"])
        assert result.status in expected, result
        assert result.message
        if result.status == "exception":
            assert "PermissionError" in result.message or "ValueError" in result.message, result
        if "kill(-1" in trick:
            assert result.stdout == "own child got it\n", result
        assert alive_with(marker) == []
        still_works(sandbox)
        assert {server.pid for server in sandbox._servers} == servers  # no server was hurt
        assert {pid: Path(f"/proc/{pid}/oom_score_adj").read_text() for pid in servers} == oom
        assert bystander.poll() is None
        assert Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[0] in "RS"
    finally:
        bystander.kill()
        bystander.wait()


# -- every limit at once -------------------------------------------------------------

LOAD = {
    "sleep forever": ("import time\ntime.sleep(60)\n", "timeout"),
    "sleep forever too": ("import time\nwhile True:\n    time.sleep(1)\n", "timeout"),
    "spin on the CPU": ("while True:\n    pass\n", "cpu"),
    "allocate 1 GiB": ("block = bytearray(1 << 30)\n", "memory"),
    "write a 4 MiB file": ("open('big.bin', 'wb').write(b'x' * (4 << 20))\n", "file_size"),
    "print without end": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", "output_limit"),
    "fork 200 sleepers": (
        "import os, time\nfor _ in range(200):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        continue\n    if pid == 0:\n        time.sleep(60)\n"
        "        os._exit(0)\ntime.sleep(60)\n", "process_limit"),
    "kill(-1, SIGKILL)": (KILL_ALL.format(signal="SIGKILL"), "ok"),
    "SIGKILL the server": ("import os\nos.kill(os.getppid(), 9)\n", "exception"),
}
NORMAL = "def f(x):\n    return sorted(x)[::-1]\n"


@pytest.mark.skipif(not AS_ROOT, reason="kill(-1) and killing the server are contained only with a uid per server")
@pytest.mark.parametrize("cap", CAPS)
def test_every_limit_holds_with_sixteen_submissions_at_once(cap: str) -> None:
    """Sixteen servers, sixteen submissions from sixteen threads: each program first waits
    a moment, long enough for a watcher scanning /proc to see all sixteen alive together,
    then does its worst. Each gets its own status, the ordinary ones pass, nothing is left."""
    concurrent = 16
    limits = SandboxConfig(timeout=8, cpu_seconds=1, memory_mb=256, file_size_mb=1, max_processes=16,
                           output_limit_kb=16, workers=concurrent, process_cap=cap)
    jobs = [(name, *marked(body, pause=1.5), status) for name, (body, status) in LOAD.items()]
    jobs += [(f"normal {n}", *marked(NORMAL, pause=1.5), "ok") for n in range(concurrent - len(jobs))]
    with Sandbox(limits) as box:
        box.warm_up()
        assert box.isolation["own_user"], box.isolation  # as root, never a shared uid
        servers = {server.pid for server in box._servers}
        assert len(servers) == concurrent
        start = threading.Barrier(len(jobs))
        results: dict[str, object] = {}

        def submit(name: str, program: str) -> None:
            n = len(name)
            checks = [f"assert candidate([{n}, 1, 2]) == [{n}, 2, 1]"] if name.startswith("normal") else []
            start.wait()
            results[name] = box.run(program, checks=checks, entry_point="f" if checks else "")

        threads = [threading.Thread(target=submit, args=(name, program)) for name, _, program, _ in jobs]
        with TogetherWatch({marker for _, marker, _, _ in jobs}) as watch:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        assert len(watch.most_together) == concurrent, f"at most {len(watch.most_together)} ran at once"
        for name, _, _, status in jobs:
            result = results[name]
            assert result.status == status, (name, result)
            assert result.message, name
            if name.startswith("normal"):
                assert result.passed == result.total == 1, (name, result)
        assert all(alive_with(marker, wait=1.0) == [] for _, marker, _, _ in jobs)
        assert {server.pid for server in box._servers} == servers
        assert leftovers(box) == []
        still_works(box)


# -- what a submission reports is untrusted ------------------------------------------


def sleep_token() -> str:
    """A `sleep` argument no other process has: an exec'd program keeps its arguments."""
    return f"3000.{uuid.uuid4().int % 10**12:012d}"


SETSID_SLEEP = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', 'TOKEN'])
    os._exit(0)
time.sleep(0.3)
"""
EVERY_DESCRIPTOR = """
for fd in range(3, 64):
    try:
        os.write(fd, DATA)
    except OSError:
        pass
"""
DOUBLE = ["assert candidate(2) == 4", "assert candidate(5) == 10"]


def test_a_bare_number_on_every_descriptor_and_a_setsid_sleep_leave_nothing(sandbox: Sandbox) -> None:
    """The attack of issue 12: a setsid'd grandchild that execs `sleep`, then `5` written
    to every inherited descriptor (the result pipe among them). The server reads no record
    from it, does not crash, and its sweep kills the `sleep`."""
    token = sleep_token()
    program = ("def double(x):\n    return 2 * x\n" + SETSID_SLEEP.replace("TOKEN", token)
               + EVERY_DESCRIPTOR.replace("DATA", "b'5\\n'"))
    servers = {server.pid for server in sandbox._servers}
    result = sandbox.run(program, checks=DOUBLE, entry_point="double")
    assert (result.status, result.passed, result.total) == ("ok", 2, 2), result
    assert "1 leftover process stopped" in result.message
    assert alive_with_argument(token) == []
    assert {server.pid for server in sandbox._servers} == servers  # no server died
    still_works(sandbox)


FORGERIES = """
import json
forged = [b'5', b'null', b'[]', b'"check"', b'{"kind": "check"}', b'[' * 200000 + b']' * 200000,
          json.dumps({"kind": "final", "status": "timeout"}).encode(),
          json.dumps({"kind": "check", "index": 0, "passed": "yes"}).encode(),
          json.dumps({"kind": "check", "index": 7, "passed": True}).encode()]
forged += [json.dumps({"kind": "check", "passed": True}).encode()] * 50
forged += [json.dumps({"kind": "check", "index": i % 2, "passed": True}).encode() for i in range(50)]
DATA = b'\\n'.join(forged) + b'\\n'
"""


def test_forged_records_count_for_no_more_than_the_checks_sent(sandbox: Sandbox) -> None:
    """Fifty forged passing records once stored a score of 25. Malformed records are
    dropped, a record names one of the checks sent, and the checks' own records (sent
    after the program ran) are what count: a wrong function passes nothing."""
    program = ("import os\ndef double(x):\n    return x + 1\n" + FORGERIES
               + EVERY_DESCRIPTOR)
    result = sandbox.run(program, checks=DOUBLE, entry_point="double")
    assert (result.status, result.passed, result.total) == ("ok", 0, 2), result
    assert result.message == "ran; 0/2 checks passed"
    assert [(check["passed"], check["expected"], check["actual"]) for check in result.checks] == [
        (False, "4", "3"), (False, "10", "6")]
    assert [check["source"] for check in result.checks] == DOUBLE


def test_a_flood_of_records_is_stopped(sandbox: Sandbox) -> None:
    program = ("import os\nline = b'{\"kind\": \"check\", \"index\": 0, \"passed\": true}\\n' * 20000\n"
               "for _ in range(200):\n" + textwrap.indent(EVERY_DESCRIPTOR.replace("DATA", "line"), "    "))
    result = sandbox.run(program, checks=DOUBLE)
    assert result.status == "output_limit", result
    assert "to the pipe that reports its checks" in result.message
    assert result.passed <= result.total == 2
    still_works(sandbox)


def test_what_escaped_a_dead_server_is_still_found(process_cap: str) -> None:
    """A server that dies (here SIGKILLed from outside, as the OOM killer would) cannot
    sweep: its leftovers are found without it, by their pids cgroup or their own uid."""
    if process_cap == "scan" and not AS_ROOT:
        pytest.skip("as a user with process_cap = scan nothing finds what escapes a dead server (docs/threat-model.md)")
    token = sleep_token()
    program = SETSID_SLEEP.replace("TOKEN", token) + "time.sleep(60)\n"
    with Sandbox(SandboxConfig(timeout=30, workers=1, process_cap=process_cap)) as box:
        box.warm_up()
        (server,) = box._servers
        results = []
        runner = threading.Thread(target=lambda: results.append(box.run(program)))
        runner.start()
        deadline = time.monotonic() + 10
        while not alive_with_argument(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive_with_argument(token), "the submission never started its sleep"
        os.kill(server.pid, 9)
        runner.join(30)
        assert results and results[0].status == "server_died", results
        assert alive_with_argument(token, wait=2.0) == []
        still_works(box)


# -- System V IPC --------------------------------------------------------------------

IPC_HEADER = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
KEY, SECRET = KEY_VALUE, SECRET_VALUE
class Message(ctypes.Structure):
    _fields_ = [('mtype', ctypes.c_long), ('mtext', ctypes.c_char * 64)]
def listed():
    return [f'{kind} {row.split()[1]}' for kind in ('shm', 'sem', 'msg')
            for row in open(f'/proc/sysvipc/{kind}').read().splitlines()[1:]]
found = {}
"""
IPC_LEAVER = IPC_HEADER + """
segments = [libc.shmget(KEY, 1 << 20, 0o1666), libc.shmget(0, 1 << 20, 0o1666)]  # by key, private
for segment in segments:
    ctypes.memmove(libc.shmat(segment, None, 0), SECRET, len(SECRET))
found['read back'] = ctypes.string_at(libc.shmat(segments[0], None, 0), len(SECRET)).decode()
found['semaphore'] = libc.semget(KEY, 1, 0o1666)
queue = libc.msgget(KEY, 0o1666)
found['message sent'] = libc.msgsnd(queue, ctypes.byref(Message(1, SECRET)), len(SECRET), 0) == 0
found['posix queue'] = libc.mq_open(b'/leafe-left-behind', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0
found['listed'] = listed()
print(json.dumps(found))
"""
IPC_READER = IPC_HEADER + """
found['by key'] = [libc.shmget(KEY, 0, 0), libc.semget(KEY, 0, 0), libc.msgget(KEY, 0, 0)]
found['listed'] = listed()
seen = b''
for segment in list(range(64)) + list(range(32768, 32768 + 64)):  # private segments have no key
    address = libc.shmat(segment, None, 0o10000)  # SHM_RDONLY
    if address not in (None, ctypes.c_void_p(-1).value):
        seen += ctypes.string_at(address, len(SECRET))
found['secret seen'] = SECRET in seen
print(json.dumps(found))
"""


def ipc_programs() -> tuple[str, str, str]:
    secret = f"SECRET-{uuid.uuid4().hex}"
    values = {"KEY_VALUE": str(0x1EAF0000 + uuid.uuid4().int % 0xFFFF), "SECRET_VALUE": repr(secret.encode())}
    leaver, reader = IPC_LEAVER, IPC_READER
    for name, value in values.items():
        leaver, reader = leaver.replace(name, value), reader.replace(name, value)
    return leaver, reader, secret


def test_ipc_objects_do_not_outlive_the_submission(sandbox: Sandbox) -> None:
    """Shared memory (by key and private), a semaphore and a message queue holding a
    secret: usable while the submission runs, gone after it (no memory held), and no later
    submission on any server finds them or their bytes. POSIX message queues are refused."""
    info = sandbox.isolation
    assert info["ipc_namespace"] or info["own_user"], info
    leaver, reader, secret = ipc_programs()
    left = printed(sandbox.run(leaver))
    assert left["read back"] == secret and left["semaphore"] >= 0 and left["message sent"]  # IPC works
    assert len(left["listed"]) == 4, left
    assert left["posix queue"] is False
    assert leftovers(sandbox) == []
    for _ in range(2 * LIMITS.workers):  # every server, twice
        result = sandbox.run(reader)
        found = printed(result)
        assert found == {"by key": [-1, -1, -1], "listed": [], "secret seen": False}, found
        assert secret not in result.stdout


# -- new namespaces ------------------------------------------------------------------

NAMESPACE_PROBE = textwrap.dedent("""
    import ctypes, json, os, platform, shutil, subprocess, threading
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    NEWNS, NEWUSER, NEWPID, NEWNET, NEWIPC = 0x20000, 0x10000000, 0x20000000, 0x40000000, 0x08000000
    CLONE, CLONE3 = {'x86_64': (56, 435), 'aarch64': (220, 435)}[platform.machine()]
    found = {}
    def outcome(value):
        return 'ok' if value >= 0 else os.strerror(ctypes.get_errno())
    def forked(value):  # a raw clone: the child returns 0 and must leave at once
        if value == 0:
            os._exit(0)
        if value > 0:
            os.waitpid(value, 0)
        return outcome(value)
    found['unshare user'] = outcome(libc.unshare(NEWUSER))
    found['unshare user, mount, pid'] = outcome(libc.unshare(NEWUSER | NEWNS | NEWPID))
    found['unshare net, ipc'] = outcome(libc.unshare(NEWNET | NEWIPC))
    found['clone user'] = forked(libc.syscall(CLONE, NEWUSER | 17, 0, 0, 0, 0))
    arguments = (ctypes.c_uint64 * 11)(NEWUSER, 0, 0, 0, 17)  # struct clone_args: flags, ..., exit_signal
    found['clone3 user'] = forked(libc.syscall(CLONE3, arguments, ctypes.sizeof(arguments)))
    found['setns'] = outcome(libc.setns(os.open('/proc/self/ns/uts', os.O_RDONLY), 0))
    if shutil.which('unshare'):
        found['unshare -Ur'] = subprocess.run(['unshare', '-Ur', 'true'], capture_output=True).returncode
    found['seccomp'] = [line.split()[1] for line in open('/proc/self/status') if line.startswith('Seccomp:')]
    ran = []
    thread = threading.Thread(target=ran.append, args=(1,))
    thread.start()
    thread.join()
    found['a thread'] = ran == [1]
    found['a subprocess'] = subprocess.run(['echo', 'x'], capture_output=True).stdout == b'x\\n'
    print(json.dumps(found))
""")


def kernel_allows_user_namespaces_to(uid: int) -> bool:
    """The control: a process of the test, as an unprivileged uid, may make a user
    namespace here; so what refuses it to submissions is the sandbox."""
    pid = os.fork()
    if pid == 0:
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            os._exit(0 if namespaces.unshare(namespaces.CLONE_NEWUSER) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def assert_namespaces_refused(found: dict) -> None:
    for key in ("unshare user", "unshare user, mount, pid", "unshare net, ipc", "clone user", "setns"):
        assert found[key] == "Operation not permitted", (key, found)
    assert found["clone3 user"] == "Function not implemented", found  # the C library then uses clone
    assert found.get("unshare -Ur", 1) != 0, found
    assert found["seccomp"] == ["2"], found  # a filter, inherited by everything the submission starts
    assert found["a thread"] and found["a subprocess"], found  # nothing else is refused


def test_submissions_cannot_make_namespaces(sandbox: Sandbox) -> None:
    assert kernel_allows_user_namespaces_to(UID_BASE - 3), "this kernel refuses user namespaces to everyone"
    assert sandbox.isolation["namespaces_denied"], sandbox.isolation
    assert_namespaces_refused(printed(sandbox.run(NAMESPACE_PROBE)))
    still_works(sandbox)


USER_WORKBENCH = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from workbench.config import SandboxConfig
    from workbench.sandbox import Sandbox
    leaver, reader, namespaces, escape = json.loads(sys.stdin.read())
    with Sandbox(SandboxConfig(timeout=10, workers=2, process_cap='scan')) as box:
        box.warm_up()
        results = [box.run(program) for program in [leaver, *[reader] * 4, namespaces, escape]]
        info = box.isolation
    print(json.dumps({'info': info, 'outputs': [r.stdout for r in results],
                      'statuses': [r.status for r in results], 'messages': [r.message for r in results]}))
""")


@pytest.mark.skipif(not AS_ROOT, reason="needs root to play a user's workbench")
def test_a_workbench_run_by_a_user_clears_ipc_and_denies_namespaces() -> None:
    """As a user (process_cap = scan: a user has no pids cgroup), each server makes its IPC
    namespace inside its own user namespace, and the seccomp filter still holds."""
    from workbench.sandbox import _user as user

    unprivileged = UID_BASE - 4

    def become_a_user() -> None:
        if user.private_mount_namespace() or user.expose(user.private_ancestors([*user.python_paths(), str(ROOT)])):
            os._exit(3)
        os.setgroups([])
        os.setresgid(unprivileged, unprivileged, unprivileged)
        os.setresuid(unprivileged, unprivileged, unprivileged)

    leaver, reader, secret = ipc_programs()
    token = sleep_token()
    escape = SETSID_SLEEP.replace("TOKEN", token) + EVERY_DESCRIPTOR.replace("DATA", "b'5\\n'")
    run = subprocess.run(
        [sys.executable, "-c", USER_WORKBENCH, str(ROOT)], input=json.dumps([leaver, reader, NAMESPACE_PROBE, escape]),
        capture_output=True, text=True, preexec_fn=become_a_user, cwd="/", timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    info, outputs = answer["info"], answer["outputs"]
    assert not info["own_user"] and info["user_namespace"] and info["ipc_namespace"], info
    left = json.loads(outputs[0])
    assert left["read back"] == secret and left["message sent"] and len(left["listed"]) == 4, left
    for output in outputs[1:5]:
        assert json.loads(output) == {"by key": [-1, -1, -1], "listed": [], "secret seen": False}, output
    assert_namespaces_refused(json.loads(outputs[5]))
    assert answer["statuses"][6] == "ok" and "1 leftover process stopped" in answer["messages"][6], answer
    assert alive_with_argument(token, wait=1.0) == []
