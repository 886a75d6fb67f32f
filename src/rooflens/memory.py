"""Memory footprint: weights + KV cache + peak activations + runtime overhead, and what fits.

- Weights come from the ops themselves (see ``weight_memory_bytes``), so traffic and residency agree.
- The KV cache is sized for the full sequence, ``prompt + gen`` tokens, as engines reserve it; it is
  never summed over steps.
- Peak activations: the residual stream plus the largest inputs+outputs of any single op, over the
  prefill pass and the last (largest) decode step. Everything but the weights scales linearly with the
  batch, which gives the largest batch that fits in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .hardware.spec import HardwareSpec
from .model.spec import ModelSpec
from .ops.base import Op
from .ops.model import weight_memory_bytes
from .ops.precision import Precision


@dataclass(frozen=True, slots=True)
class MemoryFootprint:
    weights_bytes: float
    kv_cache_bytes: float
    activations_bytes: float
    overhead_bytes: float
    capacity_bytes: float
    overhead_source: str
    max_batch: int  # largest batch whose footprint fits at this context (0: not even one)

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activations_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes

    @property
    def utilization(self) -> float:
        return self.total_bytes / self.capacity_bytes


def kv_cache_bytes(spec: ModelSpec, prec: Precision, batch: int, tokens: int) -> float:
    """K and V for ``tokens`` positions of ``batch`` sequences over all layers, at kv_bits."""
    per_token = 2 * spec.num_layers * prec.kv_vector_bytes(spec.kv_dim, spec.num_kv_heads)
    return batch * tokens * per_token


def peak_activation_bytes(
    spec: ModelSpec, prec: Precision, batch: int, tokens: float, phases: list[list[Op]]
) -> float:
    """Residual stream of the largest pass plus the largest single-op working set."""
    largest_op = max(float(np.max(op.act_bytes)) for ops in phases for op in ops)
    residual = batch * tokens * spec.hidden_size * prec.a_bytes
    return residual + largest_op


def footprint(
    spec: ModelSpec,
    prec: Precision,
    hw: HardwareSpec,
    *,
    batch: int,
    context: int,
    pass_tokens: int,
    kv_cache: bool,
    phases: list[list[Op]],
    overhead_bytes: float | None,
) -> MemoryFootprint:
    if overhead_bytes is not None:
        overhead, source = overhead_bytes, "set by the user"
    elif hw.runtime_overhead_bytes is not None:
        overhead, source = hw.runtime_overhead_bytes, f"{hw.name} catalog entry"
    else:
        overhead, source = 0.0, "not set: --overhead-gib / overhead_bytes"
    weights = weight_memory_bytes(spec, prec, phases[0])
    kv = kv_cache_bytes(spec, prec, batch, context) if kv_cache else 0.0
    act = peak_activation_bytes(spec, prec, batch, pass_tokens, phases)
    per_sequence = (kv + act) / batch
    room = hw.memory_bytes - weights - overhead
    max_batch = max(0, math.floor(room / per_sequence)) if per_sequence > 0 else 0
    return MemoryFootprint(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        activations_bytes=act,
        overhead_bytes=overhead,
        capacity_bytes=hw.memory_bytes,
        overhead_source=source,
        max_batch=max_batch,
    )
