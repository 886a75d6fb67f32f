"""Tables for ``rooflens validate``: real runs and published measurements against rooflens."""

from __future__ import annotations

from rich.console import Console

from ..units import fmt_time
from .tables import Col, Row, cell, print_table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


def _cell(pred: float | None, err: float | None) -> str:
    return "-" if pred is None else f"{fmt_time(pred)} ({_pct(err)})"


# How readily a column is left out of a narrow console (0: never; the highest numbers go first).
_RUN_COLS = [Col("Model"), Col("Workload"), Col("TTFT measured"), Col("ideal (err)", 2),
             Col("estimate (err)"), Col("TPOT measured"), Col("ideal (err)", 1),
             Col("estimate (err)")]  # fmt: skip
_PUBLISHED_COLS = [Col("Phase"), Col("Engine"), Col("Rows", 3), Col("Devices", 4),
                   Col("Ideal: median error", 2), Col("Ideal: median |error|", 1),
                   Col("Estimate: median |error|"), Col("Estimate: p90 |error|", 5),
                   Col("p10-p90 covers", 6)]  # fmt: skip
# A row: its run (engine, device, model) and workload (batch or concurrency C, prompt p, generation g,
# precision) as wrapping cells, so the table fits 80 columns; --wide shows the id, ideal and range too.
_ROW_COLS = [Col("Id", 3), Col("Run"), Col("Workload"), Col("Metric"), Col("Measured"), Col("Ideal (err)", 2),
             Col("Estimate (err)"), Col("Range", 1)]  # fmt: skip


def print_runs(rows, console: Console, wide: bool = False) -> None:
    """One row per model x workload: measured, ideal and estimate for TTFT and TPOT."""
    cells = []
    for r in rows:
        e = r.errors
        cells.append(
            (
                r.model,
                f"b{r.batch} p{r.prompt} g{r.gen}",
                fmt_time(r.measured_ttft_s),
                _cell(r.ideal_ttft_s, e["ttft_ideal"]),
                _cell(r.estimate_ttft_s, e["ttft_estimate"]),
                fmt_time(r.measured_tpot_s),
                _cell(r.ideal_tpot_s, e["tpot_ideal"]),
                _cell(r.estimate_tpot_s, e["tpot_estimate"]),
            )
        )
    title = "Measured vs rooflens (error = predicted / measured - 1)"
    print_table(console, title, _RUN_COLS, cells, wide=wide)
    sources = sorted({r.estimate_source for r in rows if r.estimate_source})
    for source in sources:
        console.print(f"estimate: {source}", markup=False, highlight=False)
    for r in rows:
        if not r.ops:
            continue
        title = f"{r.model} b{r.batch} p{r.prompt} g{r.gen}: per pass (decode: per step), PyTorch profiler"
        cols = [Col("Phase"), Col("Op"), Col("Measured"), Col("Ideal"), Col("Estimate")]
        ops = [
            (
                o["phase"],
                o["op"],
                fmt_time(o["measured_s"]),
                fmt_time(o["ideal_s"]),
                fmt_time(o["estimate_s"]),
            )
            for o in r.ops
        ]
        print_table(console, title, cols, ops, wide=wide)


def print_published(summary: list[dict], console: Console, split: str, wide: bool = False) -> None:
    rows = [
        Row(
            (
                line["category"],
                line["engine"],
                str(line["rows"]),
                str(line["devices"]),
                _pct(line["ideal_median_error"]),
                f"{line['ideal_median_abs_error']:.0%}",
                "-"
                if line["estimate_median_abs_error"] is None
                else f"{line['estimate_median_abs_error']:.1%}",
                "-" if line["estimate_p90_abs_error"] is None else f"{line['estimate_p90_abs_error']:.0%}",
                "-" if line["range_coverage"] is None else f"{line['range_coverage']:.0%}",
            ),
            style="bold" if line["engine"] == "all engines" else None,
        )
        for line in summary
    ]
    title = f"Published measurements, {split} split (error of predicted time)"
    print_table(console, title, _PUBLISHED_COLS, rows, wide=wide)


def print_published_rows(results, console: Console, wide: bool = False) -> None:
    rows = []
    for r in results:
        row = r.row
        sequences = f"b{row.batch}" if row.batch is not None else f"C={row.concurrency or '-'}"
        if row.simulated:  # predicted by simulating the run: its requests sent
            sequences += f" N={row.requests} simulated"
        rows.append(
            (
                row.id,
                cell(f"{row.engine} {row.hardware} {row.model}", wrap=True),
                cell(f"{sequences} p{row.prompt} g{row.gen} {row.precision}", wrap=True),
                cell(row.metric.replace("_", " "), wrap=True),
                fmt_time(r.measured_s),
                cell(_cell(r.ideal_s, r.ideal_error), wrap=True),
                cell(_cell(r.estimate_s, r.estimate_error), wrap=True),
                "-"
                if r.low_s is None
                else f"{fmt_time(r.low_s)}-{fmt_time(r.high_s)}"
                + (" extrapolated" if r.extrapolated else ""),
            )
        )
    print_table(console, "Rows", _ROW_COLS, rows, wide=wide)
