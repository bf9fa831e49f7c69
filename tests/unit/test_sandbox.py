"""The sandbox under hostile programs: each case ends with a status that names what happened,
no process of the submission left alive, and a sandbox that still runs the next program.

Each test's program renames its process (and so every process it forks) to a unique
marker; `alive_with` scans /proc for it, and after every test `leftovers` finds no
process and no IPC object of any submission. Every test runs with both ways of capping
processes (`process_cap` cgroup and scan); where no pids cgroup can be made, the cgroup
runs fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fixtures.processes import alive_with, leftovers, marked
from workbench.config import EnvConfig, SandboxConfig
from workbench.errors import EnvironmentSetupError
from workbench.sandbox import Sandbox, SandboxResult, remove_stale_folders
from workbench.sandbox import _cgroup as cgroup
from workbench.sandbox._cgroup import remove_stale_cgroups

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

LIMITS = SandboxConfig(timeout=1.5, cpu_seconds=10, memory_mb=256, max_processes=32, workers=2)
CAPS = ("cgroup", "scan")


def still_works(sandbox: Sandbox) -> None:
    result = sandbox.run("def add(a, b):\n    return a + b\n", checks=["assert candidate(1, 2) == 3"],
                         entry_point="add")
    assert (result.status, result.passed, result.total) == ("ok", 1, 1), result
    assert leftovers(sandbox) == []


@pytest.fixture(scope="module", params=CAPS)
def process_cap(request) -> str:
    return request.param


def limits(process_cap: str, **changes) -> SandboxConfig:
    return replace(SandboxConfig(**changes) if changes else LIMITS, process_cap=process_cap)


@pytest.fixture(scope="module")
def sandbox(process_cap: str):
    with Sandbox(limits(process_cap)) as box:
        assert box.process_counting == process_cap
        yield box


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After every test on the shared sandbox: no process and no IPC object of a submission."""
    yield
    if "sandbox" in request.fixturenames:
        assert leftovers(request.getfixturevalue("sandbox")) == []


# -- ordinary programs --------------------------------------------------------------


def test_checks_report_passes_and_expected_and_actual_values(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "def double(x):\n    return x * 2 + (x == 3)\nprint('hello')\n",
        checks=["assert candidate(1) == 2", "assert candidate(3) == 6",
                "for x in range(5):\n    assert candidate(x) == x * 2"],
        entry_point="double",
    )
    assert isinstance(result, SandboxResult)
    assert (result.status, result.passed, result.total) == ("ok", 1, 3)
    assert result.message == "ran; 1/3 checks passed"
    assert result.stdout == "hello\n"
    second, loop = result.checks[1], result.checks[2]
    assert (second["passed"], second["expected"], second["actual"]) == (False, "6", "7")
    assert (loop["expected"], loop["actual"]) == ("6", "7")  # the loop's failing iteration
    assert loop["source"].startswith("for x in range(5)")


def test_syntax_error_names_its_line(sandbox: Sandbox) -> None:
    result = sandbox.run("x = 1\ndef f(:\n    pass\n")
    assert result.status == "syntax_error"
    assert result.error["line"] == 2
    assert result.message.startswith("SyntaxError at line 2")


def test_exception_trace_shows_only_the_submitted_code(sandbox: Sandbox) -> None:
    result = sandbox.run("def f(x):\n    return helper(x)\n\ndef helper(x):\n    return 1 / x\n",
                         checks=["assert candidate(0) == 1"], entry_point="f")
    assert result.status == "ok" and result.passed == 0
    assert result.error == {"type": "ZeroDivisionError", "message": "division by zero", "line": 5}
    assert "ZeroDivisionError: division by zero (line 5)" in result.checks[0]["error"]
    assert 'File "<submission>", line 2, in f' in result.trace
    assert 'File "<submission>", line 5, in helper' in result.trace
    assert "sandbox/_child" not in result.trace and "<check" not in result.trace


