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

from functools import cache
from importlib import resources

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("matmul", "attention", "vector")


class EfficiencyProfile(BaseModel):
    """Measured efficiency of one engine (software stack) on one device, or across devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = Field(min_length=1)
    source: str = Field(min_length=1, description="where the factors came from")
    tokens: list[float] = Field(default=[1.0], min_length=1, description="grid of tokens per pass")
    matmul: list[float] = Field(min_length=1, description="fraction of ideal speed, per grid point")
    matmul_by_inner: dict[int, list[float]] = Field(
        default_factory=dict, description="matmul tables per reduction dimension K (log-interpolated in K)"
    )
    attention: list[float] | None = None  # None: as matmul
    vector: list[float] | None = None  # None: as matmul
    classes: dict[str, list[float]] = Field(
        default_factory=dict,
        description="tables per implementation class (rmsnorm, rope, act:silu:gated, ...)",
    )
    op_overhead_s: float = Field(0.0, ge=0)
    op_overheads: dict[str, float] = Field(
        default_factory=dict, description="per implementation class; else op_overhead_s"
    )
    step_overhead_s: float = Field(0.0, ge=0)
    frameworks: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="measured fixed host cost per model family: {model_type: {layer_s, pass_s}}",
    )
    overlap: bool = Field(
        False,
        description="asynchronous launch (CUDA): a step costs max(device time, launch time), not their sum",
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
            if any(not 0 < v <= 10 for v in values):
                raise ValueError(f"{kind} efficiencies must be in (0, 10]")
        for name, values in {
            **self.classes,
            **{f"matmul K={k}": v for k, v in self.matmul_by_inner.items()},
        }.items():
            if len(values) != n or any(not 0 < v <= 10 for v in values):
                raise ValueError(f"class table '{name}' needs {n} efficiencies in (0, 10]")
        if any(v < 0 for v in self.op_overheads.values()):
            raise ValueError("op_overheads must be >= 0")
        return self

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
        self, impl: str, kind: str, tokens: float | np.ndarray, inner: int = 0
    ) -> float | np.ndarray:
        """eff(T) of the operator's class: log-linear interpolation over the grid, clamped at both ends.

        Matmuls with a known reduction dimension K use the per-K tables when the profile has them,
        interpolated linearly in log K between the two nearest (clamped outside the measured range).
        """
        if kind == "matmul" and inner and self.matmul_by_inner:
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

    @property
    def label(self) -> str:
        return f"{self.engine} ({self.source})"


@cache
def _published_profiles() -> dict:
    text = (resources.files("rooflens.hardware") / "efficiency.yaml").read_text()
    return yaml.safe_load(text) or {}


def default_engine(kind: str) -> str | None:
    return _published_profiles().get("default_engine", {}).get(kind)


def published_profile(engine: str, device: str) -> EfficiencyProfile | None:
    """The profile fitted on published results for ``engine``: device-specific if fitted, else global."""
    entry = _published_profiles().get("engines", {}).get(engine)
    if entry is None:
        return None
    fields = entry.get("devices", {}).get(device) or entry.get("global")
    return EfficiencyProfile(engine=engine, **fields) if fields else None


def published_engines() -> list[str]:
    return list(_published_profiles().get("engines", {}))
