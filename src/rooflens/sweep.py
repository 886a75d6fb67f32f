"""Sweeps: many analyses at once, evaluated with NumPy arrays instead of one analysis per configuration.

A configuration is (hardware, tp, pp, ep, w_bits, a_bits, kv_bits, batch, prompt, gen). Everything but
the last two fixes the operators; prompt and generation length only move them along the context.
So, for each of the other combinations, the sweep builds the operators once:

- prefill with the prompt as an array (one roofline evaluation gives the TTFT of every prompt length);
- one decode step for every context from min(prompt) to max(prompt) + max(gen) - 1, whose prefix sums
  give the decode time of any (prompt, gen) as ``S[prompt + gen - 1] - S[prompt]`` (the steps attend
  to contexts prompt + 1 ... prompt + gen - 1, exactly as a single analysis does);
- the KV cache and activation peak as arrays over (prompt, gen).

Results equal ``rooflens.analyze`` configuration by configuration (tests/test_sweep.py) to rounding.
Settings whose effect depends on the prompt itself (prompt compression, shared prefixes, speculative
decoding) are refused here: analyse those one by one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from .analysis import _check, engine_settings, executions, make_settings, precision_for, with_formats
from .errors import RooflensError
from .hardware.catalog import HardwareLike, load_hardware
from .hardware.efficiency import EfficiencyProfile
from .hardware.spec import HardwareSpec, resolve_profile
from .memory import (
    kv_cache_bytes,
    largest_batch,
    resident_weight_bytes,
    residual_bytes,
    runtime_overhead,
    state_bytes,
)
from .model.catalog import ModelLike, load_model
from .model.spec import ModelSpec
from .ops.base import Pass
from .ops.model import build_ops
from .roofline import Packed, device_step_times, pack

STRUCTURAL = ("hardware", "tp", "pp", "ep", "w_bits", "a_bits", "kv_bits", "batch")
COLUMNS = (
    "model", "hardware", "devices", "tp", "pp", "ep", "w_bits", "a_bits", "kv_bits", "batch", "prompt", "gen",
    "ttft_s", "tpot_s", "decode_time_s", "total_time_s", "throughput_tokens_per_s", "throughput_per_device",
    "ttft_estimate_s", "tpot_estimate_s", "total_estimate_s", "throughput_estimate_tokens_per_s",
    "throughput_estimate_per_device", "ttft_estimate_low_s", "ttft_estimate_high_s", "tpot_estimate_low_s",
    "tpot_estimate_high_s", "total_estimate_low_s", "total_estimate_high_s",
    "throughput_estimate_low_tokens_per_s", "throughput_estimate_high_tokens_per_s", "weights_bytes",
    "kv_cache_bytes", "state_bytes", "activations_bytes", "overhead_bytes", "total_bytes", "capacity_bytes",
    "fits", "max_batch", "tdp_watts",
)  # fmt: skip
_UNRESOLVED = object()  # an engine profile not looked up yet (None is "no profile")
# Settings a sweep cannot vectorise: their effect depends on the prompt itself.
PER_PROMPT = {"prompt_keep": 1.0, "shared_prefix": 0, "draft_model": None, "spec_heads": None}


@dataclass
class SweepResult:
    """Columns of equal length, one row per configuration; ``skipped`` lists impossible combinations."""

    columns: dict[str, np.ndarray]
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["ttft_s"])

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.columns, columns=list(COLUMNS))


def _values(name: str, given: Any) -> list:
    values = list(given) if isinstance(given, Iterable) and not isinstance(given, str) else [given]
    if not values:
        raise RooflensError(f"sweep axis '{name}' is empty")
    return values


def _positive_ints(name: str, values: Sequence) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" or (arr < 1).any():
        raise RooflensError(f"sweep axis '{name}' takes positive integers, got {list(values)[:5]}")
    return np.unique(arr.astype(np.int64))


def sweep(
    model: ModelLike,
    *,
    hardware: HardwareLike | Sequence[HardwareLike] = "h100-sxm",
    batch: int | Sequence[int] = 1,
    prompt: int | Sequence[int] = 1024,
    gen: int | Sequence[int] = 128,
    w_bits: int | Sequence[int] | None = None,
    a_bits: int | Sequence[int] | None = None,
    kv_bits: int | Sequence[int] | None = None,
    tp: int | Sequence[int] = 1,
    pp: int | Sequence[int] = 1,
    ep: int | Sequence[int] = 1,
    quant: str | None = None,
    kv_format: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    backend: str = "local",
    scheduler: Any = None,
    stop: Callable[[dict[str, np.ndarray]], bool] | None = None,
    memo: dict | None = None,
    **fixed: Any,
) -> SweepResult:
    """Every combination of the given axes (each a value or a list), with ``fixed`` settings for all.

    Bit widths left out (None) are the ``quant`` preset's, else the checkpoint's own format, else 16:
    as in ``rooflens.analyze``.
    ``progress(done, total)`` is called after each block of configurations (local backend).
    ``backend="dask"`` spreads the (device, parallelism, precision) combinations over Dask tasks
    (``pip install 'rooflens[distributed]'``); ``scheduler`` is handed to ``dask.compute`` ("threads",
    "processes", "synchronous", or a ``dask.distributed.Client`` for a cluster). Rows come back in the
    same order as the local path, with the same values. ``stop(block)``, given, ends a combination's
    batches at the first block it returns True for (``plan`` stops once a batch misses its targets:
    time and memory only grow with the batch). ``memo``, a dict the caller keeps, carries the
    device-independent operators and memory of each block to later calls (``plan`` shares one across
    the devices of a format); without it they are shared within this call.
    """
    if backend not in ("local", "dask"):
        raise RooflensError(f"unknown sweep backend '{backend}'; use 'local' or 'dask'")
    for key, neutral in PER_PROMPT.items():
        if fixed.get(key, neutral) != neutral:
            raise RooflensError(f"a sweep cannot vary per prompt with {key}; use rooflens.analyze for it")
    spec = load_model(model)
    hws = [load_hardware(h) for h in _values("hardware", hardware)]
    prompts = _positive_ints("prompt", _values("prompt", prompt))
    gens = _positive_ints("gen", _values("gen", gen))
    batches = _positive_ints("batch", _values("batch", batch))
    base = with_formats(dict(fixed), quant, kv_format)
    combos = list(
        itertools.product(
            hws,
            _values("tp", tp),
            _values("pp", pp),
            _values("ep", ep),
            _values("w_bits", w_bits),
            _values("a_bits", a_bits),
            _values("kv_bits", kv_bits),
        )
    )
    per_combo = len(batches) * len(prompts) * len(gens)
    total = len(combos) * per_combo
    blocks: list[dict[str, np.ndarray]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    if backend == "dask":
        try:
            import dask
        except ImportError:
            raise RooflensError("backend='dask' needs Dask: pip install 'rooflens[distributed]'") from None
        tasks = [dask.delayed(_combo)(spec, combo, batches, prompts, gens, base) for combo in combos]
        parts = dask.compute(*tasks, scheduler=scheduler)
    else:
        # Combinations that differ only in the device run together, batch by batch: each block's
        # operators are built once and placed on all of their devices in one array evaluation.
        parts = [([], [])] * len(combos)
        shapes: dict = {} if memo is None else memo  # device-independent parts of each block
        groups: dict[tuple, list[int]] = {}
        for i, combo in enumerate(combos):
            groups.setdefault(combo[1:], []).append(i)
        done = 0
        for rest, members in groups.items():
            devices = [combos[i][0] for i in members]
            results = _devices_combo(spec, devices, rest, batches, prompts, gens, base, stop, shapes)
            for i, result in zip(members, results, strict=True):
                parts[i] = result
                done += 1
                if progress is not None:
                    progress(done * per_combo, total)
    for combo_blocks, combo_skipped in parts:
        blocks += combo_blocks
        skipped += combo_skipped
    if not blocks:
        reasons = "; ".join(sorted({r for _, r in skipped}))[:500]
        raise RooflensError(f"no configuration of this sweep can be analysed: {reasons}")
    columns = {k: np.concatenate([blk[k] for blk in blocks]) for k in COLUMNS}
    return SweepResult(columns, skipped)


def _combo(
    spec: ModelSpec, combo: tuple, batches: np.ndarray, prompts: np.ndarray, gens: np.ndarray, base: dict
) -> tuple[list[dict[str, np.ndarray]], list[tuple[dict[str, Any], str]]]:
    """Every batch, prompt and generation length of one (device, parallelism, precision) combination:
    one Dask task (the local path runs devices together, ``_devices_combo``)."""
    return _devices_combo(spec, [combo[0]], combo[1:], batches, prompts, gens, base)[0]


def _devices_combo(
    spec: ModelSpec,
    hws: list[HardwareSpec],
    rest: tuple,
    batches: np.ndarray,
    prompts: np.ndarray,
    gens: np.ndarray,
    base: dict,
    stop: Callable[[dict[str, np.ndarray]], bool] | None = None,
    shapes: dict | None = None,
) -> list[tuple[list[dict[str, np.ndarray]], list[tuple[dict[str, Any], str]]]]:
    """``_combo`` for each device of ``hws`` with the same parallelism and precision ``rest``: the
    blocks and skipped points of each, as ``_combo`` gives them one device at a time."""
    t, p, e, w, a, kv = rest
    bits = {k: v for k, v in (("w_bits", w), ("a_bits", a), ("kv_bits", kv)) if v is not None}
    n = len(hws)
    out: list[tuple[list, list]] = [([], []) for _ in hws]
    weights: list[float | None] = [None] * n  # the same for every batch of a device
    profiles: list[Any] = [_UNRESOLVED] * n  # likewise its engine's profile, resolved at its first batch
    alive = list(range(n))  # devices whose batches have not been stopped
    for b in batches:
        where = {"tp": t, "pp": p, "ep": e, **bits, "batch": int(b)}  # a skipped point, after its device
        try:
            settings = make_settings(
                **{**base, "tp": t, "pp": p, "ep": e, **bits},
                batch=int(b),
                prompt=int(prompts.max()),
                gen=int(gens.max()),
            )
        except RooflensError as err:
            for d in alive:
                out[d][1].append(({"hardware": hws[d].name, **where}, str(err)))
            continue
        ready: dict[tuple, list[int]] = {}  # devices by (their engine's settings, layout)
        for d in alive:
            hw = hws[d]
            try:
                _check(spec, hw, settings)
                if profiles[d] is _UNRESOLVED:
                    profiles[d] = resolve_profile(hw, settings.engine, spec.model_class)
                own = engine_settings(settings, profiles[d])
                if weights[d] is None:
                    weights[d] = _weights(spec, own, hw, shapes)
                # The layout depends on the device through its scale-up domain alone.
                layout = _memoised(
                    shapes, ("layout", own, hw.scale_up_domain), partial(executions, spec, own, hw)
                )
                ready.setdefault((own, layout), []).append(d)
            except RooflensError as err:
                out[d][1].append(({"hardware": hws[d].name, **where}, str(err)))
        stopped = set()
        for (own, layout), members in ready.items():
            try:
                blocks = _blocks(
                    spec, [hws[d] for d in members], own, layout, prompts, gens,
                    [weights[d] for d in members], [profiles[d] for d in members], shapes,
                )  # fmt: skip
            except RooflensError as err:
                for d in members:
                    out[d][1].append(({"hardware": hws[d].name, **where}, str(err)))
                continue
            for d, block in zip(members, blocks, strict=True):
                out[d][0].append(block)
                if stop is not None and stop(block):
                    stopped.add(d)  # a larger batch only takes longer and needs more memory
        alive = [d for d in alive if d not in stopped]
        if not alive:
            break
    return out


def _weights(spec: ModelSpec, s, hw: HardwareSpec, shapes: dict | None) -> float:
    """Resident weight bytes per device (memoised in ``shapes`` by precision and layout)."""
    prec, layout = precision_for(spec, s), executions(spec, s, hw)[0]
    return _memoised(shapes, ("weights", prec, layout), lambda: resident_weight_bytes(spec, prec, layout))


def _memoised(memo: dict | None, key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept in ``memo`` under ``key`` (and taken from it) when a memo is given."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


@dataclass
class _Shape:
    """What a block's numbers need that no device property changes: the operators of both phases
    (packed) and the per-device cache, state and activation bytes of every (prompt, gen)."""

    prefill: Packed
    decode: Packed
    kv: np.ndarray
    state: float
    act: np.ndarray


def _shape(spec: ModelSpec, s, prompts: np.ndarray, gens: np.ndarray, executions_) -> _Shape:
    from .memory import CacheShape

    prec = precision_for(spec, s)
    base, prefill_ex, decode_ex = executions_
    flags = dict(kv_cache=s.kv_cache, flash_attention=s.flash_attention)
    # Prefill: one "step" per prompt length.
    p_ctx = prompts.astype(float)
    prefill_ops = build_ops(spec, prec, Pass(s.batch, p_ctx, p_ctx, **flags), prefill_ex)
    # Decode: one step for every context from the shortest prompt to the longest run.
    lo, n = int(prompts.min()), int(prompts.max() + gens.max() - 1)
    ctx = np.arange(lo, n + 1, dtype=float)
    q = 1.0 if s.kv_cache else ctx
    decode_ops = build_ops(spec, prec, Pass(s.batch, q, ctx, **flags), decode_ex)

    P, G, pi, last = _grid(prompts, gens)
    kv = kv_cache_bytes(spec, prec, CacheShape(s.batch, P, G), base) if s.kv_cache else np.zeros(len(P))
    kv = np.broadcast_to(np.asarray(kv, dtype=float), P.shape)
    state = state_bytes(spec, prec, s.batch, base) if s.kv_cache else 0.0
    residual = residual_bytes(spec, prec, math.ceil(s.batch / s.ep), P, G, s.kv_cache)
    # The largest single-op working set: prefill at this prompt, decode over this generation.
    pre_act = _largest_act(prefill_ops, len(p_ctx))  # per prompt length
    dec_act = _largest_act(decode_ops, len(ctx))  # per context from the shortest prompt
    act_peak = np.maximum(pre_act[pi], np.where(G > 1, _range_max(dec_act, P + 1 - lo, last - lo), 0.0))
    return _Shape(
        pack(prefill_ops, len(p_ctx)),
        pack(decode_ops, len(ctx)),
        kv,
        float(state),
        residual + act_peak,
    )


def _largest_act(ops: list, steps: int) -> np.ndarray:
    """The largest single-op working set (activation bytes) at each of ``steps`` steps."""
    out = np.zeros(steps)
    for op in ops:
        act = op.act_bytes
        if np.ndim(act) == 0:
            out = np.maximum(out, float(act))
        else:
            np.maximum(out, act, out=out)
    return out


def _grid(prompts: np.ndarray, gens: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every (prompt, gen) pair: the prompt, the generation, the prompt's index, the last decode context."""
    pi, gi = np.meshgrid(np.arange(len(prompts)), np.arange(len(gens)), indexing="ij")
    pi, gi = pi.ravel(), gi.ravel()
    P, G = prompts[pi], gens[gi]
    return P, G, pi, P + G - 1


