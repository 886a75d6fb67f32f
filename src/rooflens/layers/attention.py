"""Dense attention (MHA, GQA, MQA): norm, Q/K/V projections, rotary embedding, the attention core
(fused FlashAttention-style, or QKᵀ -> softmax -> score×V), the output projection and the residual add.

Variants of the kind, each registered under its own name:
- ``full``: every query sees every earlier key; ``full_nope``: the same without rotary embedding
  (Llama-4's global layers; whole models without positions set ``position: none``);
- ``sliding``: a query sees its ``W`` most recent keys (Mistral v0.1, Gemma-2/3's local layers,
  gpt-oss's banded layers); the cache keeps ``W`` tokens;
- ``chunked``: a query sees the keys of its own chunk of ``C`` positions (Llama-4's local layers); the
  cache keeps one chunk.
Model-wide options: QK-norm (per head, or over the whole projections as OLMoE), attention sinks
(gpt-oss: one learned logit per head joins each softmax), an output gate (Qwen3-Next:
``q_proj`` also yields a per-channel gate, ``sigmoid(gate) * attention`` feeds ``o_proj``), logit
soft-capping (Gemma-2), biases.

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
  (``min(c, q + W - 1)``: the union the ``q`` queries see) shrink accordingly. A chunk ``C`` limits
  it to the keys of its chunk: keys read are those from the first query's chunk start to ``c``.
- A prefix shared by every sequence of the batch is read once per step when the kernel exploits it
  (cascade attention), else once per sequence.
"""

from __future__ import annotations

import numpy as np

from ..errors import RooflensError
from ..model.spec import ModelSpec
from ..ops.base import (
    ADD_FLOPS,
    ROPE_FLOPS,
    SOFTCAP_FLOPS,
    SOFTMAX_FLOPS,
    Array,
    Op,
    Pass,
    elementwise,
    linear,
    norm,
)
from ..ops.precision import Precision
from .base import PLAIN, CacheNeed, Context, LayerKind, register

GATE_FLOPS = 5  # sigmoid (4) and the multiply of an output gate
SINK_FLOPS = 2  # exp of the sink logit and its add to the softmax denominator, per query and head


def _window_sum(n: Array, window: int | None) -> Array:
    """Keys seen by queries at positions 1..n in total: sum of min(i, window)."""
    n = np.maximum(n, 0)
    if window is None:
        return n * (n + 1) / 2
    return np.where(n <= window, n * (n + 1) / 2, window * (window + 1) / 2 + (n - window) * window)


def _chunk_sum(n: Array, chunk: int) -> Array:
    """Keys seen by queries at positions 1..n under chunked attention: sum of ((i - 1) mod C) + 1."""
    n = np.maximum(n, 0)
    full = np.floor(n / chunk)
    rest = n - full * chunk
    return full * chunk * (chunk + 1) / 2 + rest * (rest + 1) / 2


def causal_pairs(q: Array, c: Array, window: int | None = None, chunk: int | None = None) -> Array:
    """(query, key) pairs of q new tokens at the end of a context of c tokens, per sequence and head."""
    if chunk:  # a window beside a chunk is a KV budget: it caps a decode query's keys
        pairs = _chunk_sum(c, chunk) - _chunk_sum(c - q, chunk)
        return pairs if window is None else np.minimum(pairs, q * window)
    return _window_sum(c, window) - _window_sum(c - q, window)


def keys_read(q: Array, c: Array, window: int | None = None, chunk: int | None = None) -> Array:
    """Distinct keys the q new queries attend to."""
    if chunk:
        keys = c - chunk * np.floor(np.maximum(c - q, 0) / chunk)
        return keys if window is None else np.minimum(keys, window)
    return c if window is None else np.minimum(c, q + window - 1)


