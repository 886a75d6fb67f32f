"""Output formats for a Report: rich table, markdown, CSV (per-op rows) and JSON (the contract)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console

from ..report import OP_COLUMNS, Report
from .tables import Col, Row, cell, columns, print_table
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


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of ``outer_inner`` keys (a summary's ``ttft.p50`` is ``ttft_p50``),
    for CSV."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


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


# How readily each column is left out of a narrow console (0: never; the highest numbers go first).
_SUMMARY_DROP = {"FLOPs": 4, "Bytes": 3, "Estimate": 1, "Bound": 2, "Compute-bound share": 5}
_OP_DROP = {"×": 5, "FLOP": 6, "Weight B": 8, "Act B": 9, "KV B": 7, "FLOP/B": 4, "Bound": 3, "Estimate": 1,
            "Share": 2}  # fmt: skip


# Catalog listings (rooflens models, rooflens hardware), by header.
MODEL_DROP = {"Type": 3, "Layers": 2, "Hidden": 5, "Heads/KV": 6, "FFN": 7, "Vocab": 8, "Context": 1,
              "Hugging Face id": 4}  # fmt: skip
HARDWARE_DROP = {"Device": 5, "16-bit peak": 1, "8/4-bit peaks": 4, "Ridge FLOP/B": 2, "TDP": 3}
FORMAT_DROP = {"Also": 2, "Bits": 1}


def print_report(report: Report, console: Console, per_layer: bool = False, wide: bool = False) -> None:
    for line in header_lines(report):
        console.print(line, markup=False, highlight=False)
    print_table(
        console,
        "Phases (ideal roofline)",
        columns(SUMMARY_HEADER, _SUMMARY_DROP),
        summary_rows(report),
        wide=wide,
    )
    for line in headline_lines(report):
        console.print(line, markup=False, highlight=False)
    memory = [
        Row((cell(part, wrap=True), value), style="bold red" if value == "NO" else None)
        for part, value in memory_rows(report)
    ]
    print_table(console, "Memory footprint", [Col("Memory"), Col("Bytes")], memory, wide=wide)
    for phase in report.phases():
        if not phase.steps:
            continue
        rows = []
        for section in op_sections(report, phase, per_layer):
            rows.append(Row((cell(section.title, style="bold", wrap=True),), section=True))
            rows += [Row(row, style="cyan" if row[7] == "compute" else None) for row in section.rows]
        print_table(console, phase_title(phase), columns(OP_HEADER, _OP_DROP), rows, wide=wide)
    for note in report.notes:
        console.print(f"note: {note}", style="yellow", markup=False, highlight=False)


def fit_lines(options: list[Any]) -> list[str]:
    """``fits_with``'s ways out as the command-line options that apply them, one line each."""
    lines = []
    for o in options:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in o.change.items())
        lines.append(
            f"fits with {flags}: {o.total_bytes / 1e9:.1f} of {o.capacity_bytes / 1e9:.1f} GB per device"
        )
    return lines


def print_rows(
    rows: list[dict[str, Any]],
    fields: list[tuple[str, str]],
    console: Console,
    title: str,
    drop: dict[str, int] | None = None,
    wide: bool = False,
) -> None:
    """A catalog listing: ``fields`` pairs a display header with an already-formatted field; ``drop``
    says how readily a header's column is left out of a narrow console (see ``tables.Col``)."""
    cols = columns([h for h, _ in fields], drop)
    print_table(
        console, title, cols, [[str(row.get(key, "")) for _, key in fields] for row in rows], wide=wide
    )
