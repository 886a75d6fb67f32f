"""Report: everything one analysis found, and its stable JSON form.

Quantities are SI base units throughout: seconds, bytes, FLOPs (multiply and add counted
separately), bytes/s, FLOP/s. ``to_dict()`` is the documented ``--format json`` contract
(``SCHEMA_VERSION`` changes only when a field changes meaning or disappears).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .hardware.efficiency import EfficiencyProfile
from .hardware.spec import HardwareSpec
from .memory import MemoryFootprint
from .model.spec import ModelSpec
from .roofline import OpResult, PhaseResult
from .settings import Settings

SCHEMA_VERSION = 1

OP_COLUMNS = (
    "name",
    "phase",
    "block",
    "kind",
    "count",
    "flops",
    "bytes",
    "weight_bytes",
    "act_in_bytes",
    "act_out_bytes",
    "kv_read_bytes",
    "kv_write_bytes",
    "intensity",
    "bound",
    "dtype",
    "peak_dtype",
    "time_s",
    "estimate_s",
    "compute_time_s",
    "memory_time_s",
    "comm_time_s",
    "link_bytes",
    "group",
)


@dataclass(slots=True)
class Report:
    model: ModelSpec
    hardware: HardwareSpec
    settings: Settings
    prefill: PhaseResult
    decode: PhaseResult
    memory: MemoryFootprint
    notes: list[str]
    profile: EfficiencyProfile | None = None  # source of the calibrated estimate, if any
    draft: ModelSpec | None = None  # speculative decoding's draft model
    speculation: Any = None  # analysis.Speculation, when speculative decoding is on
    precision: Any = None  # ops.Precision the analysis ran at (the checkpoint's own, unless overridden)

    # --- multi-device --------------------------------------------------------------------------
    @property
    def devices(self) -> int:
        return self.settings.tp * self.settings.pp * self.settings.ep

    @property
    def micro_batches(self) -> int:
        return self.settings.micro_batches or self.settings.pp

    @property
    def pipeline_bubble(self) -> float:
        """Idle share of a pipeline with ``micro_batches`` micro-batches: (pp - 1) / (m + pp - 1)."""
        pp = self.settings.pp
        return (pp - 1) / (self.micro_batches + pp - 1)

    @property
    def decode_tokens(self) -> int:
        """Tokens the decode phase generates (the first comes from prefill)."""
        return self.settings.gen - 1

    # --- headline figures ----------------------------------------------------------------------
    @property
    def ttft_s(self) -> float:
        """Time to first token: the prefill pass (which also yields the first generated token)."""
        return self.prefill.time_s

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token over decode (None when gen == 1: no decode step)."""
        return self.decode.time_s / self.decode_tokens if self.decode_tokens else None

    @property
    def total_time_s(self) -> float:
        return self.prefill.time_s + self.decode.time_s

    @property
    def throughput_tokens_per_s(self) -> float:
        """Generated tokens per second over the whole request (prefill included), all sequences."""
        return self.settings.batch * self.settings.gen / self.total_time_s

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Generated tokens per second during decode alone (batch / TPOT)."""
        return self.settings.batch / self.tpot_s if self.tpot_s else None

    # --- calibrated estimate (None without an efficiency profile) ------------------------------
    @property
    def ttft_estimate_s(self) -> float | None:
        return self.prefill.estimate_s

    @property
    def tpot_estimate_s(self) -> float | None:
        if self.decode.estimate_s is None or not self.decode_tokens:
            return None
        return self.decode.estimate_s / self.decode_tokens

    @property
    def total_estimate_s(self) -> float | None:
        if self.prefill.estimate_s is None:
            return None
        return self.prefill.estimate_s + (self.decode.estimate_s or 0.0)

    @property
    def throughput_estimate_tokens_per_s(self) -> float | None:
        total = self.total_estimate_s
        return self.settings.batch * self.settings.gen / total if total else None

    # --- the estimate's p10-p90 range (from the profile's cross-validated residuals) --------------
    def _range(self, value: float | None, category: str, rate: bool = False) -> list[float] | None:
        if value is None or self.profile is None:
            return None
        spread = self.profile.rate_range if rate else self.profile.time_range
        return spread(value, category)

    @property
    def ttft_estimate_range_s(self) -> list[float] | None:
        return self._range(self.ttft_estimate_s, "prefill")

    @property
    def tpot_estimate_range_s(self) -> list[float] | None:
        return self._range(self.tpot_estimate_s, "decode")

    @property
    def total_estimate_range_s(self) -> list[float] | None:
        return self._range(self.total_estimate_s, "end-to-end")

    @property
    def throughput_estimate_range_tokens_per_s(self) -> list[float] | None:
        return self._range(self.throughput_estimate_tokens_per_s, "end-to-end", rate=True)

    @property
    def extrapolated(self) -> bool:
        """The estimate's engine had no calibration measurement on this device."""
        return bool(self.profile is not None and self.profile.extrapolated)

    def phases(self) -> tuple[PhaseResult, PhaseResult]:
        return self.prefill, self.decode

    # --- exports -------------------------------------------------------------------------------
    def op_rows(self) -> list[dict[str, Any]]:
        """One dict per (phase, op) with the OP_COLUMNS fields: totals over layers and steps."""
        return [_op_row(phase.name, op) for phase in self.phases() for op in phase.ops]

    def ops_frame(self):
        """The per-op table as a pandas DataFrame (needs the optional ``pandas`` extra)."""
        try:
            import pandas as pd
        except ImportError:
            from .errors import RooflensError

            raise RooflensError("ops_frame() needs pandas: pip install 'rooflens[pandas]'") from None
        return pd.DataFrame(self.op_rows(), columns=list(OP_COLUMNS))

    def to_dict(self, *, timeline: bool = True) -> dict[str, Any]:
        s, m, hw = self.settings, self.memory, self.hardware
        decode = self.decode
        out = {
            "schema_version": SCHEMA_VERSION,
            "model": {
                "name": self.model.name,
                "model_type": self.model.model_type,
                "params": self.model.num_params,
                "active_params": self.model.active_params,
                "layers": self.model.num_layers,
                "hidden_size": self.model.hidden_size,
                "num_heads": self.model.num_heads,
                "num_kv_heads": self.model.num_kv_heads,
                "head_dim": self.model.head_dim,
                "intermediate_size": self.model.intermediate_size,
                "vocab_size": self.model.vocab_size,
                "source": self.model.source,
            },
            "hardware": {
                "name": hw.name,
                "display_name": hw.display_name,
                "memory_bytes": hw.memory_bytes,
                "memory_bandwidth": hw.memory_bandwidth,
                "peak_flops": dict(hw.peak_flops),
            },
            "devices": self.devices,
            "parallel": {
                "tp": s.tp,
                "pp": s.pp,
                "ep": s.ep,
                "micro_batches": self.micro_batches,
                "pipeline_bubble": self.pipeline_bubble,
            },
            "speculative": None
            if self.speculation is None
            else {
                "method": self.speculation.method,
                "draft_model": self.draft.name if self.draft is not None else None,
                "verify_tokens": self.speculation.verify_tokens,
                "draft_tokens": s.draft_tokens,
                "acceptance_rate": s.acceptance_rate,
                "rounds": decode.steps,
                "tokens_per_round": self.decode_tokens / decode.steps if decode.steps else None,
            },
            "settings": s.model_dump(),
            "precision": None if self.precision is None else _precision_dict(self.precision),
            "prefill": _phase_dict(self.prefill),
            "decode": {
                **_phase_dict(decode),
                "tpot_s": self.tpot_s,
                "tpot_estimate_s": self.tpot_estimate_s,
                "first_step_s": float(decode.step_time_s[0]) if decode.steps else None,
                "last_step_s": float(decode.step_time_s[-1]) if decode.steps else None,
                "tokens_per_s": self.decode_tokens_per_s,
            },
            "ttft_s": self.ttft_s,
            "total_time_s": self.total_time_s,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "ttft_estimate_s": self.ttft_estimate_s,
            "total_estimate_s": self.total_estimate_s,
            "throughput_estimate_tokens_per_s": self.throughput_estimate_tokens_per_s,
            "ttft_estimate_range_s": self.ttft_estimate_range_s,
            "tpot_estimate_range_s": self.tpot_estimate_range_s,
            "total_estimate_range_s": self.total_estimate_range_s,
            "throughput_estimate_range_tokens_per_s": self.throughput_estimate_range_tokens_per_s,
            "estimate": None
            if self.profile is None
            else {
                "engine": self.profile.engine,
                "source": self.profile.source,
                "scope": self.profile.scope,
                "extrapolated": self.profile.extrapolated,
                "version": self.profile.version or None,
                # A served request adds this outside the device (API server, streaming) to its TTFT
                # and end-to-end time; rooflens.simulate includes it.
                "request_overhead_s": self.profile.request_overhead_s,
            },
            "memory": {
                "weights_bytes": m.weights_bytes,
                "kv_cache_bytes": m.kv_cache_bytes,
                "state_bytes": m.state_bytes,
                "activations_bytes": m.activations_bytes,
                "overhead_bytes": m.overhead_bytes,
                "overhead_source": m.overhead_source,
                "total_bytes": m.total_bytes,
                "capacity_bytes": m.capacity_bytes,
                "fits": m.fits,
                "max_batch": m.max_batch,
                "scope": "per device",
                "all_devices_bytes": m.total_bytes * self.devices,
            },
            "ops": self.op_rows(),
            "notes": list(self.notes),
        }
        if timeline:
            out["decode"]["timeline"] = {
                "context": decode.context.tolist(),
                "step_time_s": decode.step_time_s.tolist(),
                "step_estimate_s": None
                if decode.step_estimate_s is None
                else decode.step_estimate_s.tolist(),
            }
        return out


