"""Tables for ``rooflens validate``: real runs and published measurements against rooflens."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..units import fmt_time


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


def _cell(pred: float | None, err: float | None) -> str:
    return "-" if pred is None else f"{fmt_time(pred)} ({_pct(err)})"


def print_runs(rows, console: Console) -> None:
    """One row per model x workload: measured, ideal and estimate for TTFT and TPOT."""
    table = Table(
        "Model",
        "Workload",
        "TTFT measured",
        "ideal (err)",
        "estimate (err)",
        "TPOT measured",
        "ideal (err)",
        "estimate (err)",
        title="Measured vs rooflens (error = predicted / measured - 1)",
        title_justify="left",
    )
    for r in rows:
        e = r.errors
        table.add_row(
            r.model,
            f"b{r.batch} p{r.prompt} g{r.gen}",
            fmt_time(r.measured_ttft_s),
            _cell(r.ideal_ttft_s, e["ttft_ideal"]),
            _cell(r.estimate_ttft_s, e["ttft_estimate"]),
            fmt_time(r.measured_tpot_s),
            _cell(r.ideal_tpot_s, e["tpot_ideal"]),
            _cell(r.estimate_tpot_s, e["tpot_estimate"]),
        )
    console.print(table)
    sources = sorted({r.estimate_source for r in rows if r.estimate_source})
    for source in sources:
        console.print(f"estimate: {source}", markup=False, highlight=False)
    for r in rows:
        if not r.ops:
            continue
        ops = Table(
            "Phase",
            "Op",
            "Measured",
            "Ideal",
            "Estimate",
            title=f"{r.model} b{r.batch} p{r.prompt} g{r.gen}: per pass (decode: per step), PyTorch profiler",
            title_justify="left",
        )
        for o in r.ops:
            ops.add_row(
                o["phase"],
                o["op"],
                fmt_time(o["measured_s"]),
                fmt_time(o["ideal_s"]),
                fmt_time(o["estimate_s"]),
            )
        console.print(ops)


def print_published(summary: list[dict], console: Console, split: str) -> None:
    table = Table(
        "Phase",
        "Engine",
        "Rows",
        "Devices",
        "Ideal: median error",
        "Ideal: median |error|",
        "Estimate: median |error|",
        "Estimate: p90 |error|",
        "p10-p90 covers",
        title=f"Published measurements, {split} split (error of predicted time)",
        title_justify="left",
    )
    for line in summary:
        table.add_row(
            line["category"],
            line["engine"],
            str(line["rows"]),
            str(line["devices"]),
            _pct(line["ideal_median_error"]),
            f"{line['ideal_median_abs_error']:.0%}",
            "-" if line["estimate_median_abs_error"] is None else f"{line['estimate_median_abs_error']:.1%}",
            "-" if line["estimate_p90_abs_error"] is None else f"{line['estimate_p90_abs_error']:.0%}",
            "-" if line["range_coverage"] is None else f"{line['range_coverage']:.0%}",
            style="bold" if line["engine"] == "all engines" else None,
        )
    console.print(table)


def print_published_rows(results, console: Console) -> None:
    table = Table(
        "Id",
        "Engine",
        "Hardware",
        "Model",
        "Precision",
        "Batch",
        "Prompt",
        "Gen",
        "Metric",
        "Measured",
        "Ideal (err)",
        "Estimate (err)",
        "Range",
        title="Rows",
        title_justify="left",
    )
    for r in results:
        row = r.row
        table.add_row(
            row.id,
            row.engine,
            row.hardware,
            row.model,
            row.precision,
            str(row.batch if row.batch is not None else f"C={row.concurrency or '-'}"),
            str(row.prompt),
            str(row.gen),
            row.metric,
            fmt_time(r.measured_s),
            _cell(r.ideal_s, r.ideal_error),
            _cell(r.estimate_s, r.estimate_error),
            "-"
            if r.low_s is None
            else f"{fmt_time(r.low_s)}-{fmt_time(r.high_s)}" + (" extrapolated" if r.extrapolated else ""),
        )
    console.print(table)