def test_printing_cannot_forge_results(sandbox: Sandbox) -> None:
    forged = json.dumps({"kind": "check", "source": "x", "passed": True})
    final = json.dumps({"kind": "final", "status": "ok"})
    result = sandbox.run(f"print({forged!r})\nprint({final!r})\n", checks=["assert False"])
    assert (result.status, result.passed, result.total) == ("ok", 0, 1)


def test_environment_is_scrubbed_and_cwd_is_private(sandbox: Sandbox) -> None:
    os.environ["LEAFE_TEST_SECRET"] = "do-not-leak"
    try:
        result = sandbox.run("import os, json\nprint(json.dumps([sorted(os.environ), os.getcwd(), os.environ['HOME']]))")
    finally:
        del os.environ["LEAFE_TEST_SECRET"]
    names, cwd, home = json.loads(result.stdout)
    assert names == ["HOME", "LANG", "PATH"]
    assert home == cwd and cwd != os.getcwd()


def test_runs_from_many_threads_at_once(sandbox: Sandbox) -> None:
    program = "def square(x):\n    return x * x\n"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda n: sandbox.run(program, checks=[f"assert candidate({n}) == {n * n}"], entry_point="square"),
            range(40),
        ))
    assert all(r.status == "ok" and r.passed == 1 for r in results)


# -- hostile programs ---------------------------------------------------------------


def test_infinite_loop_is_stopped_by_the_wall_clock(sandbox: Sandbox) -> None:
    marker, program = marked("while True:\n    pass\n")
    result = sandbox.run(program, checks=["assert True"])
    assert result.status == "timeout"
    assert result.message.startswith("did not finish within 1.5 s")
    assert 1.4 < result.duration < 6
    assert alive_with(marker) == []
    still_works(sandbox)


def test_cpu_time_limit(process_cap: str) -> None:
    marker, program = marked("while True:\n    pass\n")
    with Sandbox(limits(process_cap, timeout=5, cpu_seconds=1, workers=1)) as box:
        result = box.run(program)
        assert result.status == "cpu"
        assert "more than 1 s of CPU time" in result.message
        assert alive_with(marker) == []
        still_works(box)


def test_two_hundred_sleeping_children_hit_the_process_limit(process_cap: str) -> None:
    marker, program = marked("""
        import os, time
        for _ in range(200):
            if os.fork() == 0:
                time.sleep(300)
                os._exit(0)
        time.sleep(300)
    """)
    with Sandbox(limits(process_cap)) as box:
        result = box.run(program)
        assert result.status == "process_limit", result
        assert "more than 32 processes" in result.message
        assert alive_with(marker) == []
        still_works(box)


