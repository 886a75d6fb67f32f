"""The attention half of a decoder layer: norm, Q/K/V projections, rotary embedding, the attention core
(fused FlashAttention-style, or QKᵀ -> softmax -> score×V), the output projection and the residual add.

Conventions:
- Attention FLOPs count the causal pairs a query actually attends to: with ``q`` new tokens over a
  context of ``c`` (which includes them) that is ``q*c - q*(q-1)/2`` pairs per sequence and head. A fused
  kernel skips masked tiles; the unfused path still *materialises* the full ``q x c`` score matrix, so
  its bytes are counted in full. FlashAttention therefore never changes FLOPs, only traffic.
- K and V are read with the KV-head count (GQA/MQA), never the query-head count.
- With the KV cache on, the new K/V vectors are written to the cache at ``kv_bits`` (by the rotary
  op for K on rotary models, otherwise by the projection) and attention reads the cache at
  ``kv_bits``; with it off, K and V are ordinary activations.
- A sliding window ``W`` limits each query to its ``W`` most recent keys: the pairs and the keys read
  (``min(c, q + W - 1)``: the union the ``q`` queries see) shrink accordingly.
- A prefix shared by every sequence of the batch is read once per step when the kernel exploits it
  (cascade attention), else once per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.spec import ModelSpec
from .base import ADD_FLOPS, ROPE_FLOPS, SOFTCAP_FLOPS, SOFTMAX_FLOPS, Array, Op, elementwise, linear, norm
from .precision import Precision


@dataclass(frozen=True)
class Pass:
    """One forward pass: ``batch`` sequences, each adding ``q`` tokens to a context of ``c`` tokens."""

    batch: int
    q: Array
    c: Array
    kv_cache: bool = True
    flash_attention: bool = True
    window: int | None = None  # sliding-window size of the layers this pass runs
    shared_prefix: float = 0.0  # leading context tokens shared by every sequence
    prefix_reads_once: bool = False  # the attention kernel reads the shared prefix once per step

    @property
    def tokens(self) -> Array:
        return self.batch * self.q


def _window_sum(n: Array, window: int | None) -> Array:
    """Keys seen by queries at positions 1..n in total: sum of min(i, window)."""
    n = np.maximum(n, 0)
    if window is None:
        return n * (n + 1) / 2
    return np.where(n <= window, n * (n + 1) / 2, window * (window + 1) / 2 + (n - window) * window)


def causal_pairs(q: Array, c: Array, window: int | None = None) -> Array:
    """(query, key) pairs of q new tokens at the end of a context of c tokens, per sequence and head."""
    return _window_sum(c, window) - _window_sum(c - q, window)


def keys_read(q: Array, c: Array, window: int | None = None) -> Array:
    """Distinct keys the q new queries attend to."""
    return c if window is None else np.minimum(c, q + window - 1)


def attention_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float) -> list[Op]:
    h, T, a = spec.hidden_size, p.tokens, prec.a_bytes
    kv_vec = prec.kv_vector_bytes(spec.kv_dim, spec.num_kv_heads) if p.kv_cache else spec.kv_dim * a
    rotary = spec.position == "rotary"
    # Where the new K and V land: the cache (kv_write) or plain activations.
    cache_k = T * kv_vec if p.kv_cache else 0.0
    cache_v = T * kv_vec if p.kv_cache else 0.0

    ops = [norm("attn_norm", "attention", spec.norm, h, T, prec, count=count)]
    ops += _qkv(spec, prec, p, count, cache_k, cache_v, rotary)
    if spec.qk_norm and spec.qk_norm_per_head:
        ops.append(
            norm("q_norm", "attention", "rmsnorm", spec.head_dim, T * spec.num_heads, prec, count=count)
        )
        ops.append(
            norm("k_norm", "attention", "rmsnorm", spec.head_dim, T * spec.num_kv_heads, prec, count=count)
        )
    elif spec.qk_norm:  # over the whole q and k projections (OLMoE)
        ops.append(norm("q_norm", "attention", "rmsnorm", spec.q_dim, T, prec, count=count))
        ops.append(norm("k_norm", "attention", "rmsnorm", spec.kv_dim, T, prec, count=count))
    if rotary:
        rotated = T * (spec.num_heads + spec.num_kv_heads)
        ops.append(
            Op(
                name="rope",
                block="attention",
                kind="elementwise",
                dtype="vector",
                count=count,
                impl="rope",
                flops=rotated * spec.rotary_dim * ROPE_FLOPS,
                # q and k in, plus the cos/sin tables for the q positions (shared by the batch).
                act_in_bytes=rotated * spec.head_dim * a + 2 * p.q * spec.rotary_dim * a,
                act_out_bytes=T * spec.q_dim * a + (0.0 if p.kv_cache else T * spec.kv_dim * a),
                kv_write_bytes=cache_k,
            )
        )
    ops += _core(spec, prec, p, count, kv_vec)
    ops.append(linear("o_proj", "attention", spec.q_dim, h, T, prec, count=count, bias=spec.o_bias))
    if spec.norms_per_layer == 4:
        ops.append(norm("post_attn_norm", "attention", spec.norm, h, T, prec, count=count))
    if not spec.parallel_residual:
        ops.append(elementwise("attn_residual", "attention", T * h, ADD_FLOPS, prec, count=count, inputs=2))
    return ops


def _qkv(
    spec: ModelSpec, prec: Precision, p: Pass, count: float, cache_k: Array, cache_v: Array, rotary: bool
) -> list[Op]:
    h, T, a = spec.hidden_size, p.tokens, prec.a_bytes
    # On rotary models K still passes through the rotary op before it reaches the cache.
    k_act = T * spec.kv_dim * a if (rotary or not p.kv_cache) else 0.0
    k_kv = 0.0 if rotary else cache_k
    v_act = 0.0 if p.kv_cache else T * spec.kv_dim * a
    if spec.fused_qkv:
        return [
            linear(
                "qkv_proj",
                "attention",
                h,
                spec.q_dim + 2 * spec.kv_dim,
                T,
                prec,
                count=count,
                bias=spec.qkv_bias,
                out_bytes=T * spec.q_dim * a + k_act + v_act,
                kv_write_bytes=k_kv + cache_v,
            )
        ]
    return [
        linear("q_proj", "attention", h, spec.q_dim, T, prec, count=count, bias=spec.qkv_bias),
        linear(
            "k_proj",
            "attention",
            h,
            spec.kv_dim,
            T,
            prec,
            count=count,
            bias=spec.qkv_bias,
            out_bytes=k_act,
            kv_write_bytes=k_kv,
        ),
        linear(
            "v_proj",
            "attention",
            h,
            spec.kv_dim,
            T,
            prec,
            count=count,
            bias=spec.qkv_bias,
            out_bytes=v_act,
            kv_write_bytes=cache_v,
        ),
    ]


def _core(spec: ModelSpec, prec: Precision, p: Pass, count: float, kv_vec: float) -> list[Op]:
    """Scores, softmax and the weighted sum of V, fused or not."""
    a, b, heads, hd = prec.a_bytes, p.batch, spec.num_heads, spec.head_dim
    pairs = b * heads * causal_pairs(p.q, p.c, p.window)  # causal (query, key) pairs, all heads
    matmul_flops = 2.0 * pairs * hd  # one of QKᵀ or score×V
    per_score = SOFTMAX_FLOPS + (SOFTCAP_FLOPS if spec.attn_logit_softcap else 0)
    q_bytes = p.tokens * spec.q_dim * a
    out_bytes = p.tokens * spec.q_dim * a
    keys = keys_read(p.q, p.c, p.window)
    kv_bytes = b * keys * kv_vec  # all of K (or V) the queries see
    if p.prefix_reads_once and p.shared_prefix:
        shared = np.minimum(p.shared_prefix, keys)
        kv_bytes = kv_bytes - (b - 1) * shared * kv_vec
    # K and V come from the cache when there is one, else they are plain activations.
    kv_read, kv_act = (kv_bytes, 0.0) if p.kv_cache else (0.0, kv_bytes)
    dtype = prec.attention_dtype

    if p.flash_attention:
        return [
            Op(
                name="attention",
                block="attention",
                kind="attention",
                dtype=dtype,
                count=count,
                flops=2 * matmul_flops + pairs * per_score,
                act_in_bytes=q_bytes + 2 * kv_act,
                act_out_bytes=out_bytes,
                kv_read_bytes=2 * kv_read,
            )
        ]
    scores = b * heads * p.q * keys * a  # the materialised score matrix, all heads
    return [
        Op(
            name="qk_matmul",
            block="attention",
            kind="attention",
            dtype=dtype,
            count=count,
            flops=matmul_flops,
            act_in_bytes=q_bytes + kv_act,
            act_out_bytes=scores,
            kv_read_bytes=kv_read,
        ),
        Op(
            name="softmax",
            block="attention",
            kind="elementwise",
            dtype="vector",
            count=count,
            impl="softmax",
            flops=pairs * per_score,  # useful (causal) scores, as in the fused kernel
            act_in_bytes=scores,
            act_out_bytes=scores,
        ),
        Op(
            name="sv_matmul",
            block="attention",
            kind="attention",
            dtype=dtype,
            count=count,
            flops=matmul_flops,
            act_in_bytes=scores + kv_act,
            act_out_bytes=out_bytes,
            kv_read_bytes=kv_read,
        ),
    ]
