"""Write SVG screenshots of the main screens to docs/screenshots/ for the README.

Run: `make screenshots` (uses the deterministic fixture store in a temporary folder,
and writes nothing but docs/screenshots/*.svg).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from screens.app import LeafeApp  # noqa: E402
from tests.ui.fixture_store import FixtureIds, build_fixture_store  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZE = (120, 36)


async def shoot(ids: FixtureIds) -> list[Path]:
    written = []
    app = LeafeApp(ids.path, reviewer="ana")
    async with app.run_test(size=SIZE) as pilot:

        def save(name: str) -> None:
            written.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(OUT))))

        await pilot.pause()
        save("runs")
        await pilot.press("down", "enter")
        await pilot.pause()
        tree = app.screen.query_one("#tree")
        tree.expand_node(tree.reveal(ids.steps["close_s2"]))
        tree.move_cursor_now(tree.step_nodes[ids.steps["close_b1"]])
        await pilot.pause()
        save("episode-tree")
        await pilot.press("c")
        await pilot.pause()
        save("curation")
        await pilot.press("escape", "d")
        await pilot.pause()
        save("distill")
        await pilot.press("escape", "p")
        await pilot.pause()
        save("results")
        await pilot.press("question_mark")
        await pilot.pause()
        save("help")
    return written


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    start = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        # Work inside the temporary folder: only the screenshots are written to the checkout.
        os.chdir(folder)
        try:
            ids = build_fixture_store(Path(folder) / "fixture.db")
            for path in asyncio.run(shoot(ids)):
                print(path.relative_to(ROOT))
        finally:
            os.chdir(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