def test_fork_bomb_is_capped(sandbox: Sandbox, process_cap: str) -> None:
    """The cgroup refuses forks past the cap; without it, the submission's own uid's
    RLIMIT_NPROC holds the bomb until the /proc count stops it. As a user, nothing would
    (an uncapped fork bomb is not something to run in a test)."""
    if process_cap == "scan" and not sandbox.isolation["own_user"]:
        pytest.skip("as a user with process_cap = scan nothing caps a fork bomb (docs/threat-model.md)")
    marker, program = marked("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    result = sandbox.run(program)
    assert result.status == "process_limit"
    assert alive_with(marker, wait=1.0) == []
    still_works(sandbox)


def test_threads_fit_under_the_memory_limit(sandbox: Sandbox) -> None:
    program = textwrap.dedent("""
        import threading
        results = []
        threads = [threading.Thread(target=results.append, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(results))
    """)
    result = sandbox.run(program)
    assert (result.status, result.stdout) == ("ok", "20\n")


def test_memory_hog_gets_memory_status(process_cap: str) -> None:
    marker, program = marked("x = []\nwhile True:\n    x.append('x' * 10**6)\n")
    # A generous clock: filling memory is slow on a busy machine, and this test is about memory.
    with Sandbox(limits(process_cap, timeout=20, memory_mb=128, workers=1)) as box:
        result = box.run(program)
        assert result.status == "memory"
        assert result.message == "ran out of memory (limit 128 MiB)"
        assert alive_with(marker) == []
        still_works(box)


def test_hundred_megabyte_print_is_capped(process_cap: str) -> None:
    marker, program = marked("print('x' * 100_000_000)\n")
    # Building a 100 MB string takes a while on a busy machine; the clock is not under test.
    with Sandbox(limits(process_cap, timeout=20, memory_mb=512, workers=1)) as box:
        result = box.run(program)
        assert result.status == "output_limit"
        assert "the first 64 KiB are kept" in result.message
        assert len(result.stdout) == 64 * 1024
        assert alive_with(marker) == []
        still_works(box)


def test_os_exit_is_reported_with_its_code(sandbox: Sandbox) -> None:
    marker, program = marked("import os\nos._exit(3)\n")
    result = sandbox.run(program, checks=["assert True"])
    assert result.status == "exited"
    assert "exited with code 3" in result.message
    assert alive_with(marker) == []
    still_works(sandbox)


def test_sys_exit_is_reported(sandbox: Sandbox) -> None:
    marker, program = marked("import sys\nsys.exit(0)\n")
    result = sandbox.run(program, checks=["assert True"])
    assert result.status == "exited"
    assert "sys.exit(0)" in result.message
    assert alive_with(marker) == []
    still_works(sandbox)


def test_killing_the_server_gets_it_replaced(process_cap: str) -> None:
    marker, program = marked("import os\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(60)\n")
    # A submission running as the server's own user can kill it (a workbench run by a
    # user; as root, submissions run as a uid of their own and get EPERM instead).
    with Sandbox(limits(process_cap, timeout=5, workers=1), run_as="same") as box:
        still_works(box)
        (old,) = box._servers
        result = box.run(program, checks=["assert True"])
        assert result.status == "server_died"
        assert "the submission killed the sandbox server (SIGKILL)" in result.message
        assert alive_with(marker, wait=2.0) == []
        still_works(box)
        assert old.process.poll() is not None and old not in box._servers


def test_relative_path_escape_is_confined(sandbox: Sandbox) -> None:
    name = f"escape-{uuid.uuid4().hex}.txt"
    program = f"import os\nfor up in range(1, 5):\n    path = '../' * up + {name!r}\n" \
              "    open(path, 'w').write('x')\n    print(os.path.abspath(path))\n"
    result = sandbox.run(program)
    assert result.status == "ok", result
    landed = result.stdout.split()
    assert len(landed) == 4
    base = sandbox._base
    for path in landed:
        assert path.startswith(base + os.sep)  # inside the sandbox's own folders ...
        assert not os.path.exists(path)  # ... which were emptied after the run
    assert not (Path(tempfile.gettempdir()) / name).exists()


def test_setsid_grandchild_is_killed(sandbox: Sandbox) -> None:
    marker, program = marked("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(300)
            os._exit(0)
        time.sleep(0.2)
        print('parent done')
    """)
    result = sandbox.run(program)
    assert result.status == "ok"
    assert "leftover process stopped" in result.message
    assert alive_with(marker) == []
    still_works(sandbox)


def test_file_size_limit(process_cap: str) -> None:
    program = "open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))\n"
    with Sandbox(limits(process_cap, file_size_mb=1, workers=1)) as box:
        result = box.run(program)
        assert result.status == "file_size"
        assert "larger than 1 MiB" in result.message
        assert leftovers(box) == []


def test_network_is_isolated_where_the_os_allows(sandbox: Sandbox) -> None:
    if not sandbox.network_isolated:
        pytest.skip("this machine does not allow a network namespace")
    program = (
        "import socket\ns = socket.socket()\ns.settimeout(0.5)\n"
        "try:\n    s.connect(('1.1.1.1', 53))\n    print('connected')\nexcept OSError as e:\n    print('no network')\n"
    )
    assert sandbox.run(program).stdout.strip() == "no network"


def test_servers_and_children_die_with_a_killed_workbench(process_cap: str) -> None:
    marker, program = marked("import time\ntime.sleep(300)\n")
    script = textwrap.dedent(f"""
        import sys, threading, time
        sys.path.insert(0, {str(ROOT)!r})
        from workbench.config import SandboxConfig
        from workbench.sandbox import Sandbox
        box = Sandbox(SandboxConfig(timeout=60, workers=1, process_cap={process_cap!r}))
        threading.Thread(target=box.run, args=({program!r},), daemon=True).start()
        time.sleep(0.5)
        print(*[s.pid for s in box._servers], flush=True)
        time.sleep(300)
    """)
    workbench = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        servers = [int(pid) for pid in workbench.stdout.readline().split()]
        deadline = time.monotonic() + 10
        while not alive_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert servers and alive_with(marker) != []
    finally:
        workbench.send_signal(signal.SIGKILL)
        workbench.wait()
    assert alive_with(marker, wait=3.0) == []
    deadline = time.monotonic() + 3.0
    while any(Path(f"/proc/{pid}").exists() for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(is_server(pid) for pid in servers)
    # What the next sandbox would clean up at its start; this test is the last user.
    remove_stale_cgroups()
    remove_stale_folders()


def is_server(pid: int) -> bool:
    try:
        return b"workbench.sandbox.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# -- choosing how processes are capped ----------------------------------------------


def test_each_process_cap_is_the_one_the_servers_use(process_cap: str) -> None:
    with Sandbox(limits(process_cap, workers=1)) as box:
        info = box.isolation
        assert box.process_counting == process_cap
        assert (info["cgroup"] is not None) == (process_cap == "cgroup")
        if info["cgroup"]:
            assert Path(info["cgroup"], "cgroup.procs").exists()  # the server's own, made for it


def test_cgroup_where_none_can_be_made_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A machine without a writable pids hierarchy (a container, a user): a forced
    `cgroup` is refused before anything starts; `auto` falls back to scanning."""
    from workbench import cli

    monkeypatch.setattr(cgroup, "CGROUP_ROOTS", (str(tmp_path / "no-cgroup-here"),))
    with pytest.raises(EnvironmentSetupError) as refused:
        Sandbox(SandboxConfig(workers=1, process_cap="cgroup"))
    assert "process_cap" in str(refused.value) and "\n" not in str(refused.value)
    with Sandbox(SandboxConfig(workers=1, process_cap="auto")) as box:
        assert box.process_counting in ("scan", "cgroup")  # the servers see the real machine
    tasks = ROOT / "tests/fixtures/two_tasks.jsonl"
    script = tmp_path / "script.jsonl"
    script.write_text(json.dumps({"task_id": "easy/add", "actions": ["def add(a, b):\n    return a + b"]}) + "\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
        f'[env]\nsuite = "{tasks}"\ntasks = ["easy/add"]\n[env.sandbox]\nprocess_cap = "cgroup"\n'
    )
    store = tmp_path / "s.db"
    assert cli.main(["--batch", str(config), "--db", str(store)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "process_cap" in error and "cgroup" in error, error
    assert not store.exists()  # refused before anything was written


def test_an_unknown_process_cap_is_refused_in_one_line() -> None:
    from workbench.config import config_from_dict
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="env.sandbox.process_cap must be one of"):
        config_from_dict({"env": {"sandbox": {"process_cap": "proc-scan"}}})
    with pytest.raises(EnvironmentSetupError, match="process_cap"):
        Sandbox(SandboxConfig(process_cap="proc-scan"))  # type: ignore[arg-type]
    assert EnvConfig().sandbox.process_cap == "auto"
