"""Multi-head latent attention (DeepSeek-V2/V3).

Keys and values are cached as one compressed latent of ``kv_lora_rank`` values plus a shared rotary key
of ``qk_rope_head_dim`` per token (576 values for DeepSeek-V3, against 32,768 for the same heads under
plain MHA). Two ways to compute with it, which engines pick per phase:

- **decompressed** (prefill): ``kv_b_proj`` expands the latents of the attended tokens into per-head
  keys (``qk_nope + qk_rope`` wide) and values (``v_head_dim``), then ordinary attention runs;
- **absorbed** (decode): the key up-projection is folded into the query (``q_absorb``: each head's
  ``qk_nope`` query maps into the latent space) and the value up-projection into the output
  (``out_absorb``), so attention reads the latent cache directly: one read serves every head, which is
  why latent attention decode moves so few bytes per FLOP.

The split of ``kv_b_proj`` into the two absorbed matrices keeps the weight bytes identical.
"""

from __future__ import annotations

from ..model.spec import ModelSpec
from ..ops.base import ADD_FLOPS, ROPE_FLOPS, SOFTMAX_FLOPS, Op, Pass, elementwise, linear, norm
from ..ops.precision import Precision
from .attention import causal_pairs, keys_read, shard_heads
from .base import PLAIN, CacheNeed, Context, LayerKind, register


def mla_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float, absorb: bool) -> list[Op]:
    h, T, a, b = spec.hidden_size, p.tokens, prec.a_bytes, p.batch
    heads, nope, rope, vd = spec.num_heads, spec.qk_nope_head_dim, spec.qk_rope_head_dim, spec.v_head_dim
    latent, qk = spec.kv_lora_rank, nope + rope
    cache_vec = prec.kv_vector_bytes(latent + rope, 1) if p.kv_cache else (latent + rope) * a
    keys = keys_read(p.q, p.c, p.window)
    pairs = b * heads * causal_pairs(p.q, p.c, p.window)
    dtype = prec.attention_dtype

    ops = [norm("attn_norm", "attention", spec.norm, h, T, prec, count=count)]
    if spec.q_lora_rank:
        ops += [
            linear("q_a_proj", "attention", h, spec.q_lora_rank, T, prec, count=count),
            norm("q_a_norm", "attention", "rmsnorm", spec.q_lora_rank, T, prec, count=count),
            linear("q_b_proj", "attention", spec.q_lora_rank, heads * qk, T, prec, count=count),
        ]
    else:
        ops.append(linear("q_proj", "attention", h, heads * qk, T, prec, count=count))
    cached = p.kv_cache
    ops += [
        linear("kv_a_proj", "attention", h, latent + rope, T, prec, count=count),
        # The normalised latent is what the cache stores; the rotated shared key joins it in rope.
        Op(
            "kv_a_norm",
            "attention",
            "norm",
            "vector",
            count,
            flops=T * latent * 4,
            impl="rmsnorm",
            weight_bytes=latent * prec.hi_bits / 8,
            other_params=latent,
            act_in_bytes=T * latent * a,
            act_out_bytes=0.0 if cached else T * latent * a,
            kv_write_bytes=T * latent * cache_vec / (latent + rope) if cached else 0.0,
        ),
        Op(
            "rope",
            "attention",
            "elementwise",
            "vector",
            count,
            flops=T * (heads + 1) * rope * ROPE_FLOPS,
            impl="rope",
            act_in_bytes=T * (heads + 1) * rope * a,
            act_out_bytes=T * heads * rope * a,
            kv_write_bytes=T * rope * cache_vec / (latent + rope) if cached else 0.0,
        ),
    ]
    if absorb:

        def per_head(name: str, n_in: int, n_out: int) -> Op:
            """A batched matmul with one (n_in x n_out) slice of the absorbed weight per head."""
            return Op(
                name,
                "attention",
                "matmul",
                prec.matmul_dtype(prec.w_bits),
                count,
                flops=2.0 * T * heads * n_in * n_out,
                inner=n_in,
                weight_bytes=heads * prec.weight_bytes(n_in, n_out, prec.w_bits),
                params=heads * n_in * n_out,
                act_in_bytes=T * heads * n_in * a,
                act_out_bytes=T * heads * n_out * a,
            )

        ops += [
            per_head("q_absorb", nope, latent),
            Op(
                "attention",
                "attention",
                "attention",
                dtype,
                count,
                flops=pairs * (2 * (latent + rope) + 2 * latent + SOFTMAX_FLOPS),
                act_in_bytes=T * heads * (latent + rope) * a,
                act_out_bytes=T * heads * latent * a,
                kv_read_bytes=b * keys * cache_vec if cached else 0.0,
            ),
            per_head("out_absorb", latent, vd),
        ]
    else:
        ops += [
            # Decompress the latents of every attended token into per-head keys and values.
            Op(
                "kv_b_proj",
                "attention",
                "matmul",
                prec.matmul_dtype(prec.w_bits),
                count,
                flops=2.0 * b * keys * latent * heads * (nope + vd),
                inner=latent,
                weight_bytes=prec.weight_bytes(latent, heads * (nope + vd), prec.w_bits),
                params=latent * heads * (nope + vd),
                act_in_bytes=b * keys * latent * a,
                act_out_bytes=b * keys * heads * (nope + vd) * a,
                kv_read_bytes=0.0,
            ),
            Op(
                "attention",
                "attention",
                "attention",
                dtype,
                count,
                flops=pairs * (2 * qk + 2 * vd + SOFTMAX_FLOPS),
                act_in_bytes=T * heads * qk * a + b * keys * heads * (qk + vd) * a,
                act_out_bytes=T * heads * vd * a,
            ),
        ]
    ops += [
        linear("o_proj", "attention", heads * vd, h, T, prec, count=count),
        elementwise("attn_residual", "attention", T * h, ADD_FLOPS, prec, count=count, inputs=2),
    ]
    return ops


class LatentAttention(LayerKind):
    name = "mla"
    role = "mixer"
    label = "mla"
    siblings = (frozenset({"q_a_proj", "kv_a_proj"}), frozenset({"q_proj", "kv_a_proj"}))

    def check(self, spec: ModelSpec) -> str | None:
        if not (spec.kv_lora_rank and spec.qk_nope_head_dim and spec.qk_rope_head_dim and spec.v_head_dim):
            return "latent attention needs kv_lora_rank, qk_nope/qk_rope head dims and v_head_dim"
        return None

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return mla_ops(spec, prec, p, count, ctx.absorb)

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        # One latent and one shared rope key per token, for all heads (replicated on every TP rank).
        return CacheNeed(per_token=prec.kv_vector_bytes(spec.kv_lora_rank + spec.qk_rope_head_dim, 1))

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        return shard_heads(spec, tp)


register(LatentAttention())
