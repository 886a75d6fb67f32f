"""Output formats for a Report: rich table, markdown, CSV (per-op rows) and JSON (the contract)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..report import OP_COLUMNS, Report
from .views import (
    OP_HEADER,
    SUMMARY_HEADER,
    header_lines,
    headline_lines,
    memory_rows,
    op_sections,
    phase_title,
    summary_rows,
)

FORMATS = ("table", "json", "csv", "markdown")


def to_json(data: Any, indent: int | None = 2) -> str:
    return json.dumps(data, indent=indent, allow_nan=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def report_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(OP_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.op_rows())
    return buf.getvalue()


def rows_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()} for r in rows
        )
    return buf.getvalue()


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: Report, per_layer: bool = False) -> str:
    parts = ["## rooflens analysis", "", *[f"- {line}" for line in header_lines(report)], ""]
    parts += [_md_table(SUMMARY_HEADER, summary_rows(report)), ""]
    parts += [f"- {line}" for line in headline_lines(report)] + [""]
    parts += ["### Memory", "", _md_table(("Part", "Bytes"), memory_rows(report)), ""]
    for phase in report.phases():
        if not phase.steps:
            continue
        parts += [f"### {phase_title(phase)}", ""]
        rows: list[tuple[str, ...]] = []
        for section in op_sections(report, phase, per_layer):
            rows.append((f"**{section.title}**",) + ("",) * (len(OP_HEADER) - 1))
            rows += section.rows
        parts += [_md_table(OP_HEADER, rows), ""]
    if report.notes:
        parts += ["### Notes", "", *[f"- {n}" for n in report.notes], ""]
    return "\n".join(parts)


def print_report(report: Report, console: Console, per_layer: bool = False) -> None:
    for line in header_lines(report):
        console.print(line, markup=False, highlight=False)
    summary = Table(*SUMMARY_HEADER, title="Phases (ideal roofline)", title_justify="left")
    for row in summary_rows(report):
        summary.add_row(*row)
    console.print(summary)
    for line in headline_lines(report):
        console.print(line, markup=False, highlight=False)
    memory = Table("Memory", "Bytes", title="Memory footprint", title_justify="left")
    for part, value in memory_rows(report):
        memory.add_row(part, value, style="bold red" if value == "NO" else None)
    console.print(memory)
    for phase in report.phases():
        if not phase.steps:
            continue
        table = Table(*OP_HEADER, title=phase_title(phase), title_justify="left")
        for section in op_sections(report, phase, per_layer):
            table.add_section()
            table.add_row(Text(section.title, style="bold"))
            for row in section.rows:
                table.add_row(*row, style="cyan" if row[7] == "compute" else None)
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", style="yellow", markup=False, highlight=False)


def print_rows(
    rows: list[dict[str, Any]], columns: list[tuple[str, str]], console: Console, title: str
) -> None:
    """A catalog listing: ``columns`` pairs a display header with an already-formatted field."""
    table = Table(*[h for h, _ in columns], title=title, title_justify="left")
    for row in rows:
        table.add_row(*[str(row.get(key, "")) for _, key in columns])
    console.print(table)