def _phase_dict(phase: PhaseResult) -> dict[str, Any]:
    return {
        "steps": phase.steps,
        "flops": phase.flops,
        "bytes": phase.bytes,
        "time_s": phase.time_s,
        "estimate_s": phase.estimate_s,
        "bound": phase.bound,
        "compute_bound_time_s": phase.compute_bound_time_s,
        "memory_bound_time_s": phase.memory_bound_time_s,
        "comm_time_s": phase.comm_time_s,
    }


def _op_row(phase: str, op: OpResult) -> dict[str, Any]:
    return {
        "name": op.name,
        "phase": phase,
        "block": op.block,
        "kind": op.kind,
        "count": op.count,
        "flops": op.flops,
        "bytes": op.bytes,
        "weight_bytes": op.weight_bytes,
        "act_in_bytes": op.act_in_bytes,
        "act_out_bytes": op.act_out_bytes,
        "kv_read_bytes": op.kv_read_bytes,
        "kv_write_bytes": op.kv_write_bytes,
        "intensity": op.intensity if op.bytes else None,
        "bound": op.bound,
        "dtype": op.dtype,
        "peak_dtype": op.peak_dtype,
        "time_s": op.time_s,
        "estimate_s": op.estimate_s,
        "compute_time_s": op.compute_time_s,
        "memory_time_s": op.memory_time_s,
        "comm_time_s": op.comm_time_s,
        "link_bytes": op.link_bytes,
        "group": op.group,
    }


def _precision_dict(prec: Any) -> dict[str, Any]:
    """The bit widths an analysis ran at (routed experts apart when the checkpoint stores them so)."""
    out = {"w_bits": prec.w_bits, "a_bits": prec.a_bits, "kv_bits": prec.kv_bits, "low_bit": prec.low_bit}
    xp = prec.expert_format
    out["expert_w_bits"] = None if xp is None else xp.w_bits
    return out
