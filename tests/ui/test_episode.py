"""The episode screen: lazy tree, notes under their step, branches as siblings, detail
pane, filter and search, and branch by hand."""

from __future__ import annotations

import pytest
import sqlite_utils

from screens.app import LeafeApp
from screens.episode import EpisodeScreen
from screens.modals import EditTextScreen
from screens.widgets.trajectory_tree import TrajectoryTree
from tests.ui.conftest import SIZE, until


def labels(node) -> list[str]:
    return [str(child.label) for child in node.children]


async def open_run(app: LeafeApp, pilot, run_id: int) -> EpisodeScreen:
    app.open_run(run_id)
    await pilot.pause()
    assert isinstance(app.screen, EpisodeScreen)
    return app.screen


async def test_first_episode_open_with_branches_beside_the_replaced_step(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.query_one(TrajectoryTree)
        assert app.focused is tree
        assert [node.data.id for node in tree.root.children] == list(store.episodes.values())
        episode = tree.episode_nodes[store.episodes["close"]]
        assert episode.is_expanded
        # The original step 1 and its two branches are siblings under the episode's root.
        assert [child.data.id for child in episode.children] == [
            store.steps["close_s1"], store.steps["close_b1"], store.steps["close_b2"]]
        original, sorted_branch, _ = labels(episode)
        assert original.startswith("⟲ step 1") and "★2" in original
        assert sorted_branch.startswith("↪ step 1 ✓ passed")
        assert "HumanEval/0" in str(episode.label) and "✓ passed" in str(episode.label)
        assert "✗ failed" in str(tree.episode_nodes[store.episodes["mad"]].label)


async def test_children_load_only_when_expanded_and_notes_sit_under_their_step(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.query_one(TrajectoryTree)
        s1 = tree.step_nodes[store.steps["close_s1"]]
        assert s1.allow_expand and list(s1.children) == []  # not loaded yet
        assert store.steps["close_s2"] not in tree.step_nodes
        tree.move_cursor(s1)
        await pilot.press("space")  # the tree's toggle: expands, which loads
        await pilot.pause()
        assert [child.data.id for child in s1.children] == [store.steps["close_s2"]]
        s2 = tree.step_nodes[store.steps["close_s2"]]
        tree.move_cursor(s2)
        await pilot.press("right")
        await pilot.pause()
        (note,) = s2.children
        assert note.data.kind == "note" and note.data.id == store.notes["close"]
        assert str(note.label).startswith("✎ note (template) ⟲ step 1: Only neighbours")


async def test_detail_pane_shows_action_feedback_and_note(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.query_one(TrajectoryTree)
        tree.move_cursor(tree.step_nodes[store.steps["close_b1"]])
        await pilot.pause()
        content = detail_text(app)
        assert "ordered = sorted(numbers)" in content  # the action
        assert '"fraction": 1.0' in content  # the feedback, as pretty JSON
        assert "Note in context" in content and "Sort the numbers first" in content
        assert "↪ branch" in content


def detail_text(app: LeafeApp) -> str:
    from rich.console import Console

    body = app.screen.query_one("#detail-body")
    console = Console(width=80, record=True, color_system=None)
    console.print(body.content)
    return console.export_text()


async def test_search_reveals_matches_in_branches(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.query_one(TrajectoryTree)
        await pilot.press("slash")
        assert app.focused.id == "search"
        await pilot.press(*"numbers[i + 1:]", "enter")
        await pilot.pause()
        assert tree.cursor_node.data.id == store.steps["close_b2_fix"]  # two levels down, loaded on the way
        assert "match 1/1" in str(screen.query_one("#match-info").render())
        assert [node.data.id for node in tree.root.children] == [store.episodes["close"]]


async def test_outcome_and_task_filters(store):
    app = LeafeApp(store.path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, store.leafe_run)
        tree = screen.query_one(TrajectoryTree)
        await pilot.press("o")  # passed
        await pilot.pause()
        assert [n.data.id for n in tree.root.children] == [store.episodes["close"], store.episodes["truncate"]]
        await pilot.press("o")  # failed
        await pilot.pause()
        assert [n.data.id for n in tree.root.children] == [store.episodes["mad"]]
        await pilot.press("o", "o")  # running, then all
        await pilot.press("f", *"Eval/2", "enter")
        await pilot.pause()
        assert [n.data.id for n in tree.root.children] == [store.episodes["truncate"]]


async def test_branch_by_hand_adds_a_sibling_branch(explored_store):
    db = sqlite_utils.Database(explored_store)
    # guess/0's secret is 3: the scripted policy guessed 5 first; branch there with "3".
    first = db.execute(
        """select nodes.id, nodes.parent_id from nodes join episodes on episodes.id = nodes.episode_id
           join tasks on tasks.id = episodes.task_id where tasks.name = 'guess/0' and nodes.depth = 1"""
    ).fetchone()
    db.close()
    app = LeafeApp(explored_store, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, 1)
        tree = screen.query_one(TrajectoryTree)
        tree.reveal(first[0])
        await pilot.press("b")
        assert isinstance(app.screen, EditTextScreen)
        editor = app.screen.query_one("#edit-text")
        editor.text = "3"
        app.screen.query_one("#edit-extra").text = "The secret is below 5."
        await pilot.press("ctrl+s")
        await pilot.pause()
        await screen.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        db = sqlite_utils.Database(explored_store)
        rows = list(db.query("select * from nodes where branch_depth > 0 order by id"))
        assert rows, "branch by hand stored no steps"
        assert rows[0]["parent_id"] == first[1]  # a sibling of the step it replaces
        assert rows[0]["action"].strip() == "3" and rows[0]["success"] == 1
        note = db.execute("select author, text from notes").fetchone()
        assert note == ("human", "The secret is below 5.")
        db.close()
        assert tree.cursor_node.data.id == rows[0]["id"]  # the tree shows the new branch
        assert tree.cursor_node.parent is tree.step_nodes[first[0]].parent
        assert str(tree.step_nodes[first[0]].label).startswith("⟲ step 1")  # relabelled: rolled back to


async def test_a_wide_fan_out_loads_a_page_at_a_time(tmp_path):
    from store import views
    from store.db import open_store, transaction
    from store.episodes import create as create_episode
    from store.queries import create_run, ensure_task
    from store.steps import insert as insert_node

    db = open_store(tmp_path / "wide.db")
    with transaction(db):
        run_id = create_run(db, config={}, stages=["explore"], name="wide")
        task = ensure_task(db, "coding", "wide/0", {})
        episode_id, root = create_episode(db, run_id=run_id, task_id=task, purpose="explore", rollout=0,
                                          observation="task")
        for index in range(views.CHILD_PAGE + 50):
            insert_node(db, episode_id=episode_id, parent_id=root, depth=1, action=f"attempt {index}",
                        observation="no", feedback={}, score=0.1, done=True, success=False,
                        branch_depth=int(index > 0))
    db.close()
    app = LeafeApp(tmp_path / "wide.db")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, run_id)
        tree = screen.query_one(TrajectoryTree)
        episode = tree.episode_nodes[episode_id]
        assert len(tree.step_nodes) == views.CHILD_PAGE
        more = episode.children[-1]
        assert more.data.kind == "more" and "more branches" in str(more.label)
        tree.move_cursor_now(more)
        await pilot.press("enter")
        await pilot.pause()
        assert len(tree.step_nodes) == views.CHILD_PAGE + 50
        assert all(child.data.kind == "step" for child in episode.children)


def five_step_store(folder, env_class: str):
    """One explore run of the guessing game whose answers list the guesses so far: guess/0
    (secret 3) guesses 9, 8, 7, 6, 5 and runs out of its 5-step budget."""
    from tests.conftest import write_config, write_script
    from workbench.config import load_config
    from workbench.pipeline import run_pipeline

    # Never 3: whatever the policy is asked after the stored steps, it guesses wrong.
    script = write_script(folder / "guess.jsonl", {"guess/0": ["9", "8", "7", "6", "5", "0", "1", "2", "4", "6"]})
    config = write_config(folder / "five.toml", (
        f'[model]\nbackend = "scripted"\nscript = "{script}"\n'
        f'[env]\nkind = "tests.fixtures.guess_env:{env_class}"\ntasks = ["guess/0"]\nmax_steps = 5\n'
    ))
    db_path = folder / "five.db"
    result = run_pipeline(load_config(config), db_path=db_path, config_path=str(config))
    assert result.status == "finished", result.error
    return db_path


@pytest.mark.parametrize("env_class", ["GuessHistorySnapshots", "GuessHistoryGame"])
async def test_branch_by_hand_deep_in_an_episode_runs_to_the_end_of_the_budget(tmp_path, env_class):
    # GuessHistorySnapshots is rewound by restore(), GuessHistoryGame by replaying step 1.
    db_path = five_step_store(tmp_path, env_class)
    db = sqlite_utils.Database(db_path)
    original = {row["depth"]: row for row in db.query("select * from nodes where depth > 0 order by depth")}
    db.close()
    assert [original[depth]["action"] for depth in range(1, 6)] == ["9", "8", "7", "6", "5"]
    step_2 = original[2]

    app = LeafeApp(db_path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(app, pilot, 1)
        tree = screen.query_one(TrajectoryTree)
        tree.reveal(step_2["id"])
        await pilot.pause()
        await pilot.press("b")
        assert isinstance(app.screen, EditTextScreen)
        app.screen.query_one("#edit-text").text = "1"  # wrong too: the policy must carry on
        await pilot.press("ctrl+s")
        await until(pilot, lambda: tree.cursor_node.data.id not in (step_2["id"], None)
                    and tree.cursor_node.data.kind == "step", "the new branch selected in the tree")
        await screen.workers.wait_for_complete()
        await pilot.pause()

        db = sqlite_utils.Database(db_path)
        new = list(db.query("select * from nodes where branch_depth > 0 order by id"))
        db.close()
        first = new[0]
        assert first["parent_id"] == step_2["parent_id"] and first["depth"] == 2  # a sibling of step 2
        assert first["action"] == "1"
        for earlier, later in zip(new, new[1:], strict=False):
            assert later["parent_id"] == earlier["id"] and later["depth"] == earlier["depth"] + 1
        assert len(new) == 5 - 1  # the steps left in the budget from step 2
        assert [row["depth"] for row in new] == [2, 3, 4, 5] and new[-1]["done"] == 1
        assert all(row["action"] != "3" and row["success"] == 0 for row in new)
        # The environment was at step 1 when the edited guess ran: only 9 came before it.
        assert first["observation"] == "Wrong, go higher. Guesses so far: 9, 1."
        assert new[1]["observation"].endswith(f"Guesses so far: 9, 1, {new[1]['action']}.")

        # On screen: the branch beside step 2, and its step in the detail pane.
        assert tree.cursor_node.data.id == first["id"]
        assert tree.cursor_node.parent is tree.step_nodes[step_2["id"]].parent
        assert "Guesses so far: 9, 1." in detail_text(app)
