"""The TUI's small things: the palette leads with the workbench's actions, `?` shows the
workbench's keys without Textual's widget internals, and the palette's Screenshot saves
beside the store (there may be no ~/Downloads) and says where."""

from __future__ import annotations

from pathlib import Path

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.episode import EpisodeScreen
from screens.help import HelpScreen
from tests.ui.conftest import SIZE, open_run_screen, until
from tests.ui.fixture_store import build_fixture_store

# What Textual's built-in widgets and its help panel would add: none of it is ours.
WIDGET_INTERNALS = ("Cursor to next ancestor", "Cursor to parent", "Page Right", "Page Left",
                    "Copy selected text", "Scroll Home", "Expand or collapse all", "Focus Next")


def palette_prompts(app: LeafeApp) -> list[str]:
    from textual.command import CommandList

    options = app.screen.query_one(CommandList)
    # Each prompt is the command's title, then its help on a second line.
    return [str(options.get_option_at_index(index).prompt).split("\n")[0] for index in range(options.option_count)]


async def test_the_palette_lists_the_workbench_actions_first(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        await open_run_screen(pilot, store.leafe_run, "c", CurationScreen)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: len(palette_prompts(app)) > 5, "the palette's list")
        await pilot.pause(0.3)  # every provider has answered
        prompts = palette_prompts(app)
        # The screen's own actions, then the workbench's screens, then Screenshot and Theme.
        assert prompts[:3] == ["Back (esc)", "Approve (a)", "Edit (e)"], prompts
        assert prompts.index("Approve (a)") < prompts.index("Runs: the home screen") < prompts.index("Screenshot")
        assert prompts[-2:] == ["Screenshot", "Theme"], prompts
        # Textual's "Keys" opens its widget-help panel; ours is "Show keys" (the `?` help).
        assert "Keys" not in prompts and "Show keys" in prompts
        assert not any(internal in prompt for prompt in prompts for internal in WIDGET_INTERNALS)


async def test_question_mark_shows_the_workbench_keys_not_widget_internals(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(store.leafe_run)
        await pilot.pause()
        for key, screen_type in (("", EpisodeScreen), ("c", CurationScreen)):
            if key:
                await pilot.press(key)
                await pilot.pause()
            assert isinstance(app.screen, screen_type)
            await pilot.press("question_mark")
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            described = [row.description for row in help_screen.keys]
            shown = str(help_screen.query_one("#help-keys").render())
            for internal in WIDGET_INTERNALS:
                assert internal not in described and internal not in shown, internal
            # The workbench's own keys lead, then a few built-in ones in our words.
            assert help_screen.keys[0].id, help_screen.keys[0]
            assert {"Page up", "Command palette: every action by name"} <= set(described)
            if screen_type is CurationScreen:
                # The table's arrows are built in: listed in our words.
                assert {"Approve", "Reject", "Edit", "Undo", "Back", "Move up", "Move down"} <= set(described)
            else:
                assert {"Search", "Branch", "Collapse", "Up", "Down", "Back"} <= set(described)
            assert any(row.key == "q, ^q" and row.description == "Quit" for row in help_screen.keys)
            await pilot.press("escape")


async def take_screenshot_from_the_palette(app: LeafeApp, pilot) -> str:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*"screenshot")
    await until(pilot, lambda: "Screenshot" in palette_prompts(app)[:1], "Screenshot offered")
    await pilot.press("enter")
    await until(pilot, lambda: any(n.title == "Screenshot" for n in app._notifications), "a notification")
    return next(n.message for n in app._notifications if n.title == "Screenshot")


async def test_a_screenshot_is_saved_beside_the_store_without_a_downloads_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()  # no Downloads in it, as on a fresh server
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    (tmp_path / "stores").mkdir()
    ids = build_fixture_store(tmp_path / "stores" / "mine.db")
    app = LeafeApp(ids.path)
    async with app.run_test(size=SIZE) as pilot:
        said = await take_screenshot_from_the_palette(app, pilot)
    saved = list((tmp_path / "stores").glob("*.svg"))
    assert len(saved) == 1 and saved[0].read_text().startswith("<svg")
    assert said == f"Saved {saved[0]}", "the notification says where the file is"
    assert not (home / "Downloads").exists()


async def test_a_screenshot_goes_to_the_current_folder_when_the_store_folder_is_read_only(
    tmp_path, monkeypatch, working_directory
):
    import screens.app

    (tmp_path / "stores").mkdir()
    ids = build_fixture_store(tmp_path / "stores" / "mine.db")
    store_folder = str(ids.path.resolve().parent)
    real_access = screens.app.os.access
    # The tests run as root, for whom every folder is writable: say this one is not.
    monkeypatch.setattr(screens.app.os, "access", lambda path, mode: str(path) != store_folder and real_access(path, mode))
    app = LeafeApp(ids.path)
    async with app.run_test(size=SIZE) as pilot:
        said = await take_screenshot_from_the_palette(app, pilot)
    saved = list(Path(working_directory).glob("*.svg"))
    assert len(saved) == 1 and said == f"Saved {Path.cwd() / saved[0].name}", said
    assert not list((tmp_path / "stores").glob("*.svg"))
