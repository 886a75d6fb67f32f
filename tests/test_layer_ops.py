"""Every operator field of every layer kind, derived by hand on tiny shapes.

Each test builds one kind's operators for a small pass and compares each operator's FLOPs, byte
classes and parameters with values worked out in the comments (the arithmetic is written out, never
taken from the code under test). A flipped operator or a wrong constant in a layer module changes at
least one of them."""

from __future__ import annotations

import pytest

from configs import TINY, TINY_MAMBA, TINY_MOE  # the tiny models both specification files use
from rooflens.layers import kind
from rooflens.layers.base import Context
from rooflens.model import spec_from_config
from rooflens.ops import Pass, Precision

FP16 = Precision()
KV8 = Precision(kv_bits=8)  # K/V of 32 values over 2 heads: 32 B + 2 x (16-bit scale + 8-bit zero) = 38 B
FIELDS = ("flops", "weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes")


def table(ops) -> dict[str, dict[str, float]]:
    return {o.name: {f: float(getattr(o, f)) for f in (*FIELDS, "params", "other_params")} for o in ops}


def check(ops, expected: dict[str, dict[str, float]], names: list[str] | None = None) -> None:
    got = table(ops)
    if names is not None:
        assert list(got) == names
    for name, fields in expected.items():
        for field, value in fields.items():
            assert got[name][field] == pytest.approx(value), (name, field)


def dense(**extra):
    return spec_from_config({**TINY, **extra})


# --- dense attention -----------------------------------------------------------------------------------
# The pass: 2 sequences x 3 new tokens over a context of 10 (T = 6 tokens); 2 bytes per activation.
P = Pass(2, 3.0, 10.0)
# Causal pairs per sequence and head: positions 8, 9, 10 see 8 + 9 + 10 = 27 keys; x 2 x 4 heads = 216.
PAIRS = 216


def test_dense_attention_with_an_8_bit_cache():
    ops = kind("full").ops(dense(), KV8, P, 2.0)
    check(
        ops,
        {
            # RMSNorm of 6 x 64: 4 FLOPs per value; 64 weights x 2 B; 768 B in and out.
            "attn_norm": dict(
                flops=6 * 64 * 4, weight_bytes=128, act_in_bytes=768, act_out_bytes=768, other_params=64
            ),
            # 64 -> 64: 2 x 6 x 64 x 64 FLOPs, 8192 B of weights, 768 B in and out.
            "q_proj": dict(flops=49_152, weight_bytes=8192, act_in_bytes=768, act_out_bytes=768, params=4096),
            # 64 -> 32: K leaves as an activation for the rotary op (6 x 32 x 2 B), V goes to the cache
            # at 38 B per token (6 x 38 = 228).
            "k_proj": dict(flops=24_576, weight_bytes=4096, act_out_bytes=384, kv_write_bytes=0, params=2048),
            "v_proj": dict(flops=24_576, weight_bytes=4096, act_out_bytes=0, kv_write_bytes=228, params=2048),
            # Rotary on 6 x (4 + 2) head vectors of 16: 36 x 16 x 3 FLOPs; in: 36 x 16 x 2 B plus the
            # cos/sin tables for 3 positions (2 x 3 x 16 x 2 B); out: Q (768 B); K to the cache (228 B).
            "rope": dict(flops=1728, act_in_bytes=1152 + 192, act_out_bytes=768, kv_write_bytes=228),
            # 216 pairs x (2 x 2 x 16 + 5); Q in, O out (768 B each); K and V of 2 x 10 tokens x 38 B.
            "attention": dict(flops=PAIRS * 69, act_in_bytes=768, act_out_bytes=768, kv_read_bytes=2 * 760),
            "o_proj": dict(flops=49_152, weight_bytes=8192, act_in_bytes=768, act_out_bytes=768),
            # 6 x 64 adds, two inputs of 768 B, one output.
            "attn_residual": dict(flops=384, act_in_bytes=1536, act_out_bytes=768),
        },
        ["attn_norm", "q_proj", "k_proj", "v_proj", "rope", "attention", "o_proj", "attn_residual"],
    )
    assert all(o.count == 2.0 for o in ops)


def test_dense_attention_without_a_cache_and_unfused():
    # No cache: K and V are plain activations (6 x 32 x 2 B each) and attention reads them for the 10
    # context tokens of both sequences (2 x 10 x 64 B each) as inputs. Unfused: the 2 x 4 x 3 x 10
    # score matrix (480 B) is written and read back.
    p = Pass(2, 3.0, 10.0, kv_cache=False, flash_attention=False)
    ops = kind("full").ops(dense(), FP16, p, 1.0)
    check(
        ops,
        {
            "k_proj": dict(act_out_bytes=384, kv_write_bytes=0),
            "v_proj": dict(act_out_bytes=384, kv_write_bytes=0),
            "rope": dict(act_out_bytes=768 + 384, kv_write_bytes=0),
            "qk_matmul": dict(flops=PAIRS * 32, act_in_bytes=768 + 1280, act_out_bytes=480, kv_read_bytes=0),
            "softmax": dict(flops=PAIRS * 5, act_in_bytes=480, act_out_bytes=480),
            "sv_matmul": dict(flops=PAIRS * 32, act_in_bytes=480 + 1280, act_out_bytes=768, kv_read_bytes=0),
        },
        [
            "attn_norm",
            "q_proj",
            "k_proj",
            "v_proj",
            "rope",
            "qk_matmul",
            "softmax",
            "sv_matmul",
            "o_proj",
            "attn_residual",
        ],
    )
    # Unfused with a cache: each matmul reads K or V (2 x 10 x 38 B) from it.
    cached = kind("full").ops(dense(), KV8, Pass(2, 3.0, 10.0, flash_attention=False), 1.0)
    check(
        cached, {"qk_matmul": dict(act_in_bytes=768, kv_read_bytes=760), "sv_matmul": dict(kv_read_bytes=760)}
    )