def _blocks(
    spec: ModelSpec,
    hws: list[HardwareSpec],
    s,
    layout: tuple,
    prompts: np.ndarray,
    gens: np.ndarray,
    weights: list[float],
    engine_profiles: list[EfficiencyProfile | None],
    shapes: dict | None = None,
) -> list[dict[str, np.ndarray]]:
    """All (prompt, gen) pairs of one structural configuration and batch on each device of ``hws``
    (which share the settings and the ``layout``, ``executions(spec, s, hw)``); ``engine_profiles``
    are the devices' engines' (used when the settings ask for the estimate).

    ``shapes`` memoises the device-independent part across calls: a plan over many devices builds
    each set of operators once.
    """
    prec = precision_for(spec, s)
    key = (s, layout, prompts.tobytes(), gens.tobytes())
    shape = _memoised(shapes, key, lambda: _shape(spec, s, prompts, gens, layout))
    profiles = [profile if s.estimate else None for profile in engine_profiles]
    hosts = [p.host_cost(spec.model_type, spec.num_layers) if p else None for p in profiles]

    per_rank = math.ceil(s.batch / s.ep)  # sequences one device steps (attention is data-parallel)
    effs = None if shapes is None else shapes.setdefault("efficiencies", {})
    pre_ideal, pre_est = device_step_times(shape.prefill, hws, profiles, hosts, per_rank, effs)
    # Decode prefix sums (S[j]: the first j steps, from context lo) give any (prompt, gen) window.
    dec_ideal, dec_est = device_step_times(shape.decode, hws, profiles, hosts, per_rank, effs)
    lo = int(prompts.min())
    ideal_sum = _prefix(dec_ideal)

    P, G, pi, last = _grid(prompts, gens)
    n, size = len(hws), len(P)
    devices = s.tp * s.pp * s.ep
    steps = G - 1
    # Every column as (devices, pairs); each device's block is its row.
    first, end = P - lo + 1, last - lo + 1  # each pair's decode steps: prefix sums end - first
    ttft = pre_ideal[:, pi]
    dec = ideal_sum[:, end] - ideal_sum[:, first]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(steps > 0, dec / steps, np.nan)
    total_time = ttft + dec
    cols: dict[str, np.ndarray] = {
        "ttft_s": ttft,
        "tpot_s": tpot,
        "decode_time_s": dec,
        "total_time_s": total_time,
        "throughput_tokens_per_s": s.batch * G / total_time,
        "throughput_per_device": s.batch * G / total_time / devices,
    }
    cols.update({k: np.full((n, size), np.nan) for k in COLUMNS if "estimate" in k})
    estimated = [i for i in range(n) if profiles[i] is not None and pre_est[i] is not None]
    if estimated:
        est_sum = _prefix(np.stack([dec_est[i] for i in estimated]))
        ttft_est = np.stack([pre_est[i] for i in estimated])[:, pi]
        decode_est = est_sum[:, end] - est_sum[:, first]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["tpot_estimate_s"][estimated] = np.where(steps > 0, decode_est / steps, np.nan)
        cols["ttft_estimate_s"][estimated] = ttft_est
        cols["total_estimate_s"][estimated] = ttft_est + decode_est
        rate = s.batch * G / (ttft_est + decode_est)
        cols["throughput_estimate_tokens_per_s"][estimated] = rate
        cols["throughput_estimate_per_device"][estimated] = rate / devices
        # The p10-p90 range of each estimate (each profile's cross-validated factors).
        for j, i in enumerate(estimated):
            for name, category in (("ttft", "prefill"), ("tpot", "decode"), ("total", "end-to-end")):
                low, high = profiles[i].time_range(cols[f"{name}_estimate_s"][i], category)
                cols[f"{name}_estimate_low_s"][i], cols[f"{name}_estimate_high_s"][i] = low, high
            low, high = profiles[i].rate_range(rate[j], "end-to-end")
            cols["throughput_estimate_low_tokens_per_s"][i] = low
            cols["throughput_estimate_high_tokens_per_s"][i] = high
    cols.update(_memory(hws, s, weights, shape, size))

    def each(value: Any, dtype: Any = None) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n, size))

    cols.update(
        {
            "model": each(spec.name, object),
            "hardware": each(np.array([hw.name for hw in hws], dtype=object)[:, None]),
            "devices": each(devices),
            "tp": each(s.tp),
            "pp": each(s.pp),
            "ep": each(s.ep),
            "w_bits": each(prec.w_bits),
            "a_bits": each(prec.a_bits),
            "kv_bits": each(prec.kv_bits),
            "batch": each(s.batch),
            "prompt": each(P),
            "gen": each(G),
            "tdp_watts": each(np.array([hw.tdp_watts or np.nan for hw in hws], dtype=float)[:, None]),
        }
    )
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def _memory(
    hws: list[HardwareSpec], s, weights: list[float], shape: _Shape, size: int
) -> dict[str, np.ndarray]:
    """Per-device memory of every (prompt, gen) on each device, (devices, pairs), as the single
    analysis computes it."""
    n = len(hws)
    overhead = np.array([runtime_overhead(hw, s.overhead_bytes)[0] for hw in hws], dtype=float)[:, None]
    resident = np.asarray(weights, dtype=float)[:, None]
    capacity = np.array([hw.memory_bytes for hw in hws], dtype=float)[:, None]
    per_batch = shape.kv + shape.state + shape.act
    total = resident + per_batch + overhead
    return {
        "weights_bytes": np.broadcast_to(resident, (n, size)),
        "kv_cache_bytes": np.broadcast_to(np.asarray(shape.kv, dtype=float), (n, size)),
        "state_bytes": np.full((n, size), shape.state),
        "activations_bytes": np.broadcast_to(shape.act, (n, size)),
        "overhead_bytes": np.broadcast_to(overhead, (n, size)),
        "total_bytes": total,
        "capacity_bytes": np.broadcast_to(capacity, (n, size)),
        "fits": total <= capacity,
        "max_batch": largest_batch(capacity, resident + overhead, per_batch, math.ceil(s.batch / s.ep), s.ep),
    }


def _prefix(step: np.ndarray) -> np.ndarray:
    """S[..., j] = the sum of the first j steps along the last axis (decode steps start at the
    shortest prompt's context, lo: the steps at contexts a+1 .. b sum to S[b-lo+1] - S[a-lo+1])."""
    out = np.zeros((*step.shape[:-1], step.shape[-1] + 1))
    out[..., 1:] = np.cumsum(step, axis=-1)
    return out


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo..hi]) for each pair (inclusive); hi < lo gives the value at hi (unused by callers)."""
    if np.all(np.diff(values[1:]) >= 0):  # the usual case: working sets grow with the context
        return values[hi]
    out = np.empty(len(lo))
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        out[i] = values[a : b + 1].max() if b >= a else values[b]
    return out
