"""The selected row of a table whose rows are keyed by a record's id (runs, corrections,
adapters): read it, or move the cursor to one, without guessing what a missing row raises."""

from __future__ import annotations

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist


def selected_id(table: DataTable) -> int | None:
    """The id the highlighted row was added with; None when the table is empty or the
    cursor sits on no row (the table was just cleared and is not refilled yet)."""
    if table.row_count == 0:
        return None
    try:
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    except CellDoesNotExist:
        return None
    return int(key.value) if key.value is not None else None


def move_to_id(table: DataTable, record_id: int) -> bool:
    """Highlight the row added with this id; False (the cursor stays) when there is none,
    as when the record was deleted or filtered out since the table was filled."""
    try:
        table.move_cursor(row=table.get_row_index(str(record_id)))
    except RowDoesNotExist:
        return False
    return True
