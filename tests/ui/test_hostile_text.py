"""Escape sequences and markup from outside never reach the terminal as such.

Each test opens a screen on a store whose strings are hostile (tests/ui/hostile_store.py)
and reads what the terminal would be sent for the whole screen: no OSC, no BEL, no screen
clear, no C1 control; the visible stand-ins (`␛]0;pwned␇`) are on screen instead, and
`[@click=...]`, `[link=...]` and `[bold]` are shown as written.
"""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, TextArea

from screens.app import LeafeApp
from screens.curation import CurationScreen
from screens.distill import DistillScreen
from screens.episode import EpisodeScreen
from screens.modals import ConfirmScreen, EditTextScreen
from screens.results import ResultsScreen
from screens.runs import RunsScreen
from screens.widgets.trajectory_tree import TrajectoryTree
from tests.ui import hostile_store as hostile
from tests.ui.conftest import SIZE, open_run_screen

WIDE = (200, 50)  # room for whole table cells and panes


@pytest.fixture
def store(tmp_path):
    return hostile.build_hostile_store(tmp_path / "hostile.db")


def rendered(app: LeafeApp) -> tuple[str, str]:
    """What the terminal would be sent to draw the whole screen (dialogs over the screens
    beneath), and the screen's text, line by line."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    written = update.render_segments(app.console)
    text = "\n".join("".join(segment.text for strip in line for segment in strip) for line in update.strips)
    return written, text


def assert_shown_safely(app: LeafeApp, *shown: str) -> str:
    """Nothing hostile is written; each of `shown` is on screen. Returns the screen's text."""
    written, text = rendered(app)
    for sequence in hostile.NEVER_WRITTEN:
        assert sequence not in written, f"{sequence!r} reached the terminal on {type(app.screen).__name__}"
    assert "\x1b" not in text
    missing = [piece for piece in shown if piece not in text]
    assert not missing, f"not on screen: {missing}\n{text}"
    return text


async def test_runs_screen_shows_the_run_name_and_its_error_as_text(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert_shown_safely(
            app,
            f"evil{hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",  # the table's name cell
            f"error: ValueError: {hostile.SHOWN_OSC_52}{hostile.CLICK}",  # the run's error, in the summary
            f"model{hostile.SHOWN_CLEAR}",
        )
        # The delete dialog quotes the name.
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert_shown_safely(app, f"Delete run {store.run} (evil{hostile.SHOWN_OSC_TITLE}{hostile.CLICK})?")
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_episode_tree_labels_and_detail_pane_show_hostile_text_as_written(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        app.open_run(store.run)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EpisodeScreen)
        # The header names the run; the tree names the task; the detail pane shows the prompt.
        assert_shown_safely(
            app,
            f"run {store.run} evil{hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",
            f"T/{hostile.SHOWN_CLEAR}{hostile.BOLD}",
            f"{hostile.SHOWN_OSC_TITLE}{hostile.LINK}",
        )
        tree = screen.query_one(TrajectoryTree)
        tree.move_cursor(tree.step_nodes[store.steps["s1"]])
        await pilot.pause()
        assert_shown_safely(
            app,
            f"x = 1 # {hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",  # the step's label: its action's first line
            f"print('{hostile.LINK}')",  # the action, highlighted
            f"Traceback: ValueError: {hostile.SHOWN_OSC_52} {hostile.SHOWN_C1_CLEAR} {hostile.LINK}",
            f'"hint": "{hostile.CLICK}"',  # the feedback, as JSON
        )
        # The note under step 2, in the tree and in the pane.
        tree.expand_node(tree.step_nodes[store.steps["s1"]])
        s2 = tree.step_nodes[store.steps["s2"]]
        tree.expand_node(s2)
        await pilot.pause()
        (note,) = [child for child in s2.children if child.data.kind == "note"]
        tree.move_cursor(note)
        await pilot.pause()
        assert_shown_safely(
            app,
            f"✎ note (mo{hostile.SHOWN_CLEAR}del)",
            f"Note {hostile.SHOWN_OSC_TITLE}{hostile.BOLD} {hostile.CLICK}",
        )
        # The branch dialog quotes the task and holds the action in its visible form.
        tree.move_cursor(tree.step_nodes[store.steps["s1"]])
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, EditTextScreen)
        assert app.screen.query_one("#edit-text", TextArea).text == hostile.ACTION.replace(
            hostile.OSC_TITLE, hostile.SHOWN_OSC_TITLE)
        assert_shown_safely(app, f"(T/{hostile.SHOWN_CLEAR}{hostile.BOLD})", "control characters")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen)
        assert app.is_running  # no [@click=app.quit] was ever a button