def test_dense_attention_variants():
    # Sinks: 2 FLOPs per query and head (2 x 3 x 4 x 2 = 48) and one bf16 logit per head (8 B).
    sinks = table(kind("full").ops(dense(), FP16, P, 1.0))["attention"]["flops"]
    spec = dense().model_copy(update={"attention_sinks": True})
    check(
        kind("full").ops(spec, FP16, P, 1.0),
        {"attention": dict(flops=sinks + 48, weight_bytes=8, other_params=4)},
    )
    # Output gate: q_proj yields 128 channels (2 x 6 x 64 x 128 FLOPs) and a sigmoid gate multiplies
    # the 6 x 64 attention output: 5 FLOPs each, two inputs.
    spec = dense().model_copy(update={"attn_output_gate": True})
    check(
        kind("full").ops(spec, FP16, P, 1.0),
        {
            "q_proj": dict(flops=98_304, weight_bytes=16_384, act_out_bytes=1536),
            "attn_gate": dict(flops=384 * 5, act_in_bytes=1536, act_out_bytes=768),
        },
    )
    # QK-norm per head: q over 6 x 4 vectors of 16, k over 6 x 2.
    spec = dense().model_copy(update={"qk_norm": True})
    check(
        kind("full").ops(spec, FP16, P, 1.0),
        {
            "q_norm": dict(flops=24 * 16 * 4, weight_bytes=32, act_in_bytes=768, other_params=16),
            "k_norm": dict(flops=12 * 16 * 4, weight_bytes=32, act_in_bytes=384),
        },
    )
    # QK-norm over the whole projections (OLMoE): one 64-wide and one 32-wide norm per token.
    spec = dense().model_copy(update={"qk_norm": True, "qk_norm_per_head": False})
    check(
        kind("full").ops(spec, FP16, P, 1.0),
        {
            "q_norm": dict(flops=6 * 64 * 4, weight_bytes=128),
            "k_norm": dict(flops=6 * 32 * 4, weight_bytes=64),
        },
    )
    # Soft-capping adds 3 FLOPs per score.
    spec = dense().model_copy(update={"attn_logit_softcap": 50.0})
    check(kind("full").ops(spec, FP16, P, 1.0), {"attention": dict(flops=PAIRS * (69 + 3))})
    # Four norms, parallel residual, biases on q/k/v and o, fused QKV.
    spec = dense().model_copy(
        update={
            "norms_per_layer": 4,
            "parallel_residual": True,
            "qkv_bias": True,
            "o_bias": True,
            "fused_qkv": True,
        }
    )
    ops = kind("full").ops(spec, KV8, P, 1.0)
    # Fused 64 -> 64 + 2 x 32 = 128 with a bias: 2 x 6 x 64 x 128 + 6 x 128 FLOPs; 8192 x 2 + 128 x 2 B;
    # out: Q (768 B) and K (384 B) as activations; V (228 B) to the cache.
    check(
        ops,
        {
            "qkv_proj": dict(
                flops=98_304 + 768,
                weight_bytes=16_640,
                act_out_bytes=1152,
                kv_write_bytes=228,
                params=8192,
                other_params=128,
            ),
            "o_proj": dict(flops=49_152 + 384, weight_bytes=8320, other_params=64),
            "post_attn_norm": dict(flops=1536, weight_bytes=128),
        },
        ["attn_norm", "qkv_proj", "rope", "attention", "o_proj", "post_attn_norm"],
    )
    # Without rotary embedding (NoPE layers): K goes from k_proj straight to the cache.
    ops = kind("full_nope").ops(dense(), KV8, P, 1.0)
    check(ops, {"k_proj": dict(act_out_bytes=0, kv_write_bytes=228)})
    assert "rope" not in table(ops)


def test_windowed_and_chunked_attention():
    # Window 4: positions 8, 9, 10 each see 4 keys (12 pairs per sequence and head); the keys read are
    # positions 5-10 (min(10, 3 + 4 - 1) = 6), 6 x 38 B for K and V of each sequence.
    spec = dense(model_type="mistral", sliding_window=4)
    ops = kind("sliding").ops(spec, KV8, Pass(2, 3.0, 10.0, window=4), 1.0)
    check(ops, {"attention": dict(flops=2 * 4 * 12 * 69, kv_read_bytes=2 * 2 * 6 * 38)})
    assert kind("sliding").window(spec) == (4, None) and kind("sliding").cache(spec, KV8).window == 4
    # Chunks of 4 (1-4, 5-8, 9-12): position 8 sees 4 keys, 9 sees 1, 10 sees 2: 7 pairs; keys read from
    # the chunk of the first query: positions 5-10, 6 keys.
    spec = dense().model_copy(update={"attention_chunk": 4})
    ops = kind("chunked").ops(spec, KV8, Pass(2, 3.0, 10.0, chunk=4), 1.0)
    check(ops, {"attention": dict(flops=2 * 4 * 7 * 69, kv_read_bytes=2 * 2 * 6 * 38)})
    assert kind("chunked").window(spec) == (None, 4) and kind("chunked").cache(spec, KV8).window == 4
    # A KV budget of 3 beside a chunk caps a decode query (q = 1) at 3 keys: at context 10 the chunk
    # offers 2 (positions 9, 10), at context 8 four (5-8), capped to 3.
    assert (
        table(kind("chunked").ops(spec, KV8, Pass(1, 1.0, 10.0, chunk=4, window=3), 1.0))["attention"][
            "kv_read_bytes"
        ]
        == 2 * 2 * 38
    )
    assert (
        table(kind("chunked").ops(spec, KV8, Pass(1, 1.0, 8.0, chunk=4, window=3), 1.0))["attention"][
            "kv_read_bytes"
        ]
        == 2 * 3 * 38
    )


def test_shared_prefix_read_once():
    # A 5-token prefix shared by the 2 sequences, read once: 2 x 10 - 5 = 15 keys of 38 B, for K and V.
    p = Pass(2, 3.0, 10.0, shared_prefix=5, prefix_reads_once=True)
    check(kind("full").ops(dense(), KV8, p, 1.0), {"attention": dict(kv_read_bytes=2 * 15 * 38)})
    # Read per sequence, it costs the full 2 x 10 keys.
    p = Pass(2, 3.0, 10.0, shared_prefix=5)
    check(kind("full").ops(dense(), KV8, p, 1.0), {"attention": dict(kv_read_bytes=2 * 20 * 38)})


