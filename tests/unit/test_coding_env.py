"""The coding environment: what a policy and a reflector read after each submission."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from workbench.config import EnvConfig, SandboxConfig
from workbench.envs import open_suite
from workbench.envs.base import Environment, Task, step_succeeded
from workbench.envs.coding import CodingEnvironment, CodingSuite, extract_code, plan_tests
from workbench.errors import EnvironmentSetupError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

TOY_TEST = '''
METADATA = {"author": "test"}

def helper(x):
    return x


def check(candidate):
    assert candidate(1) == 2
    assert True, "This prints if this assert fails (good for debugging!)"
    values = [1, 2, 3]
    assert candidate(values[0]) == 2
    for x in range(4):
        assert candidate(x) == helper(x) * 2
    assert candidate(10) == 20
'''
TOY = Task("toy/double", {"prompt": 'def double(x):\n    """Twice x."""\n', "entry_point": "double", "test": TOY_TEST})


def fenced(code: str) -> str:
    return f"Here is my answer:\n```python\n{code}\n```\nIt doubles x."


@pytest.fixture(scope="module")
def suite():
    config = EnvConfig(max_steps=3, sandbox=SandboxConfig(timeout=3, workers=2))
    humaneval = CodingSuite(config)
    yield humaneval
    humaneval.close()


@pytest.fixture
def env(suite: CodingSuite) -> CodingEnvironment:
    return suite.new_environment()


# -- actions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\ndef f():\n    return 1\n```", "def f():\n    return 1"),
        ("Sure!\n```py\nx = 1\n```\nmore text\n```python\ny = 2\n```", "x = 1"),
        ("```\nprint(1)\n```", "print(1)"),
        ("```Python\nz = 3\n```", "z = 3"),
        ("def f():\n    return 2\n", "def f():\n    return 2"),
        ("```python\ndef cut_off(:\n    ret", "def cut_off(:\n    ret"),
    ],
)
def test_extract_code(text: str, code: str) -> None:
    assert extract_code(text) == code


def test_reset_shows_the_prompt_and_what_to_answer(env: CodingEnvironment, suite: CodingSuite) -> None:
    task = suite.load_tasks(1)[0]
    observation = env.reset(task)
    assert "Complete the function `has_close_elements`" in observation
    assert "```python" in observation and task.spec["prompt"].strip() in observation
    assert isinstance(env, Environment)


def test_a_prompt_in_words_is_shown_as_text(env: CodingEnvironment) -> None:
    task = Task("words/1", {"prompt": "Return twice x.", "entry_point": "double", "test": TOY_TEST})
    observation = env.reset(task)
    assert observation.startswith("Return twice x.\n\nWrite the Python function `double`")
    assert env.step(fenced("def double(x):\n    return 2 * x"))[1]["success"]


# -- checks -----------------------------------------------------------------------


def test_each_top_level_assert_is_one_check_and_a_loop_counts_once() -> None:
    plan = plan_tests(TOY_TEST)
    assert plan.shown == (
        "assert candidate(1) == 2",
        "assert candidate(values[0]) == 2",
        "for x in range(4):\n    assert candidate(x) == helper(x) * 2",
        "assert candidate(10) == 20",
    )
    assert "METADATA" in plan.setup and "def helper" in plan.setup
    assert plan.checks[1] == "values = [1, 2, 3]\nassert candidate(values[0]) == 2"  # its own setup


def test_failing_asserts_report_expected_and_actual(env: CodingEnvironment) -> None:
    env.reset(TOY)
    observation, feedback, score, done = env.step(fenced("def double(x):\n    return x * 2 + (x == 3)"))
    assert (feedback["passed"], feedback["total"]) == (3, 4)
    assert score == 0.75 and not feedback["success"] and not done
    (failure,) = feedback["failures"]
    assert failure["check"].startswith("for x in range(4):")
    assert (failure["expected"], failure["actual"]) == ("6", "7")
    assert "3/4 checks passed." in observation
    assert "assert candidate(x) == helper(x) * 2" in observation and "expected 6, got 7" in observation
    json.dumps(feedback)  # stored as JSON


def test_a_loop_that_fails_is_one_failed_check(env: CodingEnvironment) -> None:
    env.reset(TOY)
    feedback = env.step(fenced("def double(x):\n    return 0 if x == 0 else 99"))[1]
    assert (feedback["passed"], feedback["total"]) == (0, 4)
    assert len(feedback["failures"]) == 4


def test_syntax_error_names_the_line(env: CodingEnvironment) -> None:
    env.reset(TOY)
    observation, feedback, score, _ = env.step(fenced("def double(x):\n    return (x * 2"))
    assert feedback["status"] == "syntax_error" and score == 0.0
    assert feedback["error"]["type"] == "SyntaxError" and feedback["error"]["line"] in (2, 3)
    assert observation.startswith("Your code does not compile: SyntaxError at line")


def test_exception_trace_holds_only_the_submitted_code(env: CodingEnvironment) -> None:
    env.reset(TOY)
    feedback = env.step(fenced("def double(x):\n    items = []\n    return items[x] * 2"))[1]
    assert feedback["error"] == {"type": "IndexError", "message": "list index out of range", "line": 3}
    assert 'File "<submission>", line 3, in double' in feedback["trace"]
    assert "sandbox/_child" not in feedback["trace"] and "<check" not in feedback["trace"]
    assert "IndexError: list index out of range (line 3)" in feedback["failures"][0]["error"]


def test_missing_function_and_endless_loop(env: CodingEnvironment) -> None:
    env.reset(TOY)
    feedback = env.step(fenced("def triple(x):\n    return 3 * x"))[1]
    assert feedback["status"] == "exception" and "does not define double()" in feedback["message"]
    env.reset(TOY)
    observation, feedback, score, _ = env.step(fenced("def double(x):\n    while True:\n        pass"))
    assert feedback["status"] in ("timeout", "cpu") and score == 0.0
    assert observation.startswith("Your code was stopped")


def test_body_only_answers_complete_the_prompt(env: CodingEnvironment, suite: CodingSuite) -> None:
    env.reset(TOY)
    assert env.step("    return x + x\n")[1]["success"]
    env.reset(TOY)
    assert env.step("```python\nreturn x + x\n```")[1]["success"]
    # HumanEval/10's prompt defines is_palindrome: an answer with only make_palindrome uses it.
    (task,) = suite.load_tasks(["HumanEval/10"])
    env.reset(task)
    answer = ("def make_palindrome(string: str) -> str:\n    for i in range(len(string) + 1):\n"
              "        if is_palindrome(string[i:]):\n            return string + string[:i][::-1]\n")
    assert env.step(fenced(answer))[1]["success"]


def test_done_after_max_steps_and_on_success(env: CodingEnvironment) -> None:
    env.reset(TOY)
    wrong = fenced("def double(x):\n    return x")
    assert [env.step(wrong).done for _ in range(3)] == [False, False, True]
    env.reset(TOY)
    result = env.step(fenced("def double(x):\n    return 2 * x"))
    assert result.done and result.score == 1.0 and step_succeeded(result)


def test_snapshot_restores_exactly(env: CodingEnvironment, suite: CodingSuite) -> None:
    env.reset(TOY)
    env.step(fenced("def double(x):\n    return x"))
    state = env.snapshot()
    json.dumps(state)
    env.step(fenced("def double(x):\n    return x"))
    env.restore(state)
    assert env.snapshot() == state
    other = suite.new_environment()
    other.reset(TOY)
    other.restore(state)
    assert other.snapshot() == state and other.step(fenced("def double(x):\n    return x")).done is False


# -- template reflection ------------------------------------------------------------


def test_template_note_uses_the_last_feedback_and_never_the_solution(
    env: CodingEnvironment, suite: CodingSuite
) -> None:
    (task,) = suite.load_tasks(["HumanEval/2"])
    root = {"action": None, "observation": env.reset(task), "feedback": {}, "score": 0.0, "depth": 0}
    path = [root]
    for depth, body in enumerate(["return number / 2", "return number - int(number) + 1"], start=1):
        observation, feedback, score, _ = env.step(fenced(f"def truncate_number(number: float) -> float:\n    {body}"))
        path.append({"action": body, "observation": observation, "feedback": json.dumps(feedback),
                     "score": score, "depth": depth})
    note, rollback = suite.reflect_template(path)
    assert rollback == 2
    assert "expected 0.5 but got 1.5" in note  # the last step's failure, not the first's
    assert len(note.split()) <= 60
    canonical = suite.canonical_solution(task)
    assert canonical is not None
    for line in task.spec["canonical_solution"].strip().splitlines():
        assert line.strip() not in note


def test_template_note_for_a_syntax_error(suite: CodingSuite) -> None:
    feedback = {"success": False, "status": "syntax_error", "passed": 0, "total": 3, "score": 0.0,
                "error": {"type": "SyntaxError", "message": "expected ':'", "line": 4}, "failures": []}
    steps = [{"depth": 0, "feedback": {}}, {"depth": 1, "feedback": feedback}]
    note, rollback = suite.reflect_template(steps)
    assert rollback == 1 and "SyntaxError at line 4" in note


# -- task files ---------------------------------------------------------------------


def write_tasks(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def task_line(task_id: str, **extra: str) -> str:
    record = {"task_id": task_id, "prompt": TOY.spec["prompt"], "entry_point": "double",
              "test": TOY_TEST, "canonical_solution": "    return 2 * x\n", "source": "ignored"}
    record.update(extra)
    return json.dumps(record)


def test_jsonl_task_file(tmp_path: Path) -> None:
    path = write_tasks(tmp_path / "tasks.jsonl", [task_line("t/0"), "", task_line("t/1")])
    suite = open_suite(EnvConfig(suite=str(path), sandbox=SandboxConfig(workers=1)))
    try:
        assert isinstance(suite, CodingSuite)
        assert [t.name for t in suite.load_tasks(None)] == ["t/0", "t/1"]
        assert [t.name for t in suite.load_tasks(1)] == ["t/0"]
        (task,) = suite.load_tasks(["t/1"])
        assert set(task.spec) == {"prompt", "entry_point", "test", "canonical_solution"}
        env = suite.new_environment()
        env.reset(task)
        assert env.step(suite.canonical_solution(task)).feedback["success"]
        with pytest.raises(EnvironmentSetupError, match="no task 't/9'.*e.g. t/0, t/1"):
            suite.load_tasks(["t/9"])
    finally:
        suite.close()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "tasks.jsonl:2: not valid JSON"),
        ('["a list"]', "tasks.jsonl:2: a task must be a JSON object"),
        (json.dumps({"task_id": "t/1", "prompt": "x"}), "tasks.jsonl:2: missing or non-text entry_point, test"),
        (task_line("t/0"), "tasks.jsonl:2: task_id 't/0' appears twice"),
        (task_line("t/1", test="def check(candidate:\n"), "tasks.jsonl:2: its test code does not parse"),
    ],
)
def test_malformed_task_file_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write_tasks(tmp_path / "tasks.jsonl", [task_line("t/0"), line])
    with pytest.raises(EnvironmentSetupError, match=message.replace("(", r"\(")):
        CodingSuite(EnvConfig(suite=str(path))).load_tasks(None)


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSetupError, match="task file not found"):
        CodingSuite(EnvConfig(suite=str(tmp_path / "nope.jsonl"))).load_tasks(3)


# -- HumanEval ----------------------------------------------------------------------


def test_every_humaneval_canonical_solution_passes(suite: CodingSuite) -> None:
    tasks = suite.load_tasks(None)
    assert len(tasks) == 164

    def submit(task: Task) -> tuple[str, dict]:
        env = suite.new_environment()
        env.reset(task)
        result = env.step(fenced(suite.canonical_solution(task)))
        return task.name, result.feedback | {"score": result.score}

    with ThreadPoolExecutor(suite.sandbox().workers) as pool:
        outcomes = list(pool.map(submit, tasks))
    failed = {name: fb["message"] for name, fb in outcomes if not (fb["success"] and fb["score"] == 1.0)}
    assert failed == {}
    assert all(fb["total"] >= 1 for _, fb in outcomes)
