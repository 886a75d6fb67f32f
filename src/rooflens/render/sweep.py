"""Sweep output: the summary table and files (CSV, Parquet). Selects and formats; computes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import RooflensError
from ..units import fmt_bytes, fmt_time
from .tables import columns, print_table


def write_frame(frame: Any, out: Path) -> None:
    suffix = out.suffix.lower()
    try:
        if suffix == ".csv":
            frame.to_csv(out, index=False)
        elif suffix == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            raise RooflensError(f"cannot write '{out.name}': use .csv or .parquet")
    except ImportError:
        raise RooflensError("Parquet needs pyarrow: pip install pyarrow (or write .csv)") from None
    except OSError as err:
        raise RooflensError(f"cannot write '{out}': {err.strerror or err}") from None


def print_sweep_summary(
    frame: Any, skipped: list, console: Console, top: int = 10, wide: bool = False
) -> None:
    fitting = frame[frame["fits"]]
    console.print(
        f"{len(frame):,} configurations, {len(fitting):,} fit in memory; {len(skipped)} combinations "
        "skipped" + (f" (e.g. {skipped[0][1]})" if skipped else ""),
        markup=False,
        highlight=False,
    )
    if fitting.empty:
        return
    best = fitting.sort_values("throughput_per_device", ascending=False).head(top)
    cols = columns(_SWEEP_HEADER, _SWEEP_DROP, "right")
    rows = [
        (
            row.hardware,
            str(row.devices),
            f"{row.w_bits}/{row.a_bits}/{row.kv_bits}",
            str(row.batch),
            str(row.prompt),
            str(row.gen),
            fmt_time(row.ttft_s),
            fmt_time(row.tpot_s) if row.tpot_s == row.tpot_s else "-",
            f"{row.throughput_per_device:,.0f}",
            fmt_bytes(row.total_bytes),
        )
        for row in best.itertuples()
    ]
    print_table(
        console, f"Highest throughput per device (ideal), top {len(best)} that fit", cols, rows, wide=wide
    )


_SWEEP_HEADER = ("Hardware", "Devices", "W/A/KV bits", "Batch", "Prompt", "Gen", "TTFT", "TPOT",
                 "Tokens/s/device", "Memory/device")  # fmt: skip
# How readily a column is left out of a narrow console (0: never; the highest numbers go first).
_SWEEP_DROP = {"Devices": 3, "Prompt": 4, "Gen": 5, "Memory/device": 2}
_PLAN_HEADER = ("#", "Hardware", "Devices", "Format", "KV", "Batch", "TTFT", "TPOT", "$/1M tokens", "J/token",
                "Tokens/s/device", "Memory/device", "Replicas")  # fmt: skip
_PLAN_DROP = {
    "#": 7,
    "KV": 4,
    "TTFT": 1,
    "J/token": 5,
    "Tokens/s/device": 3,
    "Memory/device": 6,
    "Replicas": 2,
}


def print_plan(plan: Any, console: Console, top: int = 10, wide: bool = False) -> None:
    entries = plan.entries.head(top)
    if len(entries):
        rows = [
            (
                str(i),
                row.hardware,
                str(row.devices),
                row.quant + (f" +{row.offload_weights:.0%} offloaded" if row.offload_weights else ""),
                row.kv_format,
                str(row.batch),
                fmt_time(row.ttft_s),
                fmt_time(row.tpot_s),
                f"{row.usd_per_million_tokens:.3g}",
                f"{row.joules_per_token:.3g}" if row.joules_per_token == row.joules_per_token else "-",
                f"{row.tokens_per_s_per_device:,.0f}",
                fmt_bytes(row.memory_per_device_bytes),
                "-" if row.replicas != row.replicas else f"{row.replicas:.0f}",
            )
            for i, row in enumerate(entries.itertuples(), 1)
        ]
        cols = columns(_PLAN_HEADER, _PLAN_DROP, "right")
        title = f"Cheapest set-ups that fit and meet the targets ({len(plan.entries)} in all)"
        print_table(console, title, cols, rows, wide=wide)
    for line in plan.explanation:
        console.print(line, markup=False, highlight=False)
    if plan.excluded:
        console.print(
            f"Left out, no price (add --price NAME=USD_PER_HOUR): {', '.join(plan.excluded)}",
            style="dim",
            markup=False,
            highlight=False,
        )