def test_dense_attention_cache_and_shard():
    spec = dense()
    # K and V of 2 heads x 16 at 38 B each per token.
    assert kind("full").cache(spec, KV8).per_token == 2 * 38 and kind("full").cache(spec, KV8).window is None
    assert kind("full").shard(spec, 2) == {"num_heads": 2, "num_kv_heads": 1}
    assert kind("full").shard(spec, 4) == {"num_heads": 1, "num_kv_heads": 1}  # KV heads replicated
    with pytest.raises(Exception, match="does not divide"):
        kind("full").shard(spec, 3)
    odd = dense(num_attention_heads=12, num_key_value_heads=6, hidden_size=96, intermediate_size=96)
    with pytest.raises(Exception, match="key-value heads"):
        kind("full").shard(odd, 4)
    assert kind("full").check(spec) is None
    assert "sliding_window" in kind("sliding").check(spec) and "chunk" in kind("chunked").check(spec)
    assert kind("full").ops(spec, FP16, P, 1.0, Context()) == kind("full").ops(spec, FP16, P, 1.0)


# --- latent and sparse attention -------------------------------------------------------------------------
# Tiny DeepSeek: h 64, 4 heads, q latent 32, kv latent 16, nope 8 + rope 4 (qk 12), v 8. With an 8-bit
# cache one token's latent + rope key is 20 values + one 3-byte scale/zero: 23 B.
TINY_MLA = {
    "model_type": "deepseek_v2",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 100,
    "q_lora_rank": 32,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
}


def test_latent_attention_absorbed_by_hand():
    spec = spec_from_config(TINY_MLA)
    ops = kind("mla").ops(spec, KV8, P, 1.0, Context(absorb=True))
    check(
        ops,
        {
            "q_a_proj": dict(flops=2 * 6 * 64 * 32, weight_bytes=4096, act_out_bytes=384),
            "q_a_norm": dict(flops=6 * 32 * 4, weight_bytes=64, act_in_bytes=384),
            "q_b_proj": dict(flops=2 * 6 * 32 * 48, weight_bytes=3072, act_in_bytes=384, act_out_bytes=576),
            "kv_a_proj": dict(flops=2 * 6 * 64 * 20, weight_bytes=2560, act_out_bytes=240),
            # The normalised latent goes to the cache: 6 tokens x 16 of the 20 cached values x 23 B / 20.
            "kv_a_norm": dict(
                flops=6 * 16 * 4,
                weight_bytes=32,
                act_in_bytes=192,
                act_out_bytes=0,
                kv_write_bytes=6 * 16 * 23 / 20,
                other_params=16,
            ),
            # Rotary on 4 query heads + the shared key, 4 channels each; the key joins the cache.
            "rope": dict(
                flops=6 * 5 * 4 * 3, act_in_bytes=240, act_out_bytes=192, kv_write_bytes=6 * 4 * 23 / 20
            ),
            # Each head's nope query (8) maps into the latent (16): 2 x 6 x 4 x 8 x 16.
            "q_absorb": dict(flops=6144, weight_bytes=1024, act_in_bytes=384, act_out_bytes=768, params=512),
            # 216 pairs x (2 x 20 + 2 x 16 + 5); one latent read per token for all heads: 2 x 10 x 23 B.
            "attention": dict(flops=216 * 77, act_in_bytes=960, act_out_bytes=768, kv_read_bytes=460),
            "out_absorb": dict(
                flops=6144, weight_bytes=1024, act_in_bytes=768, act_out_bytes=384, params=512
            ),
            "o_proj": dict(flops=2 * 6 * 32 * 64, weight_bytes=4096, act_in_bytes=384, act_out_bytes=768),
            "attn_residual": dict(flops=384, act_in_bytes=1536, act_out_bytes=768),
        },
        [
            "attn_norm",
            "q_a_proj",
            "q_a_norm",
            "q_b_proj",
            "kv_a_proj",
            "kv_a_norm",
            "rope",
            "q_absorb",
            "attention",
            "out_absorb",
            "o_proj",
            "attn_residual",
        ],
    )


def test_latent_attention_decompressed_and_uncached():
    spec = spec_from_config({**TINY_MLA, "q_lora_rank": 0})
    ops = kind("mla").ops(spec, FP16, Pass(2, 3.0, 10.0, kv_cache=False), 1.0, Context(absorb=False))
    check(
        ops,
        {
            "q_proj": dict(flops=2 * 6 * 64 * 48, weight_bytes=6144),
            # Without a cache the latent is an activation (6 x 16 x 2 B) and nothing is written to a cache.
            "kv_a_norm": dict(act_out_bytes=192, kv_write_bytes=0),
            "rope": dict(kv_write_bytes=0),
            # kv_b_proj expands 2 x 10 latents into 4 heads x (8 + 8): 2 x 20 x 16 x 64 FLOPs.
            "kv_b_proj": dict(
                flops=40_960, weight_bytes=2048, act_in_bytes=640, act_out_bytes=2560, params=1024
            ),
            # Plain attention on the expanded keys and values: 216 x (2 x 12 + 2 x 8 + 5).
            "attention": dict(flops=216 * 45, act_in_bytes=576 + 3200, act_out_bytes=384, kv_read_bytes=0),
        },
        [
            "attn_norm",
            "q_proj",
            "kv_a_proj",
            "kv_a_norm",
            "rope",
            "kv_b_proj",
            "attention",
            "o_proj",
            "attn_residual",
        ],
    )
    assert kind("mla").cache(spec, KV8).per_token == 23
    assert kind("mla").shard(spec, 2) == {"num_heads": 2, "num_kv_heads": 2}
    assert "kv_lora_rank" in kind("mla").check(spec_from_config(TINY).model_copy(update={"kv_lora_rank": 0}))


