"""Review corrections: the original action at tau, the note and the corrected action side
by side with a diff; approve, edit, reject, rewrite the note, undo, or decide many at once.
Around them, the task, the history before tau (collapsible) and the outcomes of the
original path and of the corrected branch. An edited action is played from tau and its
result shown before it is kept; keeping it lets the policy continue from it to the end of
the budget (as branch by hand does), so the exported continuation answers the edit.

Every decision is written at once through `store.curation`, with the reviewer's name, in a
worker: a store locked by another program makes the decision wait (or fail with a one-line
notification), never the interface.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Collapsible, DataTable, Footer, Header, Label, Static

from screens import table_rows
from screens.base import WorkbenchScreen
from screens.modals import EditPreviewScreen, EditResult, EditTextScreen, ReasonScreen
from screens.plain_text import plain, plain_line
from screens.store_problems import shows_store_problems
from screens.widgets.diff_view import DiffView
from screens.widgets.step_detail import code
from screens.words import counted
from store import correction_context, curation, decision_log, views

STATUS_STYLE = {"proposed": "yellow", "approved": "green", "edited": "cyan", "rejected": "red"}


def decision_message(correction_id: int, asked: str, recorded: str) -> tuple[str, str]:
    """What the reviewer is told, and how loudly: the store records a rejection where they
    approved or edited an action that copies the note (the leakage check)."""
    if recorded == asked:
        return f"Correction {correction_id} {asked}.", "information"
    return (f"Correction {correction_id} {recorded}, not {asked}: its action copies the note (leakage).",
            "warning")


def history_text(correction_id: int, decisions: list[dict]) -> Text:
    """A correction's decisions, oldest first, one per line; undos and undone ones marked."""
    text = Text(f"Decisions on correction {correction_id}\n", style="bold")
    if not decisions:
        text.append("None yet: it is as the backtrack stage proposed it.", style="dim")
    for decision in decisions:
        undo = decision["undoes"] is not None
        line = Text.assemble(
            (f"#{decision['id']} ", "dim"), plain_line((decision["decided_at"] or "")[:19].replace("T", " ")), "  ",
            plain_line(decision["reviewer"] or "", width=20, style="bold"), "  ",
            ("undo: " if undo else "", "magenta"),
            plain_line(decision["previous_status"] or "", style=STATUS_STYLE.get(decision["previous_status"], "")),
            " → ",
            plain_line(decision["status"] or "", style=STATUS_STYLE.get(decision["status"], "")),
        )
        if decision["reason"]:
            line.append("  ")
            line.append_text(plain_line(f"({decision['reason']})", width=80, style="dim"))
        if decision["undone_by"] is not None:
            line.append(f"  undone by #{decision['undone_by']}", style="magenta")
        text.append_text(line)
        text.append("\n")
    return text


def outcome_text(title: str, outcome: dict) -> Text:
    """`Original (step 2): ✗ not solved · score 0.57 · 4/7 checks passed`, and the feedback's
    error or first failing check on a second line."""
    text = Text(f"{title}: ", style="bold")
    if not outcome:
        return text.append("–", style="dim")
    text.append(f"(step {outcome['depth']}) ", style="dim")
    solved = outcome["success"]
    text.append("✓ solved" if solved else "✗ not solved", style="green" if solved else "red")
    text.append(f" · score {outcome['score'] or 0:.2f}")
    feedback = outcome.get("feedback") or {}
    if isinstance(feedback.get("passed"), int) and isinstance(feedback.get("total"), int):
        text.append(f" · {feedback['passed']}/{feedback['total']} checks passed")
    failing = feedback.get("failing_asserts") or []
    detail = feedback.get("error") or (failing[0] if isinstance(failing, list) and failing else "")
    if detail:
        text.append("\n")
        text.append_text(plain_line(detail, width=70, style="dim"))
    return text


def history_before_tau(context: dict) -> Text:
    """The task's text, then each step before tau (action, then what the environment said)."""
    text = plain(context["task_text"].strip(), style="italic")
    if not context["history"]:
        text.append("\n(no steps before τ: it is the first)", style="dim")
    for step in context["history"]:
        text.append(f"\nstep {step['depth']}: ", style="bold")
        text.append_text(plain(step["action"].strip()))
        text.append("\n  → ", style="dim")
        text.append_text(plain_line(step["observation"], width=100, style="dim"))
    return text


def preview_text(preview) -> Text:
    """What the environment answered to an edited action (an EditPreview)."""
    return outcome_text("Edited step", {"depth": "τ", "success": preview.success, "score": preview.score,
                                        "feedback": preview.feedback}) + Text(
        "  (the policy continues from here)" if not preview.done else "  (the episode ends here)", style="dim")


