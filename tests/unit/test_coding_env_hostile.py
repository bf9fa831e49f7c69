"""Hostile answers through the coding environment, the way a run meets them: each is one
recorded step whose feedback (and the text the model reads next) names what happened, no
process of it is left, and the episode's next step runs as if nothing had happened.

The programs rename their process to a marker first (tests/fixtures/processes.py), so a
scan of /proc finds anything they leave behind; after every test no process and no IPC
object of a submission remains. Every test runs with both ways of capping processes
(`env.sandbox.process_cap` cgroup and scan).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures.processes import alive_with, alive_with_argument, leftovers, marked
from workbench.config import EnvConfig, SandboxConfig
from workbench.envs.base import Task
from workbench.envs.coding import CodingEnvironment, CodingSuite

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

AS_ROOT = os.geteuid() == 0
CHECKS = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 10\n"
DOUBLE = Task("toy/double", {"prompt": 'def double(x):\n    """Twice x."""\n', "entry_point": "double", "test": CHECKS})
GOOD = "```python\ndef double(x):\n    return 2 * x\n```"
# Generous clocks: filling memory or printing 100 MB is slow on a busy machine, and the
# clock is not what these tests are about (the CPU limit stops the endless loop).
LIMITS = SandboxConfig(timeout=20, cpu_seconds=2, memory_mb=512, max_processes=32, output_limit_kb=64, workers=2)


@pytest.fixture(scope="module", params=["cgroup", "scan"])
def suite(request):
    coding = CodingSuite(EnvConfig(max_steps=10, sandbox=replace(LIMITS, process_cap=request.param)))
    assert coding.sandbox().process_counting == request.param
    yield coding
    coding.close()


@pytest.fixture(autouse=True)
def nothing_left_behind(suite: CodingSuite):
    yield
    assert leftovers(suite.sandbox()) == []


@pytest.fixture
def env(suite: CodingSuite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CodingEnvironment:
    monkeypatch.chdir(tmp_path)  # whatever escapes, never into the project by a relative path
    environment = suite.new_environment()
    environment.reset(DOUBLE)
    return environment


def answer(marker_program: str) -> str:
    """A whole answer: the right function, with the hostile code after it."""
    return f"Here you are:\n```python\n{marker_program}\ndef double(x):\n    return 2 * x\n```"


def next_step_works(env: CodingEnvironment) -> None:
    observation, feedback, score, _ = env.step(GOOD)
    assert feedback["success"] and score == 1.0, feedback
    assert observation == "All 2 checks passed."


def own_user(suite: CodingSuite) -> bool:
    return bool(suite.sandbox().isolation["own_user"])


# -- writing outside the sandbox by absolute path -------------------------------------


@pytest.fixture
def folder_outside():
    """A 0755 folder outside the sandbox that every user may enter, so only the folder's
    own mode protects it. In the project's .pytest_cache (ignored by git), not in /tmp:
    submissions of a root workbench get a /tmp of their own."""
    cache = ROOT / ".pytest_cache"
    cache.mkdir(mode=0o755, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="leafe-outside-", dir=cache))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(not AS_ROOT, reason="submissions write what the workbench's user may write unless it runs as root")
@pytest.mark.parametrize("target", ["the project folder", "a 0755 folder of the test", "the machine's /tmp"])
def test_writing_outside_by_absolute_path_is_a_failed_step_naming_the_error_and_path(
    suite: CodingSuite, env: CodingEnvironment, folder_outside: Path, tmp_path: Path, target: str
) -> None:
    assert own_user(suite), suite.sandbox().isolation  # as root, submissions never share its uid
    folder = {"the project folder": ROOT, "a 0755 folder of the test": folder_outside,
              "the machine's /tmp": tmp_path}[target]
    path = folder / f"escaped-{uuid.uuid4().hex}.txt"
    marker, program = marked(f"open({str(path)!r}, 'w').write('escaped')\n")
    try:
        observation, feedback, score, done = env.step(answer(program))
        assert not feedback["success"] and score == 0.0 and not done
        assert feedback["status"] == "exception"
        expected = ("PermissionError",) if folder != tmp_path else ("PermissionError", "FileNotFoundError")
        assert feedback["error"]["type"] in expected, feedback
        assert str(path) in feedback["message"] and feedback["error"]["type"] in feedback["message"]
        assert str(path) in observation  # what the model reads next
        json.dumps(feedback)  # stored as it is
        assert not path.exists()
        assert alive_with(marker, wait=1.0) == []
        next_step_works(env)
    finally:
        path.unlink(missing_ok=True)


# -- every hostile case of the foundation, through the environment --------------------

HOSTILE = {
    # name: (code, statuses, what the feedback's message says)
    "infinite loop": ("while True:\n    pass\n", {"cpu"}, ("more than 2 s of CPU time",)),
    "200 forked sleeping children": (
        "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(300)\n"
        "        os._exit(0)\ntime.sleep(300)\n",
        {"process_limit"}, ("more than 32 processes",)),
    "memory hog": ("x = []\nwhile True:\n    x.append('x' * 10**6)\n", {"memory"}, ("ran out of memory",)),
    "100 MB print": ("print('x' * 100_000_000)\n", {"output_limit"}, ("the first 64 KiB are kept",)),
    "os._exit": ("import os\nos._exit(3)\n", {"exited"}, ("exited with code 3",)),
    "sys.exit": ("import sys\nsys.exit(0)\n", {"exited"}, ("sys.exit(0)",)),
    # As root the submission runs as a uid of its own and may not signal its server; as
    # the workbench's user it kills the server, which is replaced.
    "os.kill(os.getppid(), 9)": (
        "import os\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(60)\n",
        {"exception"} if AS_ROOT else {"server_died"},
        ("PermissionError",) if AS_ROOT else ("killed the sandbox server",)),
    "writing outside": ("open(OUTSIDE, 'w').write('escaped')\n", {"exception"}, ("PermissionError", "OUTSIDE")),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_each_hostile_answer_is_one_step_that_names_what_happened(
    suite: CodingSuite, env: CodingEnvironment, case: str
) -> None:
    code, statuses, words = HOSTILE[case]
    outside = ROOT / f"escaped-{uuid.uuid4().hex}.txt"
    if case == "writing outside" and not own_user(suite):
        pytest.skip("submissions run as the workbench's user: they write what it may write")
    code = code.replace("OUTSIDE", repr(str(outside)))
    marker, program = marked(code)
    try:
        observation, feedback, score, done = env.step(answer(program))
        assert feedback["status"] in statuses, feedback
        assert not feedback["success"] and score == 0.0 and not done
        words = [str(outside) if word == "OUTSIDE" else word for word in words]
        assert all(word in feedback["message"] for word in words), feedback["message"]
        assert observation.startswith(("Your code was stopped", "Your code raised")), observation
        assert feedback["message"] in observation
        assert alive_with(marker, wait=2.0) == []
        assert not outside.exists()
        next_step_works(env)
    finally:
        outside.unlink(missing_ok=True)


# -- what a submission reports --------------------------------------------------------

FORGED = """
import json, os
line = json.dumps({"kind": "check", "passed": True}).encode() + b"\\n"
indexed = b"".join(json.dumps({"kind": "check", "index": i, "passed": True}).encode() + b"\\n" for i in range(50))
for fd in range(3, 64):
    try:
        os.write(fd, line * 50 + indexed + b"5\\n")
    except OSError:
        pass
"""


def test_fifty_forged_passing_records_never_score_above_one(env: CodingEnvironment) -> None:
    """Once stored as a score of 25.0. A wrong function that forges records scores what its
    checks gave; the step is stored and the next one runs."""
    program = FORGED + "def double(x):\n    return -x\n"
    observation, feedback, score, done = env.step(f"```python\n{program}```")
    assert (feedback["passed"], feedback["total"], score) == (0, 2, 0.0), feedback
    assert not feedback["success"] and observation.startswith("0/2 checks passed")
    json.dumps(feedback)
    next_step_works(env)


def test_a_setsid_sleep_and_bare_numbers_are_one_step_and_leave_nothing(env: CodingEnvironment) -> None:
    token = f"3000.{uuid.uuid4().int % 10**12:012d}"
    program = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execvp('sleep', ['sleep', {token!r}])\n    os._exit(0)\ntime.sleep(0.3)\n"
        "for fd in range(3, 64):\n    try:\n        os.write(fd, b'5\\n')\n    except OSError:\n        pass\n"
    )
    observation, feedback, score, done = env.step(answer(program))
    assert feedback["success"] and score == 1.0, feedback  # the right function: the sleep changed nothing
    assert alive_with_argument(token) == []
    next_step_works(env)