def test_sparse_attention_indexer_by_hand():
    # Indexer: 2 heads of 8, top-4. Its key cache: 8 FP8 values + one fp32 scale = 12 B per token.
    spec = spec_from_config({**TINY_MLA, "index_n_heads": 2, "index_head_dim": 8, "index_topk": 4})
    ops = kind("dsa").ops(spec, KV8, P, 1.0, Context(absorb=True))
    check(
        ops,
        {
            "index_q_proj": dict(
                flops=2 * 6 * 32 * 16, weight_bytes=1024, act_in_bytes=384, act_out_bytes=192
            ),
            "index_k_proj": dict(flops=2 * 6 * 64 * 8, weight_bytes=1024, act_out_bytes=0, kv_write_bytes=72),
            "index_k_norm": dict(flops=6 * 8 * 7, weight_bytes=32, act_in_bytes=96),
            "index_weights": dict(flops=2 * 6 * 64 * 2, weight_bytes=256, act_out_bytes=24),
            # Scores every earlier key: 2 x 27 pairs x (2 x 2 x 8 + 3 x 2); fp32 logits out; reads the
            # indexer keys of 2 x 10 tokens.
            "indexer": dict(
                flops=54 * 38, act_in_bytes=6 * 2 * 9 * 2, act_out_bytes=54 * 4, kv_read_bytes=240
            ),
            "topk_select": dict(flops=54, act_in_bytes=216, act_out_bytes=2 * 3 * 4 * 4),
            # Latent attention over at most 4 keys per query: 2 x 4 heads x 12 pairs; 6 keys of 23 B.
            "attention": dict(flops=96 * 77, kv_read_bytes=2 * 6 * 23),
        },
    )
    names = list(table(ops))
    assert names.index("topk_select") + 1 == names.index("attention")
    assert next(o for o in ops if o.name == "indexer").dtype == "fp8"
    assert kind("dsa").cache(spec, KV8).per_token == 23 + 12
    assert "index_topk" in kind("dsa").check(spec_from_config(TINY_MLA))
    # Uncached: the indexer reads its keys as activations.
    ops = kind("dsa").ops(spec, FP16, Pass(2, 3.0, 10.0, kv_cache=False), 1.0, Context(absorb=True))
    check(
        ops,
        {
            "indexer": dict(act_in_bytes=216 + 2 * 10 * 16, kv_read_bytes=0),
            "index_k_proj": dict(kv_write_bytes=0),
        },
    )


# --- recurrent mixers ---------------------------------------------------------------------------------------
# Tiny Mamba-2 (tests/configs.py): in_proj 16 -> 2 x 32 + 2 x 8 + 2 = 82; the conv runs over
# 32 + 16 = 48 channels (with a bias).


def test_mamba2_prefill_by_hand():
    # A fresh prompt: 2 sequences x 6 tokens (T = 12); no state to read, the final one written.
    spec = spec_from_config(TINY_MAMBA)
    ops = kind("mamba2").ops(spec, FP16, Pass(2, 6.0, 6.0), 1.0)
    per_token = 2 * 4 * (8 + 32) + 4 * 2 * 16 * 8 + 2 * 2 * 16  # chunks of 4 < 6 tokens; skip term
    check(
        ops,
        {
            "mixer_norm": dict(flops=12 * 16 * 4, weight_bytes=32, act_in_bytes=384),
            "in_proj": dict(
                flops=2 * 12 * 16 * 82, weight_bytes=2624, act_out_bytes=12 * 82 * 2, params=1312
            ),
            # 48 channels x (4 taps x 2 + SiLU 4 + bias 1); weights 48 x 4 + 48 bias at 2 B; the window of 3
            # inputs x 48 channels x 2 B per sequence is written back.
            "conv1d": dict(
                flops=12 * 48 * 13,
                weight_bytes=480,
                act_in_bytes=1152,
                act_out_bytes=1152,
                kv_read_bytes=0,
                kv_write_bytes=2 * 48 * 3 * 2,
                other_params=240,
            ),
            # State 2 heads x 16 x 8 x 2 B per sequence, written; A, D, dt bias (3 x 2 heads) as weights.
            "ssd_scan": dict(
                flops=12 * per_token,
                weight_bytes=12,
                act_in_bytes=12 * 50 * 2,
                act_out_bytes=768,
                kv_read_bytes=0,
                kv_write_bytes=2 * 2 * 16 * 8 * 2,
                other_params=6,
            ),
            "ssm_norm": dict(
                flops=12 * 32 * 9, weight_bytes=64, act_in_bytes=1536, act_out_bytes=768, other_params=32
            ),
            "out_proj": dict(flops=2 * 12 * 32 * 16, weight_bytes=1024, act_in_bytes=768, act_out_bytes=384),
            "mixer_residual": dict(flops=192, act_in_bytes=768, act_out_bytes=384),
        },
        ["mixer_norm", "in_proj", "conv1d", "ssd_scan", "ssm_norm", "out_proj", "mixer_residual"],
    )
    assert next(o for o in ops if o.name == "ssd_scan").kind == "attention"


def test_mamba2_decode_and_cache_by_hand():
    spec = spec_from_config(TINY_MAMBA)
    ops = kind("mamba2").ops(spec, FP16, Pass(2, 1.0, 10.0), 1.0)
    # One token continues each sequence: the recurrence (5 FLOPs per state value) reads and writes the
    # state; the conv reads and writes its window.
    check(
        ops,
        {
            "ssd_scan": dict(
                flops=2 * (5 * 2 * 16 * 8 + 2 * 2 * 16), kv_read_bytes=1024, kv_write_bytes=1024
            ),
            "conv1d": dict(kv_read_bytes=576, kv_write_bytes=576),
        },
    )
    # A prompt shorter than a chunk runs the chunked form with chunks of its own length (3 tokens).
    short = table(kind("mamba2").ops(spec, FP16, Pass(1, 3.0, 3.0), 1.0))["ssd_scan"]["flops"]
    assert short == 3 * (2 * 3 * (8 + 32) + 4 * 2 * 16 * 8 + 2 * 2 * 16)
    # Without a cache nothing is kept between passes.
    check(
        kind("mamba2").ops(spec, FP16, Pass(2, 6.0, 6.0, kv_cache=False), 1.0),
        {"ssd_scan": dict(kv_read_bytes=0, kv_write_bytes=0), "conv1d": dict(kv_write_bytes=0)},
    )
    # Per sequence: (2 x 16 x 8 state + 3 x 48 window) values x 2 B.
    assert kind("mamba2").cache(spec, FP16).state == (256 + 144) * 2
    assert kind("mamba2").cache(spec, FP16).per_token == 0
    assert kind("mamba2").shard(spec, 2) == {"ssm_heads": 1, "ssm_groups": 1}
    with pytest.raises(Exception, match="Mamba heads"):
        kind("mamba2").shard(spec, 3)
    eight = spec.model_copy(update={"ssm_heads": 8, "ssm_groups": 4})
    assert kind("mamba2").shard(eight, 2) == {"ssm_heads": 4, "ssm_groups": 2}
    assert kind("mamba2").shard(eight, 8) == {"ssm_heads": 1, "ssm_groups": 1}
    with pytest.raises(Exception, match="groups"):
        kind("mamba2").shard(spec.model_copy(update={"ssm_heads": 6, "ssm_groups": 3}), 2)
    assert "multiple" in kind("mamba2").check(spec.model_copy(update={"ssm_groups": 3}))
    assert "Mamba-2 layers need" in kind("mamba2").check(spec.model_copy(update={"ssm_state_size": 0}))
    assert kind("mamba2").check(spec) is None


