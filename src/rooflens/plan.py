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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .analysis import analyze
from .errors import RooflensError
from .formats import kv_lookup, lookup
from .hardware.catalog import HardwareLike, hardware_by_name, hardware_names, load_hardware
from .hardware.prices import bundled_prices
from .hardware.spec import HardwareSpec
from .model.catalog import ModelLike, load_model
from .sweep import sweep
from .units import fmt_time

# Formats a plan tries by default (names of rooflens.formats: 16-bit, FP8 and INT8 W8A8, INT4
# weight-only, NVFP4 W4A4), and KV-cache formats.
QUANTS = ("w16a16", "fp8", "w8a8", "w4a16", "nvfp4")
KV_FORMATS = ("bf16", "fp8")
TP_DEGREES = (1, 2, 4, 8)
BATCHES = tuple(2**i for i in range(11))  # 1 .. 1024
OFFLOAD_SHARES = (0.0, 0.25, 0.5, 0.75)  # weight shares tried with allow_offload
# Generated tokens that double a configuration's share of a search's time (its decode steps; measured
# on this repository's benchmark machine: 120 configurations take 1.5-2x as long at 4,096 generated
# tokens as at 256: benchmarks/bench_bounds.py).
GEN_PER_UNIT = 4096
ENTRY_FIELDS = (
    "hardware", "devices", "tp", "pp", "ep", "quant", "kv_format", "offload_weights", "w_bits", "a_bits",
    "kv_bits", "batch", "ttft_s", "tpot_s", "ttft_low_s", "ttft_high_s", "tpot_low_s", "tpot_high_s",
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
        for row in rows:  # each estimate's p10-p90 range as [low, high] (None on the ideal basis)
            for key in ("ttft", "tpot"):
                low, high = row.pop(f"{key}_low_s"), row.pop(f"{key}_high_s")
                row[f"{key}_estimate_range_s"] = None if low is None else [low, high]
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
    quants: Sequence[str] = QUANTS,
    tp: Sequence[int] = TP_DEGREES,
    pp: Sequence[int] = (1,),
    ep: Sequence[int] = (1,),
    batches: Sequence[int] = BATCHES,
    kv_formats: Sequence[str] = KV_FORMATS,
    allow_offload: bool = False,
    use_estimate: bool = True,
    every_batch: bool = False,
) -> Plan:
    """Configurations that fit and meet ``ttft`` and ``tpot`` (seconds), cheapest first.

    ``prices`` (device name -> USD per device-hour) override the bundled list; devices with no price
    are left out (and listed in ``excluded``). Each (hardware, tp, quantization) keeps its cheapest
    passing batch unless ``every_batch``.
    """
    if not all(_positive(t) for t in (ttft, tpot)):
        raise RooflensError(
            f"latency targets are positive, finite seconds (e.g. --ttft 0.5s --tpot 50ms); got ttft "
            f"{str(ttft)[:20]}, tpot {str(tpot)[:20]}"
        )
    if gen < 2:
        raise RooflensError("plan needs gen >= 2: TPOT is undefined without a decode step")
    if rate is not None and not _positive(rate):
        raise RooflensError(
            f"--rate must be a positive, finite number of requests per second, got {str(rate)[:20]}"
        )
    quants, kv_formats, tp = _distinct(quants, kv_formats, tp)
    spec = load_model(model)
    devices, excluded, price = _priced(hardware, prices)
    parts: list[dict[str, np.ndarray]] = []  # the columns of every sweep
    considered = 0
    offloads = OFFLOAD_SHARES if allow_offload else (0.0,)

    def missed(block: dict[str, np.ndarray]) -> bool:
        """A batch that cannot fit or meet the targets: no larger one can either (exact pruning)."""
        estimated = use_estimate and not np.isnan(block["ttft_estimate_s"]).any()
        t1 = block["ttft_estimate_s"] if estimated else block["ttft_s"]
        t2 = block["tpot_estimate_s"] if estimated else block["tpot_s"]
        return bool((~block["fits"] | (t1 > ttft) | (t2 > tpot)).all())

    eps = [e for e in ep if e == 1 or spec.num_experts]
    efficiencies: dict = {}  # each (profile, operator class): shared by every sweep below
    refusals: dict[str, None] = {}  # why set-ups could not run, each once, in order
    for label in quants:
        for kv in kv_formats:
            for share in offloads:
                extra = {"offload_weights": share} if share else {}
                # Operators built once per (tp, batch) and placed on every device.
                memo: dict = {"efficiencies": efficiencies}
                # Tensor parallelism stays inside each device's scale-up domain (its NVLink/ICI group):
                # one sweep per set of allowed degrees, over every device with that set.
                by_tps: dict[tuple[int, ...], list] = {}
                for hw in devices:
                    domain = hw.scale_up_domain or 8
                    tps = tuple(t for t in tp if t <= domain)
                    if tps and not (share and hw.host_link is None):
                        by_tps.setdefault(tps, []).append(hw)
                for tps, group in by_tps.items():
                    try:
                        result = sweep(
                            spec, hardware=group, tp=list(tps), pp=list(pp), ep=eps, quant=label,
                            kv_format=kv, batch=list(batches), prompt=prompt, gen=gen, stop=missed,
                            memo=memo, **extra,
                        )  # fmt: skip
                    except RooflensError as err:  # this set-up cannot run; the others may
                        refusals.setdefault(str(err), None)
                        continue
                    considered += len(result) + len(result.skipped)
                    size = len(result)
                    result.columns["quant"] = np.full(size, label, dtype=object)
                    result.columns["kv_format"] = np.full(size, kv, dtype=object)
                    result.columns["offload_weights"] = np.full(size, share)
                    parts.append(result.columns)
    if not parts:
        reasons = list(refusals) or [
            "no TP degree fits within a device's scale-up domain (or, offloading, a device lists no "
            "host link)"
        ]
        raise RooflensError(
            "no configuration of this plan can be analysed on the chosen devices: "
            + "; ".join(reasons[:3])
            + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else "")
        )
    rows = pd.DataFrame({k: np.concatenate([part[k] for part in parts]) for k in parts[0]})
    entries = _score(rows, price, use_estimate, rate)
    passing = entries[entries["fits"] & (entries["ttft_s"] <= ttft) & (entries["tpot_s"] <= tpot)]
    passing = passing.sort_values(["usd_per_million_tokens", "ttft_s"], kind="stable")
    if not every_batch:
        passing = passing.drop_duplicates(["hardware", "tp", "pp", "ep", "quant", "kv_format"], keep="first")
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


