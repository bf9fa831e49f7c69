"""The detail pane beside the tree: one step's observation, action, feedback and notes.

Everything here came from a model, an environment or a note, so every string is shown
through `plain` (or `code`, which makes it visible too): control characters shown, never
obeyed, and no markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from screens.plain_text import plain, plain_line, visible, visible_line
from screens.words import counted

SYNTAX_THEME = "monokai"


def code(text: str | None, language: str = "python") -> Syntax:
    """Highlighted source, with control characters made visible."""
    return Syntax(visible(text), language, theme=SYNTAX_THEME, word_wrap=True, background_color="default")


def pretty_json(value: Any) -> Syntax:
    # json escapes C0 controls by itself; `code` takes care of DEL, C1 and lone surrogates.
    return code(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str), "json")


def section(title: str) -> Text:
    return Text(title, style="bold underline")


def outcome_words(row: dict) -> Text:
    score = row.get("score") or 0.0
    if row.get("success"):
        return Text(f"✓ passed (score {score:.2f})", style="bold green")
    if row.get("done"):
        return Text(f"✗ failed (score {score:.2f})", style="bold red")
    return Text(f"score {score:.2f}, not done", style="yellow")


class StepDetail(VerticalScroll):
    """Shows whatever the tree's cursor is on: an episode, a step or a note."""

    DEFAULT_CSS = """
    StepDetail {
        padding: 0 1;
        & > #detail-body { width: 1fr; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static("Select a step to see its observation, action, feedback and notes.", id="detail-body")

    def show(self, renderable: RenderableType) -> None:
        self.query_one("#detail-body", Static).update(renderable)
        self.scroll_home(animate=False)

    def show_step(self, row: dict) -> None:
        title = Text.assemble(
            (f"Step {row['depth']}", "bold"),
            f"  episode #{row['episode_id']}  {visible_line(row['task'])}  ",
            outcome_words(row),
        )
        marks = []
        if row.get("branch_depth"):
            marks.append(f"↪ branch (depth {row['branch_depth']})")
        if row.get("backtrack_point"):
            marks.append("⟲ backtrack point: branches replace this step")
        for correction in row.get("corrections", []):
            marks.append(f"★ correction #{correction['id']} {visible_line(correction['status'])}")
        parts: list[RenderableType] = [title]
        if marks:
            parts.append(Text("  ".join(marks), style="cyan"))
        if row["depth"] == 0:
            parts += [Text(""), section("Task"), plain(row["observation"])]
        else:
            parts += [
                Text(""), section("Action"), code(row["action"]),
                Text(""), section("Observation"), plain(row["observation"]),
                Text(""), section("Feedback"), pretty_json(row["feedback"]),
            ]
        in_context = row.get("note_in_context")
        if in_context:
            parts += [
                Text(""), section("Note in context when this action was generated"),
                plain(f"✎ ({visible_line(in_context['author'])}) {in_context['text']}", style="italic"),
            ]
        for note in row.get("notes", []):
            target = f", rollback to step {note['rollback_depth']}" if note.get("rollback_depth") is not None else ""
            parts += [
                Text(""), section(f"Note on this step ({visible_line(note['author'])}{target})"),
                plain(f"✎ {note['text']}", style="italic"),
            ]
        self.show(Group(*parts))

    def show_episode(self, row: dict, root: dict | None) -> None:
        status = (
            Text("running", style="yellow") if row["status"] != "finished"
            else outcome_words({"success": row["success"], "done": 1, "score": row["score"]})
        )
        parts: list[RenderableType] = [
            Text.assemble((f"Episode #{row['id']}", "bold"),
                          f"  {visible_line(row['task'])}  rollout {row['rollout']}  ",
                          f"policy {visible_line(row['policy'])}  {counted(row['steps'] or 0, 'step')}  ", status),
        ]
        if root is not None:
            parts += [Text(""), section("Task"), plain(root["observation"])]
        self.show(Group(*parts))

    def show_note(self, row: dict) -> None:
        parts: list[RenderableType] = [
            Text.assemble(("Experience note", "bold"), f"  #{row['id']}  by {visible_line(row['author'])}"),
            Text(f"reflects on step {row.get('node_depth')}, rolls back to step {row.get('rollback_depth')}",
                 style="cyan"),
            Text(""),
            plain(row["text"], style="italic"),
        ]
        if row.get("fallback_reason"):
            parts += [Text(""), plain_line(f"fell back to the template: {row['fallback_reason']}", style="yellow")]
        self.show(Group(*parts))