# Gated DeltaNet on the tiny Llama's width: 2 key heads and 4 value heads of 4; kernel 4; chunks of 4.
def gdn_spec():
    return dense().model_copy(
        update=dict(
            linear_k_heads=2,
            linear_v_heads=4,
            linear_k_head_dim=4,
            linear_v_head_dim=4,
            linear_conv_kernel=4,
            linear_chunk_size=4,
        )
    )


def test_gated_deltanet_prefill_by_hand():
    # keys 2 x 4 = 8, values 4 x 4 = 16; in_proj_qkvz 64 -> 2 x 8 + 2 x 16 = 48, in_proj_ba 64 -> 8;
    # conv over 2 x 8 + 16 = 32 channels (no bias).
    ops = kind("gdn").ops(gdn_spec(), FP16, Pass(2, 6.0, 6.0), 1.0)
    per_token = 4 * (2 * 4 * (2 * 4 + 4) + 6 * 4 * 4)  # 4 value heads: intra-chunk and state passes
    check(
        ops,
        {
            "attn_norm": dict(flops=12 * 64 * 4),
            "in_proj_qkvz": dict(flops=2 * 12 * 64 * 48, weight_bytes=6144, params=3072),
            "in_proj_ba": dict(flops=2 * 12 * 64 * 8, weight_bytes=1024),
            "conv1d": dict(
                flops=12 * 32 * 12, weight_bytes=256, act_in_bytes=768, kv_write_bytes=2 * 32 * 3 * 2
            ),
            "gated_delta": dict(
                flops=12 * per_token,
                weight_bytes=16,
                act_in_bytes=12 * 40 * 2,
                act_out_bytes=384,
                kv_read_bytes=0,
                kv_write_bytes=2 * 4 * 16 * 2,
                other_params=8,
            ),
            "gated_norm": dict(
                flops=12 * 16 * 9, weight_bytes=8, act_in_bytes=768, act_out_bytes=384, other_params=4
            ),
            "out_proj": dict(flops=2 * 12 * 16 * 64, weight_bytes=2048, act_in_bytes=384, act_out_bytes=1536),
            "attn_residual": dict(flops=768),
        },
        [
            "attn_norm",
            "in_proj_qkvz",
            "in_proj_ba",
            "conv1d",
            "gated_delta",
            "gated_norm",
            "out_proj",
            "attn_residual",
        ],
    )


def test_gated_deltanet_decode_cache_and_shard():
    spec = gdn_spec()
    # Decode: 7 FLOPs per state value (4 heads x 4 x 4), state read and written.
    check(
        kind("gdn").ops(spec, FP16, Pass(2, 1.0, 10.0), 1.0),
        {"gated_delta": dict(flops=2 * 4 * 7 * 16, kv_read_bytes=256, kv_write_bytes=256)},
    )
    check(
        kind("gdn").ops(spec, FP16, Pass(2, 6.0, 6.0, kv_cache=False), 1.0),
        {"gated_delta": dict(kv_write_bytes=0)},
    )
    # Per sequence: (4 x 4 x 4 state + 3 x 32 window) values x 2 B; 32-bit state doubles it.
    assert kind("gdn").cache(spec, FP16).state == (64 + 96) * 2
    assert kind("gdn").cache(spec, Precision(state_bits=32)).state == (64 + 96) * 4
    assert kind("gdn").shard(spec, 2) == {"linear_k_heads": 1, "linear_v_heads": 2}
    with pytest.raises(Exception, match="linear key heads"):
        kind("gdn").shard(spec, 4)
    assert "multiple" in kind("gdn").check(spec.model_copy(update={"linear_v_heads": 3}))
    assert "Gated DeltaNet layers need" in kind("gdn").check(
        spec.model_copy(update={"linear_conv_kernel": 0})
    )
    assert kind("gdn").check(spec) is None


# --- feed-forward blocks ---------------------------------------------------------------------------


def test_dense_mlp_by_hand():
    ops = kind("dense").ops(dense(), FP16, P, 1.0)
    check(
        ops,
        {
            "mlp_norm": dict(flops=1536, weight_bytes=128),
            "gate_proj": dict(flops=98_304, weight_bytes=16_384, act_in_bytes=768, act_out_bytes=1536),
            "up_proj": dict(flops=98_304, weight_bytes=16_384),
            # SiLU (4) and the product (1) on 6 x 128 values; two inputs of 1536 B, one output.
            "act_mul": dict(flops=768 * 5, act_in_bytes=3072, act_out_bytes=1536),
            "down_proj": dict(flops=98_304, weight_bytes=16_384, act_in_bytes=1536, act_out_bytes=768),
            "mlp_residual": dict(flops=384, act_in_bytes=1536, act_out_bytes=768),
        },
        ["mlp_norm", "gate_proj", "up_proj", "act_mul", "down_proj", "mlp_residual"],
    )
    # Plain GELU MLP with biases: fc1 adds 6 x 128, fc2 6 x 64 FLOPs for the biases; GELU 8 per value.
    plain = dense().model_copy(update={"gated_mlp": False, "activation": "gelu_new", "mlp_bias": True})
    check(
        kind("dense").ops(plain, FP16, P, 1.0),
        {
            "fc1": dict(flops=98_304 + 768, weight_bytes=16_384 + 256, other_params=128),
            "act": dict(flops=768 * 8, act_in_bytes=1536, act_out_bytes=1536),
            "fc2": dict(flops=98_304 + 384, weight_bytes=16_384 + 128),
        },
        ["mlp_norm", "fc1", "act", "fc2", "mlp_residual"],
    )
    # Fused gate/up, four norms, a parallel residual (x + attention + MLP: 2 adds, 3 inputs).
    spec = dense().model_copy(update={"fused_gate_up": True, "norms_per_layer": 4, "parallel_residual": True})
    check(
        kind("dense").ops(spec, FP16, P, 1.0),
        {
            "gate_up_proj": dict(flops=196_608, weight_bytes=32_768),
            "post_mlp_norm": dict(flops=1536),
            "mlp_residual": dict(flops=768, act_in_bytes=2304),
        },
        ["mlp_norm", "gate_up_proj", "act_mul", "down_proj", "post_mlp_norm", "mlp_residual"],
    )
    # One norm per layer (GPT-J): the MLP reads the attention's normalised input.
    assert "mlp_norm" not in table(
        kind("dense").ops(dense().model_copy(update={"norms_per_layer": 1}), FP16, P, 1.0)
    )
    assert kind("dense").shard(dense(), 2) == {"intermediate_size": 64}
    assert kind("dense").shard(dense(), 3) == {"intermediate_size": 43}  # the busiest rank
    assert (
        kind("no_ffn").ops(dense(), FP16, P, 1.0) == [] and kind("no_mixer").ops(dense(), FP16, P, 1.0) == []
    )


