"""HardwareSpec: one device's roofs (peak throughput per dtype, memory bandwidth) and its limits.

Quantities may be written with units in YAML/JSON ("80 GiB", "3.35 TB/s", "989.4 TFLOPS"); they are
stored in SI base units. Peaks are *dense* (no structured sparsity) unless a field says otherwise.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import RooflensError
from ..units import parse_quantity
from .efficiency import EfficiencyProfile

DType = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "fp6", "int8", "int4", "fp4"]
DTYPES: tuple[str, ...] = DType.__args__  # type: ignore[attr-defined]

# When a device has no peak for the dtype the math wants, the math runs in the next format the
# device does have (an int8 GEMM on a V100 runs through fp16 tensor cores). The report says so.
FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp6", "fp8", "fp16", "bf16", "fp32"),  # float math: never on integer tensor cores
    "fp6": ("fp8", "fp16", "bf16", "fp32"),
    "int4": ("int8", "fp16", "bf16", "fp32"),
    "fp8": ("fp16", "bf16", "fp32"),
    "int8": ("fp16", "bf16", "fp32"),
    "bf16": ("fp16", "fp32"),
    "fp16": ("bf16", "fp32"),
    "tf32": ("fp32",),
    "fp32": ("tf32", "bf16", "fp16"),
    # Element-wise work (norms, softmax, activations) runs on the vector units, not tensor cores.
    "vector": ("fp32", "fp16", "bf16"),
}


def _quantity(kind: str):
    def parse(value: Any) -> Any:
        return None if value is None else parse_quantity(value, kind)

    return parse


class Interconnect(BaseModel):
    """Device-to-device link. ``bandwidth`` is per device and per direction, in bytes/s."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(max_length=200)
    bandwidth: float = Field(ge=1e3, le=1e15)  # 1 kB/s to 1 PB/s
    latency_s: float | None = Field(default=None, ge=0, le=10)

    _bw = field_validator("bandwidth", mode="before")(_quantity("bandwidth"))
    _lat = field_validator("latency_s", mode="before")(_quantity("seconds"))