class EditPreviewed(Message):
    """An edited action was played from tau (`preview`), or could not be (`error`)."""

    def __init__(self, correction_id: int, text: str, preview: object, error: str = "") -> None:
        super().__init__()
        self.correction_id, self.text, self.preview, self.error = correction_id, text, preview, error


class EditKept(Message):
    """The edited step and its continuation are stored (`status` recorded), or failed (`error`)."""

    def __init__(self, correction_id: int, status: str, error: str = "") -> None:
        super().__init__()
        self.correction_id, self.status, self.error = correction_id, status, error


class HistoryScreen(ModalScreen[None]):
    """Every decision on one correction; escape, h or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h,q", "dismiss", "Close", id="history.close"),
    ]

    def __init__(self, correction_id: int, decisions: list[dict]) -> None:
        super().__init__()
        self.correction_id = correction_id
        self.decisions = decisions

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog dialog-wide"):
            yield Static(history_text(self.correction_id, self.decisions), id="history")
        yield Footer(compact=True)


class CurationScreen(WorkbenchScreen):
    """The run's corrections, the first proposed one selected."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide('approved')", "Approve", id="curation.approve"),
        Binding("e", "edit", "Edit", id="curation.edit", tooltip="Edit the corrected action; saved as `edited`"),
        Binding("r", "reject", "Reject", id="curation.reject", tooltip="Reject, with an optional reason"),
        Binding("n", "note", "Note", id="curation.note", tooltip="Write or change the note by hand (author human)"),
        Binding("u", "undo", "Undo", id="curation.undo",
                tooltip="Undo your last decision; press again to step further back (each undo is recorded)"),
        Binding("h", "history", "History", id="curation.history", tooltip="Every decision on this correction"),
        Binding("space", "mark", "Mark", id="curation.mark", tooltip="Mark or unmark for A / R"),
        Binding("A", "decide_marked('approved')", "Approve marked", id="curation.approve_marked",
                tooltip="Approve every marked correction at once"),
        Binding("R", "decide_marked('rejected')", "Reject marked", id="curation.reject_marked",
                tooltip="Reject every marked correction at once"),
    ]
    AUTO_FOCUS = "#queue"
    screen_title = "Curation"

    def __init__(self, run_id: int) -> None:
        super().__init__(run_id)
        self.rows: dict[int, dict] = {}
        self.marked: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="curation-counts")
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        with Collapsible(title="Task and history before τ", id="curation-context", collapsed=True):
            yield Static(id="history-before")
        with Horizontal(id="outcomes"):
            yield Static(id="original-outcome", classes="outcome")
            yield Static(id="branch-outcome", classes="outcome")
        with Horizontal(id="curation-panes"):
            with Vertical(classes="curation-pane"):
                yield Label("Original action at τ", id="original-title", classes="pane-title")
                with VerticalScroll():
                    yield Static(id="original")
            with Vertical(classes="curation-pane curation-note"):
                yield Label("Experience note", id="note-title", classes="pane-title")
                with VerticalScroll():
                    yield Static(id="note")
            with Vertical(classes="curation-pane"):
                yield Label("Corrected action", id="corrected-title", classes="pane-title")
                with VerticalScroll():
                    yield Static(id="corrected")
        with VerticalScroll(id="diff-scroll"):
            yield DiffView(id="diff")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#queue", DataTable)
        for label, key in (("", "mark"), ("#", "id"), ("task", "task"), ("status", "status"),
                           ("τ", "tau"), ("score", "score"), ("note", "note"), ("by", "by"),
                           ("reason", "reason")):
            table.add_column(label, key=key)
        self.reload()
        first = next((cid for cid, row in self.rows.items() if row["status"] == "proposed"), None)
        if first is not None:
            self.select(first)

    # -- the queue ------------------------------------------------------------------

    @shows_store_problems
    def reload(self) -> None:
        table = self.query_one("#queue", DataTable)
        keep = self.selected_id()
        table.clear()
        self.rows = {row["id"]: row for row in views.corrections_for_review(self.db, self.run_id)}
        for row in self.rows.values():
            table.add_row(*self.cells(row), key=str(row["id"]))
        counts = views.correction_counts(self.db, self.run_id)
        summary = Text.assemble(
            *[(f"{counts[status]} {status}   ", STATUS_STYLE[status]) for status in STATUS_STYLE],
            (f"{len(self.marked)} marked" if self.marked else "", "bold"),
        )
        if not self.rows:
            summary = Text("This run has no corrections yet: run reflect, backtrack and curate "
                           "(or branch by hand from the episode screen).", style="dim")
        self.query_one("#curation-counts", Static).update(summary)
        if keep in self.rows:
            self.select(keep)
        self.show_selected()

    def cells(self, row: dict) -> list:
        # Every cell is Text: a str cell would be read as markup, and these come from outside.
        return [
            Text("●" if row["id"] in self.marked else " ", style="bold magenta"),
            Text(str(row["id"]), justify="right"),
            plain_line(row["task"], width=40),
            plain_line(row["status"], style=STATUS_STYLE.get(row["status"], "")),
            Text(f"step {row['tau_depth']}"),
            Text(f"{row['original_score'] or 0:.2f}→{row['branch_score'] or 0:.2f}"),
            plain_line(row["note"], width=48),
            plain_line(row["decided_by"] or "", width=24),
            # Why it was rejected (the reviewer's words or the leakage check's) or approved.
            plain_line(row["reason"] or "", width=60, style="dim"),
        ]

    def selected_id(self) -> int | None:
        return table_rows.selected_id(self.query_one("#queue", DataTable))

    def select(self, correction_id: int) -> None:
        if table_rows.move_to_id(self.query_one("#queue", DataTable), correction_id):
            self.show_selected()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_selected()

    def show_selected(self) -> None:
        row = self.rows.get(self.selected_id() or -1)
        if row is None:
            for widget_id in ("original", "note", "corrected", "history-before", "original-outcome", "branch-outcome"):
                self.query_one(f"#{widget_id}", Static).update("")
            self.query_one("#diff", DiffView).update("")
            return
        self.show_context(row["id"])
        self.query_one("#original-title", Label).update(f"Original action at τ (step {row['tau_depth']})")
        self.query_one("#original", Static).update(code(row["original_action"]))
        self.query_one("#note-title", Label).update(plain_line(f"Experience note ({row['note_author']})"))
        note = plain(row["note"], style="italic")
        if row["reason"]:
            note.append_text(plain(f"\n\n{row['status']}: {row['reason']}", style="dim"))
        self.query_one("#note", Static).update(note)
        edited = row["status"] == "edited"
        self.query_one("#corrected-title", Label).update(
            "Corrected action (edited by hand)" if edited else "Corrected action (branch's first step)"
        )
        self.query_one("#corrected", Static).update(code(row["corrected_action"]))
        self.query_one("#diff", DiffView).show(row["original_action"] or "", row["corrected_action"] or "")

    @shows_store_problems
    def show_context(self, correction_id: int) -> None:
        context = correction_context.correction_context(self.db, correction_id)
        if context is None:
            return
        # A Text title: Collapsible reads a plain string as markup, and the task name is the
        # task file's.
        self.query_one("#curation-context", Collapsible).title = plain_line(
            f"Task {context['task']} and the {len(context['history'])} steps before τ")
        self.query_one("#history-before", Static).update(history_before_tau(context))
        self.query_one("#original-outcome", Static).update(outcome_text("Original path", context["original"]))
        self.query_one("#branch-outcome", Static).update(outcome_text("Corrected branch", context["branch"]))

    def next_proposed_after(self, correction_id: int) -> int | None:
        ids = list(self.rows)
        start = ids.index(correction_id) if correction_id in ids else -1
        for candidate in ids[start + 1:] + ids[: start + 1]:
            if self.rows[candidate]["status"] == "proposed":
                return candidate
        return None

    # -- decisions --------------------------------------------------------------------

    @property
    def reviewer(self) -> str:
        return self.workbench.reviewer

    def after_decision(self, correction_id: int, message: str, severity: str = "information") -> None:
        self.reload()
        following = self.next_proposed_after(correction_id)
        if following is not None:
            self.select(following)
        self.notify(message, severity=severity, timeout=2 if severity == "information" else 6)

    def action_decide(self, status: str, reason: str = "") -> None:
        correction_id = self.selected_id()
        if correction_id is None:
            return
        reviewer = self.reviewer
        self.write_store(
            f"Correction {correction_id} {status}",
            lambda db: curation.decide(db, correction_id, status, reviewer=reviewer, reason=reason),
            lambda recorded: self.after_decision(correction_id, *decision_message(correction_id, status, recorded)),
        )

    def action_reject(self) -> None:
        correction_id = self.selected_id()
        if correction_id is None:
            return

        def answered(reason: str | None) -> None:
            if reason is not None:
                self.action_decide("rejected", reason)

        self.app.push_screen(ReasonScreen(f"Reject correction {correction_id}"), answered)

    @shows_store_problems
    def action_history(self) -> None:
        correction_id = self.selected_id()
        if correction_id is None:
            return
        self.app.push_screen(HistoryScreen(correction_id, decision_log.history(self.db, correction_id)))

    def action_edit(self, text: str | None = None) -> None:
        correction_id = self.selected_id()
        row = self.rows.get(correction_id or -1)
        if row is None:
            return

        def written(result: EditResult | None) -> None:
            if result is not None:
                self.notify(f"Playing the edited action of correction {row['id']} from τ…", timeout=2)
                self.run_preview(row["id"], result.text)

        self.app.push_screen(
            EditTextScreen(f"Edit the corrected action of correction {row['id']}",
                           text if text is not None else row["corrected_action"] or "",
                           hint="It is played from τ and its result shown before anything is kept; keeping it "
                                "lets the policy continue from it. The status becomes `edited`.",
                           save_label="Try it"),
            written,
        )

    @work(thread=True, exit_on_error=False, group="edit")
    def run_preview(self, correction_id: int, text: str) -> None:
        from workbench.curate import preview_edit

        try:
            preview = preview_edit(str(self.workbench.db_path), correction_id, text)
        except Exception as error:  # noqa: BLE001 - every ending reaches the reviewer
            self.post_message(EditPreviewed(correction_id, text, None, self.write_error_line(error)))
        else:
            self.post_message(EditPreviewed(correction_id, text, preview))

    def on_edit_previewed(self, message: EditPreviewed) -> None:
        if message.error:
            self.notify(f"The edit could not be played: {message.error}", severity="error", timeout=8)
            return
        preview = message.preview

        def answered(answer: str | None) -> None:
            if answer == "keep":
                self.notify(f"Keeping the edit of correction {message.correction_id}; the policy continues…",
                            timeout=2)
                self.run_keep(message.correction_id, preview.action)
            elif answer == "again":
                self.action_edit(message.text)

        self.app.push_screen(
            EditPreviewScreen(f"The edited action of correction {message.correction_id}, played from τ",
                              preview.action, preview_text(preview), preview.observation),
            answered,
        )

    @work(thread=True, exit_on_error=False, group="edit")
    def run_keep(self, correction_id: int, text: str) -> None:
        from workbench.curate import keep_edit

        try:
            status = keep_edit(str(self.workbench.db_path), correction_id, text, reviewer=self.reviewer)
        except Exception as error:  # noqa: BLE001
            self.post_message(EditKept(correction_id, "", self.write_error_line(error)))
        else:
            self.post_message(EditKept(correction_id, status))

    def on_edit_kept(self, message: EditKept) -> None:
        if message.error:
            self.notify(f"The edit of correction {message.correction_id} not kept: {message.error}",
                        severity="error", timeout=8)
            return
        self.after_decision(message.correction_id,
                            *decision_message(message.correction_id, "edited", message.status))

    def action_note(self) -> None:
        correction_id = self.selected_id()
        row = self.rows.get(correction_id or -1)
        if row is None:
            return
        reviewer = self.reviewer

        def stored(_: object) -> None:
            self.reload()
            self.notify(f"Note of correction {row['id']} rewritten.", timeout=2)

        def saved(result: EditResult | None) -> None:
            if result is None:
                return
            self.write_store(
                f"The note of correction {row['id']}",
                lambda db: curation.set_correction_note(db, row["id"], result.text, reviewer=reviewer),
                stored,
            )

        self.app.push_screen(
            EditTextScreen(f"The note of correction {row['id']}", row["note"] or "", code=False,
                           hint="Your note replaces the reflector's (author: human)."),
            saved,
        )

    def action_undo(self) -> None:
        def undone(correction_id: int | None) -> None:
            if correction_id is None:
                self.notify("Nothing to undo.", severity="warning", timeout=2)
                return
            self.reload()
            self.select(correction_id)
            status = self.rows[correction_id]["status"] if correction_id in self.rows else "?"
            self.notify(f"Undid the last decision on correction {correction_id}: {status} again "
                        "(u steps further back).", timeout=3)

        reviewer = self.reviewer
        self.write_store("The undo", lambda db: curation.undo_last(db, reviewer=reviewer), undone)

    def action_mark(self) -> None:
        correction_id = self.selected_id()
        if correction_id is None:
            return
        self.marked ^= {correction_id}
        table = self.query_one("#queue", DataTable)
        table.update_cell(str(correction_id), "mark", self.cells(self.rows[correction_id])[0])
        table.action_cursor_down()
        self.query_one("#curation-counts", Static).update(
            Text(f"{len(self.marked)} marked: A approves them, R rejects them", style="bold magenta")
        )

    def action_decide_marked(self, status: str) -> None:
        if not self.marked:
            self.notify("Mark corrections with space first.", severity="warning", timeout=2)
            return
        ids = sorted(self.marked)
        reviewer = self.reviewer

        def decided(count: int) -> None:
            self.marked.difference_update(ids)
            self.after_decision(ids[-1], f"{counted(count, 'correction')} {status}.")

        self.write_store(
            f"{counted(len(ids), 'correction')} {status}",
            lambda db: curation.decide_many(db, ids, status, reviewer=reviewer),
            decided,
        )
