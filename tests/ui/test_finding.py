"""Item 2 of the day of curation: finding what matters in the tree. Filters by marks,
branch depth and note author; keys to the next and previous ⟲ and ★; marks and counts on
episode rows; expand-all; right arrow that steps in; sort by score gain; a detail pane
that follows the filter."""

from __future__ import annotations

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from tests.ui.conftest import SIZE


async def open_run(app: LeafeApp, pilot, run_id: int) -> EpisodeScreen:
    app.open_run(run_id)
    await pilot.pause()
    assert isinstance(app.screen, EpisodeScreen)
    return app.screen


def shown(screen: EpisodeScreen) -> list[int]:
    return list(screen.tree.episode_nodes)


def detail_text(screen: EpisodeScreen) -> str:
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    console.print(screen.query_one("#detail-body").content)
    return console.export_text()


def cursor_step(screen: EpisodeScreen) -> int | None:
    node = screen.tree.cursor_node
    return node.data.id if node is not None and node.data.kind == "step" else None


async def test_episode_rows_show_corrections_branches_and_gain(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        close = str(screen.tree.episode_nodes[store.episodes["close"]].label)
        mad = str(screen.tree.episode_nodes[store.episodes["mad"]].label)
        truncate = str(screen.tree.episode_nodes[store.episodes["truncate"]].label)
        assert "★2" in close and "↪2" in close
        assert "★3" in mad and "↪3" in mad and "Δ+0.67" in mad  # its branch passed where it failed
        assert "★" not in truncate and "↪" not in truncate and "Δ" not in truncate


async def test_filters_by_marks_depth_and_author_and_the_pane_follows(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        episodes = store.episodes
        # The cursor on the episode the next filter hides.
        screen.tree.move_cursor(screen.tree.episode_nodes[episodes["truncate"]])
        await pilot.pause()
        assert "HumanEval/2" in detail_text(screen)
        await pilot.press("m")  # ★ has a correction
        await pilot.pause()
        assert shown(screen) == [episodes["close"], episodes["mad"]]
        assert "HumanEval/2" not in detail_text(screen) and "HumanEval/0" in detail_text(screen)
        await pilot.press("m")  # ⟲ has a backtrack point
        await pilot.pause()
        assert shown(screen) == [episodes["close"], episodes["mad"]]
        await pilot.press("m")  # any marks
        await pilot.pause()
        assert shown(screen) == list(episodes.values())
        await pilot.press("D")  # a branch at least 1 deep
        await pilot.pause()
        assert shown(screen) == [episodes["close"], episodes["mad"]]
        await pilot.press("D")  # at least 2 deep: none in the fixture
        await pilot.pause()
        assert shown(screen) == []
        assert "No episodes match" in detail_text(screen)
        for _ in range(2):
            await pilot.press("D")  # 3 deep, then any depth again
        await pilot.pause()
        assert shown(screen) == list(episodes.values())
        await pilot.press("a")  # the first author in the list: model
        await pilot.pause()
        assert shown(screen) == [episodes["mad"]]
        await pilot.press("a")  # template
        await pilot.pause()
        assert shown(screen) == [episodes["close"], episodes["mad"]]
        assert "2 episodes shown" in str(screen.query_one("#episode-count").render())


async def test_sort_by_score_gain_puts_the_biggest_gain_first(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        assert shown(screen)[0] == store.episodes["close"]
        await pilot.press("g")
        await pilot.pause()
        assert shown(screen)[0] == store.episodes["mad"]
        assert "HumanEval/4" in detail_text(screen)  # the pane shows the first one, too


async def test_keys_jump_to_the_next_and_previous_backtrack_point_and_correction(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        screen.tree.move_cursor(screen.tree.episode_nodes[store.episodes["close"]])
        await pilot.pause()
        await pilot.press("s")
        first = cursor_step(screen)
        assert first == store.steps["close_s1"]  # ★2 on the step the branches replace
        assert "★" in str(screen.tree.cursor_node.label)
        await pilot.press("s")
        second = cursor_step(screen)
        assert second is not None and second != first
        assert "★" in str(screen.tree.cursor_node.label)
        node = screen.tree.cursor_node
        while node.data.kind != "episode":
            node = node.parent
        assert node.data.id == store.episodes["mad"]  # the next episode's first ★, opened down to it
        await pilot.press("S")
        assert cursor_step(screen) == first
        await pilot.press("S")  # before the first: wraps to the last
        assert cursor_step(screen) not in (None, first)
        screen.tree.move_cursor(screen.tree.episode_nodes[store.episodes["close"]])
        await pilot.pause()
        await pilot.press("t")
        assert str(screen.tree.cursor_node.label).startswith("⟲")
        assert "⟲ backtrack point 1/" in str(screen.query_one("#match-info").render())
        await pilot.press("t")
        assert str(screen.tree.cursor_node.label).startswith("⟲")
        assert "⟲ backtrack point 2/" in str(screen.query_one("#match-info").render())


async def test_expand_all_opens_everything_and_again_closes_it(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.tree
        episode = tree.episode_nodes[store.episodes["close"]]
        tree.move_cursor(episode)
        await pilot.pause()
        await pilot.press("shift+space")
        await pilot.pause()
        # Every step of the episode is in the tree and open, notes included.
        assert store.steps["close_s2"] in tree.step_nodes
        pending, kinds = [episode], set()
        while pending:
            node = pending.pop()
            kinds.add(node.data.kind)
            assert node.is_expanded or not node.allow_expand, str(node.label)
            pending.extend(node.children)
        assert {"episode", "step", "note"} <= kinds
        await pilot.press("shift+space")
        await pilot.pause()
        assert not episode.is_expanded and not tree.step_nodes[store.steps["close_s1"]].is_expanded


async def test_right_arrow_expands_and_moves_into_the_node(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.tree
        s1 = tree.step_nodes[store.steps["close_s1"]]
        tree.move_cursor(s1)
        await pilot.pause()
        assert not s1.is_expanded
        await pilot.press("right")
        await pilot.pause()
        assert s1.is_expanded
        assert cursor_step(screen) == store.steps["close_s2"]
        assert "step 2" in detail_text(screen) or "Step 2" in detail_text(screen)