# --- mixture of experts ---------------------------------------------------------------------------------
# Tiny Mixtral (tests/configs.py): one token at 16 bits touches 2 of its 4 experts.
ONE = Pass(1, 1.0, 1.0)


def test_moe_block_at_16_bits_by_hand():
    spec = spec_from_config(TINY_MOE)
    ops = kind("moe").ops(spec, FP16, ONE, 1.0)
    check(
        ops,
        {
            "mlp_norm": dict(flops=32, weight_bytes=16),
            "router": dict(flops=64, weight_bytes=64, act_in_bytes=16, act_out_bytes=8),
            "routing": dict(flops=4 * 5, act_in_bytes=8, act_out_bytes=8),
            # gate_up 8 -> 8 of the 2 touched experts: 2 x 2 x 64 FLOPs, 2 x 128 B; 4 experts held.
            "experts_gate_up": dict(
                flops=256, weight_bytes=256, act_in_bytes=32, act_out_bytes=32, params=256, other_params=0
            ),
            "experts_act": dict(flops=2 * 4 * 5, act_in_bytes=32, act_out_bytes=16),
            "experts_down": dict(flops=128, weight_bytes=128, act_in_bytes=16, act_out_bytes=32, params=128),
            "experts_combine": dict(flops=32, act_in_bytes=32, act_out_bytes=16),
            "mlp_residual": dict(flops=8, act_in_bytes=32, act_out_bytes=16),
        },
        [
            "mlp_norm",
            "router",
            "routing",
            "experts_gate_up",
            "experts_act",
            "experts_down",
            "experts_combine",
            "mlp_residual",
        ],
    )
    gate_up = next(o for o in ops if o.name == "experts_gate_up")
    assert (gate_up.resident_bytes, gate_up.routed_params, gate_up.active_routed_params) == (512, 256, 128)


def test_moe_shared_experts_biases_and_expert_parallelism():
    # One DeepSeek-style shared expert of the expert width: gate_up 8 -> 8, act on 4, down 4 -> 8.
    spec = spec_from_config(TINY_MOE).model_copy(update={"shared_experts": 1})
    check(
        kind("moe").ops(spec, FP16, ONE, 1.0),
        {
            "shared_gate_up": dict(flops=128, weight_bytes=128),
            "shared_act": dict(flops=4 * 5, act_in_bytes=2 * 4 * 2),  # gate and up: 2 inputs of 4
            "shared_down": dict(flops=64, weight_bytes=64),
        },
    )
    # Qwen's gated shared expert adds sigmoid(x W), W: 8 -> 1.
    spec = spec_from_config(TINY_MOE).model_copy(
        update={"shared_expert_intermediate_size": 4, "shared_expert_gate": True}
    )
    check(kind("moe").ops(spec, FP16, ONE, 1.0), {"shared_gate": dict(flops=16, weight_bytes=16)})
    # gpt-oss biases: the router's 4 and each expert's gate_up 8 (flops + 2 routed x 8; bytes per
    # touched expert 128 + 16).
    spec = spec_from_config(TINY_MOE).model_copy(update={"moe_bias": True})
    ops = kind("moe").ops(spec, FP16, ONE, 1.0)
    check(
        ops,
        {
            "router": dict(flops=68, weight_bytes=72, other_params=4),
            "experts_gate_up": dict(flops=272, weight_bytes=288, other_params=32),
        },
    )
    gate_up = next(o for o in ops if o.name == "experts_gate_up")
    assert (gate_up.resident_bytes, gate_up.routed_params, gate_up.active_routed_params) == (576, 288, 144)
    # Expert parallelism over 2: the device holds experts 0 and 2 (probability 1/2 each per token) and
    # receives the group's 4 tokens: it touches 2 (1 - 0.5^4) = 1.875 experts and computes 4 token-expert
    # pairs.
    ops = kind("moe").ops(spec_from_config(TINY_MOE), FP16, ONE, 1.0, Context(ep=2, group_tokens=4.0))
    check(ops, {"experts_gate_up": dict(flops=2 * 4 * 64, weight_bytes=1.875 * 128)})
    assert next(o for o in ops if o.name == "experts_gate_up").resident_bytes == 2 * 128
    assert kind("moe").shard(spec, 2) == {"moe_intermediate_size": 2, "shared_expert_intermediate_size": 0}
    assert "MoE layers need" in kind("moe").check(spec.model_copy(update={"experts_per_token": 5}))
    # Tensor parallelism splits the shared expert's width too (4 -> 2 per device).
    gated = spec.model_copy(update={"shared_expert_intermediate_size": 4})
    assert kind("moe").shard(gated, 2) == {"moe_intermediate_size": 2, "shared_expert_intermediate_size": 2}


