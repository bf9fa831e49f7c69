"""Write the README's SVG screenshots to docs/screenshots/ from stores of real runs.

    make screenshots QUICK_DB=leafe.db COMPARE_DB=compare.db

QUICK_DB is a store of `make run` (examples/quickstart.toml): the runs list, an episode
tree at a correction, curation, distill and the keys come from its newest run. COMPARE_DB
is a store of examples/compare.toml (or navigation.toml): the Results picture comes from
its newest run with Pass@k results. Each store is copied into a temporary folder first, so
nothing a screen does touches yours; only docs/screenshots/*.svg is written. (The UI
tests use the deterministic fixture store in tests/ui/fixture_store.py instead.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from screens.app import LeafeApp  # noqa: E402
from store import views  # noqa: E402
from store.db import open_store  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZE = (120, 36)


def copy_store(source: Path, folder: Path) -> Path:
    """A consistent copy of a store (WAL included), through SQLite's backup."""
    target = folder / source.name
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    return target


def newest_run_with(path: Path, wanted) -> int:
    db = open_store(path, migrate=False)
    try:
        for row in views.runs_overview(db):
            if wanted(db, row["id"]):
                return row["id"]
    finally:
        db.close()
    raise SystemExit(f"make_screenshots: {path}: no run has what this picture needs")


def has_corrections(db, run_id: int) -> bool:
    return bool(views.corrections_for_review(db, run_id))


def has_results(db, run_id: int) -> bool:
    return bool(views.evals(db, run_id))


async def shoot_quickstart(path: Path, run_id: int) -> list[Path]:
    db = open_store(path, migrate=False)
    corrections = views.corrections_for_review(db, run_id)
    # A branch that reached the goal shows recovery best; else one that got closer.
    correction = max(corrections, key=lambda row: (row["branch_success"], -row["id"]))
    db.close()
    written = []
    app = LeafeApp(path, reviewer="you")
    async with app.run_test(size=SIZE) as pilot:

        def save(name: str) -> None:
            written.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT))))

        await pilot.pause()
        save("runs")
        app.open_run(run_id)
        await pilot.pause()
        tree = app.screen.query_one("#tree")
        tree.reveal(correction["leaf_node_id"])  # the branch that recovered, beside the step it replaced
        await pilot.pause(0.3)
        save("episode-tree")
        await pilot.press("c")
        await pilot.pause()
        save("curation")
        await pilot.press("escape", "d")
        await pilot.pause()
        save("distill")
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        save("help")
    return written


async def shoot_results(path: Path, run_id: int) -> list[Path]:
    app = LeafeApp(path, reviewer="you")
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(run_id)
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause(0.5)
        return [Path(app.save_screenshot(filename="results.svg", path=str(OUT)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick-db", required=True, help="a store of `make run` (QUICK_DB)")
    parser.add_argument("--compare-db", required=True, help="a store of a comparison with Pass@k results (COMPARE_DB)")
    args = parser.parse_args(argv)
    sources = [Path(args.quick_db).resolve(), Path(args.compare_db).resolve()]
    for source in sources:
        if not source.is_file():
            parser.exit(2, f"make screenshots: store not found: {source}\n")
    OUT.mkdir(parents=True, exist_ok=True)
    start = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        # Work inside the temporary folder: only the screenshots are written to the checkout.
        os.chdir(folder)
        try:
            quick = copy_store(sources[0], Path(folder))
            (Path(folder) / "compare").mkdir()
            compare = copy_store(sources[1], Path(folder) / "compare")
            written = asyncio.run(shoot_quickstart(quick, newest_run_with(quick, has_corrections)))
            written += asyncio.run(shoot_results(compare, newest_run_with(compare, has_results)))
            for path in written:
                print(path.relative_to(ROOT))
        finally:
            os.chdir(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
