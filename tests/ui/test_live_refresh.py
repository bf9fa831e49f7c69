"""Item 1 of the day of curation: what another program writes to the store shows up on
the runs screen and in an open run's tree without a key press."""

from __future__ import annotations

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from screens.runs import RunsScreen
from store import episodes, queries, steps
from store.db import open_store, transaction
from tests.ui.conftest import SIZE, until


def another_program(path):
    """A connection of its own, as a batch run in another terminal has."""
    return open_store(path)


def cells(app: LeafeApp, run_id: int) -> list[str]:
    return [str(cell) for cell in app.screen.query_one("#runs-table").get_row(str(run_id))]


async def test_a_run_another_program_starts_appears_and_its_status_follows(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one("#runs-table").row_count == 2
        db = another_program(store.path)
        with transaction(db):
            run_id = queries.create_run(db, config={}, stages=["explore", "reflect"], name="from-batch")
        table = app.screen.query_one("#runs-table")
        await until(pilot, lambda: table.row_count == 3, "the new run appeared without a key press", polls=100)
        assert "from-batch" in cells(app, run_id) and "running" in cells(app, run_id)
        with transaction(db):
            queries.set_run_status(db, run_id, "finished")
        await until(pilot, lambda: "finished" in cells(app, run_id), "the run's status followed", polls=100)
        db.close()


async def test_steps_another_program_stores_grow_the_open_tree_and_the_step_count(store):
    db = another_program(store.path)
    with transaction(db):
        run_id = queries.create_run(db, config={}, stages=["explore"], name="growing")
        task = queries.ensure_task(db, "coding", "Grow/1", {})
        episode, root = episodes.create(db, run_id=run_id, task_id=task, purpose="explore", rollout=0,
                                               observation="write grow()")
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(run_id)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EpisodeScreen)
        tree = screen.tree
        label = lambda: str(tree.episode_nodes[episode].label)  # noqa: E731
        assert "… running" in label() and "0 steps" in label()
        parent = root
        for depth in (1, 2):
            with transaction(db):
                parent = steps.insert(db, episode_id=episode, parent_id=parent, depth=depth,
                                             action=f"def grow(): return {depth}", observation="1 of 2 asserts",
                                             feedback={}, score=0.5, done=False, success=False)
        # The running episode reads the steps already stored, and its open tree shows them.
        await until(pilot, lambda: "2 steps" in label(), "the running episode's count followed", polls=100)
        await until(pilot, lambda: parent in tree.step_nodes, "the new steps are in the tree", polls=100)
        first = tree.step_nodes[parent].parent
        assert str(first.label).startswith("step 1") and str(tree.step_nodes[parent].label).startswith("step 2")
        with transaction(db):
            episodes.finish(db, episode)
            queries.set_run_status(db, run_id, "finished")
        await until(pilot, lambda: "✗ failed 0.50" in label(), "the finished episode's outcome", polls=100)
        await until(pilot, lambda: screen.sub_title.endswith("finished"), "the title's run status", polls=100)
        db.close()
