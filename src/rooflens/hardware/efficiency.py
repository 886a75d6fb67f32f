"""Achievable-efficiency profiles: how far real kernels fall short of the ideal roofline.

The calibrated estimate of one operator occurrence is

    estimate = ideal / eff_kind(T) + op_overhead_s

where ``ideal = max(flops / peak, bytes / bandwidth)`` is the roofline time, ``T`` the number of
tokens in the pass (batch x new tokens per sequence: 1 per sequence in decode, the prompt in prefill)
and ``eff_kind`` the fraction of the ideal speed reached by that kind of operator ("matmul",
"attention" or "vector" for norms, element-wise ops and lookups, or a table of the operator's own
implementation class when the profile measured one: "rmsnorm", "rope", "act:silu:gated", ...), read
from a table over ``T`` with linear interpolation in log T and clamped at its ends; matmuls may also
depend on their reduction dimension K. Each forward pass also pays ``step_overhead_s``
once (framework work outside the operators). The ideal bound is always reported;
the estimate stands beside it and names the profile (engine and source) it came from.

When the profile measured the model's family (``frameworks``: the fixed cost of a decoder layer and
of a pass, from tiny models of that family), that host cost replaces the per-operator overheads.
With ``overlap`` (engines that launch GPU kernels asynchronously), host costs run while the device
works: a step then costs ``max(device time, host time)``, and an operator's own estimate is its
device time alone.

Profiles come from measurements only: ``rooflens calibrate`` (micro-benchmarks of the machine it runs
on) or published end-to-end results (the calibration split of ``validation/published.csv``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache, cached_property
from importlib import resources
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("matmul", "attention", "vector")
MIN_EFFICIENCY = 1e-4  # a factor below this is a typo (0.01% of peak), and would overflow times
MAX_COST_S = 10.0  # fixed costs: real ones are microseconds to milliseconds
MAX_GRID = 256  # points in a token or context grid
# What EfficiencyProfile.efficiency reads.
_EFFICIENCY_FIELDS = {
    "tokens", "matmul", "matmul_by_inner", "attention", "vector", "classes", "attention_context",
    "attention_by_context", "low_precision",
}  # fmt: skip


def _efficient(v: float) -> bool:
    return MIN_EFFICIENCY <= v <= 10


class EfficiencyProfile(BaseModel):
    """Measured efficiency of one engine (software stack) on one device, or across devices.

    Bounds: efficiencies in [MIN_EFFICIENCY, 10], fixed costs in [0, MAX_COST_S] seconds, no NaN or
    infinity anywhere (a profile may come from a user's file or a posted device spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    engine: str = Field(min_length=1)
    source: str = Field(min_length=1, description="where the factors came from")
    tokens: list[float] = Field(
        default=[1.0], min_length=1, max_length=MAX_GRID, description="grid of tokens per pass"
    )
    matmul: list[float] = Field(
        min_length=1, max_length=MAX_GRID, description="fraction of ideal speed, per grid point"
    )
    matmul_by_inner: dict[int, list[float]] = Field(
        default_factory=dict, description="matmul tables per reduction dimension K (log-interpolated in K)"
    )
    attention: list[float] | None = None  # None: as matmul
    vector: list[float] | None = None  # None: as matmul
    classes: dict[str, list[float]] = Field(
        default_factory=dict,
        description="tables per implementation class (rmsnorm, rope, act:silu:gated, ...)",
    )
    op_overhead_s: float = Field(0.0, ge=0, le=MAX_COST_S)
    op_overheads: dict[str, float] = Field(
        default_factory=dict, description="per implementation class; else op_overhead_s"
    )
    step_overhead_s: float = Field(0.0, ge=0, le=MAX_COST_S)
    seq_overhead_s: float = Field(
        0.0,
        ge=0,
        le=MAX_COST_S,
        description="host/scheduler cost per sequence in a step (batch bookkeeping, sampling)",
    )
    attention_context: list[float] = Field(
        default=[512.0, 32768.0],
        min_length=1,
        max_length=MAX_GRID,
        description="grid of attended context lengths",
    )
    attention_by_context: list[float] | None = Field(
        None, description="attention efficiency factor per attention_context point (None: 1)"
    )
    low_precision: dict[str, float] = Field(
        default_factory=dict, description="matmul efficiency factor for math in a low-bit dtype (fp8, fp4...)"
    )
    comm_efficiency: float = Field(1.0, gt=0, le=1, description="share of link bandwidth collectives reach")
    comm_latency_s: float = Field(
        0.0, ge=0, le=MAX_COST_S, description="fixed cost per collective message step, beyond the link's"
    )
    request_overhead_s: float = Field(
        0.0,
        ge=0,
        le=10,
        description="fixed time per served request outside the device (API server, tokenization, "
        "streaming): in a served request's TTFT and end-to-end latency, not in the engine's own steps",
    )
    frameworks: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="measured fixed host cost per model family: {model_type: {layer_s, pass_s}}",
    )
    overlap: bool = Field(
        False,
        description="asynchronous launch (CUDA): a step costs max(device time, launch time), not their sum",
    )
    scope: str = Field("", description="what it was fitted on: a device, a vendor generation, an engine...")
    extrapolated: bool = Field(False, description="the engine had no calibration measurement on this device")
    versions: list[str] = Field(
        default_factory=list, description="engine versions among its calibration rows"
    )
    version: str = Field("", description="the engine version asked for ('' when none was named)")
    model_classes: list[str] = Field(
        default_factory=list,
        description="model classes (dense, MoE, MLA) of its calibration rows on this device "
        "(empty: not recorded)",
    )
    intervals: dict[str, list[float]] = Field(
        default_factory=dict,
        description="p10/p90 of measured/estimated time per kind of figure (prefill, decode, end-to-end, "
        "throughput), from cross-validated residuals: the estimate's range is [estimate*lo, estimate*hi]",
    )

    @model_validator(mode="after")
    def _check(self) -> EfficiencyProfile:
        n = len(self.tokens)
        if any(t <= 0 for t in self.tokens) or sorted(self.tokens) != list(self.tokens):
            raise ValueError("tokens must be positive and increasing")
        for kind in KINDS:
            values = getattr(self, kind)
            if values is None:
                continue
            if len(values) != n:
                raise ValueError(f"{kind} needs one efficiency per tokens entry ({n}), got {len(values)}")
            if not all(map(_efficient, values)):
                raise ValueError(f"{kind} efficiencies must be in [{MIN_EFFICIENCY:g}, 10]")
        for name, values in {
            **self.classes,
            **{f"matmul K={k}": v for k, v in self.matmul_by_inner.items()},
        }.items():
            if len(values) != n or not all(map(_efficient, values)):
                raise ValueError(f"class table '{name}' needs {n} efficiencies in [{MIN_EFFICIENCY:g}, 10]")
        if any(not 0 <= v <= MAX_COST_S for v in self.op_overheads.values()):
            raise ValueError(f"op_overheads must be in [0, {MAX_COST_S:g}] seconds")
        for family, costs in self.frameworks.items():
            if any(not 0 <= v <= MAX_COST_S for v in costs.values()):
                raise ValueError(f"frameworks.{family} costs must be in [0, {MAX_COST_S:g}] seconds")
        if any(t > 1e9 for t in self.tokens):
            raise ValueError("tokens grid points must be at most 1e9")
        ctx = self.attention_context
        if any(c <= 0 for c in ctx) or sorted(ctx) != list(ctx):
            raise ValueError("attention_context must be positive and increasing")
        if self.attention_by_context is not None and (
            len(self.attention_by_context) != len(ctx) or not all(map(_efficient, self.attention_by_context))
        ):
            raise ValueError(f"attention_by_context needs {len(ctx)} factors in [{MIN_EFFICIENCY:g}, 10]")
        if not all(map(_efficient, self.low_precision.values())):
            raise ValueError(f"low_precision factors must be in [{MIN_EFFICIENCY:g}, 10]")
        if any(len(v) != 2 or not 0 < v[0] <= v[1] < 1e3 for v in self.intervals.values()):
            raise ValueError("intervals are [low, high] ratios with 0 < low <= high < 1000")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> EfficiencyProfile:
        """A copy; its ``efficiency_key`` is worked out again (the update may change the tables)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("efficiency_key", None)
        return copy

    @cached_property
    def efficiency_key(self) -> str:
        """Everything ``efficiency`` reads, as one value: profiles with equal keys give equal
        efficiencies (a sweep reuses one profile's tables on every device that shares them)."""
        return self.model_dump_json(include=_EFFICIENCY_FIELDS)

    def host_cost(self, model_type: str, layers: int) -> float | None:
        """Fixed host cost of one forward pass of a ``model_type`` model, if the profile measured the
        family (then it replaces the per-operator overheads and ``step_overhead_s``)."""
        family = self.frameworks.get(model_type)
        if family is None:
            return None
        return family.get("pass_s", 0.0) + layers * family.get("layer_s", 0.0)

    def overhead(self, impl: str) -> float:
        """Fixed cost of one occurrence of an operator of implementation class ``impl``."""
        return self.op_overheads.get(impl, self.op_overhead_s)

    def table(self, impl: str, kind: str) -> list[float]:
        """The class's own table if measured, else its kind's (vector for element-wise), else matmul's."""
        if impl in self.classes:
            return self.classes[impl]
        general = kind if kind in ("matmul", "attention") else "vector"
        return getattr(self, general) or self.matmul

    def efficiency(
        self,
        impl: str,
        kind: str,
        tokens: float | np.ndarray,
        inner: int = 0,
        dtype: str = "",
        context: float | np.ndarray = 0.0,
    ) -> float | np.ndarray:
        """eff(T) of the operator's class: log-linear interpolation over the grid, clamped at both ends,
        times the attention factor for its ``context`` (attention) or the low-precision factor of its
        math ``dtype`` (matmuls)."""
        base = self._base(impl, kind, tokens, inner)
        if kind == "attention" and self.attention_by_context is not None:
            c = np.maximum(context, 1.0)
            base = base * np.interp(np.log(c), np.log(self.attention_context), self.attention_by_context)
        if kind == "matmul" and dtype in self.low_precision:
            base = base * self.low_precision[dtype]
        return base

    def _base(self, impl: str, kind: str, tokens: float | np.ndarray, inner: int) -> float | np.ndarray:
        """The class's table at ``tokens``. Matmuls with a known reduction dimension K use the per-K
        tables when the profile has them, interpolated linearly in log K between the two nearest
        (clamped outside the measured range)."""
        if kind == "matmul" and impl not in self.classes and inner and self.matmul_by_inner:
            ks = sorted(self.matmul_by_inner)
            lo = max([k for k in ks if k <= inner], default=ks[0])
            hi = min([k for k in ks if k >= inner], default=ks[-1])
            e_lo = self._interp(self.matmul_by_inner[lo], tokens)
            if hi == lo:
                return e_lo
            w = (np.log(inner) - np.log(lo)) / (np.log(hi) - np.log(lo))
            return (1 - w) * e_lo + w * self._interp(self.matmul_by_inner[hi], tokens)
        return self._interp(self.table(impl, kind), tokens)

    def _interp(self, values: list[float], tokens: float | np.ndarray) -> float | np.ndarray:
        if len(values) == 1:
            return values[0]
        return np.interp(np.log(tokens), np.log(self.tokens), values)

    def range_factors(self, category: str) -> list[float]:
        """p10/p90 of measured over estimated time for a kind of figure (prefill, decode, end-to-end,
        throughput): the profile's own, else the widest published ones (a device's own profile)."""
        intervals = self.intervals or fallback_intervals()
        return intervals.get(category) or intervals.get("all") or [1.0, 1.0]

    def time_range(self, value: float | np.ndarray, category: str) -> list:
        """[low, high] of an estimated time (a number or an array): it times the p10/p90 factors."""
        lo, hi = self.range_factors(category)
        return [value * lo, value * hi]

    def rate_range(self, value: float | np.ndarray, category: str) -> list:
        """[low, high] of an estimated rate: a time factor f turns a rate r into r / f, so the high
        time bound gives the low rate."""
        lo, hi = self.range_factors(category)
        return [value / hi, value / lo]

    @property
    def label(self) -> str:
        return f"{self.engine} ({self.source})"


@cache
def _published_profiles() -> dict:
    """The fitted profiles (``efficiency.json``, written by ``python -m rooflens.measure.published
    fit``): JSON, because a quarter of a megabyte of it parses in milliseconds, where YAML took a
    fifth of a second of every CLI call."""
    return json.loads((resources.files("rooflens.hardware") / "efficiency.json").read_text())


def published_engines() -> list[str]:
    """Profile names fitted on published results (engines, and engine backends such as llama.cpp-cuda)."""
    return list(_published_profiles().get("engines", {}))


def device_class(vendor: str, generation: str) -> str:
    """The key of a vendor generation's profile ('nvidia-hopper'; the vendor alone without one)."""
    return "-".join(part.lower() for part in (vendor, generation) if part)


def published_profile(
    name: str, device: str, vendor: str = "", generation: str = "", version: str = "", model_class: str = ""
) -> EfficiencyProfile | None:
    """The profile fitted on published results for profile ``name`` on a device (at ``version``,
    where that version has an offset of its own on the device or across devices), falling back from
    the device to its vendor generation, to the engine across devices, to all engines; None if nothing
    was fitted at all. The result says which level served (``scope``), whether the engine had no
    calibration row on this device, or none of a model of ``model_class`` (dense, MoE, MLA) when given
    (``extrapolated``), and its p10-p90 range factors."""
    data = _published_profiles()
    entry = data.get("engines", {}).get(name)
    klass = device_class(vendor, generation)
    measured = bool(entry and entry.get("rows", {}).get(device))
    classes = list(entry.get("model_classes", {}).get(device, [])) if entry else []
    if model_class and classes and model_class not in classes:
        measured = False  # calibrated here, but never on a model like this one
    candidates = []
    if entry:
        release = entry.get("by_version", {}).get(version, {}) if version else {}
        candidates += [
            (release.get(device), f"{name} {version} on {device}"),
            (release.get("classes", {}).get(klass), f"{name} {version} on {klass}"),
            (release.get("global"), f"{name} {version}, all devices"),
            (entry.get("devices", {}).get(device), f"{name} on {device}"),
            (entry.get("classes", {}).get(klass), f"{name} on {klass}"),
            (entry.get("global"), f"{name}, all devices"),
        ]
    candidates.append((data.get("all_engine_classes", {}).get(klass), f"all engines on {klass}"))
    candidates.append((data.get("all_engines"), "all engines, all devices"))
    for fields, scope in candidates:
        if fields:
            intervals = _intervals(data, name, klass, extrapolated=not measured)
            versions = list(entry.get("versions", [])) if entry else []
            return EfficiencyProfile(
                engine=name,
                **fields,
                scope=scope,
                extrapolated=not measured,
                intervals=intervals,
                versions=versions,
                model_classes=classes,
            )
    return None


def _intervals(data: dict, name: str, klass: str, extrapolated: bool) -> dict[str, list[float]]:
    """Range factors for a profile: the engine's on the device class, else the engine's, else all.
    An extrapolated estimate's range covers the calibrated one and the residuals of estimates made
    with the device held out, so it is never narrower."""
    tables = data.get("intervals", {})

    def lookup(which: str) -> dict[str, list[float]]:
        table = tables.get(which, {})
        out = dict(table.get("*|*", {}))
        for key in (f"{name}|*", f"{name}|{klass}"):  # general first, the specific overrides
            out.update(table.get(key, {}))
        return out

    calibrated = lookup("calibrated")
    if not extrapolated:
        return calibrated
    wide = lookup("extrapolated")
    return {
        k: [min(calibrated.get(k, v)[0], v[0]), max(calibrated.get(k, v)[1], v[1])] for k, v in wide.items()
    } | {k: v for k, v in calibrated.items() if k not in wide}


def fallback_intervals() -> dict[str, list[float]]:
    """Range factors for a profile fitted elsewhere (a device's own, from ``rooflens calibrate``): the
    widest published ones, those of extrapolated estimates over all engines."""
    return _published_profiles().get("intervals", {}).get("extrapolated", {}).get("*|*", {})
