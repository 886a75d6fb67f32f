"""Tables for ``rooflens compare``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..compare import Comparison
from ..units import fmt_bytes, fmt_time


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


def print_comparison(cmp: Comparison, console: Console, ops: bool = True) -> None:
    for i, name in enumerate(cmp.names):
        console.print(f"[{chr(65 + i)}] {name}", markup=False, highlight=False)
    columns = [chr(65 + i) for i in range(len(cmp.reports))]
    table = Table(
        "Figure", *columns, *[f"{c} / A" for c in columns[1:]], title="Side by side", title_justify="left"
    )
    for row in cmp.metric_rows():
        values = [_value(row["metric"], v) for v in row["values"]]
        table.add_row(row["title"], *values, *[_change(r) for r in row["ratio_to_first"][1:]])
    console.print(table)
    if not ops:
        return
    for phase, title in (("prefill", "Prefill, per pass"), ("decode", "Decode, per generated token")):
        op_table = Table(
            "Op", *columns, *[f"{c} / A" for c in columns[1:]], title=title, title_justify="left"
        )
        for row in cmp.op_rows(phase):
            op_table.add_row(
                row["op"],
                *[fmt_time(v) for v in row["values"]],
                *[_change(r) for r in row["ratio_to_first"][1:]],
            )
        console.print(op_table)
