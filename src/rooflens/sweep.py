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
from .roofline import Packed, pack, step_times

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
        parts = []
        shapes: dict = {} if memo is None else memo  # device-independent parts of each block
        for i, combo in enumerate(combos, 1):
            parts.append(_combo(spec, combo, batches, prompts, gens, base, stop, shapes))
            if progress is not None:
                progress(i * per_combo, total)
    for combo_blocks, combo_skipped in parts:
        blocks += combo_blocks
        skipped += combo_skipped
    if not blocks:
        reasons = "; ".join(sorted({r for _, r in skipped}))[:500]
        raise RooflensError(f"no configuration of this sweep can be analysed: {reasons}")
    columns = {k: np.concatenate([blk[k] for blk in blocks]) for k in COLUMNS}
    return SweepResult(columns, skipped)


def _combo(
    spec: ModelSpec,
    combo: tuple,
    batches: np.ndarray,
    prompts: np.ndarray,
    gens: np.ndarray,
    base: dict,
    stop: Callable[[dict[str, np.ndarray]], bool] | None = None,
    shapes: dict | None = None,
) -> tuple[list[dict[str, np.ndarray]], list[tuple[dict[str, Any], str]]]:
    """Every batch, prompt and generation length of one (device, parallelism, precision) combination."""
    hw, t, p, e, w, a, kv = combo
    blocks, skipped = [], []
    weights = None  # the same for every batch of this combination
    profile: Any = _UNRESOLVED  # likewise the engine's profile, resolved at the first batch
    for b in batches:
        bits = {k: v for k, v in (("w_bits", w), ("a_bits", a), ("kv_bits", kv)) if v is not None}
        point = {"hardware": hw.name, "tp": t, "pp": p, "ep": e, **bits}
        point["batch"] = int(b)
        try:
            settings = make_settings(
                **{**base, "tp": t, "pp": p, "ep": e, **bits},
                batch=int(b),
                prompt=int(prompts.max()),
                gen=int(gens.max()),
            )
            _check(spec, hw, settings)
            if profile is _UNRESOLVED:
                profile = resolve_profile(hw, settings.engine, spec.model_class)
            settings = engine_settings(settings, profile)
            if weights is None:
                weights = _weights(spec, settings, hw, shapes)
            block = _block(spec, hw, settings, prompts, gens, weights, profile, shapes)
            blocks.append(block)
        except RooflensError as err:
            skipped.append((point, str(err)))
            continue
        if stop is not None and stop(block):
            break  # a larger batch only takes longer and needs more memory: nothing further can pass
    return blocks, skipped


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
    pre_act = np.zeros(int(pi.max()) + 1)  # per prompt length
    for op in prefill_ops:
        pre_act = np.maximum(pre_act, np.broadcast_to(np.asarray(op.act_bytes, dtype=float), pre_act.shape))
    dec_act = np.zeros(n + 1)  # per context (those below the shortest prompt unused)
    for op in decode_ops:
        step = np.broadcast_to(np.asarray(op.act_bytes, dtype=float), ctx.shape)
        dec_act[lo:] = np.maximum(dec_act[lo:], step)
    act_peak = np.maximum(pre_act[pi], np.where(G > 1, _range_max(dec_act, P + 1, last), 0.0))
    return _Shape(
        pack(prefill_ops, len(p_ctx)),
        pack(decode_ops, len(ctx)),
        kv,
        float(state),
        residual + act_peak,
    )


