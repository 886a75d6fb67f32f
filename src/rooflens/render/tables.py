"""Tables that fit the console: a column the width has no room for is left out whole, never cut.

Rich fits a table that is wider than the console by wrapping and cropping its cells: an operator name
becomes "emb…" and a number breaks over two lines. Here every column says how readily it may be left
out (``Col.drop``); the table keeps every column that fits, leaves out the others (most droppable first)
and says which it left out. Cells hold data, never markup: each becomes a ``Text`` as written.
A cell made with ``cell(..., wrap=True)`` (a section title, a sentence) may wrap between words; every
other cell keeps to one line. ``wide`` keeps every column at its full width, wider than the console if
need be.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Col:
    header: str
    drop: int = 0  # 0: always shown; else when the width is short, the highest numbers go first
    justify: JustifyMethod = "left"


@dataclass(frozen=True)
class Row:
    cells: Sequence[str | Text]
    style: str | None = None
    section: bool = False  # a rule above this row


def columns(
    headers: Iterable[str], drop: dict[str, int] | None = None, justify: JustifyMethod = "left"
) -> list[Col]:
    """A ``Col`` per header, as droppable as ``drop`` says (0, never left out, when it is not named)."""
    return [Col(h, (drop or {}).get(h, 0), justify) for h in headers]


def cell(text: str, style: str | None = None, wrap: bool = False) -> Text:
    """A cell as written; ``wrap`` lets it break between words (never inside one)."""
    return Text(text, style=style or "", no_wrap=not wrap, overflow="fold")


def _text(value: str | Text) -> Text:
    return value if isinstance(value, Text) else cell(value)


def _widths(value: Text) -> tuple[int, int]:
    """(narrowest, natural) width: a wrapping cell needs its longest word, any other its whole line."""
    lines = value.plain.split("\n")
    natural = max(cell_len(line) for line in lines)
    if value.no_wrap:
        return natural, natural
    return max((cell_len(word) for line in lines for word in line.split()), default=0), natural


# The box, padding and edges of every table here: one space each side of a cell, a rule between cells
# and one at each edge (rich's defaults, set explicitly so the arithmetic below holds).
_PAD = 1


def _table_width(widths: Iterable[int]) -> int:
    widths = list(widths)
    return sum(widths) + len(widths) * (2 * _PAD + 1) + 1


def print_table(
    console: Console,
    title: str,
    cols: Sequence[Col],
    rows: Iterable[Row | Sequence[str | Text]],
    *,
    wide: bool = False,
) -> list[str]:
    """Print a table fitted to ``console``'s width; returns the headers it left out."""
    rows = [r if isinstance(r, Row) else Row(r) for r in rows]
    cells = [[_text(v) for v in r.cells] + [Text("")] * (len(cols) - len(r.cells)) for r in rows]
    headers = [cell(c.header, wrap=True) for c in cols]
    low, high = [], []
    for i, header in enumerate(headers):
        sizes = [_widths(header), *(_widths(row[i]) for row in cells)]
        low.append(max(s[0] for s in sizes))
        high.append(max(s[1] for s in sizes))

    width = console.width
    keep = list(range(len(cols)))
    if not wide:
        for i in sorted((i for i in keep if cols[i].drop), key=lambda i: (-cols[i].drop, -i)):
            if _table_width(low[k] for k in keep) <= width:
                break
            keep.remove(i)
    if wide or _table_width(high[k] for k in keep) <= width:
        sizes = {k: high[k] for k in keep}
    else:  # the narrowest widths, then what room is left to the leftmost columns that can use it
        sizes = {k: low[k] for k in keep}
        room = width - _table_width(sizes.values())
        for k in keep:
            extra = max(0, min(room, high[k] - low[k]))
            sizes[k] += extra
            room -= extra

    table = Table(title=Text(title), title_justify="left", padding=(0, _PAD), pad_edge=True, show_edge=True)
    for k in keep:
        table.add_column(headers[k], justify=cols[k].justify, width=sizes[k])
    for row, values in zip(rows, cells, strict=True):
        if row.section:
            table.add_section()
        table.add_row(*(values[k] for k in keep), style=row.style)
    _print_at_least(console, table, _table_width(sizes.values()))
    left_out = [cols[i].header for i in range(len(cols)) if i not in keep]
    if left_out:
        console.print(
            Text(
                f"(left out to fit {width} columns: {', '.join(left_out)}; --wide shows every column)",
                style="dim",
            )
        )
    return left_out


def _print_at_least(console: Console, renderable: Table, width: int) -> None:
    """Print at the console's width, or at ``width`` where that is wider (nothing is cut to fit)."""
    if width <= console.width:
        console.print(renderable)
        return
    saved = console.width
    console.width = width
    try:
        console.print(renderable, crop=False)
    finally:
        console.width = saved
