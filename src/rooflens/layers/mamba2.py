"""Mamba-2 (state-space duality) mixer: Mamba-Codestral, and the Mamba layers of Nemotron-H,
Granite-4.0-H and Bamba.

Shapes (``H`` heads of ``P`` channels, ``d = H*P``; ``G`` groups of ``N``-wide B and C; kernel ``K``):
norm -> ``in_proj`` (h -> 2d + 2GN + H: z, x, B, C, dt) -> causal conv + SiLU over x, B, C
(d + 2GN channels) -> scan -> gated RMSNorm(y * silu(z)) -> ``out_proj`` (d -> h) -> residual.
Per-layer vectors: A, D and the dt bias (H each), the norm weight (d), the conv weights.

The scan, per token:
- a single new token (decode) runs the recurrence: decay and update the ``H x P x N`` state
  (3 FLOPs per state value: multiply, multiply, add) and read it out through C (2 per value), plus
  the skip term D*x (2 per channel): ``5*H*P*N + 2*H*P``;
- several tokens (prefill) run the chunked SSD algorithm with chunks of ``Q`` (``Q' = min(Q, q)``):
  within a chunk C·Bᵀ (``2*Q'*N`` per token and group) and its product with x (``2*Q'*P`` per token
  and head); across chunks each token adds to its chunk's state and reads the incoming one
  (``4*N*P`` per token and head), plus the skip: ``2*Q'*(G*N + H*P) + 4*H*P*N + 2*H*P``.
The recurrent state (``H*P*N`` values) and the convolution window (``(K-1)*(d + 2GN)``) are the
per-sequence cache: constant in the context length.
"""

from __future__ import annotations

import numpy as np

from ..errors import RooflensError
from ..model.spec import ModelSpec
from ..ops.base import ADD_FLOPS, Op, Pass, elementwise, linear, norm
from ..ops.precision import Precision
from .base import PLAIN, CacheNeed, Context, LayerKind, register
from .recurrent import causal_conv, continues, conv_state_values, gated_norm, state_width

STATE_UPDATE_FLOPS = 5  # per state value in a recurrent step: decay, input, add; read-out multiply-add
CHUNK_STATE_FLOPS = 4  # per state value and token in the chunked scan: into the chunk state, out of it
SKIP_FLOPS = 2  # D * x + y per channel


def scan_flops(tokens_per_seq, tokens, heads: int, head_dim: int, state: int, groups: int, chunk: int):
    """FLOPs of the SSD scan over ``tokens`` tokens, ``tokens_per_seq`` of them per sequence."""
    q = np.asarray(tokens_per_seq, dtype=float)
    qc = np.minimum(chunk, q)
    chunked = 2 * qc * (groups * state + heads * head_dim) + CHUNK_STATE_FLOPS * heads * head_dim * state
    recurrent = STATE_UPDATE_FLOPS * heads * head_dim * state
    return tokens * (np.where(q > 1, chunked, recurrent) + SKIP_FLOPS * heads * head_dim)


def mamba2_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float) -> list[Op]:
    h, T, a, b = spec.hidden_size, p.tokens, prec.a_bytes, p.batch
    H, P, N, G = spec.ssm_heads, spec.ssm_head_dim, spec.ssm_state_size, spec.ssm_groups
    d = H * P
    bc = 2 * G * N
    state = b * H * P * N * state_width(prec) if p.kv_cache else 0.0
    return [
        norm("mixer_norm", "attention", spec.norm, h, T, prec, count=count),
        linear("in_proj", "attention", h, 2 * d + bc + H, T, prec, count=count, bias=spec.ssm_bias),
        causal_conv("conv1d", d + bc, spec.ssm_conv_kernel, spec.ssm_conv_bias, p, prec, count),
        Op(
            "ssd_scan",
            "attention",
            "attention",
            prec.attention_dtype,
            count,
            impl="ssd_scan",
            flops=scan_flops(p.q, T, H, P, N, G, spec.ssm_chunk_size),
            weight_bytes=3 * H * prec.hi_bits / 8,  # A, D, dt bias
            act_in_bytes=T * (d + bc + H) * a,
            act_out_bytes=T * d * a,
            kv_read_bytes=state * continues(p),
            kv_write_bytes=state,
            other_params=3 * H,
        ),
        gated_norm("ssm_norm", d, T, d, prec, count),
        linear("out_proj", "attention", d, h, T, prec, count=count, bias=spec.ssm_bias),
        elementwise("mixer_residual", "attention", T * h, ADD_FLOPS, prec, count=count, inputs=2),
    ]


class Mamba2(LayerKind):
    name = "mamba2"
    role = "mixer"
    label = "mamba-2"
    recurrent = True

    def check(self, spec: ModelSpec) -> str | None:
        fields = (
            spec.ssm_heads,
            spec.ssm_head_dim,
            spec.ssm_state_size,
            spec.ssm_groups,
            spec.ssm_conv_kernel,
        )
        if not all(fields) or not spec.ssm_chunk_size:
            return (
                "Mamba-2 layers need the SSM head count and head dim, state size, groups, conv kernel "
                "and chunk size (mamba_n_heads, mamba_d_head, ssm_state_size, n_groups, conv_kernel)"
            )
        if spec.ssm_heads % spec.ssm_groups:
            return f"Mamba-2's {spec.ssm_heads} heads must be a multiple of its {spec.ssm_groups} groups"
        return None

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return mamba2_ops(spec, prec, p, count)

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        d, bc = spec.ssm_heads * spec.ssm_head_dim, 2 * spec.ssm_groups * spec.ssm_state_size
        values = spec.ssm_heads * spec.ssm_head_dim * spec.ssm_state_size
        values += conv_state_values(d + bc, spec.ssm_conv_kernel)
        return CacheNeed(state=values * state_width(prec))

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        if spec.ssm_heads % tp:
            raise RooflensError(f"--tp {tp} does not divide {spec.name}'s {spec.ssm_heads} Mamba heads")
        # Groups split with the heads; with fewer groups than ranks, each rank keeps the one its
        # heads read (vLLM's layout). Other splits are not run by any engine.
        g = spec.ssm_groups
        if g % tp and tp % g:
            raise RooflensError(f"--tp {tp} and {spec.name}'s {g} Mamba groups do not divide one another")
        return {"ssm_heads": spec.ssm_heads // tp, "ssm_groups": g // tp if g % tp == 0 else 1}


register(Mamba2())
