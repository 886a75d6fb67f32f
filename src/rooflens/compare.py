"""Several analyses side by side: what a technique, a precision or a device changes, and where.

``compare(reports)`` lines up the headline figures (ideal and estimated TTFT/TPOT, throughput,
memory) and every operator's time per pass (decode: per generated token), each against the first
analysis, the baseline. Labels name what differs between the analyses (a model by its name: a config
file's ``_name_or_path``, else its folder), numbered where two would read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .report import Report

METRICS: tuple[tuple[str, str], ...] = (
    ("ttft_s", "TTFT (ideal)"),
    ("ttft_estimate_s", "TTFT (estimate)"),
    ("tpot_s", "TPOT (ideal)"),
    ("tpot_estimate_s", "TPOT (estimate)"),
    ("total_time_s", "End to end (ideal)"),
    ("throughput_tokens_per_s", "Throughput, tokens/s (ideal)"),
    ("weights_bytes", "Weights per device"),
    ("kv_cache_bytes", "KV cache per device"),
    ("state_bytes", "Recurrent state per device"),
    ("total_bytes", "Memory per device"),
    ("max_batch", "Largest batch that fits"),
    ("devices", "Devices"),
)


def _metric(report: Report, key: str) -> float | None:
    if key in ("weights_bytes", "kv_cache_bytes", "state_bytes", "total_bytes", "max_batch"):
        return float(getattr(report.memory, key))
    value = getattr(report, key)
    return None if value is None else float(value)


def labels(reports: list[Report]) -> list[str]:
    """Short names from what differs: the model, the device, and any setting that changes; a label
    that would repeat is numbered (``distinct``)."""
    keys = []
    models = [r.model for r in reports]
    # By name, or by contents where two configs share a name (two folders of one model, one changed).
    if len({m.name for m in models}) > 1 or any(m != models[0] for m in models[1:]):
        keys.append("model")
    if len({r.hardware.name for r in reports}) > 1:
        keys.append("hardware")
    dumps = [r.settings.model_dump() for r in reports]
    keys += [k for k in dumps[0] if len({repr(d[k]) for d in dumps}) > 1]
    out = []
    for r, d in zip(reports, dumps, strict=True):
        parts = []
        for k in keys:
            value = r.model.name if k == "model" else r.hardware.name if k == "hardware" else d[k]
            parts.append(f"{value}" if k in ("model", "hardware") else f"{k}={value}")
        out.append(", ".join(parts) or "same settings")
    return distinct(out)


def distinct(names: list[str]) -> list[str]:
    """Labels made unique: each one that repeats gets its place among its namesakes (``#1``, ``#2``),
    so two configs that name the same model (or two identical analyses) stay apart in every table."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name} #{seen[name]}"
        out.append(name)
    return out


@dataclass
class Comparison:
    reports: list[Report]
    names: list[str]

    @property
    def baseline(self) -> Report:
        return self.reports[0]

    def metric_rows(self) -> list[dict[str, Any]]:
        """One row per headline figure: the value of each analysis and its ratio to the baseline."""
        rows = []
        for key, title in METRICS:
            values = [_metric(r, key) for r in self.reports]
            if key == "state_bytes" and not any(values):  # only models with recurrent layers have one
                continue
            base = values[0]
            rows.append(
                {
                    "metric": key,
                    "title": title,
                    "values": values,
                    "ratio_to_first": [None if v is None or not base else v / base for v in values],
                }
            )
        return rows

    def op_rows(self, phase: str) -> list[dict[str, Any]]:
        """Each operator's time per pass (decode: per generated token) in every analysis."""
        names: dict[str, None] = {}  # every op name, in order of first appearance
        per_report = []
        for r in self.reports:
            scale = r.decode_tokens if phase == "decode" else 1
            times: dict[str, float] = {}
            for op in getattr(r, phase).ops:
                names.setdefault(op.name, None)
                times[op.name] = times.get(op.name, 0.0) + (op.time_s / scale if scale else 0.0)
            per_report.append(times)
        rows = []
        for name in names:
            values = [times.get(name) for times in per_report]
            base = values[0]
            rows.append(
                {
                    "op": name,
                    "values": values,
                    "ratio_to_first": [None if v is None or not base else v / base for v in values],
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "analyses": [
                {"label": n, **r.to_dict(timeline=False)}
                for n, r in zip(self.names, self.reports, strict=True)
            ],
            "metrics": self.metric_rows(),
            "ops": {"prefill": self.op_rows("prefill"), "decode": self.op_rows("decode")},
        }


def compare(reports: list[Report], names: list[str] | None = None) -> Comparison:
    """Line up two or more reports; the first is the baseline."""
    from .errors import RooflensError

    if len(reports) < 2:
        raise RooflensError("compare needs at least two analyses")
    if names is not None and len(names) != len(reports):
        raise RooflensError(f"{len(names)} labels for {len(reports)} analyses")
    if names is not None and len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise RooflensError(f"labels must differ; repeated: {', '.join(repeated)}")
    return Comparison(list(reports), names or labels(list(reports)))
