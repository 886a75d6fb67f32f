"""Gated DeltaNet linear attention (Qwen3-Next's linear layers).

Shapes (``Hk`` key heads of ``dk``, ``Hv`` value heads of ``dv``; keys are shared by
``Hv / Hk`` value heads; kernel ``K``): norm -> ``in_proj_qkvz`` (h -> 2*Hk*dk + 2*Hv*dv: q, k, v and
the output gate z) and ``in_proj_ba`` (h -> 2*Hv: the write strength beta and the decay alpha) ->
causal conv + SiLU over q, k, v -> the gated delta rule -> gated RMSNorm(o * silu(z)) per head ->
``out_proj`` (Hv*dv -> h) -> residual. Per-layer vectors: A and the dt bias (Hv each), the norm
weight (dv), the conv weights.

The delta rule keeps a ``dk x dv`` matrix state per value head. Per token:
- one new token (decode): decay the state (1 FLOP per value), retrieve ``S k`` (2), write
  ``beta (v - S k) kᵀ`` (2), read out ``S q`` (2): ``7*Hv*dk*dv``;
- several tokens (prefill, chunks of ``Q``, ``Q' = min(Q, q)``): the intra-chunk products
  (``q kᵀ`` and ``k kᵀ``: ``2*Q'*dk`` each per token and head; the scores times the values:
  ``2*Q'*dv``) and the state passes in and out of each chunk (``6*dk*dv`` per token and head):
  ``Hv*(2*Q'*(2*dk + dv) + 6*dk*dv)``.
The recurrent state (``Hv*dk*dv`` values) and the conv window are the per-sequence cache.
"""

from __future__ import annotations

import numpy as np

from ..errors import RooflensError
from ..model.spec import ModelSpec
from ..ops.base import ADD_FLOPS, Op, Pass, elementwise, linear, norm
from ..ops.precision import Precision
from .base import PLAIN, CacheNeed, Context, LayerKind, register
from .recurrent import causal_conv, continues, conv_state_values, gated_norm, state_width

RECURRENT_FLOPS = 7  # per state value in a decode step: decay, retrieve, write, read out
CHUNK_STATE_FLOPS = 6  # per state value and token in the chunked form


def delta_flops(tokens_per_seq, tokens, v_heads: int, dk: int, dv: int, chunk: int):
    q = np.asarray(tokens_per_seq, dtype=float)
    qc = np.minimum(chunk, q)
    chunked = v_heads * (2 * qc * (2 * dk + dv) + CHUNK_STATE_FLOPS * dk * dv)
    recurrent = v_heads * RECURRENT_FLOPS * dk * dv
    return tokens * np.where(q > 1, chunked, recurrent)


def gdn_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float) -> list[Op]:
    h, T, a, b = spec.hidden_size, p.tokens, prec.a_bytes, p.batch
    hk, hv, dk, dv = spec.linear_k_heads, spec.linear_v_heads, spec.linear_k_head_dim, spec.linear_v_head_dim
    keys, values = hk * dk, hv * dv
    state = b * hv * dk * dv * state_width(prec) if p.kv_cache else 0.0
    return [
        norm("attn_norm", "attention", spec.norm, h, T, prec, count=count),
        linear("in_proj_qkvz", "attention", h, 2 * keys + 2 * values, T, prec, count=count),
        linear("in_proj_ba", "attention", h, 2 * hv, T, prec, count=count),
        causal_conv("conv1d", 2 * keys + values, spec.linear_conv_kernel, False, p, prec, count),
        Op(
            "gated_delta",
            "attention",
            "attention",
            prec.attention_dtype,
            count,
            impl="gated_delta",
            flops=delta_flops(p.q, T, hv, dk, dv, spec.linear_chunk_size),
            weight_bytes=2 * hv * prec.hi_bits / 8,  # A and dt bias
            act_in_bytes=T * (2 * keys + values + 2 * hv) * a,
            act_out_bytes=T * values * a,
            kv_read_bytes=state * continues(p),
            kv_write_bytes=state,
            other_params=2 * hv,
        ),
        gated_norm("gated_norm", values, T, dv, prec, count),
        linear("out_proj", "attention", values, h, T, prec, count=count),
        elementwise("attn_residual", "attention", T * h, ADD_FLOPS, prec, count=count, inputs=2),
    ]


class GatedDeltaNet(LayerKind):
    name = "gdn"
    role = "mixer"
    label = "gated deltanet"
    recurrent = True
    siblings = (frozenset({"in_proj_qkvz", "in_proj_ba"}),)

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return gdn_ops(spec, prec, p, count)

    def check(self, spec: ModelSpec) -> str | None:
        dims = (spec.linear_k_heads, spec.linear_v_heads, spec.linear_k_head_dim, spec.linear_v_head_dim)
        if not all(dims) or not spec.linear_conv_kernel:
            return (
                "Gated DeltaNet layers need linear_num_key_heads, linear_num_value_heads, "
                "linear_key_head_dim, linear_value_head_dim and linear_conv_kernel_dim"
            )
        if spec.linear_v_heads % spec.linear_k_heads:
            return "linear_num_value_heads must be a multiple of linear_num_key_heads"
        return None

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        keys, values = (
            spec.linear_k_heads * spec.linear_k_head_dim,
            spec.linear_v_heads * spec.linear_v_head_dim,
        )
        state = spec.linear_v_heads * spec.linear_k_head_dim * spec.linear_v_head_dim
        state += conv_state_values(2 * keys + values, spec.linear_conv_kernel)
        return CacheNeed(state=state * state_width(prec))

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        if spec.linear_k_heads % tp:
            raise RooflensError(
                f"--tp {tp} does not divide {spec.name}'s {spec.linear_k_heads} linear key heads"
            )
        return {"linear_k_heads": spec.linear_k_heads // tp, "linear_v_heads": spec.linear_v_heads // tp}


register(GatedDeltaNet())