async def test_curation_shows_notes_reasons_reviewers_and_actions_as_written(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        screen = await open_run_screen(pilot, store.run, "c", CurationScreen)
        assert_shown_safely(
            app,
            f"T/{hostile.SHOWN_CLEAR}{hostile.BOLD}",  # the queue's task cell
            f"Experience note (mo{hostile.SHOWN_CLEAR}del)",
            f"x = 1  # {hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",  # the original action
            f"x = 2  # {hostile.SHOWN_OSC_52}{hostile.BOLD}",  # the corrected action
            f"+x = 2  # {hostile.SHOWN_OSC_52}{hostile.BOLD}",  # the diff
        )
        table = screen.query_one("#queue", DataTable)
        table.move_cursor(row=table.get_row_index(str(store.corrections["rejected"])))
        await pilot.pause()
        # The reason, wrapped in the narrow note pane; the reviewer, in the queue.
        assert_shown_safely(app, "rejected: refused", f"{hostile.SHOWN_OSC_52}[@click=app.quit",
                            f"bot{hostile.SHOWN_OSC_TITLE}")
        # The edit dialog holds the visible form, and says so.
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditTextScreen)
        assert "\x1b" not in app.screen.query_one("#edit-text", TextArea).text
        assert_shown_safely(app, f"{hostile.SHOWN_OSC_52}{hostile.BOLD}", "control characters")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CurationScreen)


async def test_results_and_distill_show_policy_adapter_and_dataset_names_as_written(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await open_run_screen(pilot, store.run, "p", ResultsScreen)
        assert_shown_safely(app, f"adapter:{hostile.SHOWN_OSC_TITLE}{hostile.BOLD}",  # Pass@k and pairs
                            f"ref{hostile.SHOWN_CLEAR}{hostile.CLICK}")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DistillScreen)
        assert_shown_safely(
            app,
            f"ad{hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",  # the adapters table, and the status line
            f"base{hostile.SHOWN_C1_CLEAR}",
            f"dataset ds{hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",  # the lineage
        )


async def test_notifications_show_hostile_text_as_written(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        app.screen.notify(f"toast {hostile.OSC_52}{hostile.CLICK}", severity="error")
        app.notify(f"app {hostile.OSC_TITLE}{hostile.BOLD}", title=f"title {hostile.CLEAR}")
        await pilot.pause(0.3)
        assert_shown_safely(app, f"toast {hostile.SHOWN_OSC_52}", f"app {hostile.SHOWN_OSC_TITLE}",
                            f"title {hostile.SHOWN_CLEAR}")
        assert app.is_running


async def test_a_live_run_shows_hostile_steps_and_a_hostile_failure_as_written(tmp_path):
    from screens.live import LiveScreen
    from tests.ui.conftest import until
    from tests.ui.test_live import fill_form, write_script

    script = write_script(tmp_path, {f"evil{hostile.CLEAR}/0": [f"5 {hostile.OSC_TITLE}{hostile.CLICK}", "3"],
                                     f"evil{hostile.CLEAR}/1": ["7"]})
    app = LeafeApp(tmp_path / "live.db")
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        fill_form(screen, script=script, tasks="2", max_steps="2", stages={"explore"})
        screen.query_one("#env-kind").value = "tests.ui.envs:HostileGuessEnvironment"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.running, "the first run finished")
        await pilot.pause(0.3)  # the tree's next refresh
        assert_shown_safely(
            app,
            "Run 1 finished",
            f"evil{hostile.SHOWN_CLEAR}/0",  # the growing tree's episodes and steps
            f"5 {hostile.SHOWN_OSC_TITLE}{hostile.CLICK}",
        )
        # A run that fails with a hostile exception: the status line, the log and the toast.
        screen.query_one("#env-suite").value = "raise"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.running, "the second run failed")
        await pilot.pause()
        text = assert_shown_safely(app, f"Run 2 failed: ValueError: bad task {hostile.SHOWN_OSC_52}")
        assert text.count("bad task") >= 3, text  # status, log and notification
        assert app.is_running
