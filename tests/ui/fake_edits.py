"""For curation tests on the fixture store (HumanEval with the embedded model): an edit is
'played from tau' without the sandbox or the model, and kept with the core's decision, so
those tests stay about the screen (what is stored, said and undone)."""

from __future__ import annotations

import pytest


@pytest.fixture
def edits_without_the_environment(monkeypatch):
    import workbench.curate
    from store import curation
    from store.db import open_store
    from workbench.curate import EditPreview

    def preview(db_path, correction_id, text):
        return EditPreview(text, "(played from τ)", {}, 0.0, True, False)

    def keep(db_path, correction_id, text, *, reviewer, progress=None, cancel=None):
        db = open_store(db_path)
        try:
            return curation.decide(db, correction_id, "edited", reviewer=reviewer, edited_action=text)
        finally:
            db.close()

    monkeypatch.setattr(workbench.curate, "preview_edit", preview)
    monkeypatch.setattr(workbench.curate, "keep_edit", keep)


async def keep_the_edit(pilot) -> None:
    """Save the edit dialog, wait for the preview, keep it, and wait for the store."""
    from screens.curation import CurationScreen
    from screens.modals import EditPreviewScreen
    from tests.ui.conftest import until

    app = pilot.app
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, EditPreviewScreen), "the edit was played")
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, CurationScreen) and not any(
        worker.is_running for worker in app.screen.workers if worker.group == "edit"), "the edit was kept")
    await pilot.pause()
