"""Operator formulas against values derived by hand (ARCHITECTURE.md says how the operators are built).

FLOPs count multiply and add separately (2*m*n*k per matmul); bytes are fp16 (2 bytes) unless stated.
"""

from __future__ import annotations

import numpy as np
import pytest

import rooflens
from rooflens import load_model
from rooflens.ops import Pass, Precision, build_ops

FP16 = Precision()


def ops_by_name(model, batch, q, c, prec=FP16, **kw):
    return {op.name: op for op in build_ops(load_model(model), prec, Pass(batch, q, c, **kw))}


def total(ops, field):
    return sum(op.count * np.asarray(getattr(op, field)) for op in ops.values())


# --- Llama-2-7B: h 4096, 32 layers, 32 heads (MHA), I 11008, V 32000 ----------------------------


def test_llama2_prefill_projections():
    ops = ops_by_name("llama-2-7b", 1, 2048, 2048)
    q = ops["q_proj"]
    assert q.flops == 2 * 2048 * 4096 * 4096 == 68_719_476_736  # "68.7 GFLOP"
    assert q.weight_bytes == 4096 * 4096 * 2 == 33_554_432  # "33.6 MB"
    assert q.act_in_bytes == q.act_out_bytes == 2048 * 4096 * 2
    assert q.bytes == 67_108_864  # "67.1 MB"
    assert q.flops / q.bytes == pytest.approx(1024)  # intensity
    for name in ("gate_proj", "up_proj", "down_proj"):
        assert ops[name].flops == 2 * 2048 * 4096 * 11008 == 184_683_593_728  # "185 GFLOP"
        assert ops[name].weight_bytes == 4096 * 11008 * 2
    assert ops["q_proj"].count == 32
    assert ops["lm_head"].flops == 2 * 1 * 4096 * 32000  # last token only
    assert ops["act_mul"].act_in_bytes == 2 * 2048 * 11008 * 2  # sized by intermediate_size


def test_llama2_prefill_attention_core():
    ops = ops_by_name("llama-2-7b", 1, 2048, 2048)
    pairs = 32 * 2048 * 2049 / 2  # causal pairs over 32 heads
    attn = ops["attention"]
    assert attn.flops == pytest.approx(2 * 2 * pairs * 128 + 5 * pairs)
    # Fused: Q in, K and V read once, O out; no score-matrix traffic.
    assert attn.act_in_bytes == 2048 * 4096 * 2
    assert attn.kv_read_bytes == 2 * 2048 * 4096 * 2
    assert attn.act_out_bytes == 2048 * 4096 * 2
    unfused = ops_by_name("llama-2-7b", 1, 2048, 2048, flash_attention=False)
    scores = 32 * 2048 * 2048 * 2
    assert unfused["qk_matmul"].act_out_bytes == scores
    assert unfused["softmax"].act_in_bytes == unfused["softmax"].act_out_bytes == scores
    assert unfused["sv_matmul"].act_in_bytes == scores + 0  # K/V come from the cache
    assert unfused["qk_matmul"].flops + unfused["sv_matmul"].flops + unfused[
        "softmax"
    ].flops == pytest.approx(attn.flops)


def test_llama2_decode_step():
    ops = ops_by_name("llama-2-7b", 1, 1, 2048)
    q = ops["q_proj"]
    assert q.flops == 2 * 4096 * 4096 == 33_554_432  # "33.6 MFLOP"
    assert q.bytes == 33_554_432 + 2 * 4096 * 2  # "33.6 MB": weights dominate
    assert q.flops / q.bytes == pytest.approx(1.0, rel=1e-3)


def test_llama2_whole_decode_step_at_1024():
    ops = ops_by_name("llama-2-7b", 1, 1, 1024)
    params = load_model("llama-2-7b").num_params
    embedding_table = 32000 * 4096
    # Every weight except the embedding table is read; the lookup reads one 4096-wide row.
    assert total(ops, "weight_bytes") == 2 * (params - embedding_table) + 4096 * 2 == 13_214_695_424
    assert total(ops, "kv_read_bytes") == 2 * 32 * 1024 * 4096 * 2 == 536_870_912
    # 2 FLOPs per weight read (13.21 GFLOP) and QKᵀ plus score×V over 1,024 keys in 32 layers
    # (2 x 2 x 32 x 1024 x 4096 = 0.54 GFLOP): 13.75 GFLOP; norms and element-wise ops add 0.06%.
    assert total(ops, "flops") == pytest.approx(
        2 * (params - embedding_table) + 2 * 2 * 32 * 1024 * 4096, rel=1e-3
    )
    assert total(ops, "weight_bytes") + total(ops, "kv_read_bytes") == pytest.approx(13.75e9, rel=0.01)
    # The new token's K and V are written once per layer.
    assert total(ops, "kv_write_bytes") == 2 * 32 * 4096 * 2


