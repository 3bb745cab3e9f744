"""Which columns of a table fit the terminal: the least needed left out whole, rather than every cell cut short.

rich fits a table wider than the terminal by cutting every column down, each cell ending in "…". The plan table's
cells are single words (a shot id, a seed, a key), so on an 80-column terminal every shot read ``sh0…`` and no row
could be told from another (the python-api trial, 2026-12-02). Here the columns a reader can do without are left out,
in the order given, until the rest fit whole; the command says which, and where to see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# What rich's default box adds to a table around its cells: one space either side of each cell and a rule before
# each column, and the closing rule.
_PER_COLUMN = 3
_PER_TABLE = 1


def cell_width(cell: Any) -> int:
    """The terminal columns a cell takes: a rich ``Text``'s own measure, else the string's."""
    from rich.cells import cell_len

    width = getattr(cell, "cell_len", None)
    return width if isinstance(width, int) else cell_len(str(cell))


def columns_that_fit(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None,
                     expendable: Sequence[str]) -> list[str]:
    """The headers of the columns to show in ``width`` terminal columns, in their order: all of them when they fit
    whole (or ``width`` is None: no terminal to fit); else the ``expendable`` ones left out one by one, in that order,
    until the rest fit, then each left out put back, the most needed first, where it fits beside them. When even the
    others do not fit, rich cuts what is left as before."""
    natural = {header: max([cell_width(header), *(cell_width(row[i]) for row in rows)])
               for i, header in enumerate(headers)}
    shown = list(headers)
    if width is None:
        return shown

    def fits(columns: Sequence[str]) -> bool:
        return sum(natural[h] + _PER_COLUMN for h in columns) + _PER_TABLE <= width

    left_out: list[str] = []
    for header in expendable:
        if fits(shown):
            break
        shown.remove(header)
        left_out.append(header)
    # A wide column left out last (identity: a group shot's names) can free room for narrower ones left out before
    # it (size, steps): without this they stayed out, the note naming them over blank columns (hostile-read-31).
    for header in reversed(left_out[:-1]):
        if fits([*shown, header]):
            shown.append(header)
    return [header for header in headers if header in shown]


def left_out_note(left_out: Sequence[str], width: int, command: str) -> str:
    """The note saying which columns a table left out to fit ``width`` terminal columns, and where to see them."""
    return (f"{', '.join(left_out)} not shown, to fit the terminal's {width} columns "
            f"(a wider terminal shows them, as does `{command} --json`)")