def test_moe_sparse_experts_kernel_classes_and_limits():
    # 2:4-sparse weights apply to the experts' matrices (stored as prec.weight_bytes(sparse=True), run at
    # the sparse peak); the router and Qwen's shared-expert gate stay dense (8x4 and 8x1 at 2 bytes).
    spec = spec_from_config(TINY_MOE).model_copy(
        update={"shared_expert_intermediate_size": 4, "shared_expert_gate": True}
    )
    sparse = Precision(sparsity=(2, 4))
    ops = {o.name: o for o in kind("moe").ops(spec, sparse, ONE, 1.0)}
    one = sparse.weight_bytes(8, 8, 16, sparse=True)
    assert one < 128  # a dense 8x8 expert matrix is 128 B
    assert ops["experts_gate_up"].weight_bytes == pytest.approx(2 * one)  # the token's 2 experts
    assert ops["experts_gate_up"].sparsity == ops["experts_down"].sparsity == (2, 4)
    assert ops["router"].sparsity is None and ops["router"].weight_bytes == 64
    assert ops["shared_gate"].sparsity is None and ops["shared_gate"].weight_bytes == 16
    # Efficiency tables are keyed by the reduction dimension K and the activation's kernel class.
    assert (ops["experts_gate_up"].inner, ops["experts_down"].inner) == (8, 4)
    assert ops["experts_act"].impl == ops["shared_act"].impl == "act:silu:gated"
    # Valid routing: 1 <= k <= E (top-1 as in Llama-4 and k = E both allowed) and a positive width.
    moe = kind("moe")
    for ok in ({"experts_per_token": 1}, {"experts_per_token": 4}, {"moe_intermediate_size": 1}):
        assert moe.check(spec.model_copy(update=ok)) is None, ok
    for bad in ({"experts_per_token": 0}, {"moe_intermediate_size": 0}):
        assert "MoE layers need" in moe.check(spec.model_copy(update=bad)), bad


# --- speculative heads ---------------------------------------------------------------------------------


def test_heads_by_hand():
    from rooflens.ops import Execution
    from rooflens.ops.heads import (
        eagle3_fuse_op,
        eagle3_ops,
        head_weight_bytes,
        medusa_ops,
        mtp_ops,
        mtp_params,
    )

    spec = dense().model_copy(update={"mtp_layers": 1})
    # The MTP module on the tiny Llama: one decoder layer (36,992 parameters with its two norms), eh_proj
    # 128 -> 64 (8192) and three more norms (enorm, hnorm, final: 192).
    assert mtp_params(spec) == 36_992 + 8192 + 192
    ops = mtp_ops(spec, FP16, Pass(2, 1.0, 10.0), Execution())
    check(
        ops,
        {
            # Two embedding rows of 64 x 2 B; the shared LM head on the 2 sequences: 2 x 2 x 64 x 100.
            "embedding": dict(flops=0, weight_bytes=256, act_out_bytes=256),
            "mtp_eh_proj": dict(flops=2 * 2 * 128 * 64, weight_bytes=16_384),
            "lm_head": dict(flops=25_600, weight_bytes=12_800),
        },
    )
    # Held weights: everything but the shared embedding and head (the layer and eh_proj, at 2 B).
    assert head_weight_bytes(ops) == 2 * (36_992 + 8192 + 192)
    # EAGLE-3: q/k/v read 2h = 128 channels; the draft head maps 64 -> 32,000 for the 2 sequences.
    ops = eagle3_ops(dense(), FP16, Pass(2, 1.0, 10.0), 32_000)
    check(
        ops,
        {
            "q_proj": dict(flops=2 * 2 * 128 * 64),
            "k_proj": dict(flops=2 * 2 * 128 * 32),
            "o_proj": dict(flops=2 * 2 * 64 * 64),
            "draft_lm_head": dict(flops=2 * 2 * 64 * 32_000, weight_bytes=64 * 32_000 * 2),
        },
    )
    fuse = eagle3_fuse_op(dense(), FP16, Pass(2, 1.0, 10.0))
    assert (fuse.flops, fuse.weight_bytes) == (2 * 2 * 192 * 64, 192 * 64 * 2)
    # Medusa: 3 heads, each a 64 -> 64 block with bias (SiLU and residual: 5 FLOPs per value) and a
    # 64 -> 100 head, on the last hidden state of each of the 2 sequences.
    ops = medusa_ops(dense(), FP16, Pass(2, 1.0, 10.0), 3)
    check(
        ops,
        {
            "medusa_block": dict(flops=2 * 2 * 64 * 64 + 2 * 64, weight_bytes=8192 + 128),
            "medusa_act": dict(flops=2 * 64 * 5, act_in_bytes=2 * 2 * 64 * 2),
            "medusa_lm_head": dict(flops=2 * 2 * 64 * 100, weight_bytes=12_800),
        },
    )
    assert all(o.count == 3 for o in ops)
    assert head_weight_bytes(ops) == 3 * (8192 + 128 + 12_800)


# --- the whole pass: embedding, head and collectives --------------------------------------------------------


def test_build_ops_outside_the_layers_by_hand():
    from rooflens.ops import Execution, build_ops, weight_memory_bytes

    # Tiny Llama on 2 x 2 devices (TP 2, PP 2), 2 sequences x 3 tokens over 10: T = 6, vocabulary shard 50.
    ops = build_ops(dense(), FP16, P, Execution(tp=2, pp=2))
    got = table(ops)
    # One embedding row of 64 x 2 B per token from this rank's shard; the partial rows are all-reduced.
    assert got["embedding"]["weight_bytes"] == 6 * 128 and got["embedding"]["flops"] == 0
    assert got["embedding"]["act_out_bytes"] == 768
    ar = next(o for o in ops if o.name == "embed_allreduce")
    assert (ar.link_bytes, ar.messages, ar.count, ar.block) == (768, 2, 1, "embed")
    # Two all-reduces per layer of the 6 x 64 x 2 B activations; one stage hand-off of the same size.
    attn = next(o for o in ops if o.name == "attn_allreduce")
    assert (attn.link_bytes, attn.count, attn.block) == (768, 2, "attention")
    assert next(o for o in ops if o.name == "mlp_allreduce").block == "mlp"
    send_op = next(o for o in ops if o.name == "pp_send")
    assert (send_op.link_bytes, send_op.count, send_op.link, send_op.block) == (768, 1, "intra", "head")
    # The head: final norm on 6 tokens, the LM head on the last token of each sequence (64 -> 50 on this
    # rank), then the 2 x 100 logits (2 B) gathered: half of 400 B sent in one step.
    assert got["final_norm"]["flops"] == 6 * 64 * 4
    assert (got["lm_head"]["flops"], got["lm_head"]["weight_bytes"]) == (2 * 2 * 64 * 50, 64 * 50 * 2)
    gather = next(o for o in ops if o.name == "logits_gather")
    assert (gather.link_bytes, gather.messages, gather.block) == (200, 1, "head")
    # Resident weights under PP 2: half the layers plus the larger of the first stage's embedding shard
    # and the last stage's head (both 64 x 50 x 2 B here) on one device.
    layer = (4096 / 2 + 2048 / 2 * 2 + 4096 / 2 + 3 * 8192 / 2) * 2 + 2 * 64 * 2  # TP halves the matrices
    assert weight_memory_bytes(dense(), FP16, ops, Execution(tp=2, pp=2)) == pytest.approx(
        2 * layer / 2 + 64 * 50 * 2 + 64 * 2
    )


