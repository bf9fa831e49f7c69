"""The edit dialogs follow the keyboard: Tab moves the focus, ctrl+t indents, ctrl+a
selects all, ctrl+n goes to the note, and the footer shows these keys."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Footer, TextArea

from screens.modals import EditResult, EditTextScreen
from tests.ui.conftest import SIZE


class DialogApp(App):
    def __init__(self, dialog: EditTextScreen) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[EditResult | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


def footer_keys(app: App) -> set[str]:
    """The descriptions the footer shows for the dialog's keys."""
    return {binding.description for (_, binding, enabled, _) in app.screen.active_bindings.values()
            if enabled and binding.show}


async def test_tab_moves_the_focus_and_ctrl_t_indents():
    app = DialogApp(EditTextScreen("Branch by hand", "x = 1", extra_label="Note", extra_text=""))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        editor = app.screen.query_one("#edit-text", TextArea)
        assert app.screen.focused is editor
        assert {"Indent", "Select all", "Note", "Save", "Cancel"} <= footer_keys(app)
        assert app.screen.query(Footer)
        await pilot.press("tab")
        assert app.screen.focused is app.screen.query_one("#edit-extra", TextArea)
        assert editor.text == "x = 1"  # Tab inserted nothing
        await pilot.press("shift+tab", "end", "enter", "ctrl+t", "y")
        assert editor.text == "x = 1\n    y"


async def test_select_all_and_the_note_key():
    app = DialogApp(EditTextScreen("Branch by hand", "old action", extra_label="Note"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+a", "n", "e", "w")
        await pilot.press("ctrl+n", "w", "h", "y")
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [EditResult("new", "why")]


async def test_a_dialog_without_a_note_shows_no_note_key():
    app = DialogApp(EditTextScreen("The note of correction 3", "a note", code=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = footer_keys(app)
        assert "Note" not in keys and {"Indent", "Select all"} <= keys
        await pilot.press("ctrl+n")  # nothing to go to: the text stays focused
        assert app.screen.focused is app.screen.query_one("#edit-text", TextArea)
