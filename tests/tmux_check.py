"""Drive the real `leafe-tui` in a detached tmux session at 120x36 and check the screen.

Builds the deterministic fixture store, starts the app on it, sends keys (down, Enter,
c, a, ?, Escape, q) and reads the screen with capture-pane after each, waiting a bounded
time for the expected text. Exits non-zero with a clear message (and the last screen) on
the first failure; the tmux session is killed at the end whatever happens.

Run: `.venv/bin/python tests/tmux_check.py` (the Makefile's `tmux-check`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.fixture_store import build_fixture_store  # noqa: E402

SESSION = f"leafe-tui-check-{os.getpid()}"
WIDTH, HEIGHT = 120, 36
# Seconds to the first screen: the target is 2 on an idle machine; the check fails only
# past the limit (importing torch at start-up, say, costs far more), so a busy CI machine
# does not make it flaky.
START_TARGET = 2.0
START_LIMIT = float(os.environ.get("LEAFE_TUI_START_LIMIT", "5.0"))
WAIT = 10.0  # seconds any later step may take


class CheckFailed(Exception):
    pass


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=check, timeout=10)


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION).stdout


def session_alive() -> bool:
    return tmux("has-session", "-t", SESSION, check=False).returncode == 0


def wait_for(step: str, *texts: str, timeout: float = WAIT, absent: tuple[str, ...] = ()) -> float:
    """Wait until every text is on screen (and none of `absent`); return the seconds it took."""
    start = time.monotonic()
    shown = ""
    while time.monotonic() - start < timeout:
        if not session_alive():
            raise CheckFailed(f"{step}: the app exited; last screen:\n{shown}")
        shown = screen()
        if all(text in shown for text in texts) and not any(text in shown for text in absent):
            return time.monotonic() - start
        time.sleep(0.05)
    missing = [text for text in texts if text not in shown]
    present = [text for text in absent if text in shown]
    raise CheckFailed(
        f"{step}: after {timeout:.0f}s the screen lacks {missing} / still shows {present}; screen:\n{shown}"
    )


def press(key: str) -> None:
    tmux("send-keys", "-t", SESSION, key)


def run_check(db_path: Path) -> list[str]:
    report = []
    app = ROOT / ".venv" / "bin" / "leafe-tui"
    command = f"{app if app.exists() else 'leafe-tui'} --db {db_path} --reviewer tmux-check"
    started = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT),
         f"cd {ROOT} && TERM=xterm-256color {command}")
    wait_for("start", "Runs", "guess-explore", "humaneval-leafe", timeout=max(WAIT, START_LIMIT * 3))
    first_screen = time.monotonic() - started
    note = "" if first_screen <= START_TARGET else f" (over the {START_TARGET:.0f}s target: is the machine busy?)"
    report.append(f"first screen after {first_screen:.2f}s{note}")
    if first_screen > START_LIMIT:
        raise CheckFailed(f"start: the first screen took {first_screen:.2f}s (limit {START_LIMIT:.1f}s)")

    press("Down")
    wait_for("down selects the older run", "run 1 humaneval-leafe", "3 proposed")
    press("Enter")
    wait_for("Enter opens the run", "Episodes", "HumanEval/0", "step 1", "⟲")
    press("c")
    wait_for("c opens curation", "Curation", "Original action at τ", "Experience note", "+++ corrected")
    press("a")
    wait_for("a approves", "2 proposed", "2 approved")
    press("?")
    wait_for("? lists the keys", "Keys: Curation", "Approve marked", "Undo")
    press("Escape")
    wait_for("Escape closes the help", "Original action at τ", absent=("Keys: Curation",))
    press("q")
    deadline = time.monotonic() + WAIT
    while session_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if session_alive():
        raise CheckFailed(f"q: the app is still running; screen:\n{screen()}")

    connection = sqlite3.connect(db_path)
    try:
        status = connection.execute("select status, decided_by from corrections where id = 1").fetchone()
    finally:
        connection.close()
    if status != ("approved", "tmux-check"):
        raise CheckFailed(f"store: correction 1 is {status}, expected ('approved', 'tmux-check')")
    report.append("down, Enter, c, a, ?, Escape, q: every screen as expected; the approval is in the store")
    return report


def main() -> int:
    if shutil.which("tmux") is None:
        print("tmux-check: tmux is not installed (apt-get install tmux)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "fixture.db"
        build_fixture_store(db_path)
        try:
            for line in run_check(db_path):
                print(f"tmux-check: {line}")
        except CheckFailed as failure:
            print(f"tmux-check FAILED at {failure}", file=sys.stderr)
            return 1
        finally:
            tmux("kill-session", "-t", SESSION, check=False)
    print("tmux-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
