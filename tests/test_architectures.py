"""Mixture of experts, multi-head latent attention and sliding windows, against hand-derived values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rooflens
from rooflens import load_model
from rooflens.layers import kind
from rooflens.layers.attention import causal_pairs, keys_read
from rooflens.model import list_models
from rooflens.ops import Execution, Pass, Precision, build_ops

FP16 = Precision()
# MoE models whose publisher gives an active count (a nominal "32B" with no stated convention is not).
# Figures that include a vision encoder rooflens does not model are checked in test_today_models.py.
MOE_MODELS = [
    m.name
    for m in list_models()
    if m.num_experts and m.published_active_params and not m.published_params_unmodelled
]


def ops_by_name(model, batch, q, c, ex=None, prec=FP16):
    ops = build_ops(load_model(model), prec, Pass(batch, q, c), ex or Execution())
    out: dict[str, list] = {}
    for op in ops:
        out.setdefault(op.name, []).append(op)
    return out


# --- parameter counts -----------------------------------------------------------------------------


def test_catalog_has_every_new_family():
    types = {m.model_type for m in list_models()}
    assert {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "olmoe"} <= types


@pytest.mark.parametrize("name", MOE_MODELS)
def test_moe_totals_and_active_counts_match_published(name):
    m = load_model(name)
    # Within 1%, or half the unit of a nominal figure ("1T" for Kimi-K2's 1.03T).
    assert abs(m.num_params - m.published_params) <= max(
        0.01 * m.published_params, (m.published_params_rounding or 0) / 2
    )
    # Active counts are published to two significant figures ("2.4B" for DeepSeek-V2-Lite's 2.45B,
    # "3.3B" for Qwen3-30B-A3B's 3.35B), and publishers differ on counting the input embedding.
    assert abs(m.active_params_as_published / m.published_active_params - 1) < 0.025


def test_named_examples_within_one_percent():
    mixtral = load_model("mixtral-8x7b")
    assert mixtral.num_params == pytest.approx(46.7e9, rel=0.01)
    assert mixtral.active_params == pytest.approx(12.9e9, rel=0.01)
    v3 = load_model("deepseek-v3")
    assert v3.num_params == pytest.approx(671e9, rel=0.01)
    assert v3.active_params_as_published == pytest.approx(36.6e9, rel=0.01)  # DeepSeek's own figure
    assert v3.active_params_as_published == pytest.approx(37e9, rel=0.011)  # the paper's rounded one


def test_layer_structure():
    v3 = load_model("deepseek-v3")
    assert v3.mlp_kinds()[:4] == ("dense", "dense", "dense", "moe") and v3.mlp_kinds().count("moe") == 58
    assert set(v3.attention_kinds()) == {"mla"}
    gemma = load_model("gemma-2-9b")
    assert (
        gemma.attention_kinds()[:2] == ("sliding", "full") and gemma.attention_kinds().count("sliding") == 21
    )
    assert set(load_model("mistral-7b-v0.1").attention_kinds()) == {"sliding"}
    assert set(load_model("mistral-7b-v0.3").attention_kinds()) == {"full"}


# --- mixture of experts ----------------------------------------------------------------------------


def expert_bytes(ops):
    return sum(float(op.weight_bytes) for name in ("experts_gate_up", "experts_down") for op in ops[name])


def test_moe_decode_reads_k_experts_at_batch_1_and_almost_all_at_1024():
    m = load_model("mixtral-8x7b")
    one_expert = 3 * 4096 * 14336 * 2  # gate, up and down of one expert, fp16
    assert expert_bytes(ops_by_name("mixtral-8x7b", 1, 1, 100)) == pytest.approx(2 * one_expert)
    many = expert_bytes(ops_by_name("mixtral-8x7b", 1024, 1, 100))
    assert many == pytest.approx(m.num_experts * one_expert * (1 - (1 - 2 / 8) ** 1024))
    assert many > 0.999 * 8 * one_expert
    qwen = load_model("qwen3-30b-a3b")
    per_expert = 3 * 2048 * 768 * 2
    assert expert_bytes(ops_by_name("qwen3-30b-a3b", 1, 1, 100)) == pytest.approx(8 * per_expert)
    assert expert_bytes(ops_by_name("qwen3-30b-a3b", 64, 1, 100)) == pytest.approx(
        128 * per_expert * (1 - (1 - 8 / 128) ** 64)
    )
    assert qwen.experts_per_token == 8


def test_moe_flops_router_and_shared_experts():
    ops = ops_by_name("mixtral-8x7b", 4, 1, 100)
    T = 4
    assert ops["router"][0].flops == 2 * T * 4096 * 8
    assert ops["experts_gate_up"][0].flops == pytest.approx(2 * T * 2 * 4096 * 2 * 14336)  # k = 2 per token
    assert ops["experts_down"][0].flops == pytest.approx(2 * T * 2 * 14336 * 4096)
    ds = ops_by_name("deepseek-v3", 1, 1, 100)
    assert ds["shared_gate_up"][0].weight_bytes == 7168 * 2 * 2048 * 2  # one shared expert
    assert [op.count for op in ds["attention"]] == [3, 58]  # dense and MoE layer groups
    qwen_moe = ops_by_name("qwen1.5-moe-a2.7b", 1, 1, 100)
    assert "shared_gate" in qwen_moe and qwen_moe["shared_down"][0].weight_bytes == 5632 * 2048 * 2


@pytest.mark.parametrize("name", ["mixtral-8x7b", "deepseek-v3", "qwen1.5-moe-a2.7b", "olmoe-1b-7b"])
def test_every_expert_stays_resident_even_when_few_are_read(name):
    r = rooflens.analyze(name, "b200", batch=1, prompt=8, gen=4)
    assert r.memory.weights_bytes == pytest.approx(2 * r.model.num_params)


def test_routing_skew_loads_the_busiest_expert_device():
    uniform = ops_by_name("qwen3-30b-a3b", 32, 1, 100, Execution(ep=4))
    skewed = ops_by_name("qwen3-30b-a3b", 32, 1, 100, Execution(ep=4, routing_skew=1.2))
    assert skewed["experts_down"][0].flops > uniform["experts_down"][0].flops


# --- multi-head latent attention -------------------------------------------------------------------


def test_mla_cache_is_the_latent_plus_rope_key():
    r = rooflens.analyze("deepseek-v3", "b200", batch=2, prompt=1000, gen=24, tp=8)
    assert r.memory.kv_cache_bytes == 61 * 2 * 1024 * (512 + 64) * 2  # replicated on every TP rank


def test_mla_decode_absorbs_and_reads_the_latent_once_for_all_heads():
    v3 = load_model("deepseek-v3")
    ops = ops_by_name("deepseek-v3", 4, 1, 2048, Execution(mla_absorb=True))
    attn = ops["attention"][1]  # the MoE-layer group
    pairs = 4 * 128 * 2048
    assert attn.kv_read_bytes == 4 * 2048 * (512 + 64) * 2
    assert attn.flops == pytest.approx(pairs * (2 * 576 + 2 * 512 + 5))
    q_absorb, out_absorb = ops["q_absorb"][1], ops["out_absorb"][1]
    assert q_absorb.weight_bytes + out_absorb.weight_bytes == 512 * 128 * (128 + 128) * 2  # = kv_b_proj
    assert "kv_b_proj" not in ops
    prefill = ops_by_name("deepseek-v3", 1, 512, 512)
    assert prefill["kv_b_proj"][0].flops == 2 * 512 * 512 * 128 * (128 + 128)
    assert prefill["kv_b_proj"][0].weight_bytes == q_absorb.weight_bytes + out_absorb.weight_bytes
    # The cache holds 512 latent + 64 rope-key values per token, 2 bytes each at 16 bits.
    assert kind("mla").cache(v3, Precision()).per_token == 576 * 2


def test_mla_path_setting():
    always = rooflens.analyze("deepseek-v2-lite", "h100", prompt=256, gen=8, mla_absorb="always")
    never = rooflens.analyze("deepseek-v2-lite", "h100", prompt=256, gen=8, mla_absorb="never")
    assert any(o.name == "q_absorb" for o in always.prefill.ops)
    assert any(o.name == "kv_b_proj" for o in never.decode.ops)
    assert always.prefill.flops != never.prefill.flops


# --- sliding windows -----------------------------------------------------------------------------


@given(st.integers(1, 300), st.integers(0, 300), st.integers(1, 64) | st.none())
def test_causal_pairs_and_keys_match_brute_force(q, cached, window):
    c = q + cached
    brute_pairs = sum(min(pos + 1, window or pos + 1) for pos in range(c - q, c))
    seen = {k for pos in range(c - q, c) for k in range(pos + 1) if window is None or pos - k < window}
    assert causal_pairs(q, c, window) == brute_pairs
    assert keys_read(q, c, window) == len(seen)


def test_sliding_window_limits_the_kv_read():
    ops = ops_by_name("mistral-7b-v0.1", 1, 1, 8192)
    attn = ops["attention"][0]
    assert attn.kv_read_bytes == 2 * 4096 * 1024 * 2  # K and V of the 4096-token window, 8 KV heads
    assert attn.flops == pytest.approx(32 * 4096 * (4 * 128 + 5))
    full = ops_by_name("mistral-7b-v0.3", 1, 1, 8192)["attention"][0]
    assert full.kv_read_bytes == 2 * 8192 * 1024 * 2


def test_windowed_layers_keep_only_their_window():
    r = rooflens.analyze("gemma-2-9b", "h100", batch=1, prompt=8000, gen=192)
    per_token = 2 * 8 * 256 * 2  # K and V, 8 KV heads of 256, fp16
    assert r.memory.kv_cache_bytes == 21 * 8192 * per_token + 21 * 4096 * per_token
    assert any("window" in n for n in r.notes)
    short = rooflens.analyze("gemma-2-9b", "h100", batch=1, prompt=1000, gen=24)
    assert short.memory.kv_cache_bytes == 42 * 1024 * per_token


def test_window_pairs_are_fewer_in_prefill():
    windowed = ops_by_name("mistral-7b-v0.1", 1, 8192, 8192)["attention"][0]
    full = ops_by_name("mistral-7b-v0.3", 1, 8192, 8192)["attention"][0]
    assert windowed.flops < 0.8 * full.flops
    assert np.isclose(windowed.flops / 32 / (4 * 128 + 5), causal_pairs(8192, 8192, 4096))