def test_embedding_variants_and_soft_capping():
    from rooflens.ops import Execution, build_ops

    # Gemma scales embeddings (one multiply per value); soft-capping the 2 x 100 logits: 3 FLOPs each.
    spec = dense().model_copy(update={"embed_scale": True, "final_logit_softcap": 30.0})
    got = table(build_ops(spec, FP16, P, Execution()))
    assert got["embedding"]["flops"] == 6 * 64
    assert got["logit_softcap"] == pytest.approx(
        dict(got["logit_softcap"], flops=2 * 100 * 3, act_in_bytes=400, act_out_bytes=400)
    )
    # Learned positions (GPT-2): 3 position rows of 64 x 2 B, added to the 6 token embeddings.
    gpt2 = spec_from_config(
        {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 32, "vocab_size": 100}
    )
    pos = table(build_ops(gpt2, FP16, P, Execution()))["pos_embedding"]
    assert (pos["flops"], pos["weight_bytes"], pos["act_in_bytes"], pos["act_out_bytes"]) == (
        384,
        384,
        768,
        768,
    )
    # Expert parallelism: each token's 2 expert inputs (8 values x 2 B) go out and come back over 2 devices.
    moe = spec_from_config(TINY_MOE)
    ops = build_ops(moe, FP16, Pass(4, 1.0, 1.0), Execution(ep=2))
    dispatch = next(o for o in ops if o.name == "moe_dispatch")
    # The device serves 2 of the 4 sequences: 2 tokens x 8 x 2 B x 2 experts = 64 B, half of it sent.
    assert (dispatch.link_bytes, dispatch.messages, dispatch.block) == (32, 1, "mlp")
    assert next(o for o in ops if o.name == "moe_combine").link_bytes == 32


def test_offload_transfer_by_hand():
    from rooflens.ops import Execution, build_ops

    # Half the weights, all the KV cache in host memory: the pass moves half its weight reads and all of
    # its KV reads and writes over the host link, in one transfer.
    ex = Execution(offload_weights=0.5, offload_kv=1.0)
    ops = build_ops(dense(), KV8, P, ex)
    plain = build_ops(dense(), KV8, P, Execution())
    weights = sum(o.count * o.weight_bytes for o in plain if o.kind != "comm")
    kv = sum(o.count * (o.kv_read_bytes + o.kv_write_bytes) for o in plain)
    moved = next(o for o in ops if o.name == "host_transfer")
    assert moved.link_bytes == pytest.approx(0.5 * weights + kv)
    assert (moved.link, moved.messages, moved.block, moved.count) == ("host", 1, "offload", 1.0)
    # Experts apart: only their share of the expert reads crosses.
    moe = spec_from_config(TINY_MOE)
    ops = build_ops(moe, FP16, ONE, Execution(offload_experts=0.25))
    experts = sum(o.count * o.weight_bytes for o in ops if o.routed_params)
    assert next(o for o in ops if o.name == "host_transfer").link_bytes == pytest.approx(0.25 * experts)


def test_op_constructors_set_the_kernel_class_block_and_k():
    from rooflens.ops.base import DEFAULT_ACTIVATION_FLOPS, Op, activation_flops, elementwise, linear, norm

    # An activation not in the table costs GELU's 8 FLOPs per element.
    assert activation_flops("mish") == DEFAULT_ACTIVATION_FLOPS == 8
    # Ops name their efficiency class: matmul, attention and embedding their kind, element-wise "add".
    for k, impl in (
        ("matmul", "matmul"),
        ("attention", "attention"),
        ("embedding", "embedding"),
        ("norm", "add"),
    ):
        assert Op("x", "mlp", k, "fp16", 1.0, flops=0.0).impl == impl
    up = linear("up", "mlp", 64, 128, 3.0, FP16, count=1.0, bias=True)
    assert (up.block, up.inner, up.impl) == ("mlp", 64, "matmul")
    # A bias adds one FLOP per output: 2 x 3 x 64 x 128 + 3 x 128.
    assert up.flops == 2 * 3 * 64 * 128 + 3 * 128
    sparse = Precision(sparsity=(2, 4))
    assert linear("w", "mlp", 64, 128, 3.0, sparse, count=1.0).sparsity == (2, 4)
    assert linear("w", "mlp", 64, 128, 3.0, sparse, count=1.0, sparse=False).sparsity is None
    n = norm("ln", "attention", "layernorm", 64, 3.0, FP16, count=1.0)
    assert (n.block, n.impl) == ("attention", "layernorm")
    act = elementwise("act", "mlp", 10.0, 4, FP16, count=1.0, impl="act:silu")
    assert (act.block, act.impl) == ("mlp", "act:silu")


def test_precision_edges_by_hand():
    # Outer layers kept at 16 bits: weights, activations and experts at 16, no 2:4 sparsity.
    low = Precision(w_bits=4, a_bits=4, low_bit="float", sparsity=(2, 4), expert_format=Precision(w_bits=4))
    wide = low.widened()
    assert (wide.w_bits, wide.a_bits, wide.sparsity, wide.experts) == (16, 16, None, wide)
    assert FP16.dtype(32) == "fp32"
    # 16-bit weights beside 32-bit activations are not dequantized (only weights narrower than 16).
    assert Precision(a_bits=32).dequant_flops(64, 64, 16) == 0
    # Sparsity applies only when asked: a 64x64 16-bit matrix is 8192 B either way by default.
    assert Precision(sparsity=(2, 4)).weight_bytes(64, 64, 16) == 64 * 64 * 2
    # An 8-bit per-head KV vector of 32 values over 2 heads: 32 B + per head a 16-bit scale, plus an
    # 8-bit zero point when asymmetric: 32 + 2 x 2 = 36 B symmetric, 32 + 2 x 3 = 38 B asymmetric.
    assert Precision(kv_bits=8, symmetric=True).kv_vector_bytes(32, 2) == 36
    assert Precision(kv_bits=8, symmetric=False).kv_vector_bytes(32, 2) == 38
