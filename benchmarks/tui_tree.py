"""Time to first paint of the episode screen on a 10,000-step episode: lazy vs eager.

Builds a store with one episode of 10,000 nodes shaped like a long LEAFE exploration (an
original path of 30 steps; notes on failed leaves; branches that replace earlier steps as
siblings and run to the end of the budget, some branching again). Then opens the episode
screen twice in the same process, headless at 120x36:

- lazy (the product): the tree loads a node's children when it is expanded;
- eager (the baseline): the whole tree is fetched in one query and every node is built
  before the first paint, as a tree widget without lazy loading would do.

Prints both times and the ratio eager / lazy (each the median of a few openings).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import screens  # noqa: E402,F401  (before the store: keeps pandas out, as the CLI start-up does)
from screens.app import LeafeApp  # noqa: E402
from screens.episode import EpisodeScreen  # noqa: E402
from screens.widgets.trajectory_tree import TrajectoryTree  # noqa: E402
from store.db import open_store, transaction  # noqa: E402
from store.episodes import create as create_episode  # noqa: E402
from store.queries import create_run, dumps, ensure_task  # noqa: E402

NODES = 10_000
MAX_STEPS = 30
REPEATS = 3
SIZE = (120, 36)


def build_store(path: Path, seed: int = 0) -> tuple[int, int]:
    """One run, one episode, NODES nodes; returns (run id, node count)."""
    rng = random.Random(seed)
    db = open_store(path)
    with transaction(db):
        run_id = create_run(db, config={"env": {"kind": "coding", "max_steps": MAX_STEPS}}, stages=["explore", "backtrack"],
                            name="benchmark-10k")
        task = ensure_task(db, "coding", "HumanEval/0", {})
        episode_id, root = create_episode(db, run_id=run_id, task_id=task, purpose="explore", rollout=0,
                                          observation="def has_close_elements(numbers, threshold): ...")
        next_id = root + 1
        rows, notes = [], []
        # (parent id, depth, branch depth) of each node, so branches can replace any step.
        placed: list[tuple[int, int | None, int, int]] = []

        def add_path(parent: int, depth: int, branch_depth: int, note_id: int | None) -> int:
            nonlocal next_id
            last = parent
            while depth <= MAX_STEPS and next_id - root <= NODES - 1:
                success = depth == MAX_STEPS and rng.random() < 0.3
                score = 1.0 if success else round(rng.random(), 2)
                rows.append({
                    "id": next_id, "episode_id": episode_id, "parent_id": last, "depth": depth,
                    "action": f"def has_close_elements(numbers, threshold):\n    # attempt {next_id}\n"
                              f"    return any(abs(a - b) < threshold for a in numbers for b in numbers[{depth}:])",
                    "observation": f"{int(score * 7)} of 7 asserts passed.",
                    "feedback": dumps({"passed": int(score * 7), "total": 7, "fraction": score}),
                    "score": score, "done": int(success or depth == MAX_STEPS), "success": int(success),
                    "tokens": 40, "truncated_turns": 0, "note_id": note_id, "branch_depth": branch_depth,
                    "backtrack_point": 0, "created_at": "2026-01-15T10:00:00.000+00:00",
                })
                placed.append((next_id, last, depth, branch_depth))
                last = next_id
                next_id += 1
                depth += 1
                if success:
                    break
            return last

        leaf = add_path(root, 1, 0, None)
        note_id = 0
        while next_id - root <= NODES - 1:
            # Reflect on a leaf: pick a step to replace, start a branch beside it.
            node_id, parent, depth, branch_depth = placed[rng.randrange(len(placed))]
            note_id += 1
            notes.append({"id": note_id, "node_id": leaf, "rollback_node_id": node_id,
                          "text": f"Step {depth} compared the wrong pairs; try sorting first ({note_id}).",
                          "author": "template", "created_at": "2026-01-15T10:00:00.000+00:00"})
            leaf = add_path(parent, depth, min(branch_depth + 1, 3), note_id)
        db["nodes"].insert_all(row | {"note_id": None} for row in rows)
        db["notes"].insert_all(notes)
        db.conn.executemany("update nodes set note_id = ? where id = ?",
                       [(row["note_id"], row["id"]) for row in rows if row["note_id"]])
        db.conn.executemany("update nodes set backtrack_point = 1 where id = ?",
                       [(note["rollback_node_id"],) for note in notes])
        db["episodes"].update(episode_id, {"status": "finished", "steps": MAX_STEPS})
    count = db.execute("select count(*) from nodes where episode_id = ?", [episode_id]).fetchone()[0]
    db.close()
    return run_id, count


class EagerTree(TrajectoryTree):
    """The baseline: every node of every episode fetched and built up front."""

    def show_episodes(self, rows: list[dict], *, more_offset: int | None = None) -> None:
        super().show_episodes(rows, more_offset=more_offset)
        for row in rows:
            episode_node = self.episode_nodes[row["id"]]
            nodes = list(self.db.query(
                """select n.id, n.episode_id, n.parent_id, n.depth, substr(n.action, 1, 400) as action, n.score,
                          n.done, n.success, n.backtrack_point, n.branch_depth, n.note_id,
                          (select count(*) from nodes c where c.parent_id = n.id) as n_children,
                          (select count(*) from notes where notes.node_id = n.id) as n_notes,
                          0 as n_corrections
                   from nodes n where n.episode_id = ? and n.parent_id is not null order by n.id""",
                [row["id"]]))
            notes: dict[int, list[dict]] = {}
            for note in self.db.query(
                """select notes.*, target.depth as rollback_depth from notes
                   join nodes src on src.id = notes.node_id
                   left join nodes target on target.id = notes.rollback_node_id
                   where src.episode_id = ? order by notes.id""", [row["id"]]):
                notes.setdefault(note["node_id"], []).append(note)
            parents = {row["root_id"]: episode_node}
            for note in notes.get(row["root_id"], []):
                self.add_note(episode_node, note)
            self.loaded.add(episode_node.id)
            for node in nodes:
                tree_node = self.add_step(parents[node["parent_id"]], node)
                parents[node["id"]] = tree_node
                for note in notes.get(node["id"], []):
                    self.add_note(tree_node, note)
                self.loaded.add(tree_node.id)


class EagerEpisodeScreen(EpisodeScreen):
    def compose(self):
        for widget in super().compose():
            if isinstance(widget, TrajectoryTree):
                yield EagerTree(self.db, self.run_id, id="tree")
            else:
                yield widget


async def first_paint(db_path: Path, run_id: int, screen_class: type[EpisodeScreen]) -> tuple[float, int]:
    app = LeafeApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        app.push_screen(screen_class(run_id))
        while not (isinstance(app.screen, screen_class) and app.screen.is_mounted):
            await pilot.pause()
        tree = app.screen.query_one(TrajectoryTree)
        while not tree.is_mounted or tree.virtual_size.height == 0:
            await pilot.pause()
        await pilot.pause()  # one more cycle: the screen has been painted
        elapsed = time.perf_counter() - started
        built = len(tree.step_nodes)
    return elapsed, built


async def measure(db_path: Path, run_id: int) -> dict[str, tuple[float, int]]:
    results: dict[str, list[float]] = {"lazy": [], "eager": []}
    built: dict[str, int] = {}
    for _ in range(REPEATS):
        for name, screen_class in (("lazy", EpisodeScreen), ("eager", EagerEpisodeScreen)):
            elapsed, count = await first_paint(db_path, run_id, screen_class)
            results[name].append(elapsed)
            built[name] = count
    return {name: (statistics.median(times), built[name]) for name, times in results.items()}


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "benchmark.db"
        started = time.perf_counter()
        run_id, count = build_store(db_path)
        print(f"store: one episode of {count} nodes (max depth {MAX_STEPS}), built in "
              f"{time.perf_counter() - started:.1f}s")
        results = asyncio.run(measure(db_path, run_id))
    lazy, lazy_nodes = results["lazy"]
    eager, eager_nodes = results["eager"]
    print(f"lazy  (product):  first paint {lazy * 1000:7.0f} ms, {lazy_nodes:5d} tree nodes built")
    print(f"eager (baseline): first paint {eager * 1000:7.0f} ms, {eager_nodes:5d} tree nodes built")
    print(f"ratio eager / lazy: {eager / lazy:.1f}x faster first paint with lazy loading")
    return 0


if __name__ == "__main__":
    sys.exit(main())
