"""Serving simulation output: one run's summary and a concurrency sweep's table. Selects and formats;
computes nothing."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ..units import fmt_time
from .tables import Col, cell, columns, print_table

DEFINITIONS = {
    "ttft": "arrival to first token",
    "ttft_scheduled": "admission to first token",
    "tpot": "(e2e - ttft) / (tokens - 1), per request",
    "itl": "gap between consecutive tokens",
    "e2e": "arrival to last token",
    "queue": "arrival to admission",
}
PERCENTILES = ("mean", "p50", "p90", "p95", "p99")
# How readily a column is left out of a narrow console (0: never; the highest numbers go first).
_PERCENTILE_DROP = {"mean": 3, "p90": 4, "p95": 5}
_SWEEP_HEADER = ("Concurrency", "Output tok/s/device", "Tok/s/user", "TTFT p50", "TTFT p99", "TPOT p50",
                 "E2E p50", "Requests/s")  # fmt: skip
_SWEEP_DROP = {"TTFT p99": 2, "E2E p50": 3, "Requests/s": 1}


def _time(value: float | None) -> str:
    return "-" if value is None else fmt_time(value)


def _rate(value: float | None, digits: str = ",.0f") -> str:
    return "-" if value is None else format(value, digits)


def _load(s: dict[str, Any]) -> str:
    if s["mode"] == "closed":
        return f"{s['requests']} requests from {s['concurrency']} closed-loop users"
    if s["mode"] == "capped":
        return (
            f"{s['requests']} requests arriving at {s['offered_rate']:g}/s, at most {s['concurrency']} in "
            "flight (a due request waits for a free slot)"
        )
    state = "SATURATED: the backlog grows" if s["saturated"] else "steady"
    achieved = "-" if s["achieved_rate"] is None else f"{s['achieved_rate']:.3g}/s"
    return (
        f"{s['requests']} requests offered at {s['offered_rate']:g}/s, completed at {achieved} "
        f"({state}; backlog {s['backlog_growth_per_s']:+.3g} requests/s)"
    )


def print_serving(summary: dict[str, Any], console: Console, wide: bool = False) -> None:
    s = summary
    engine = s["engine"] or "the device's default engine"
    console.print(
        f"{_load(s)}; scheduler of {engine}. {_rate(s['request_throughput'], '.3g')} requests/s; "
        f"{_rate(s['output_tokens_per_s'])} output tokens/s ({_rate(s['output_tokens_per_s_per_device'])} "
        f"per device over {s['devices']}, {_rate(s['tokens_per_s_per_user'], ',.1f')} per user); "
        f"{_rate(s['total_tokens_per_s'])} tokens/s with prompts; mean decode batch {s['mean_batch']:.1f}; "
        f"KV blocks {s['kv_blocks_per_instance']:,} per instance (room for about "
        f"{s['max_concurrent_by_kv']} requests of mean length), peak use {s['peak_kv_use']:.0%}; "
        f"{s['preemptions']} preemptions",
        markup=False,
        highlight=False,
    )
    cols = [Col("Metric"), Col("Definition", 2)]
    cols += columns(PERCENTILES, _PERCENTILE_DROP, "right")
    rows = [
        (
            key.upper() if key != "ttft_scheduled" else "TTFT (sched.)",
            cell(text, wrap=True),
            *(_time(s[key][p]) for p in PERCENTILES),
        )
        for key, text in DEFINITIONS.items()
    ]
    print_table(console, "Latency under load (seconds)", cols, rows, wide=wide)
    ranges = s.get("estimate_ranges")
    if ranges:
        ttft, tpot, tput = (
            ranges["ttft_p50_estimate_range_s"],
            ranges["tpot_p50_estimate_range_s"],
            ranges["throughput_estimate_range_tokens_per_s"],
        )
        parts = [
            f"TTFT p50 {_time(ttft[0])}-{_time(ttft[1])}" if ttft else "",
            f"TPOT p50 {_time(tpot[0])}-{_time(tpot[1])}" if tpot else "",
            f"output {_rate(tput[0])}-{_rate(tput[1])} tokens/s per device" if tput else "",
        ]
        flag = (
            "; EXTRAPOLATED (no measurement of this engine on this device)" if ranges["extrapolated"] else ""
        )
        console.print(
            f"p10-p90 ranges ({ranges['profile']}): " + ", ".join(p for p in parts if p) + flag,
            markup=False,
            highlight=False,
        )


def print_concurrency_sweep(rows: list[dict[str, Any]], console: Console, wide: bool = False) -> None:
    """One row per concurrency: throughput per device against per-user speed and latency."""
    cols = columns(_SWEEP_HEADER, _SWEEP_DROP, "right")
    cells = [
        (
            str(s["concurrency"]),
            _rate(s["output_tokens_per_s_per_device"]),
            _rate(s["tokens_per_s_per_user"], ",.1f"),
            _time(s["ttft"]["p50"]),
            _time(s["ttft"]["p99"]),
            _time(s["tpot"]["p50"]),
            _time(s["e2e"]["p50"]),
            _rate(s["request_throughput"], ".3g"),
        )
        for s in rows
    ]
    print_table(console, "Closed-loop concurrency sweep", cols, cells, wide=wide)
    if rows:
        engine = rows[0]["engine"] or "the device's default engine"
        console.print(
            f"{rows[0]['devices']} devices; scheduler of {engine}; {rows[0]['requests']} requests per point",
            markup=False,
            highlight=False,
        )