class HardwareSpec(BaseModel):
    """A device as the roofline sees it. Catalog entries carry a source for every number.

    Bounds hold every real device with a wide margin (no NaN or infinity; a kB to a PB of memory,
    a MB/s to a PB/s of bandwidth, a MFLOP/s to 10 EFLOP/s per dtype): a spec may come from a user's
    file or a posted body, and a figure outside them is a typo or an attack, not a device."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)
    display_name: str = Field("", max_length=200)
    vendor: str = Field("", max_length=200)
    generation: str = Field("", max_length=200, description="architecture (hopper, blackwell, cdna3, m3...)")
    kind: Literal["gpu", "cpu", "apple", "tpu", "accelerator"] = "gpu"
    memory_bytes: float = Field(ge=1e3, le=1e15)
    memory_bandwidth: float = Field(ge=1e6, le=1e15)
    peak_flops: dict[DType, float] = Field(min_length=1)
    on_chip_memory_bytes: float | None = Field(default=None, ge=1, le=1e15)
    interconnect: Interconnect | None = None
    # Devices sharing the interconnect (8 for an HGX board, 72 for an NVL72 rack, 2 for a bridged
    # pair); a collective over more of them goes over ``network``. None: not stated (8 assumed).
    scale_up_domain: int | None = Field(default=None, ge=1, le=100_000)
    network: Interconnect | None = None  # between nodes (InfiniBand, Ethernet), per device
    # The link to host memory (PCIe, or NVLink-C2C on Grace superchips) and that memory, for
    # offloading weights, KV cache or experts.
    host_link: Interconnect | None = None
    host_memory_bytes: float | None = Field(default=None, ge=1e3, le=1e16)
    host_memory_bandwidth: float | None = Field(default=None, ge=1e6, le=1e15)
    tdp_watts: float | None = Field(default=None, ge=0.01, le=1e6)
    sparse_2_4: bool = False
    runtime_overhead_bytes: float | None = Field(default=None, ge=0, le=1e15)
    efficiency: list[EfficiencyProfile] = Field(
        default_factory=list, description="measured; first is default"
    )
    sources: dict[str, str] = Field(default_factory=dict)
    notes: str = ""

    _mem = field_validator(
        "memory_bytes", "on_chip_memory_bytes", "runtime_overhead_bytes", "host_memory_bytes", mode="before"
    )(_quantity("bytes"))
    _bw = field_validator("memory_bandwidth", "host_memory_bandwidth", mode="before")(_quantity("bandwidth"))
    _tdp = field_validator("tdp_watts", mode="before")(_quantity("watts"))

    @field_validator("peak_flops", mode="before")
    @classmethod
    def _peaks(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(DTYPES))
        if unknown:
            raise ValueError(f"unknown dtype(s) {unknown}; allowed: {', '.join(DTYPES)}")
        parsed = {k: parse_quantity(v, "flops") for k, v in value.items()}
        bad = [k for k, v in parsed.items() if not 1e6 <= v <= 1e19]  # also refuses NaN
        if bad:
            raise ValueError(f"peak for {bad} must be between 1e6 and 1e19 FLOP/s")
        return parsed

    @model_validator(mode="after")
    def _label(self) -> HardwareSpec:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        return self

    def peak(self, dtype: str) -> tuple[float, str]:
        """(FLOP/s, dtype actually used) for math in ``dtype``, falling back as FALLBACK says."""
        for candidate in (dtype, *FALLBACK.get(dtype, ())):
            if candidate in self.peak_flops:
                return self.peak_flops[candidate], candidate
        # A device listing only exotic formats (say int8 alone): use its slowest roof, which
        # over- rather than under-states the time. The analysis notes the substitution.
        slowest = min(self.peak_flops, key=self.peak_flops.__getitem__)
        return self.peak_flops[slowest], slowest

    def summary(self) -> dict[str, object]:
        """Every field (SI units) plus the fp16 ridge point, for ``rooflens hardware --format json``."""
        return {**self.model_dump(), "ridge_point_fp16": self.ridge_point("fp16")}

    def ridge_point(self, dtype: str = "fp16") -> float:
        """Arithmetic intensity (FLOP/byte) where the compute roof meets the bandwidth slope."""
        return self.peak(dtype)[0] / self.memory_bandwidth


def resolve_profile(hw: HardwareSpec, engine: str | None, model_class: str = "") -> EfficiencyProfile | None:
    """The efficiency profile an estimate uses.

    A profile the device itself carries (measured by ``rooflens calibrate``) serves first: the first
    one with no engine named, else the one of that name. Otherwise the engine (named, or the
    device's default: ``rooflens.engine.default_engine``) takes its profile fitted on published
    results, falling back from the device to its vendor generation, to the engine on all devices, to
    all engines (the profile says which level served, and whether it is extrapolated: no calibration
    row of the engine on the device, or none of a ``model_class`` model when one is given). An unknown
    engine is an error listing the known ones; no default engine for the device means no estimate
    (the report then shows the ideal bound alone and says why).
    """
    from ..engine import check_runs_on, default_engine, engine_names, find_engine, get_engine, split_version
    from .efficiency import published_profile

    if engine is None:
        if hw.efficiency:
            return hw.efficiency[0]
        engine = default_engine(hw.vendor, hw.kind)
        if engine is None:
            return None
    base, version = split_version(engine)
    for profile in hw.efficiency:  # the device's own measured profiles, by name
        if profile.engine.lower() == base.lower():
            return profile.model_copy(update={"version": version}) if version else profile
    info = find_engine(base)
    if info is None:
        known = [p.engine for p in hw.efficiency]
        if known:
            raise RooflensError(
                f"no efficiency profile named '{engine[:60]}' on {hw.name}; its own profiles: "
                f"{', '.join(known)}; or an engine: {', '.join(engine_names())}"
            )
        get_engine(base)  # raises, listing the known engines
    check_runs_on(info, hw.vendor, hw.name)
    backend = base.lower()
    name = backend if backend in info.backends.values() else info.profile_name(hw.vendor)
    if backend in info.backends.values() and info.backends.get(hw.vendor, backend) != backend:
        raise RooflensError(
            f"{backend} is {info.display_name}'s backend for "
            f"{next(v for v, b in info.backends.items() if b == backend)} devices; {hw.name} is "
            f"{hw.vendor}: use --engine {info.name} (its {info.profile_name(hw.vendor)} backend)"
        )
    profile = published_profile(name, hw.name, hw.vendor, hw.generation, version, model_class)
    if profile is None or not version:
        return profile
    # Profiles pool the engine's versions (bar a version with its own offset on this device); a
    # version without calibration rows is an extrapolation.
    unmeasured = version not in profile.versions
    return profile.model_copy(update={"version": version, "extrapolated": profile.extrapolated or unmeasured})