def attention_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float, rope: bool = True) -> list[Op]:
    h, T, a = spec.hidden_size, p.tokens, prec.a_bytes
    kv_vec = prec.kv_vector_bytes(spec.kv_dim, spec.num_kv_heads) if p.kv_cache else spec.kv_dim * a
    rotary = rope and spec.position == "rotary"
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
    if spec.attn_output_gate:
        ops.append(
            elementwise(
                "attn_gate", "attention", T * spec.q_dim, GATE_FLOPS, prec, count=count, inputs=2, impl="gate"
            )
        )
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
    # An output gate doubles q_proj: it yields the queries and the gate (Qwen3-Next).
    q_out = spec.q_dim * (2 if spec.attn_output_gate else 1)
    if spec.fused_qkv:
        return [
            linear(
                "qkv_proj",
                "attention",
                h,
                q_out + 2 * spec.kv_dim,
                T,
                prec,
                count=count,
                bias=spec.qkv_bias,
                out_bytes=T * q_out * a + k_act + v_act,
                kv_write_bytes=k_kv + cache_v,
            )
        ]
    return [
        linear("q_proj", "attention", h, q_out, T, prec, count=count, bias=spec.qkv_bias),
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
    pairs = b * heads * causal_pairs(p.q, p.c, p.window, p.chunk)  # causal (query, key) pairs, all heads
    matmul_flops = 2.0 * pairs * hd  # one of QKᵀ or score×V
    per_score = SOFTMAX_FLOPS + (SOFTCAP_FLOPS if spec.attn_logit_softcap else 0)
    sinks = b * heads * p.q * SINK_FLOPS if spec.attention_sinks else 0.0
    q_bytes = p.tokens * spec.q_dim * a
    out_bytes = p.tokens * spec.q_dim * a
    keys = keys_read(p.q, p.c, p.window, p.chunk)
    kv_bytes = b * keys * kv_vec  # all of K (or V) the queries see
    if p.prefix_reads_once and p.shared_prefix:
        shared = np.minimum(p.shared_prefix, keys)
        kv_bytes = kv_bytes - (b - 1) * shared * kv_vec
    # K and V come from the cache when there is one, else they are plain activations.
    kv_read, kv_act = (kv_bytes, 0.0) if p.kv_cache else (0.0, kv_bytes)
    dtype = prec.attention_dtype
    sink_params = heads if spec.attention_sinks else 0
    sink_bytes = sink_params * prec.hi_bits / 8

    if p.flash_attention:
        return [
            Op(
                name="attention",
                block="attention",
                kind="attention",
                dtype=dtype,
                count=count,
                flops=2 * matmul_flops + pairs * per_score + sinks,
                weight_bytes=sink_bytes,
                act_in_bytes=q_bytes + 2 * kv_act,
                act_out_bytes=out_bytes,
                kv_read_bytes=2 * kv_read,
                other_params=sink_params,
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
            flops=pairs * per_score + sinks,  # useful (causal) scores, as in the fused kernel
            weight_bytes=sink_bytes,
            act_in_bytes=scores,
            act_out_bytes=scores,
            other_params=sink_params,
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


def shard_heads(spec: ModelSpec, tp: int) -> dict[str, int]:
    """Attention heads split ``tp`` ways; KV heads too, replicated when there are fewer than ``tp``."""
    if spec.num_heads % tp:
        raise RooflensError(f"--tp {tp} does not divide {spec.name}'s {spec.num_heads} attention heads")
    kv = spec.num_kv_heads
    if kv > tp and kv % tp:
        raise RooflensError(f"--tp {tp} does not divide {spec.name}'s {kv} key-value heads")
    return {"num_heads": spec.num_heads // tp, "num_kv_heads": max(1, kv // tp)}


class DenseAttention(LayerKind):
    role = "mixer"
    siblings = (frozenset({"q_proj", "k_proj", "v_proj"}),)

    def __init__(self, name: str, label: str, span: str = "full", rope: bool = True) -> None:
        self.name, self.label, self.span, self.rope = name, label, span, rope  # type: ignore[misc]

    def check(self, spec: ModelSpec) -> str | None:
        if self.span == "sliding" and not spec.sliding_window:
            return "sliding-window layers need a sliding_window size"
        if self.span == "chunked" and not spec.attention_chunk:
            return "chunked-attention layers need an attention_chunk_size"
        return None

    def window(self, spec: ModelSpec) -> tuple[int | None, int | None]:
        if self.span == "sliding":
            return spec.sliding_window, None
        if self.span == "chunked":
            return None, spec.attention_chunk
        return None, None

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return attention_ops(spec, prec, p, count, rope=self.rope)

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        sliding, chunk = self.window(spec)
        return CacheNeed(
            per_token=2 * prec.kv_vector_bytes(spec.kv_dim, spec.num_kv_heads), window=sliding or chunk
        )

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        return shard_heads(spec, tp)


FULL = register(DenseAttention("full", ""))
register(DenseAttention("full_nope", "no rope", rope=False))
register(DenseAttention("sliding", "sliding", span="sliding"))
register(DenseAttention("chunked", "chunked", span="chunked"))
