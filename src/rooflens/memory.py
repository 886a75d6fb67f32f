"""Memory footprint of one device: weights + KV cache + peak activations + runtime overhead.

- Weights come from the operators themselves (``weight_memory_bytes``): traffic and residency agree.
  Under tensor parallelism a device holds its shard, under expert parallelism its ``E / ep`` experts,
  under pipeline parallelism its stage.
- The KV cache is sized for the full sequence, ``prompt + gen`` tokens, as engines reserve it; never
  summed over steps. Windowed layers keep their window, a KV budget caps every layer, a compressed
  prompt keeps its kept share, and a prefix shared by the batch is stored once. MLA caches one latent
  per token, replicated on every tensor-parallel rank.
- Recurrent layers (Mamba-2, Gated DeltaNet) keep a constant state per sequence instead: reported
  apart from the KV cache, counted in the total and in the largest batch.
- Peak activations: the residual stream plus the largest inputs+outputs of any single op, over the
  prefill passes and the last (largest) decode step.
Everything but the weights scales with the number of sequences a device serves, which gives the
largest batch that fits in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .hardware.spec import HardwareSpec
from .layers import REGISTRY
from .model.spec import ModelSpec
from .ops.base import Op, Pass
from .ops.execution import Execution, layer_groups, shard
from .ops.model import PLAIN, build_ops, weight_memory_bytes
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
    devices: int = 1  # the figures above are per device
    state_bytes: float = 0.0  # recurrent layers' per-sequence state (constant in the context)
    host_bytes: float = 0.0  # offloaded weights, experts and KV cache, in host memory (not counted above)

    @property
    def total_bytes(self) -> float:
        return (
            self.weights_bytes
            + self.kv_cache_bytes
            + self.state_bytes
            + self.activations_bytes
            + self.overhead_bytes
        )

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes

    @property
    def utilization(self) -> float:
        return self.total_bytes / self.capacity_bytes


@dataclass(frozen=True)
class CacheShape:
    """What the KV cache must hold: sequences, tokens each, and the part of them shared by all."""

    sequences: int
    prompt: int
    gen: int
    shared_prefix: int = 0


def _cache_needs(spec: ModelSpec, prec: Precision, ex: Execution):
    """(layer group, what one sequence keeps per layer of it) on one device."""
    local = shard(spec, ex.tp)
    for group in layer_groups(spec, replace(ex, layer_run=None)):
        mixer, ffn = REGISTRY[group.attention].cache(local, prec), REGISTRY[group.mlp].cache(local, prec)
        yield group, mixer.per_token + ffn.per_token, mixer.window or ffn.window, mixer.state + ffn.state


def kv_cache_bytes(spec: ModelSpec, prec: Precision, shape: CacheShape, ex: Execution = PLAIN) -> float:
    """KV cache of one device: its layers, its KV heads, its sequences (recurrent state apart)."""
    sequences = math.ceil(shape.sequences / ex.ep)
    total = 0.0
    for group, per_token, window, _ in _cache_needs(spec, prec, ex):
        if not per_token:
            continue
        # prompt and gen may be arrays (sweeps): every step below is element-wise.
        held = np.asarray(shape.prompt + shape.gen, dtype=float)
        if group.kept:
            held = shape.prompt * ex.keep_fraction + shape.gen
        if window:
            held = np.minimum(held, window)
        if ex.kv_budget is not None:
            held = np.minimum(held, ex.kv_budget)
        shared = np.minimum(shape.shared_prefix, held)
        tokens = shared + sequences * (held - shared)
        total = total + len(group.layers) * tokens * per_token
    total = total / ex.pp
    return float(total) if np.ndim(total) == 0 else total


def state_bytes(spec: ModelSpec, prec: Precision, sequences: int, ex: Execution = PLAIN) -> float:
    """Recurrent state of one device (Mamba-2, Gated DeltaNet): a constant per sequence and layer,
    whatever the context length; never shared between sequences."""
    mine = math.ceil(sequences / ex.ep)
    per_sequence = sum(len(group.layers) * state for group, _, _, state in _cache_needs(spec, prec, ex))
    return mine * per_sequence / ex.pp


def resident_weight_bytes(spec: ModelSpec, prec: Precision, ex: Execution = PLAIN) -> float:
    """Weights one device holds, counted from one pass of one token (a prefill may hold two passes,
    prefix and rest, which would count the weights twice); offloaded shares are in host memory."""
    total, experts = _resident(spec, prec, ex)
    return total - offloaded_weight_bytes(total, experts, ex)


def _resident(spec: ModelSpec, prec: Precision, ex: Execution) -> tuple[float, float]:
    """(all resident weight bytes, of which routed experts) on one device, before any offload."""
    ops = build_ops(spec, prec, Pass(1, 1.0, 1.0), ex)
    total = weight_memory_bytes(spec, prec, ops, ex)
    experts = sum(len(op.layers) * op.resident for op in ops if op.routed_params) / ex.pp
    return total, experts


def offloaded_weight_bytes(total: float, experts: float, ex: Execution) -> float:
    return ex.offload_weights * (total - experts) + ex.offload_experts * experts


def residual_bytes(spec: ModelSpec, prec: Precision, sequences: int, prompt, gen, kv_cache: bool):
    """The residual stream of the largest pass: the prompt, or the whole sequence when every decode
    step recomputes it (no KV cache). ``prompt`` and ``gen`` may be arrays."""
    tokens = prompt if kv_cache else prompt + gen - 1
    return sequences * tokens * spec.hidden_size * prec.a_bytes


def runtime_overhead(hw: HardwareSpec, overhead_bytes: float | None) -> tuple[float, str]:
    """(bytes, where the figure comes from): the user's, else the catalog's measured one, else none."""
    if overhead_bytes is not None:
        return overhead_bytes, "set by the user"
    if hw.runtime_overhead_bytes is not None:
        return hw.runtime_overhead_bytes, f"{hw.name} catalog entry"
    return 0.0, "not set: --overhead-gib / overhead_bytes"


def largest_batch(capacity: float, fixed: float, per_device: float | np.ndarray, sequences: int, ep: int):
    """Largest batch whose per-sequence memory (``per_device`` / ``sequences``) fits beside the
    ``fixed`` bytes (weights and overhead); element-wise over arrays."""
    per_sequence = np.asarray(per_device, dtype=float) / sequences
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(per_sequence > 0, np.maximum(0, np.floor((capacity - fixed) / per_sequence)) * ep, 0)
    return fit.astype(np.int64)


def peak_activation_bytes(residual: float, phases: list[list[Op]]) -> float:
    """Residual stream of the largest pass plus the largest single-op working set."""
    largest_op = max(float(np.max(op.act_bytes)) for ops in phases for op in ops)
    return residual + largest_op


def footprint(
    spec: ModelSpec,
    prec: Precision,
    hw: HardwareSpec,
    *,
    shape: CacheShape,
    residual_bytes: float,
    kv_cache: bool,
    phases: list[list[Op]],
    overhead_bytes: float | None,
    ex: Execution = PLAIN,
    extra_weights: float = 0.0,
    extra_kv: float = 0.0,
) -> MemoryFootprint:
    """``phases`` are the device's operator lists (for the activation peak); ``extra_*`` add a draft
    model's weights and cache."""
    overhead, source = runtime_overhead(hw, overhead_bytes)
    total, experts = _resident(spec, prec, ex)
    host = offloaded_weight_bytes(total, experts, ex)
    weights = total - host + extra_weights
    kv = (kv_cache_bytes(spec, prec, shape, ex) if kv_cache else 0.0) + extra_kv
    host += ex.offload_kv * kv
    kv -= ex.offload_kv * kv
    state = state_bytes(spec, prec, shape.sequences, ex) if kv_cache else 0.0
    act = peak_activation_bytes(residual_bytes, phases)
    sequences = math.ceil(shape.sequences / ex.ep)  # what one device serves
    max_batch = int(largest_batch(hw.memory_bytes, weights + overhead, kv + state + act, sequences, ex.ep))
    return MemoryFootprint(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        activations_bytes=act,
        overhead_bytes=overhead,
        capacity_bytes=hw.memory_bytes,
        overhead_source=source,
        max_batch=max_batch,
        devices=ex.devices,
        state_bytes=state,
        host_bytes=host,
    )
