"""The selected row of the runs, curation and distill tables: which record is highlighted,
and moving the highlight to a record that may have gone since the table was filled."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from screens import table_rows


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield DataTable()


async def test_the_highlighted_row_gives_its_record_id_and_an_empty_table_gives_none():
    app = OneTable()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        assert table_rows.selected_id(table) is None  # no columns, no rows
        table.add_column("name")
        for record_id in (7, 3, 12):
            table.add_row(f"record {record_id}", key=str(record_id))
        await pilot.pause()
        assert table_rows.selected_id(table) == 7
        await pilot.press("down")
        assert table_rows.selected_id(table) == 3
        table.clear()
        assert table_rows.selected_id(table) is None


async def test_moving_to_a_record_that_is_gone_keeps_the_highlight_where_it_was():
    app = OneTable()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        table.add_column("name")
        for record_id in (7, 3, 12):
            table.add_row(f"record {record_id}", key=str(record_id))
        await pilot.pause()
        assert table_rows.move_to_id(table, 12)
        assert table_rows.selected_id(table) == 12
        assert not table_rows.move_to_id(table, 99)
        assert table_rows.selected_id(table) == 12
