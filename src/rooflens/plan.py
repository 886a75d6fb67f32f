"""Planning: the cheapest set-ups that fit and meet latency targets, ranked by dollars per million tokens.

``plan()`` sweeps hardware x tensor-parallel degree x quantization x batch for one workload (prompt and
generation lengths), keeps the configurations that fit in memory and meet the TTFT and TPOT targets,
and ranks them by cost per million generated tokens. Definitions:

- a configuration serves static batches of ``batch`` requests back to back on ``devices`` devices;
- ``ttft_s``: the batch's prefill (queueing not included; see the serving model for load);
- ``tpot_s``: mean time per generated token of one request (decode time / (gen - 1));
- ``usd_per_million_tokens``: device price x devices x batch time / generated tokens x 1e6;
- ``joules_per_token``: TDP x devices x batch time / generated tokens: the device drawing its TDP
  while it serves, an upper bound (memory-bound decode draws less);
- with ``rate`` (requests/s): ``replicas`` = copies of the set-up needed to keep up, and ``usd_per_hour``.

Times are the calibrated estimate where the device has one (else the ideal roofline); ``basis`` in
each entry says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .analysis import analyze
from .errors import RooflensError
from .hardware.catalog import HardwareLike, hardware_names, load_hardware
from .hardware.prices import bundled_prices
from .model.catalog import ModelLike, load_model
from .sweep import sweep
from .units import fmt_time

# Quantization choices a plan tries: (label, w_bits, a_bits).
QUANTS = {"w16a16": (16, 16), "w8a8": (8, 8), "w4a16": (4, 16)}
TP_DEGREES = (1, 2, 4, 8)
BATCHES = tuple(2**i for i in range(11))  # 1 .. 1024
ENTRY_FIELDS = (
    "hardware", "devices", "tp", "quant", "w_bits", "a_bits", "kv_bits", "batch", "ttft_s", "tpot_s",
    "usd_per_million_tokens", "joules_per_token", "tokens_per_s_per_device", "usd_per_hour_per_device",
    "memory_per_device_bytes", "replicas", "usd_per_hour", "basis",
)  # fmt: skip


@dataclass
class Plan:
    """Ranked configurations (cheapest first), why the winner wins, and what was left out."""

    entries: pd.DataFrame
    explanation: list[str]
    excluded: list[str] = field(default_factory=list)
    considered: int = 0
    candidates: pd.DataFrame | None = None  # every scored configuration that fits, passing or not

    def to_dict(self) -> dict[str, Any]:
        rows = self.entries.replace({np.nan: None}).to_dict(orient="records")
        return {
            "entries": rows,
            "explanation": self.explanation,
            "excluded": self.excluded,
            "configurations_considered": self.considered,
        }


def plan(
    model: ModelLike,
    *,
    prompt: int,
    gen: int,
    ttft: float,
    tpot: float,
    rate: float | None = None,
    hardware: Sequence[HardwareLike] | None = None,
    prices: dict[str, float] | None = None,
    quants: Sequence[str] = tuple(QUANTS),
    tp: Sequence[int] = TP_DEGREES,
    batches: Sequence[int] = BATCHES,
    kv_bits: int = 16,
    use_estimate: bool = True,
    every_batch: bool = False,
) -> Plan:
    """Configurations that fit and meet ``ttft`` and ``tpot`` (seconds), cheapest first.

    ``prices`` (device name -> USD per device-hour) override the bundled list; devices with no price
    are left out (and listed in ``excluded``). Each (hardware, tp, quantization) keeps its cheapest
    passing batch unless ``every_batch``.
    """
    if ttft <= 0 or tpot <= 0:
        raise RooflensError("latency targets must be positive (e.g. --ttft 0.5s --tpot 50ms)")
    if gen < 2:
        raise RooflensError("plan needs gen >= 2: TPOT is undefined without a decode step")
    if rate is not None and rate <= 0:
        raise RooflensError("--rate must be a positive number of requests per second")
    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise RooflensError(f"unknown quantization {unknown}; choose from {', '.join(QUANTS)}")
    spec = load_model(model)
    price = {**bundled_prices(), **(prices or {})}
    devices = [load_hardware(h) for h in (hardware or hardware_names())]
    excluded = [hw.name for hw in devices if hw.name not in price]
    devices = [hw for hw in devices if hw.name in price]
    if not devices:
        raise RooflensError("no device with a price to plan on; give --price NAME=USD_PER_HOUR")
    frames = []
    considered = 0
    for label in quants:
        w, a = QUANTS[label]
        result = sweep(
            spec, hardware=devices, tp=list(tp), w_bits=w, a_bits=a, kv_bits=kv_bits,
            batch=list(batches), prompt=prompt, gen=gen,
        )  # fmt: skip
        considered += len(result) + len(result.skipped)
        frame = result.to_frame()
        frame["quant"] = label
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    entries = _score(rows, price, use_estimate, rate)
    passing = entries[entries["fits"] & (entries["ttft_s"] <= ttft) & (entries["tpot_s"] <= tpot)]
    passing = passing.sort_values(["usd_per_million_tokens", "ttft_s"], kind="stable")
    if not every_batch:
        passing = passing.drop_duplicates(["hardware", "tp", "quant"], keep="first")
    explanation = (
        _explain(spec, passing, entries, ttft, tpot, prompt, gen, price)
        if len(passing)
        else [_why_none(entries, ttft, tpot)]
    )
    candidates = entries[entries["fits"]].assign(
        meets=lambda f: (f["ttft_s"] <= ttft) & (f["tpot_s"] <= tpot)
    )
    return Plan(
        passing[list(ENTRY_FIELDS)].reset_index(drop=True), explanation, excluded, considered, candidates
    )


def _score(
    rows: pd.DataFrame, price: dict[str, float], use_estimate: bool, rate: float | None
) -> pd.DataFrame:
    estimated = use_estimate & rows["total_estimate_s"].notna()
    out = rows.copy()
    out["basis"] = np.where(estimated, "estimate", "ideal")
    out["ttft_s"] = np.where(estimated, rows["ttft_estimate_s"], rows["ttft_s"])
    out["tpot_s"] = np.where(estimated, rows["tpot_estimate_s"], rows["tpot_s"])
    batch_time = np.where(estimated, rows["total_estimate_s"], rows["total_time_s"])
    tokens = rows["batch"] * rows["gen"]
    out["usd_per_hour_per_device"] = rows["hardware"].map(price)
    out["usd_per_million_tokens"] = (
        out["usd_per_hour_per_device"] / 3600 * rows["devices"] * batch_time / tokens * 1e6
    )
    out["joules_per_token"] = rows["tdp_watts"] * rows["devices"] * batch_time / tokens
    out["tokens_per_s_per_device"] = tokens / batch_time / rows["devices"]
    out["memory_per_device_bytes"] = rows["total_bytes"]
    if rate is None:
        out["replicas"] = np.nan
        out["usd_per_hour"] = np.nan
    else:
        requests_per_s = rows["batch"] / batch_time  # one replica, batches back to back
        out["replicas"] = np.ceil(rate / requests_per_s)
        out["usd_per_hour"] = out["replicas"] * rows["devices"] * out["usd_per_hour_per_device"]
    return out


def _explain(spec, passing, entries, ttft, tpot, prompt, gen, price) -> list[str]:
    best = passing.iloc[0]
    report = analyze(
        spec, best.hardware, batch=int(best.batch), prompt=prompt, gen=gen, tp=int(best.tp),
        w_bits=int(best.w_bits), a_bits=int(best.a_bits), kv_bits=int(best.kv_bits),
    )  # fmt: skip
    d = report.decode
    mem_share = d.memory_bound_time_s / d.time_s if d.time_s else 0.0
    lines = [
        f"Winner: {best.hardware} x{best.devices} (tp {best.tp}), {best.quant}, batch {best.batch}: "
        f"${best.usd_per_million_tokens:.3g} per million generated tokens, TTFT {fmt_time(best.ttft_s)} "
        f"(target {fmt_time(ttft)}), TPOT {fmt_time(best.tpot_s)} (target {fmt_time(tpot)}), "
        f"{best.basis} times.",
        f"Decode is {d.bound}-bound ({mem_share:.0%} of its ideal time in memory-bound operators): "
        + (
            "reading weights and KV cache sets the pace, so fewer bytes (lower bit widths) or more "
            "bandwidth per dollar help most."
            if d.bound == "memory"
            else "the math sets the pace, so peak FLOP/s per dollar matters most."
        ),
    ]
    same = entries[
        (entries["hardware"] == best.hardware) & (entries["tp"] == best.tp) & (entries["quant"] == best.quant)
    ]
    bigger = same[same["batch"] == best.batch * 2]
    if len(bigger):
        nxt = bigger.iloc[0]
        reasons = []
        if not nxt.fits:
            reasons.append(f"memory would not fit ({nxt.memory_per_device_bytes / 1e9:.1f} GB per device)")
        if nxt.ttft_s > ttft:
            reasons.append(f"TTFT would be {fmt_time(nxt.ttft_s)}")
        if nxt.tpot_s > tpot:
            reasons.append(f"TPOT would be {fmt_time(nxt.tpot_s)}")
        if reasons:
            lines.append(
                f"The batch stops at {best.batch}: at {best.batch * 2}, " + " and ".join(reasons) + "."
            )
        else:
            lines.append(
                f"Batch {best.batch * 2} also meets the targets but costs "
                f"${nxt.usd_per_million_tokens:.3g} per million tokens."
            )
    others = passing[passing["hardware"] != best.hardware]
    if len(others):
        runner = others.iloc[0]
        ratio = runner.usd_per_million_tokens / best.usd_per_million_tokens
        tie = price[runner.hardware] / ratio
        lines.append(
            f"Runner-up on other hardware: {runner.hardware} x{runner.devices}, {runner.quant}, batch "
            f"{runner.batch} at ${runner.usd_per_million_tokens:.3g} ({ratio - 1:.0%} more); it would tie "
            f"at ${tie:.3g} per device-hour instead of ${price[runner.hardware]:.3g}."
        )
    return lines


def _why_none(entries: pd.DataFrame, ttft: float, tpot: float) -> str:
    fits = entries[entries["fits"]]
    if fits.empty:
        return "No configuration fits in memory: add devices (--tp), quantize, or choose larger devices."
    best_ttft, best_tpot = fits["ttft_s"].min(), fits["tpot_s"].min()
    parts = []
    if best_ttft > ttft:
        parts.append(f"the fastest TTFT that fits is {fmt_time(best_ttft)} (target {fmt_time(ttft)})")
    if best_tpot > tpot:
        parts.append(f"the fastest TPOT that fits is {fmt_time(best_tpot)} (target {fmt_time(tpot)})")
    detail = "; ".join(parts) or "no single configuration meets both targets at once"
    return f"No configuration meets the targets: {detail}."
