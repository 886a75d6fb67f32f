"""Tables for ``rooflens compare``."""

from __future__ import annotations

from rich.console import Console

from ..compare import Comparison
from ..units import fmt_bytes, fmt_time
from .tables import Col, cell, print_table


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.startswith("throughput"):  # before the "_s" suffix test: tokens_per_s is a rate
        return f"{value:,.1f}"
    if key.endswith("_s"):
        return fmt_time(value)
    if key.endswith("bytes"):
        return fmt_bytes(value)
    return f"{value:,.0f}"


def _change(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return "same" if abs(ratio - 1) < 5e-4 else f"{ratio:.2f}x"


def print_comparison(cmp: Comparison, console: Console, ops: bool = True, wide: bool = False) -> None:
    for i, name in enumerate(cmp.names):
        console.print(f"[{chr(65 + i)}] {name}", markup=False, highlight=False)
    columns = [chr(65 + i) for i in range(len(cmp.reports))]
    # A narrow console loses the ratio columns (rightmost first) before any analysis' own column.
    ratios = [Col(f"{c} / A", 1) for c in columns[1:]]
    rows = [
        (
            cell(row["title"], wrap=True),
            *[_value(row["metric"], v) for v in row["values"]],
            *[_change(r) for r in row["ratio_to_first"][1:]],
        )
        for row in cmp.metric_rows()
    ]
    fits = [r.memory.fits for r in cmp.reports]
    rows.append(
        (cell("Fits in memory", wrap=True), *["yes" if f else "NO" for f in fits], *["" for _ in fits[1:]])
    )
    print_table(console, "Side by side", [Col("Figure"), *map(Col, columns), *ratios], rows, wide=wide)
    # Each analysis's notes (a note every analysis shares, once): what the table cannot say.
    shared = set.intersection(*(set(r.notes) for r in cmp.reports))
    for note in dict.fromkeys(n for n in cmp.reports[0].notes if n in shared):
        console.print(f"note (all): {note}", style="yellow", markup=False, highlight=False)
    for column, report in zip(columns, cmp.reports, strict=True):
        for note in report.notes:
            if note not in shared:
                console.print(f"note [{column}]: {note}", style="yellow", markup=False, highlight=False)
    if not ops:
        return
    for phase, title in (("prefill", "Prefill, per pass"), ("decode", "Decode, per generated token")):
        rows = [
            (
                row["op"],
                *[fmt_time(v) for v in row["values"]],
                *[_change(r) for r in row["ratio_to_first"][1:]],
            )
            for row in cmp.op_rows(phase)
        ]
        print_table(console, title, [Col("Op"), *map(Col, columns), *ratios], rows, wide=wide)
