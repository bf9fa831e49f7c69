"""Small modal dialogs shared by the screens: confirm, and edit one or two texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static, TextArea

from screens.plain_text import plain, plain_line, visible

SHOWN_AS_WRITTEN = ("The text held control characters; they are shown (␛ for escape) and saved as "
                    "you see them, never sent to the terminal.")


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True only on an explicit yes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, *, yes: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.question), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


@dataclass
class EditResult:
    """What an edit dialog returns: the main text and the optional second one."""

    text: str
    extra: str = ""


class EditTextScreen(ModalScreen[EditResult | None]):
    """Edit a text (an action, a note) in a TextArea; ctrl+s saves, escape cancels.

    With `extra_label`, a second, smaller TextArea follows (a note beside an action).
    The keyboard moves as in any form: Tab and shift+Tab move the focus (ctrl+t indents,
    ctrl+a selects all, ctrl+n goes to the note), and the footer shows these keys.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="edit.save", tooltip="Keep the text and close"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel", tooltip="Close without saving", priority=True),
        Binding("ctrl+t", "indent", "Indent", id="edit.indent", priority=True,
                tooltip="Indent at the cursor (Tab moves the focus)"),
        Binding("ctrl+a", "select_all", "Select all", id="edit.select_all", priority=True,
                tooltip="Select the whole text of the focused editor"),
        Binding("ctrl+n", "focus_note", "Note", id="edit.note", priority=True,
                tooltip="Go to the note field"),
    ]

    def __init__(self, title: str, text: str, *, hint: str = "", code: bool = True,
                 extra_label: str = "", extra_text: str = "", save_label: str = "Save") -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.hint = hint
        self.code = code
        self.extra_label = extra_label
        self.extra_text = extra_text
        self.save_label = save_label

    def compose(self) -> ComposeResult:
        # The editors hold the visible form of the text: a TextArea would send an escape
        # sequence in a model's answer to the terminal as it is.
        text, extra_text = visible(self.text), visible(self.extra_text)
        hint = self.hint
        if (text, extra_text) != (self.text.replace("\r\n", "\n"), self.extra_text.replace("\r\n", "\n")):
            hint = f"{hint}\n{SHOWN_AS_WRITTEN}".strip()
        with Vertical(classes="dialog dialog-wide"):
            yield Label(plain_line(self.title_text), classes="dialog-title")
            if hint:
                yield Static(plain(hint), classes="dialog-hint")
            # Tab moves the focus, as everywhere else; ctrl+t indents (shown in the footer).
            yield TextArea(text, id="edit-text", show_line_numbers=self.code, tab_behavior="focus")
            if self.extra_label:
                yield Label(plain_line(f"{self.extra_label} (ctrl+n)"), classes="dialog-label")
                yield TextArea(extra_text, id="edit-extra", classes="dialog-extra", tab_behavior="focus")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.save_label} (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#edit-text", TextArea).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_note":
            return bool(self.extra_label)  # no note field, no key in the footer
        return True

    def editor(self) -> TextArea | None:
        """The focused editor, or None when a button has the focus."""
        return self.focused if isinstance(self.focused, TextArea) else None

    def action_indent(self) -> None:
        editor = self.editor()
        if editor is not None:
            editor.insert(" " * editor.indent_width)

    def action_select_all(self) -> None:
        editor = self.editor()
        if editor is not None:
            editor.select_all()

    def action_focus_note(self) -> None:
        if self.extra_label:
            self.query_one("#edit-extra", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        text = self.query_one("#edit-text", TextArea).text
        extra = self.query_one("#edit-extra", TextArea).text if self.extra_label else ""
        if not text.strip():
            self.notify("The text is empty; write something or press escape.", severity="warning")
            return
        self.dismiss(EditResult(text, extra))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReasonScreen(ModalScreen[str | None]):
    """Ask for an optional one-line reason: Enter keeps it (empty is fine), escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="reason.cancel", tooltip="Close; nothing is decided", priority=True),
    ]

    def __init__(self, question: str, *, placeholder: str = "optional: why (Enter)") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain_line(self.question), classes="dialog-title")
            yield Input(placeholder=self.placeholder, id="reason")
            yield Static("Enter decides (a reason is optional) · esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditPreviewScreen(ModalScreen[str | None]):
    """What an edited action did when played from tau, before anything is kept: `y` keeps
    it (the policy then continues from it), `e` edits it again, escape drops it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('keep')", "Keep and continue", id="preview.keep",
                tooltip="Store the edited step; the policy continues from it to the end of the budget"),
        Binding("e", "answer('again')", "Edit again", id="preview.again"),
        Binding("escape", "answer(None)", "Cancel", id="preview.cancel", tooltip="Nothing is stored", priority=True),
    ]

    def __init__(self, title: str, action: str, outcome: object, observation: str) -> None:
        super().__init__()
        self.title_text = title
        self.action = action
        self.outcome = outcome  # a Rich Text the caller built from the environment's answer
        self.observation = observation

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(plain_line(self.title_text), classes="dialog-title")
            yield Static(plain(self.action), id="preview-action", classes="dialog-text")
            yield Static(self.outcome, id="preview-outcome")
            yield Static(plain(self.observation, style="italic"), id="preview-observation", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep and continue (y)", variant="primary", id="keep")
                yield Button("Edit again (e)", id="again")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer(compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"keep": "keep", "again": "again"}.get(event.button.id or ""))

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