def test_llama2_kv_cache_for_1024_tokens():
    r = rooflens.analyze("llama-2-7b", "a100", batch=1, prompt=1000, gen=24)
    assert r.memory.kv_cache_bytes == 536_870_912


# --- Llama-3-8B: GQA with 8 KV heads of 128 --------------------------------------------------------


def test_llama3_gqa_shapes():
    ops = ops_by_name("llama-3-8b", 4, 1, 3000)
    assert ops["k_proj"].weight_bytes == ops["v_proj"].weight_bytes == 4096 * 1024 * 2
    assert ops["q_proj"].weight_bytes == 4096 * 4096 * 2
    attn = ops["attention"]
    # K and V read with the 8 KV heads, scores computed for the 32 query heads.
    assert attn.kv_read_bytes == 2 * 4 * 3000 * 1024 * 2
    assert attn.flops == pytest.approx(4 * 32 * 3000 * (2 * 2 * 128 + 5))
    assert ops["gate_proj"].flops == 2 * 4 * 4096 * 14336
    assert ops["lm_head"].weight_bytes == 128256 * 4096 * 2  # untied


def test_llama3_kv_cache_per_token():
    r = rooflens.analyze("llama-3-8b", "h100", batch=3, prompt=100, gen=28)
    assert r.memory.kv_cache_bytes == 3 * 128 * (2 * 32 * 1024 * 2)  # 131,072 bytes per token


# --- GPT-2: LayerNorm, learned positions, fused biased QKV, tied embeddings ------------------------


def test_gpt2_prefill_ops():
    ops = ops_by_name("gpt2", 2, 100, 100)
    assert "rope" not in ops and "pos_embedding" in ops
    T = 2 * 100
    ln = ops["attn_norm"]
    assert ln.flops == 7 * T * 768 and ln.weight_bytes == 2 * 768 * 2  # weight and bias
    qkv = ops["qkv_proj"]
    assert qkv.flops == 2 * T * 768 * 2304 + T * 2304  # matmul + bias add
    assert qkv.weight_bytes == (768 * 2304 + 2304) * 2
    # q stays an activation; k and v go to the cache (no rotary op on GPT-2).
    assert qkv.act_out_bytes == T * 768 * 2
    assert qkv.kv_write_bytes == 2 * T * 768 * 2
    assert ops["fc1"].weight_bytes == (768 * 3072 + 3072) * 2
    assert ops["act"].flops == 8 * T * 3072  # gelu_new
    assert ops["pos_embedding"].weight_bytes == 100 * 768 * 2  # the same 100 rows serve the batch
    assert ops["embedding"].weight_bytes == T * 768 * 2
    assert ops["lm_head"].weight_bytes == 50257 * 768 * 2  # reads the tied embedding table


def test_gpt2_weight_memory_equals_parameters():
    r = rooflens.analyze("gpt2", "t4", prompt=64, gen=8)
    assert r.memory.weights_bytes == 2 * 124_439_808


@pytest.mark.parametrize(
    "name", ["llama-2-7b", "qwen2.5-0.5b", "gemma-2-2b", "phi-3-mini-4k", "pythia-160m", "opt-125m"]
)
def test_fp16_weight_memory_is_two_bytes_per_parameter(name):
    r = rooflens.analyze(name, "h100", prompt=32, gen=4)
    assert r.memory.weights_bytes == 2 * r.model.num_params


def test_kv_cache_off_recomputes_everything():
    cached = ops_by_name("llama-2-7b", 1, 1, 1500)
    fresh = ops_by_name("llama-2-7b", 1, 1500, 1500, kv_cache=False)
    assert fresh["q_proj"].flops == 1500 * cached["q_proj"].flops
    assert total(fresh, "kv_read_bytes") == total(fresh, "kv_write_bytes") == 0
    r_on = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=64)
    r_off = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=64, kv_cache=False)
    assert r_off.decode.flops > 100 * r_on.decode.flops
    assert r_off.memory.kv_cache_bytes == 0