def _priced(
    hardware: Sequence[HardwareLike] | None, prices: dict[str, float] | None
) -> tuple[list[HardwareSpec], list[str], dict[str, float]]:
    """The devices a plan searches (those with a price), the names left out for want of one, and
    the prices (the bundled list, overridden by ``prices``)."""
    devices = list({hw.name: hw for hw in map(load_hardware, hardware or hardware_names())}.values())
    price = {**bundled_prices(), **_price_names(prices or {}, devices)}
    excluded = [hw.name for hw in devices if hw.name not in price]
    devices = [hw for hw in devices if hw.name in price]
    if not devices:
        raise RooflensError(
            "no device with a price to plan on; give one its USD per device-hour (--price NAME=USD, "
            "or `prices` in Python and the web API)"
        )
    return devices, excluded, price


def _positive(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < math.inf


def _distinct(
    quants: Sequence[str], kv_formats: Sequence[str], tp: Sequence[int]
) -> tuple[list[str], list[str], list[int]]:
    """The formats and TP degrees a plan tries, each once: a repeat, or a second name of one format
    ('FP8' beside 'fp8'), would search it twice. An unknown format is refused with the known ones."""

    def first_of(names: Sequence, key) -> list:  # the first name given for each key, in order
        kept: dict = {}
        for name in names:
            kept.setdefault(key(name), name)
        return list(kept.values())

    return (
        first_of(quants, lambda n: lookup(n).name),
        first_of(kv_formats, lambda n: kv_lookup(n).name),
        list(dict.fromkeys(tp)),
    )


def _price_names(prices: dict[str, float], devices: list[HardwareSpec]) -> dict[str, float]:
    """``prices`` by the devices' own names: a catalog alias ('h100') becomes the name it stands for
    ('h100-sxm'); a name that is neither a planned device nor in the catalog is refused, not ignored
    (its price would silently not apply). Each price is a positive, finite USD per device-hour."""
    planned = {hw.name for hw in devices}
    out: dict[str, float] = {}
    for name, usd in prices.items():
        if not _positive(usd):
            raise RooflensError(f"the price of {name!r} must be a positive USD per device-hour, got {usd!r}")
        if name not in planned:
            try:
                name = hardware_by_name(name).name
            except RooflensError as err:
                raise RooflensError(f"prices: {err}") from None
        out[name] = float(usd)
    return out


def search_size(
    *,
    gen: int,
    hardware: Sequence[HardwareLike] | None = None,
    prices: dict[str, float] | None = None,
    quants: Sequence[str] = QUANTS,
    tp: Sequence[int] = TP_DEGREES,
    kv_formats: Sequence[str] = KV_FORMATS,
    allow_offload: bool = False,
) -> tuple[int, float]:
    """A plan's search before it runs: its configurations (priced devices x formats x KV formats x
    TP degrees x offload shares) and its work, each configuration weighted by its decode length
    (1 + gen / GEN_PER_UNIT). Servers cap the work per request (``rooflens.web``)."""
    devices, _, _ = _priced(hardware, prices)
    shares = len(OFFLOAD_SHARES) if allow_offload else 1
    quants, kv_formats, tp = _distinct(quants, kv_formats, tp)
    configurations = len(devices) * len(quants) * len(kv_formats) * len(tp) * shares
    return configurations, configurations * (1 + gen / GEN_PER_UNIT)


def _score(
    rows: pd.DataFrame, price: dict[str, float], use_estimate: bool, rate: float | None
) -> pd.DataFrame:
    estimated = use_estimate & rows["total_estimate_s"].notna()
    out = rows.copy()
    out["basis"] = np.where(estimated, "estimate", "ideal")
    out["ttft_s"] = np.where(estimated, rows["ttft_estimate_s"], rows["ttft_s"])
    out["tpot_s"] = np.where(estimated, rows["tpot_estimate_s"], rows["tpot_s"])
    for key in ("ttft", "tpot"):  # the estimate's p10-p90 range; none on the ideal basis
        for end in ("low", "high"):
            out[f"{key}_{end}_s"] = np.where(estimated, rows[f"{key}_estimate_{end}_s"], np.nan)
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
        spec, best.hardware, batch=int(best.batch), prompt=prompt, gen=gen, tp=int(best.tp), pp=int(best.pp),
        ep=int(best.ep), quant=best.quant, kv_format=best.kv_format,
        **({"offload_weights": float(best.offload_weights)} if best.offload_weights else {}),
    )  # fmt: skip
    d = report.decode
    mem_share = d.memory_bound_time_s / d.time_s if d.time_s else 0.0
    lines = [
        f"Winner: {best.hardware} x{best.devices} (tp {best.tp}), {best.quant} "
        f"({lookup(best.quant).description}), KV cache {best.kv_format}, batch {best.batch}: "
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
        (entries["hardware"] == best.hardware)
        & (entries["tp"] == best.tp)
        & (entries["quant"] == best.quant)
        & (entries["kv_format"] == best.kv_format)
        & (entries["offload_weights"] == best.offload_weights)
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
