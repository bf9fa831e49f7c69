"""Stdin/stdout coding tasks through the real sandbox: the shipped problems' reference
programs pass, and each kind of wrong program is one step whose feedback and next
observation say what happened (wrong answer with input, expected and actual output,
runtime error with its trace, time, memory and output limits), with nothing left behind.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import replace

import pytest

from tests.conftest import ROOT
from tests.fixtures.processes import alive_with, leftovers, marked
from tests.unit.test_bad_input import CODING_RUN, refused_with_store_untouched, store_with_a_run
from workbench.config import EnvConfig, SandboxConfig
from workbench.envs.base import Task
from workbench.envs.coding import CodingEnvironment, CodingSuite
from workbench.envs.coding.stdio import stdio_spec
from workbench.errors import EnvironmentSetupError
from workbench.sandbox._stdio import same_output

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

EXAMPLES = ROOT / "examples/stdio_tasks.jsonl"
LIMITS = SandboxConfig(timeout=10, cpu_seconds=4, memory_mb=512, max_processes=32, output_limit_kb=64, workers=1)
SUM = Task("toy/sum", stdio_spec({
    "task_id": "toy/sum", "prompt": "Print a + b.",
    "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},  # CodeContests' shape
    "private_tests": [{"input": "10 -4\n", "output": "6\n"}, {"input": "7 7\n", "output": "14\n"}],
    "time_limit": {"seconds": 1, "nanos": 0}, "memory_limit": 128,
}, "test"))
GOOD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"


@pytest.fixture(scope="module")
def suite():
    coding = CodingSuite(EnvConfig(suite=str(EXAMPLES), max_steps=10, sandbox=LIMITS))
    yield coding
    coding.close()


@pytest.fixture(autouse=True)
def nothing_left_behind(suite: CodingSuite):
    yield
    assert leftovers(suite.sandbox()) == []


@pytest.fixture
def env(suite: CodingSuite) -> CodingEnvironment:
    environment = suite.new_environment()
    environment.reset(SUM)
    return environment


def program(code: str) -> str:
    return f"Here is my program:\n```python\n{code}```"


def test_every_shipped_problem_is_solved_by_its_reference_program(suite: CodingSuite) -> None:
    tasks = suite.load_tasks(None)
    assert 6 <= len(tasks) <= 10
    env = suite.new_environment()
    for task in tasks:
        observation = env.reset(task)
        assert task.spec["prompt"] in observation and "standard input" in observation
        result = env.step(program(suite.canonical_solution(task)))
        assert result.feedback["success"] and result.score == 1.0, (task.name, result.observation)
        assert result.observation == f"All {len(task.spec['public'])} tests passed."


def test_a_wrong_answer_shows_the_public_input_expected_and_actual_but_never_a_hidden_test(env) -> None:
    observation, feedback, score, done = env.step(program("a, b = map(int, input().split())\nprint(a - b)\n"))
    assert (feedback["passed"], feedback["total"], score, done) == (0, 2, 0.0, False)  # private tests are scored
    assert observation.startswith("0/2 hidden tests passed.")
    assert "test 1: wrong answer on input 1 2: expected 3, got -1" in observation
    assert "hidden test 1: wrong answer" in observation
    assert "10 -4" not in observation and "10 -4" not in json.dumps(feedback)  # a hidden input stays hidden
    note, _ = env.suite.reflect_template([{}, {"feedback": feedback, "depth": 1}])
    assert "on input 1 2 printed -1 but 3 was expected" in note
    result = env.step(GOOD)
    assert result.feedback["success"] and result.score == 1.0 and result.done


def test_a_runtime_error_names_the_exception_line_and_trace(env) -> None:
    observation, feedback, score, _ = env.step(program("x = int(input())\nprint(x)\n"))
    assert score == 0.0 and feedback["failures"][0]["verdict"] == "runtime_error"
    assert feedback["error"]["type"] == "ValueError" and feedback["error"]["line"] == 1
    assert "test 1: runtime error on input 1 2: ValueError at line 1" in observation
    assert 'File "<submission>", line 1' in feedback["trace"]
    note, _ = env.suite.reflect_template([{}, {"feedback": feedback, "depth": 1}])
    assert "raised ValueError at line 1" in note


def test_partial_credit_is_the_fraction_of_scored_tests_passed(env) -> None:
    code = "a, b = map(int, input().split())\nprint(a + b if a != 7 else 0)\n"
    _, feedback, score, _ = env.step(program(code))
    assert (feedback["passed"], feedback["total"]) == (1, 2) and score == 0.5


SLOW = {
    "an endless loop": ("while True:\n    pass\n", "time_limit", "time limit exceeded (1 s)", "too slow"),
    "a memory hog": ("x = []\nwhile True:\n    x.append('x' * 10**6)\n", "memory_limit",
                     "memory limit exceeded (128 MiB)", "out of memory"),
    "printing forever": ("while True:\n    print('spam' * 100)\n", "output_limit", "printed far too much",
                         "printed far too much"),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_a_program_past_a_limit_is_a_failed_test_and_the_next_step_runs(env, case: str) -> None:
    code, verdict, shown, in_note = SLOW[case]
    marker, hostile = marked(code)
    started = time.monotonic()
    observation, feedback, score, _ = env.step(program(hostile))
    assert score == 0.0 and feedback["status"] == "ok"
    assert feedback["failures"][0]["verdict"] == verdict
    assert shown in observation, observation
    # Two tests past the time limit and the rest are not run: not 3 x the limit.
    assert time.monotonic() - started < 8
    assert alive_with(marker, wait=1.0) == []
    note, _ = env.suite.reflect_template([{}, {"feedback": feedback, "depth": 1}])
    assert in_note in note
    assert env.step(GOOD).feedback["success"]


def test_hostile_programs_leave_nothing_and_forged_records_score_nothing(env) -> None:
    token = f"3000.{uuid.uuid4().int % 10**12:012d}"
    code = (
        "import os, json\nif os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', "
        f"{token!r}])\nline = b''.join(json.dumps({{'kind': 'check', 'index': i, 'passed': True}}).encode()"
        " + b'\\n' for i in range(50))\nfor fd in range(3, 64):\n    try:\n        os.write(fd, line)\n"
        "    except OSError:\n        pass\nprint(0)\n"
    )
    marker, hostile = marked(code)
    observation, feedback, score, _ = env.step(program(hostile))
    assert (feedback["passed"], score) == (0, 0.0), feedback
    assert alive_with(marker, wait=2.0) == []
    json.dumps(feedback)
    assert env.step(GOOD).feedback["success"]


def test_sys_exit_zero_and_reading_all_of_stdin_are_ordinary_programs(env) -> None:
    code = "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)\nsys.exit(0)\n"
    assert env.step(program(code)).feedback["success"]
    assert env.step(program("a, b = map(int, open(0).read().split())\nprint(a + b)\n")).feedback["success"]


def test_a_syntax_error_is_one_failed_step(env) -> None:
    observation, feedback, score, _ = env.step(program("print(1 +\n"))
    assert feedback["status"] == "syntax_error" and score == 0.0
    assert observation.startswith("Your program does not compile: SyntaxError at line 1")


def test_snapshot_and_restore_give_the_same_state(suite: CodingSuite, env) -> None:
    env.step(program("print(3)\n"))
    state = env.snapshot()
    other = suite.new_environment()
    other.reset(SUM)
    other.restore(json.loads(json.dumps(state)))
    assert other.last_feedback == env.last_feedback and other.steps == env.steps


def test_outputs_compare_after_trimming_and_within_the_float_tolerance() -> None:
    assert same_output("3  \n\n\n", "3\n")
    assert not same_output(" 3\n", "3\n")  # leading space is kept
    assert not same_output("0.333\n", "0.3333333\n")
    assert same_output("0.333\n", "0.3333333\n", 1e-3)
    assert not same_output("0.33 x\n", "0.3333333 y\n", 1e-2)
    assert not same_output("nan\n", "nan\n".upper(), 1.0)


def test_env_float_tolerance_applies_where_a_task_sets_none(suite: CodingSuite) -> None:
    task = Task("toy/third", stdio_spec({"task_id": "toy/third", "prompt": "Print 1/3.",
                                          "tests": [{"input": "", "output": "0.3333333\n"}]}, "test"))
    strict = CodingEnvironment(replace(suite.config, float_tolerance=0.0), suite.sandbox)
    loose = CodingEnvironment(replace(suite.config, float_tolerance=1e-3), suite.sandbox)
    for environment in (strict, loose):
        environment.reset(task)
    assert strict.step(program("print(0.333)\n")).score == 0.0
    assert loose.step(program("print(0.333)\n")).score == 1.0


def test_a_300_test_task_runs_in_seconds(suite: CodingSuite) -> None:
    tests = [{"input": f"{i} {i + 1}\n", "output": f"{2 * i + 1}\n"} for i in range(300)]
    task = Task("toy/many", stdio_spec({"task_id": "toy/many", "prompt": "Print a + b.", "tests": tests}, "test"))
    env = suite.new_environment()
    env.reset(task)
    env.step(GOOD)  # the server is warm
    started = time.monotonic()
    result = env.step(GOOD)
    seconds = time.monotonic() - started
    assert result.feedback["passed"] == 300 and result.score == 1.0
    print(f"\n300 stdin/stdout tests of one submission: {seconds:.2f} s ({1000 * seconds / 300:.1f} ms a test)")


BAD_ROWS = {
    "both test and tests": ({"test": "assert True"}, "task 'io/x' has both `test` (assert code) and `tests`"),
    "no tests": ({"tests": []}, "task 'io/x' has no tests"),
    "a test without output": ({"tests": [{"input": "1\n"}]}, "task 'io/x': test 1 needs text `input` and `output`"),
    "lists of different length": ({"tests": None, "public_tests": {"input": ["1"], "output": []}},
                                  "task 'io/x': 1 inputs but 0 outputs"),
    "a zero time limit": ({"time_limit": 0}, "task 'io/x': time_limit must be a number above 0"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_stdio_row_is_refused_in_one_line_naming_the_file_line_and_task(tmp_path, case: str) -> None:
    store_with_a_run(tmp_path)
    extra, message = BAD_ROWS[case]
    row = {"task_id": "io/x", "prompt": "Echo.", "tests": [{"input": "1\n", "output": "1\n"}]} | extra
    row = {key: value for key, value in row.items() if value is not None}
    good = {"task_id": "io/ok", "prompt": "Echo.", "tests": [{"input": "1\n", "output": "1\n"}]}
    (tmp_path / "tasks.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    refused_with_store_untouched(tmp_path, CODING_RUN, f"tasks.jsonl:2: {message}")


def test_a_stdio_spec_from_a_bad_row_is_an_environment_error() -> None:
    with pytest.raises(EnvironmentSetupError, match="memory_limit must be a number at least 16"):
        stdio_spec({"task_id": "a", "prompt": "p", "tests": [{"input": "", "output": ""}], "memory_limit": 1}, "f:1")
