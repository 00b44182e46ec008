"""Table columns fitted to the width a panel has, so an 80-column terminal shows the columns that
matter whole instead of the first few cut off: the least needed columns are left out first, and one
column (a name, a folder, a job) takes the spare width. The jobs, workers and watches panels use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from textual.widgets import DataTable

Fit = tuple[tuple[str, int], ...]  # (key, width) of each column shown, in order


@dataclass(frozen=True)
class Columns:
    """A table's columns and how they give way to a narrow panel."""

    columns: tuple[tuple[str, str, int], ...]  # (key, label, width); the flexible one's width is its usual one
    flexible: str  # the column that takes the spare width (and gives it up first)
    least: int  # the flexible column's narrowest width: below it, the columns of ``drop`` go (in order)
    grow: int  # how much wider than usual the flexible column gets when there is room
    drop: tuple[str, ...]  # the columns left out, in this order, while the rest do not fit
    per_column: int  # cells each column takes besides its width (cell padding, or the gap before it)

    def fit(self, room: int) -> Fit:
        """The columns shown in ``room`` cells: all of them if they fit with the flexible column at least
        ``least`` wide, else without the columns of ``drop`` (in order) until they do."""
        widths = {key: width for key, _, width in self.columns}
        shown = [key for key, _, _ in self.columns]

        def others() -> int:
            return sum(widths[key] for key in shown if key != self.flexible) + self.per_column * len(shown)

        for key in self.drop:
            if others() + self.least <= room:
                break
            shown.remove(key)
        flexible = max(self.least, min(widths[self.flexible] + self.grow, room - others()))
        return tuple((key, flexible if key == self.flexible else widths[key]) for key in shown)

    def label(self, key: str) -> str:
        return next(label for k, label, _ in self.columns if k == key)


def fill_table(table: DataTable, columns: Columns, fit: Fit, rows: Mapping[str, Mapping[str, object]]) -> None:
    """Rebuild ``table`` with the columns of ``fit`` and ``rows`` (row key -> cell per column key)."""
    table.clear(columns=True)
    for key, width in fit:
        table.add_column(columns.label(key), width=width, key=key)
    for row_key, cells in rows.items():
        table.add_row(*(cells[key] for key, _ in fit), key=row_key)


def update_cells(table: DataTable, fit: Fit, before: Mapping[str, Mapping[str, object]],
                 after: Mapping[str, Mapping[str, object]]) -> None:
    """Update the cells that changed between ``before`` and ``after`` (same rows, same columns)."""
    for row_key, cells in after.items():
        for key, _ in fit:
            if before[row_key][key] != cells[key]:
                table.update_cell(row_key, key, cells[key])


def shown_keys(fit: Fit) -> Sequence[str]:
    return [key for key, _ in fit]
