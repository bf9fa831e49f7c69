"""A store whose every string from outside is hostile, for the UI tests and the tmux check.

One run, as an attacker would leave it: its name, its error (an exception message), the
task id, the task's prompt, an answer, an observation, feedback, notes and their authors,
a correction's reason and reviewer, a dataset, an adapter and an evaluated policy all
carry terminal escape sequences (OSC 52 sets the clipboard, OSC 0 the window title,
`ESC [ 2 J` blanks the screen, a C1 CSI) and Textual/Rich markup (`[@click=...]` would be
a button that quits, `[link=...]` a hyperlink, `[bold]` a style).
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
from tests.ui.fixture_store import add_correction, add_note, finish, step  # noqa: E402

OSC_52 = "\x1b]52;c;cHduZWQ=\x07"  # the terminal's clipboard becomes "pwned"
OSC_TITLE = "\x1b]0;pwned\x07"  # the window (or tmux pane) title becomes "pwned"
CLEAR = "\x1b[2J"  # the screen goes blank
C1_CLEAR = "\x9b2J"  # the same, spelled with the one-byte C1 CSI
CLICK = "[@click=app.quit]quit[/]"
LINK = "[link=https://evil.example]docs[/link]"
BOLD = "[bold]loud[/bold]"

# How each shows on screen: control characters as stand-ins, markup as written.
SHOWN_OSC_52 = "␛]52;c;cHduZWQ=␇"
SHOWN_OSC_TITLE = "␛]0;pwned␇"
SHOWN_CLEAR = "␛[2J"
SHOWN_C1_CLEAR = "\\x9b2J"

RUN_NAME = f"evil{OSC_TITLE}{CLICK}"
TASK = f"T/{CLEAR}{BOLD}"
ERROR = f"ValueError: {OSC_52}{CLICK}"
PROMPT = f"def evil():\n    {OSC_TITLE}{LINK}\n"
ACTION = f"x = 1  # {OSC_TITLE}{CLICK}\nprint('{LINK}')"
CORRECTED = f"x = 2  # {OSC_52}{BOLD}"
OBSERVATION = f"Traceback: ValueError: {OSC_52} {C1_CLEAR} {LINK}"
FEEDBACK = {"error": f"ValueError: {OSC_52}", "hint": CLICK, "passed": 0, "total": 1}
NOTE = f"Note {OSC_TITLE}{BOLD} {CLICK}"
NOTE_AUTHOR = f"mo{CLEAR}del"
REASON = f"refused {OSC_52}{CLICK}"
REVIEWER = f"bot{OSC_TITLE}"
DATASET = f"ds{OSC_TITLE}{CLICK}"
ADAPTER = f"ad{OSC_TITLE}{CLICK}"
POLICY = f"adapter:{OSC_TITLE}{BOLD}"
REFERENCE = f"ref{CLEAR}{CLICK}"

# What must never reach the terminal: any OSC (the app writes no hyperlinks), a BEL, a
# screen clear, a C1 control, and the raw payloads themselves.
NEVER_WRITTEN = ("\x1b]", "\x07", CLEAR, "\x9b", "\x9d", OSC_52, OSC_TITLE)


@dataclass
class HostileIds:
    path: Path
    run: int = 0
    episode: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    note: int = 0
    corrections: dict[str, int] = field(default_factory=dict)
    adapter: int = 0


def build_hostile_store(path: str | Path) -> HostileIds:
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = open_store(path)
    ids = HostileIds(path=path)
    with transaction(db):
        stages = ["explore", "reflect", "backtrack", "curate", "export", "distill", "evaluate"]
        config = {"env": {"kind": "coding", "suite": f"suite{OSC_TITLE}", "tasks": 1, "max_steps": 2},
                  "model": {"backend": "hf", "name": f"model{CLEAR}"},
                  "evaluate": {"policies": ["base", POLICY], "n": 4, "k": [1, 2]},
                  "stages": {"run": stages}}
        ids.run = create_run(db, config=config, stages=stages, name=RUN_NAME)
        db.execute("update run_stages set status = 'finished' where run_id = ?", [ids.run])
        db["runs"].update(ids.run, {"status": "failed", "error": f"Traceback (most recent call last):\n{ERROR}"})

        task = ensure_task(db, "coding", TASK, {"entry_point": "evil"})
        episode, root = create_episode(db, run_id=ids.run, task_id=task, purpose="explore", rollout=0,
                                       observation=PROMPT)
        ids.episode = episode
        s1 = step(db, episode, root, 1, ACTION, OBSERVATION, FEEDBACK, 0.0)
        s2 = step(db, episode, s1, 2, ACTION, OBSERVATION, FEEDBACK, 0.0, done=True)
        ids.note = add_note(db, s2, s1, NOTE, NOTE_AUTHOR)
        b1 = step(db, episode, root, 1, CORRECTED, "1 of 1 asserts passed.", {"passed": 1, "total": 1}, 1.0,
                  done=True, success=True, note_id=ids.note, branch_depth=1)
        b2 = step(db, episode, root, 1, CORRECTED + " ", OBSERVATION, FEEDBACK, 0.0, done=True,
                  note_id=ids.note, branch_depth=1)
        finish(db, episode, False, 0.0, 2)
        ids.steps.update(root=root, s1=s1, s2=s2, b1=b1, b2=b2)
        ids.corrections["proposed"] = add_correction(db, ids.note, s1, b1)
        ids.corrections["rejected"] = add_correction(db, ids.note, s1, b2, status="rejected", reason=REASON,
                                                     decided_by=REVIEWER)

        dataset = db["datasets"].insert(
            {"run_id": ids.run, "name": DATASET, "path": f"runs/{CLEAR}x.jsonl", "n_examples": 1, "kind": "leafe",
             "correction_ids": dumps([ids.corrections["proposed"]]), "task_names": dumps([TASK])}
        ).last_pk
        ids.adapter = db["adapters"].insert(
            {"run_id": ids.run, "name": ADAPTER, "path": f"adapters/{OSC_TITLE}", "base_model": f"base{C1_CLEAR}",
             "dataset_id": dataset, "kind": "leafe", "metrics": dumps({"final_loss": 0.5}),
             "lineage": dumps({"run_id": ids.run, "dataset_id": dataset, "dataset_name": DATASET,
                               "correction_ids": [ids.corrections["proposed"]]})}
        ).last_pk
        db["train_log"].insert_all(
            {"adapter_id": ids.adapter, "step": i + 1, "epoch": 1.0, "loss": 1.0 / (i + 1), "learning_rate": 1e-4}
            for i in range(4)
        )
        for policy, values in {"base": [0.25, 0.5], POLICY: [0.5, 0.75]}.items():
            for k, value in zip([1, 2], values, strict=True):
                db["evals"].insert({"run_id": ids.run, "policy": policy, "k": k, "pass_at_k": value,
                                    "ci_low": value - 0.1, "ci_high": value + 0.1, "n_tasks": 1})
        db["eval_pairs"].insert({"run_id": ids.run, "policy": POLICY, "reference": REFERENCE, "k": 1, "diff": 0.25,
                                 "ci_low": 0.1, "ci_high": 0.4, "n_tasks": 1, "overlap_tasks": 0})
    db.close()
    return ids
