"""Small modal dialogs shared by the screens: confirm, and edit one or two texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

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
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="edit.save", tooltip="Keep the text and close"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel", tooltip="Close without saving", priority=True),
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
            editor = TextArea(text, id="edit-text", show_line_numbers=self.code, tab_behavior="indent")
            yield editor
            if self.extra_label:
                yield Label(plain_line(self.extra_label), classes="dialog-label")
                yield TextArea(extra_text, id="edit-extra", classes="dialog-extra")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.save_label} (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#edit-text", TextArea).focus()

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
