"""What `leafe-tui --batch` shows a person: tables with counts in words, progress bars
whose counts add up and stop, the commands to run next, and `--json` as one object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from tests.conftest import GUESS_ENV, ROOT, write_config, write_script
from workbench.progress import RichProgress

LEAFE_TUI = [sys.executable, "-m", "workbench.cli"]


def one_correction_config(workdir: Path, *, policy: str = "human") -> Path:
    """guess/0 (secret 3) fails with 5 then 4, and its one branch guesses 3; guess/1 (secret
    7) succeeds at once: 2 episodes, 1 success, 1 note, 1 branch, 1 proposed correction."""
    script = write_script(workdir / "s.jsonl", {"guess/0": ["5", "4", "3"], "guess/1": ["7"]})
    return write_config(
        workdir / "c.toml",
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
        f'[env]\nkind = "{GUESS_ENV}"\ntasks = 2\nmax_steps = 2\n'
        '[backtrack]\nbranches = 1\nmax_depth = 1\nrollback = "last"\n'
        f'[curate]\npolicy = "{policy}"\n'
        '[stages]\nrun = ["explore", "reflect", "backtrack", "curate"]\n',
    )


def batch(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LEAFE_TUI, "--batch", str(config), "--db", str(workdir / "s.db"), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "160"},
    )


def table_row(text: str, label: str) -> list[str]:
    """The cells of the table row that starts with `label` (box characters dropped)."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{text}")


def test_the_summary_is_tables_in_words_with_the_next_commands(workdir):
    process = batch(workdir, one_correction_config(workdir))
    assert process.returncode == 0, process.stderr
    err = process.stderr
    assert "{'" not in err and "{\"" not in err, "no Python dict reaches the screen"
    # What happened, one count per row.
    assert table_row(err, "episodes explored")[1] == "2"
    assert table_row(err, "successes")[1] == "1"
    assert table_row(err, "notes")[1] == "1"
    assert table_row(err, "backtrack points")[1] == "1"
    assert table_row(err, "branches")[1:] == ["1", "1 branch succeeded"]
    assert table_row(err, "proposed corrections")[1] == "1"
    # Each stage in words, plurals agreeing with their counts.
    assert table_row(err, "explore")[1].startswith("2 episodes, 1 success, 3 steps")
    assert table_row(err, "backtrack")[1] == "1 branch, 1 correction, 0 notes, 1 level"
    # The next commands, exact: open the workbench on this store, then distill.
    assert f"leafe-tui --db {workdir / 's.db'}" in err
    assert "c reviews its 1 proposed correction\n" in err
    assert "then d, and ctrl+s, in the workbench" in err and "distills the approved corrections" in err
    assert "what happened" not in process.stdout and "next:" not in process.stdout, "the summary is on stderr"


def test_progress_bars_have_totals_that_add_up(workdir):
    err = batch(workdir, one_correction_config(workdir)).stderr
    assert "/?" not in err, "every bar has a total"
    explore = next(line for line in err.splitlines() if line.startswith("explore:"))
    # 2 episodes of at most 2 steps: 4 steps on the bar, all counted (one ended early).
    assert "explore: 2 episodes × 2 steps" in explore and " 4/4 " in explore, explore
    backtrack = next(line for line in err.splitlines() if line.startswith("backtrack 1:"))
    # One branch replacing the last of 2 steps may take 1 step: the bar says so and fills.
    assert "backtrack 1: 1 branch, ≤ 1 step" in backtrack and " 1/1 " in backtrack, backtrack
    reflect = next(line for line in err.splitlines() if line.startswith("reflect:"))
    assert "reflect: 1 failed step " in reflect and " 1/1 " in reflect, reflect


def test_json_stays_one_object_on_stdout(workdir):
    process = batch(workdir, one_correction_config(workdir), "--json")
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)  # the whole of stdout is one object
    assert summary["corrections"] == 1 and summary["stages"]["backtrack"]["branches"] == 1
    assert "what happened" not in process.stdout and "explore:" in process.stderr


def test_a_run_with_no_correction_says_what_to_look_at_instead(workdir):
    script = write_script(workdir / "s.jsonl", {"guess/0": ["3"], "guess/1": ["7"]})
    config = write_config(
        workdir / "c.toml",
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n[env]\nkind = "{GUESS_ENV}"\ntasks = 2\n',
    )
    err = batch(workdir, config).stderr
    assert table_row(err, "successes")[1] == "2"
    assert table_row(err, "proposed corrections")[1] == "0"
    assert "reviews" not in err and "Enter opens the run: its tree, notes and branches" in err


def test_a_finished_bar_stops_its_clock():
    console = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115  closed with the test
    with RichProgress(console) as progress:
        progress.start("backtrack", None, "a stage with no known total")
        progress.advance(3)
        progress.start("explore", 4, "explore: 2 episodes × 2 steps")
        progress.advance(2)
        progress.finish()
        first, second = progress.bars.tasks
        assert first.finished or first.stop_time is not None
        assert second.completed == second.total == 4 and second.finished
        elapsed = [task.elapsed for task in progress.bars.tasks]
        time.sleep(0.05)
        assert [task.elapsed for task in progress.bars.tasks] == elapsed, "finished bars' clocks stand still"
    console.file.close()


def test_seed_replaces_the_configs_sampling_seed(workdir):
    config = one_correction_config(workdir)
    shown = subprocess.run(
        [*LEAFE_TUI, "--batch", str(config), "--seed", "3", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    explore = shown.stdout.split("[explore]", 1)[1].split("\n[", 1)[0]
    assert "seed = 3" in explore.splitlines(), explore
    assert batch(workdir, config, "--seed", "4", "--json").returncode == 0
    from store.db import open_store

    stored = json.loads(open_store(workdir / "s.db")["runs"].get(1)["config"])
    assert stored["explore"]["seed"] == 4, "the run records the seed it used"
    refused = subprocess.run([*LEAFE_TUI, "--seed", "4"], capture_output=True, text=True, cwd=ROOT,
                             env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert refused.returncode == 2 and "--seed need --batch" in refused.stderr


def test_the_output_ends_with_the_next_commands(workdir):
    # stdout and stderr as a terminal shows them: tables on either, the next commands last.
    process = subprocess.run(
        [*LEAFE_TUI, "--batch", str(one_correction_config(workdir)), "--db", str(workdir / "s.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "160"},
    )
    shown = process.stdout.rstrip().splitlines()
    assert shown[-1].strip() == "distills the approved corrections into a LoRA adapter beside the store", shown[-8:]
    assert any("what happened" in line for line in shown[:-6])


def test_without_a_terminal_a_running_bar_is_logged_as_plain_lines():
    import io

    log = io.StringIO()
    console = Console(file=log, width=200, force_terminal=False)
    with RichProgress(console, log_every=0) as progress:
        progress.start("distill", 40, "distill leafe-run-1: 300 examples, 2 epochs")
        progress.advance(10, loss=1.23456)
        progress.advance(10, loss=0.9)
    lines = log.getvalue().splitlines()
    # While it ran (a log shows nothing else until the bar stops), then as Rich prints it.
    assert lines[0].startswith("distill leafe-run-1: 300 examples, 2 epochs  10/40 (25%)  elapsed 0:00:00")
    assert lines[0].endswith("loss 1.235") and "20/40 (50%)" in lines[1] and "loss 0.9" in lines[1]
    # At a terminal the live bar is the progress; no extra lines.
    terminal = io.StringIO()
    with RichProgress(Console(file=terminal, width=200, force_terminal=True), log_every=0) as progress:
        progress.start("distill", 40, "distill")
        progress.advance(10)
        assert progress.log_every is None