def _grid(prompts: np.ndarray, gens: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every (prompt, gen) pair: the prompt, the generation, the prompt's index, the last decode context."""
    pi, gi = np.meshgrid(np.arange(len(prompts)), np.arange(len(gens)), indexing="ij")
    pi, gi = pi.ravel(), gi.ravel()
    P, G = prompts[pi], gens[gi]
    return P, G, pi, P + G - 1


def _block(
    spec: ModelSpec,
    hw: HardwareSpec,
    s,
    prompts: np.ndarray,
    gens: np.ndarray,
    weights: float,
    engine_profile: EfficiencyProfile | None,
    shapes: dict | None = None,
) -> dict[str, np.ndarray]:
    """All (prompt, gen) pairs of one structural configuration and batch; ``engine_profile`` is the
    engine's (used when the settings ask for the estimate).

    ``shapes`` memoises the device-independent part across devices whose layout (the executions) and
    settings are equal: a plan over many devices builds each set of operators once.
    """
    prec = precision_for(spec, s)
    layout = executions(spec, s, hw)
    key = (s, layout, prompts.tobytes(), gens.tobytes())
    shape = _memoised(shapes, key, lambda: _shape(spec, s, prompts, gens, layout))
    profile = engine_profile if s.estimate else None
    host = profile.host_cost(spec.model_type, spec.num_layers) if profile else None

    per_rank = math.ceil(s.batch / s.ep)  # sequences one device steps (attention is data-parallel)
    pre_ideal, pre_est = step_times(shape.prefill, hw, len(prompts), profile, host, per_rank)
    # Decode prefix sums by context (S[k]: steps at contexts lo..k) give any (prompt, gen) window.
    dec_ideal, dec_est = step_times(shape.decode, hw, shape.decode.steps, profile, host, per_rank)
    lo = int(prompts.min())
    ideal_sum = _prefix(dec_ideal, lo)
    est_sum = None if dec_est is None else _prefix(dec_est, lo)

    P, G, pi, last = _grid(prompts, gens)
    ttft = pre_ideal[pi]
    dec = ideal_sum[last] - ideal_sum[P]
    steps = G - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(steps > 0, dec / steps, np.nan)
    total_time = ttft + dec
    out: dict[str, np.ndarray] = {
        "ttft_s": ttft,
        "tpot_s": tpot,
        "decode_time_s": dec,
        "total_time_s": total_time,
        "throughput_tokens_per_s": s.batch * G / total_time,
        "throughput_per_device": s.batch * G / total_time / (s.tp * s.pp * s.ep),
    }
    if est_sum is not None and pre_est is not None:
        ttft_est = pre_est[pi]
        dec_est = est_sum[last] - est_sum[P]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["tpot_estimate_s"] = np.where(steps > 0, dec_est / steps, np.nan)
        out["ttft_estimate_s"] = ttft_est
        out["total_estimate_s"] = ttft_est + dec_est
        out["throughput_estimate_tokens_per_s"] = s.batch * G / (ttft_est + dec_est)
        out["throughput_estimate_per_device"] = out["throughput_estimate_tokens_per_s"] / (s.tp * s.pp * s.ep)
        # The p10-p90 range of each estimate (the profile's cross-validated factors).
        for key, category in (("ttft", "prefill"), ("tpot", "decode"), ("total", "end-to-end")):
            low, high = profile.time_range(out[f"{key}_estimate_s"], category)
            out[f"{key}_estimate_low_s"], out[f"{key}_estimate_high_s"] = low, high
        low, high = profile.rate_range(out["throughput_estimate_tokens_per_s"], "end-to-end")
        out["throughput_estimate_low_tokens_per_s"], out["throughput_estimate_high_tokens_per_s"] = low, high
    else:
        for k in COLUMNS:
            if "estimate" in k:
                out[k] = np.full(len(P), np.nan)
    out.update(_memory(hw, s, weights, shape, len(P)))
    size = len(P)
    out.update(
        {
            "model": np.full(size, spec.name, dtype=object),
            "hardware": np.full(size, hw.name, dtype=object),
            "devices": np.full(size, s.tp * s.pp * s.ep),
            "tp": np.full(size, s.tp),
            "pp": np.full(size, s.pp),
            "ep": np.full(size, s.ep),
            "w_bits": np.full(size, prec.w_bits),
            "a_bits": np.full(size, prec.a_bits),
            "kv_bits": np.full(size, prec.kv_bits),
            "batch": np.full(size, s.batch),
            "prompt": P,
            "gen": G,
            "tdp_watts": np.full(size, hw.tdp_watts if hw.tdp_watts else np.nan),
        }
    )
    return out


def _memory(hw: HardwareSpec, s, weights: float, shape: _Shape, size: int) -> dict[str, np.ndarray]:
    """Per-device memory of every (prompt, gen), as the single analysis computes it."""
    overhead, _ = runtime_overhead(hw, s.overhead_bytes)
    total = weights + shape.kv + shape.state + shape.act + overhead
    return {
        "weights_bytes": np.full(size, weights),
        "kv_cache_bytes": np.asarray(shape.kv, dtype=float),
        "state_bytes": np.full(size, shape.state),
        "activations_bytes": shape.act,
        "overhead_bytes": np.full(size, float(overhead)),
        "total_bytes": total,
        "capacity_bytes": np.full(size, hw.memory_bytes),
        "fits": total <= hw.memory_bytes,
        "max_batch": largest_batch(
            hw.memory_bytes,
            weights + overhead,
            shape.kv + shape.state + shape.act,
            math.ceil(s.batch / s.ep),
            s.ep,
        ),
    }


def _prefix(step: np.ndarray, lo: int) -> np.ndarray:
    """S[k] = the sum of the steps at contexts lo..k (``step`` starts at context lo); 0 below lo."""
    out = np.zeros(lo + len(step))
    out[lo:] = np.cumsum(step)
    return out


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo..hi]) for each pair (inclusive); hi < lo gives the value at hi (unused by callers)."""
    if np.all(np.diff(values[1:]) >= 0):  # the usual case: working sets grow with the context
        return values[hi]
    out = np.empty(len(lo))
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        out[i] = values[a : b + 1].max() if b >= a else values[b]
    return out
