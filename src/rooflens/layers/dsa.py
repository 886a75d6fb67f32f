"""DeepSeek sparse attention (DeepSeek-V3.2): latent attention whose queries each attend to the
``index_topk`` keys a lightweight *indexer* picks.

The indexer has its own small projections (``index_q_proj`` from the query latent to ``Hi`` heads of
``di``, ``index_k_proj`` h -> di with a LayerNorm, ``index_weights`` h -> Hi) and caches one ``di``-wide
key per token in FP8 with one fp32 scale per 128 values, as DeepSeek's inference code stores it. It
scores every earlier key: ``2*Hi*di`` FLOPs per (query, key) pair for the per-head dot products, plus
ReLU, the head weights and their sum (``3*Hi``), in FP8 math; its fp32 logits are written and read by
the top-k selection. Latent attention then runs over at most ``index_topk`` keys per query (the
causal pairs of a ``topk``-wide window: ``min(position, topk)`` keys per query) and reads at most that
many latents per sequence in a decode step. The latent cache itself keeps every token, since any of
them may be selected later.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..model.spec import ModelSpec
from ..ops.base import Op, Pass, linear, norm
from ..ops.precision import Precision
from .attention import causal_pairs, keys_read
from .base import PLAIN, CacheNeed, Context, register
from .mla import LatentAttention, mla_ops

LOGIT_BYTES = 4  # the indexer's scores are fp32
INDEX_SCALE_GROUP = 128  # one fp32 scale per 128 cached indexer values


def index_key_bytes(spec: ModelSpec) -> float:
    """Bytes of one token's cached indexer key: FP8 values plus their fp32 scales."""
    return spec.index_head_dim + 4 * math.ceil(spec.index_head_dim / INDEX_SCALE_GROUP)


def indexer_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float) -> list[Op]:
    h, T, a, b = spec.hidden_size, p.tokens, prec.a_bytes, p.batch
    heads, dim, topk = spec.index_heads, spec.index_head_dim, spec.index_topk
    vec = index_key_bytes(spec) if p.kv_cache else dim * a
    pairs = b * causal_pairs(p.q, p.c)  # the indexer scores every earlier key
    keys = keys_read(p.q, p.c)
    q_in = spec.q_lora_rank or h
    cached = T * vec if p.kv_cache else 0.0
    return [
        linear("index_q_proj", "attention", q_in, heads * dim, T, prec, count=count),
        linear(
            "index_k_proj", "attention", h, dim, T, prec, count=count, out_bytes=0.0, kv_write_bytes=cached
        ),
        norm("index_k_norm", "attention", "layernorm", dim, T, prec, count=count),
        linear("index_weights", "attention", h, heads, T, prec, count=count),
        Op(
            "indexer",
            "attention",
            "attention",
            "fp8",
            count,
            impl="indexer",
            flops=pairs * (2 * heads * dim + 3 * heads),
            act_in_bytes=T * heads * (dim + 1) * a + (0.0 if p.kv_cache else b * keys * vec),
            act_out_bytes=pairs * LOGIT_BYTES,
            kv_read_bytes=b * keys * vec if p.kv_cache else 0.0,
        ),
        Op(
            "topk_select",
            "attention",
            "elementwise",
            "vector",
            count,
            impl="topk",
            flops=pairs,
            act_in_bytes=pairs * LOGIT_BYTES,
            act_out_bytes=b * p.q * topk * 4,  # int32 indices
        ),
    ]


class SparseAttention(LatentAttention):
    name = "dsa"
    label = "sparse mla"

    def check(self, spec: ModelSpec) -> str | None:
        if not (spec.index_heads and spec.index_head_dim and spec.index_topk):
            return "sparse attention needs index_n_heads, index_head_dim and index_topk"
        return super().check(spec)

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        main = mla_ops(spec, prec, replace(p, window=spec.index_topk), count, ctx.absorb)
        at = next(i for i, op in enumerate(main) if op.name == "attention")
        return main[:at] + indexer_ops(spec, prec, p, count) + main[at:]

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        latent = super().cache(spec, prec).per_token
        return CacheNeed(per_token=latent + index_key_bytes(spec))


register(SparseAttention())
