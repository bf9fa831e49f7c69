"""A deterministic store for the UI tests, snapshots and the tmux check (the README's
screenshots come from stores of real runs: tests/ui/make_screenshots.py).

Two runs. Run 1 ("humaneval-leafe") went through explore, reflect, backtrack, curate,
export, distill and evaluate: three coding episodes, template and model notes, branches
beside the steps they replace, five corrections (three proposed, one approved, one
rejected), a dataset, an adapter with its loss curve and a Pass@k table. Run 2
("guess-explore", the newest) only explored. Every timestamp is fixed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from store.db import open_store, transaction  # noqa: E402
from store.episodes import create as create_episode  # noqa: E402
from store.queries import create_run, dumps, ensure_task  # noqa: E402
from store.steps import insert as insert_node  # noqa: E402

FIXED_TIME = "2026-01-15T10:{minute:02d}:00.000+00:00"

HAS_CLOSE = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """Check if in given list of numbers, are any two numbers closer to each other than
    given threshold."""
'''

ADJACENT = """def has_close_elements(numbers, threshold):
    for a, b in zip(numbers, numbers[1:]):
        if abs(a - b) < threshold:
            return True
    return False"""

ADJACENT_LE = """def has_close_elements(numbers, threshold):
    for a, b in zip(numbers, numbers[1:]):
        if abs(a - b) <= threshold:
            return True
    return False"""

SORTED_PAIRS = """def has_close_elements(numbers, threshold):
    ordered = sorted(numbers)
    for a, b in zip(ordered, ordered[1:]):
        if b - a < threshold:
            return True
    return False"""

ALL_PAIRS_WRONG = """def has_close_elements(numbers, threshold):
    for i, a in enumerate(numbers):
        for b in numbers[i:]:
            if abs(a - b) < threshold:
                return True
    return False"""

ALL_PAIRS = """def has_close_elements(numbers, threshold):
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False"""

TRUNCATE = '''def truncate_number(number: float) -> float:
    """Given a positive floating point number, return its decimal part."""
'''

MAD = '''from typing import List


def mean_absolute_deviation(numbers: List[float]) -> float:
    """Mean Absolute Deviation around the mean of this dataset."""
'''

MAD_SYNTAX = """def mean_absolute_deviation(numbers):
    mean = sum(numbers) / len(numbers
    return sum(abs(x - mean) for x in numbers) / len(numbers)"""

MAD_MEDIAN = """def mean_absolute_deviation(numbers):
    centre = sorted(numbers)[len(numbers) // 2]
    return sum(abs(x - centre) for x in numbers) / len(numbers)"""

MAD_NOABS = """def mean_absolute_deviation(numbers):
    mean = sum(numbers) / len(numbers)
    return sum(x - mean for x in numbers) / len(numbers)"""

MAD_RIGHT = """def mean_absolute_deviation(numbers):
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)"""


MAD_AVERAGE = """def mean_absolute_deviation(numbers):
    average = sum(numbers) / len(numbers)
    return sum(abs(x - average) for x in numbers) / len(numbers)"""


def failing(passed: int, total: int, asserts: list[str], error: str = "") -> dict:
    feedback = {"passed": passed, "total": total, "fraction": round(passed / total, 2), "failing_asserts": asserts}
    if error:
        feedback["error"] = error
    return feedback


@dataclass
class FixtureIds:
    """Ids the tests look up, named by what they are."""

    path: Path
    leafe_run: int = 0
    explore_run: int = 0
    episodes: dict[str, int] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    corrections: dict[str, int] = field(default_factory=dict)
    adapter: int = 0


def build_fixture_store(path: str | Path) -> FixtureIds:
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = open_store(path)
    ids = FixtureIds(path=path)
    with transaction(db):
        build_leafe_run(db, ids)
        build_explore_run(db, ids)
        fix_timestamps(db)
    db.close()
    return ids


def step(db, episode_id: int, parent: int, depth: int, action: str, observation: str, feedback: dict,
         score: float, done: bool = False, success: bool = False, note_id: int | None = None,
         branch_depth: int = 0) -> int:
    return insert_node(
        db, episode_id=episode_id, parent_id=parent, depth=depth, action=action, observation=observation,
        feedback=feedback, score=score, done=done, success=success, tokens=len(action.split()),
        note_id=note_id, branch_depth=branch_depth,
    )


def add_note(db, node_id: int, rollback_node_id: int, text: str, author: str) -> int:
    db.execute("update nodes set backtrack_point = 1 where id = ?", [rollback_node_id])
    return db["notes"].insert(
        {"node_id": node_id, "rollback_node_id": rollback_node_id, "text": text, "author": author}
    ).last_pk


def add_correction(db, note_id: int, tau: int, leaf: int, status: str = "proposed", reason: str = "",
                   decided_by: str | None = None) -> int:
    return db["corrections"].insert(
        {"note_id": note_id, "tau_node_id": tau, "leaf_node_id": leaf, "status": status,
         "reason": reason, "decided_by": decided_by}
    ).last_pk


def finish(db, episode_id: int, success: bool, score: float, steps: int) -> None:
    db["episodes"].update(episode_id, {"status": "finished", "success": int(success), "score": score, "steps": steps})


def build_leafe_run(db, ids: FixtureIds) -> None:
    stages = ["explore", "reflect", "backtrack", "curate", "export", "distill", "evaluate"]
    config = {
        "env": {"kind": "coding", "suite": "humaneval", "tasks": 3, "max_steps": 3},
        "model": {"backend": "hf", "name": "embedded"},
        "explore": {"rollouts_per_task": 1},
        "evaluate": {"policies": ["base", "adapter:leafe-run-1"], "n": 4, "k": [1, 2, 4]},
        "stages": {"run": stages},
    }
    run = create_run(db, config=config, stages=stages, name="humaneval-leafe", config_path="examples/leafe.toml")
    ids.leafe_run = run
    db.execute("update run_stages set status = 'finished' where run_id = ?", [run])
    db["runs"].update(run, {"status": "finished", "tokens_generated": 1834, "wall_time": 42.5})

    # Episode 1: adjacent comparisons miss far-apart close values; the note says sort first.
    task = ensure_task(db, "coding", "HumanEval/0", {"entry_point": "has_close_elements"})
    episode, root = create_episode(db, run_id=run, task_id=task, purpose="explore", rollout=0, observation=HAS_CLOSE)
    ids.episodes["close"] = episode
    assert_far = "assert candidate([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True"
    s1 = step(db, episode, root, 1, ADJACENT, "3 of 7 asserts passed.\nFailed: " + assert_far,
              failing(3, 7, [assert_far]), 0.43)
    s2 = step(db, episode, s1, 2, ADJACENT_LE, "4 of 7 asserts passed.\nFailed: " + assert_far,
              failing(4, 7, [assert_far]), 0.57, done=True)
    note = add_note(
        db, s2, s1,
        "Only neighbours in the given order are compared, so close values far apart in the list "
        "are missed. Sort the numbers first, or compare every pair.", "template",
    )
    b1 = step(db, episode, root, 1, SORTED_PAIRS, "7 of 7 asserts passed.", failing(7, 7, []), 1.0,
              done=True, success=True, note_id=note, branch_depth=1)
    b2 = step(db, episode, root, 1, ALL_PAIRS_WRONG, "2 of 7 asserts passed: every number is close to itself.",
              failing(2, 7, ["assert candidate([1.0, 2.0, 3.0], 0.5) == False"]), 0.29, note_id=note, branch_depth=1)
    b2_fix = step(db, episode, b2, 2, ALL_PAIRS, "7 of 7 asserts passed.", failing(7, 7, []), 1.0,
                  done=True, success=True, note_id=note, branch_depth=1)
    finish(db, episode, True, 1.0, 2)
    ids.steps.update(close_s1=s1, close_s2=s2, close_b1=b1, close_b2=b2, close_b2_fix=b2_fix, close_root=root)
    ids.notes["close"] = note
    ids.corrections["sorted"] = add_correction(db, note, s1, b1)
    ids.corrections["all_pairs"] = add_correction(db, note, s1, b2_fix)

    # Episode 2: solved on the second try; nothing to reflect on.
    task = ensure_task(db, "coding", "HumanEval/2", {"entry_point": "truncate_number"})
    episode, root = create_episode(db, run_id=run, task_id=task, purpose="explore", rollout=0, observation=TRUNCATE)
    ids.episodes["truncate"] = episode
    t1 = step(db, episode, root, 1, "def truncate_number(number):\n    return int(number)",
              "0 of 3 asserts passed.", failing(0, 3, ["assert candidate(3.5) == 0.5"]), 0.0)
    t2 = step(db, episode, t1, 2, "def truncate_number(number):\n    return number % 1.0",
              "3 of 3 asserts passed.", failing(3, 3, []), 1.0, done=True, success=True)
    finish(db, episode, True, 1.0, 2)
    ids.steps.update(truncate_s1=t1, truncate_s2=t2)

    # Episode 3: a syntax error, then the median instead of the mean; a model note.
    task = ensure_task(db, "coding", "HumanEval/4", {"entry_point": "mean_absolute_deviation"})
    episode, root = create_episode(db, run_id=run, task_id=task, purpose="explore", rollout=0, observation=MAD)
    ids.episodes["mad"] = episode
    m1 = step(db, episode, root, 1, MAD_SYNTAX, "SyntaxError: '(' was never closed (line 2)",
              failing(0, 3, [], error="SyntaxError: '(' was never closed"), 0.0)
    m2 = step(db, episode, m1, 2, MAD_MEDIAN, "1 of 3 asserts passed.",
              failing(1, 3, ["assert abs(candidate([1.0, 2.0, 3.0, 4.0]) - 1.0) < 1e-6"]), 0.33)
    m3 = step(db, episode, m2, 3, MAD_NOABS, "0 of 3 asserts passed: the deviations cancel out.",
              failing(0, 3, ["assert abs(candidate([1.0, 2.0, 3.0]) - 2.0/3.0) < 1e-6"]), 0.0, done=True)
    model_note = add_note(
        db, m3, m2,
        "The deviation must be measured from the mean, and each distance taken as an absolute value.",
        "model",
    )
    b3 = step(db, episode, m1, 2, MAD_RIGHT, "3 of 3 asserts passed.", failing(3, 3, []), 1.0,
              done=True, success=True, note_id=model_note, branch_depth=1)
    b4 = step(db, episode, m1, 2, "def mean_absolute_deviation(numbers):\n    return 0.0",
              "0 of 3 asserts passed.", failing(0, 3, ["assert abs(candidate([1.0, 2.0, 3.0]) - 2.0/3.0) < 1e-6"]),
              0.0, done=True, note_id=model_note, branch_depth=1)
    syntax_note = add_note(db, m1, m1, "Close every parenthesis: line 2 is missing one.", "template")
    b5 = step(db, episode, root, 1, MAD_AVERAGE, "3 of 3 asserts passed.",
              failing(3, 3, []), 1.0, done=True, success=True, note_id=syntax_note, branch_depth=1)
    finish(db, episode, False, 0.33, 3)
    ids.steps.update(mad_s1=m1, mad_s2=m2, mad_s3=m3, mad_b3=b3, mad_b4=b4, mad_b5=b5)
    ids.notes.update(mad=model_note, syntax=syntax_note)
    ids.corrections["mad_mean"] = add_correction(db, model_note, m2, b3)
    ids.corrections["mad_approved"] = add_correction(db, syntax_note, m1, b5, status="approved", decided_by="auto")
    ids.corrections["mad_rejected"] = add_correction(
        db, model_note, m2, b4, status="rejected", reason="branch did not beat the original", decided_by="auto"
    )

    dataset = db["datasets"].insert(
        {"run_id": run, "name": "leafe-run-1", "path": "runs/run-1/corrections.jsonl", "n_examples": 1,
         "kind": "leafe", "correction_ids": dumps([ids.corrections["mad_approved"]]),
         "task_names": dumps(["HumanEval/4"])}
    ).last_pk
    ids.adapter = db["adapters"].insert(
        {"run_id": run, "name": "leafe-run-1", "path": "adapters/leafe-run-1", "base_model": "embedded",
         "dataset_id": dataset, "kind": "leafe",
         "metrics": dumps({"final_loss": 0.412, "tokens": 2304, "wall_time": 61.0}),
         "lineage": dumps({"run_id": run, "dataset_id": dataset, "dataset_name": "leafe-run-1",
                           "correction_ids": [ids.corrections["mad_approved"]], "task_names": ["HumanEval/4"],
                           "base_model": "embedded",
                           "distill": {"lora_r": 16, "lora_alpha": 32, "learning_rate": 0.0002, "epochs": 3}})}
    ).last_pk
    losses = [2.31, 1.94, 1.52, 1.21, 0.98, 0.81, 0.66, 0.55, 0.47, 0.41]
    db["train_log"].insert_all(
        {"adapter_id": ids.adapter, "step": i + 1, "epoch": (i + 1) / len(losses) * 3, "loss": loss,
         "learning_rate": 0.0002} for i, loss in enumerate(losses)
    )
    table = {"base": [0.33, 0.5, 0.67], "adapter:leafe-run-1": [0.5, 0.75, 0.92]}
    for policy, values in table.items():
        for k, value in zip([1, 2, 4], values, strict=True):
            db["evals"].insert({"run_id": run, "policy": policy, "k": k, "pass_at_k": value,
                                "ci_low": max(0.0, value - 0.2), "ci_high": min(1.0, value + 0.15), "n_tasks": 3})
        for task_id in (1, 2, 3):
            db["eval_results"].insert({"run_id": run, "policy": policy, "task_id": task_id, "n": 4, "c": task_id % 4})


def build_explore_run(db, ids: FixtureIds) -> None:
    config = {"env": {"kind": "tests.fixtures.guess_env:GuessEnvironment", "suite": "", "tasks": 2, "max_steps": 3},
              "model": {"backend": "scripted", "name": "embedded"}, "stages": {"run": ["explore"]}}
    run = create_run(db, config=config, stages=["explore"], name="guess-explore")
    ids.explore_run = run
    db.execute("update run_stages set status = 'finished' where run_id = ?", [run])
    db["runs"].update(run, {"status": "finished", "tokens_generated": 6, "wall_time": 0.2})
    for index, (secret, guesses) in enumerate([(3, ["5", "2", "3"]), (7, ["7"])]):
        task = ensure_task(db, "guess", f"guess/{index}", {"secret": secret})
        episode, parent = create_episode(db, run_id=run, task_id=task, purpose="explore", rollout=0,
                                         observation="Guess a number from 0 to 9.")
        for depth, guess in enumerate(guesses, start=1):
            value = int(guess)
            right = value == secret
            hint = "Correct!" if right else f"Wrong, go {'higher' if value < secret else 'lower'}."
            parent = step(db, episode, parent, depth, guess, hint, {"guess": value, "success": right},
                          1.0 if right else 1 - abs(value - secret) / 10, done=right, success=right)
        finish(db, episode, True, 1.0, len(guesses))


def fix_timestamps(db) -> None:
    for table in ("runs", "episodes", "nodes", "notes", "corrections", "datasets", "adapters"):
        db.execute(f"update [{table}] set created_at = ?", [FIXED_TIME.format(minute=0)])
    for run_id in (1, 2):
        stamp = FIXED_TIME.format(minute=run_id * 5)
        db.execute("update runs set created_at = ?, finished_at = ? where id = ?", [stamp, stamp, run_id])
        db.execute("update run_stages set started_at = ?, finished_at = ? where run_id = ?", [stamp, stamp, run_id])
    db.execute("update corrections set decided_at = ? where decided_by is not null", [FIXED_TIME.format(minute=7)])


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture.db")
    built = build_fixture_store(target)
    print(f"fixture store written to {target} (runs {built.leafe_run}, {built.explore_run})")
