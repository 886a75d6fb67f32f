"""Achievable-efficiency profiles: how far real kernels fall short of the ideal roofline.

The calibrated estimate of one operator occurrence is

    estimate = ideal / eff_kind(T) + op_overhead_s

where ``ideal = max(flops / peak, bytes / bandwidth)`` is the roofline time, ``T`` the number of
tokens in the pass (batch x new tokens per sequence: 1 per sequence in decode, the prompt in prefill)
and ``eff_kind`` the fraction of the ideal speed reached by that kind of operator ("matmul",
"attention" or "vector" for norms, element-wise ops and lookups), read from a table over ``T`` with
linear interpolation in log T and clamped at its ends. Each forward pass also pays
``step_overhead_s`` once (framework work outside the operators). The ideal bound is always reported;
the estimate stands beside it and names the profile (engine and source) it came from.

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
# Operator kinds of the op builder -> efficiency table that applies to them.
KIND_OF_OP = {
    "matmul": "matmul",
    "attention": "attention",
    "norm": "vector",
    "elementwise": "vector",
    "embedding": "vector",
}


class EfficiencyProfile(BaseModel):
    """Measured efficiency of one engine (software stack) on one device, or across devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = Field(min_length=1)
    source: str = Field(min_length=1, description="where the factors came from")
    tokens: list[float] = Field(default=[1.0], min_length=1, description="grid of tokens per pass")
    matmul: list[float] = Field(min_length=1, description="fraction of ideal speed, per grid point")
    attention: list[float] | None = None  # None: as matmul
    vector: list[float] | None = None  # None: as matmul
    op_overhead_s: float = Field(0.0, ge=0)
    step_overhead_s: float = Field(0.0, ge=0)

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
        return self

    def table(self, kind: str) -> list[float]:
        return getattr(self, kind) or self.matmul

    def efficiency(self, kind: str, tokens: float | np.ndarray) -> float | np.ndarray:
        """eff_kind(T): log-linear interpolation over the grid, clamped at both ends."""
        values = self.table(kind)
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
