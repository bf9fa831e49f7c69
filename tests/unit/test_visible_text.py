"""Text from outside is shown with its control characters made visible, never obeyed."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from tests.ui.hostile_store import CLEAR, CLICK, OSC_52, OSC_TITLE, SHOWN_OSC_52
from workbench.progress import RichProgress
from workbench.visible_text import visible, visible_line, visible_values

ROOT = Path(__file__).resolve().parents[2]
# What a terminal would obey: every C0 control but tab and line feed, DEL, and C1.
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (OSC_52, "␛]52;c;cHduZWQ=␇"),
        (OSC_TITLE, "␛]0;pwned␇"),
        (CLEAR, "␛[2J"),
        ("a\x00b\x08c\x7fd", "a␀b␈c␡d"),
        ("\x9b2J and \x9d0;t\x9c", "\\x9b2J and \\x9d0;t\\x9c"),  # C1: CSI, OSC, ST
        ("bad " + chr(0xDCFF) + " half", "bad \\udcff half"),  # a lone surrogate
        ("abc\u202edcba", "abc\\u202edcba"),  # a right-to-left override reorders what follows
        ("line\r\nnext\rover", "line\nnext␍over"),
    ],
)
def test_controls_are_shown_as_stand_ins(raw, shown):
    assert visible(raw) == shown


def test_line_breaks_tabs_markup_and_unicode_stay_as_written():
    text = "def f():\n\treturn '[@click=app.quit]q[/] [link=http://x]y[/link] [bold]z'  # é, 字, ✓"
    assert visible(text) == text


def test_every_control_character_is_made_visible_and_the_result_is_printable():
    everything = "".join(chr(code) for code in range(0x00, 0xA0)) + chr(0xD800) + chr(0xDFFF)
    shown = visible(everything)
    assert OBEYED.search(shown) is None
    assert "\t" in shown and "\n" in shown
    shown.encode("utf-8")  # lone surrogates are gone: a UTF-8 terminal can take all of it


def test_visible_twice_is_visible_once():
    text = OSC_52 + "\x9b" + chr(0xDCFF) + "\x00"
    assert visible(visible(text)) == visible(text)


def test_none_and_other_values():
    assert visible(None) == ""
    assert visible(3.5) == "3.5"


def test_visible_line_makes_one_line():
    assert visible_line("first\n\tsecond  " + OSC_TITLE) == "first second ␛]0;pwned␇"


def test_batch_progress_shows_descriptions_messages_and_fields_as_text():
    """What `--batch` writes on stderr: the bars and the stage messages."""
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=200)
    with RichProgress(console) as progress:
        progress.start("explore", 2, f"explore {OSC_TITLE}[bold]task[/bold]")
        progress.advance(1, task=f"{CLEAR}[@click=app.quit]q[/]")
        progress.event("message", text=f"environment error: ValueError: {OSC_52}[link=http://x]y[/link]")
        progress.finish()
    written = output.getvalue()
    assert "\x1b]" not in written and "\x07" not in written and "\x1b[2J" not in written
    assert "␛]0;pwned␇[bold]task[/bold]" in written
    assert "␛[2J[@click=app.quit]q[/]" in written
    assert "␛]52;c;cHduZWQ=␇[link=http://x]y[/link]" in written


def test_a_batch_run_that_fails_with_a_hostile_exception(tmp_path):
    """stderr shows the exception's escape sequences and markup as text; `--json` keeps the
    original text, escaped (ASCII only)."""
    (tmp_path / "script.jsonl").write_text(json.dumps({"task_id": "any", "actions": ["5"]}) + "\n")
    (tmp_path / "hostile.toml").write_text(
        '[model]\nbackend = "scripted"\nscript = "script.jsonl"\n'
        '[env]\nkind = "tests.ui.envs:HostileGuessEnvironment"\nsuite = "raise"\ntasks = 1\nmax_steps = 2\n'
    )
    process = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--batch", "hostile.toml", "--db", "s.db", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    assert process.returncode == 1, process.stderr
    for sequence in ("\x1b", "\x07", "\x9b"):
        assert sequence not in process.stderr, process.stderr
    failure = f"run 1 failed: ValueError: bad task {SHOWN_OSC_52}{CLICK}"
    assert process.stderr.strip().splitlines()[-1] == f"leafe-tui: {failure}"
    process.stdout.encode("ascii")  # ensure_ascii: every control character escaped
    assert "\\u001b]52;c;cHduZWQ=\\u0007" in process.stdout
    summary = json.loads(process.stdout)
    assert summary["status"] == "failed"
    assert summary["error"] == f"ValueError: bad task {OSC_52}{CLICK}"  # the original text


def test_visible_values_reaches_every_string_of_a_summary():
    summary = {OSC_TITLE: {"names": [CLEAR, 3], "score": 0.5}, "n": None}
    assert visible_values(summary) == {"␛]0;pwned␇": {"names": ["␛[2J", 3], "score": 0.5}, "n": None}


def test_the_pass_at_k_tables_print_policy_and_task_names_as_written(capsys):
    from workbench.cli import print_summary
    from workbench.pipeline import RunResult

    policy = f"adapter:{OSC_TITLE}{CLICK}"
    cell = {"pass_at_k": 0.5, "ci_low": 0.25, "ci_high": 0.75}
    result = RunResult(1, "finished", counts={"episodes": 2}, summaries={
        "evaluate": {"table": {"base": {"1": cell}, policy: {"1": cell}}, "overlap": {policy: [f"T/{CLEAR}"]}},
    })
    print_summary(result)
    written = capsys.readouterr()
    for stream in (written.out, written.err):
        assert "\x1b]" not in stream and "\x07" not in stream and CLEAR not in stream
    assert "│ adapter:␛]0;pwned␇[@click=app.quit]quit[/] * │" in written.out  # its row
    assert "adapter:␛]0;pwned␇[@click=app.quit]quit[/] on 1 (T/␛[2J)" in written.out  # the caption
