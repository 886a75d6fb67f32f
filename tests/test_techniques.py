"""The survey's techniques: each changes operators, and each at its neutral setting changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflens
from rooflens import RooflensError

BASE = dict(batch=4, prompt=1024, gen=65)


def op(report, phase, name):
    return [o for o in getattr(report, phase).ops if o.name == name]


# --- neutral settings ----------------------------------------------------------------------------

NEUTRAL = {
    "exit_fraction": 1.0,
    "prompt_keep": 1.0,
    "prompt_keep_after": 3,
    "tp": 1,
    "pp": 1,
    "ep": 1,
    "sparsity": None,
    "shared_prefix": 0,
    "routing_skew": 0.0,
    "draft_model": None,
}


@pytest.mark.slow  # many whole analyses: left out of mutation runs
@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["llama-3-8b", "gemma-2-2b", "qwen3-30b-a3b", "deepseek-v2-lite", "gpt2"]),
    st.sampled_from(["h100", "a100", "m2-ultra"]),
    st.integers(1, 64),
    st.integers(1, 2048),
    st.integers(1, 64),
    st.fixed_dictionaries({}, optional={k: st.just(v) for k, v in NEUTRAL.items()}),
)
def test_every_technique_at_its_neutral_setting_is_the_plain_analysis(model, hw, batch, prompt, gen, neutral):
    kw = dict(batch=batch, prompt=prompt, gen=gen)
    plain = rooflens.analyze(model, hw, **kw).to_dict()
    kw_budget = {"kv_budget": prompt + gen}  # a budget the sequence never reaches
    layers = rooflens.load_model(model).num_layers
    last_exit = {"exit_distribution": tuple([0.0] * (layers - 1) + [1.0])}  # everyone runs every layer
    for variant in (neutral, kw_budget, last_exit):
        other = rooflens.analyze(model, hw, **kw, **variant).to_dict()
        other.pop("settings"), plain.pop("settings", None)
        assert other == plain


# --- speculative decoding -------------------------------------------------------------------------


@pytest.mark.slow  # many whole analyses: left out of mutation runs
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(2, 200), st.integers(1, 16), st.sampled_from(["h100", "l4", "m4-max"]))
def test_acceptance_zero_is_never_faster_than_plain_decoding(k, gen, batch, hw):
    plain = rooflens.analyze("llama-3-8b", hw, batch=batch, prompt=512, gen=gen)
    spec = rooflens.analyze(
        "llama-3-8b",
        hw,
        batch=batch,
        prompt=512,
        gen=gen,
        draft_model="llama-3.2-1b",
        draft_tokens=k,
        acceptance_rate=0,
    )
    assert spec.tpot_s >= plain.tpot_s
    assert spec.decode.steps == gen - 1  # one token per round


def test_speculative_rounds_and_costs():
    r = rooflens.analyze(
        "llama-3-8b", "h100", **BASE, draft_model="llama-3.2-1b", draft_tokens=4, acceptance_rate=0.8
    )
    expected = (1 - 0.8**5) / (1 - 0.8)
    assert r.decode.steps == int(np.ceil(64 / expected))
    (verify,) = op(r, "decode", "q_proj")
    assert verify.flops == pytest.approx(r.decode.steps * 32 * 2 * 4 * 5 * 4096 * 4096)  # 5 tokens verified
    (draft_q,) = op(r, "decode", "draft.q_proj")
    assert draft_q.count == 16 * 4  # 16 draft layers, 4 draft steps per round
    assert r.tpot_s == pytest.approx(r.decode.time_s / 64)
    plain = rooflens.analyze("llama-3-8b", "h100", **BASE)
    assert r.tpot_s < plain.tpot_s  # memory-bound verification of 5 tokens costs about one step
    assert r.memory.weights_bytes == pytest.approx(plain.memory.weights_bytes + 2 * 1_235_814_400)
    full = rooflens.analyze("llama-3-8b", "h100", **BASE, draft_model="llama-3.2-1b", acceptance_rate=1.0)
    assert full.decode.steps == int(np.ceil(64 / 5))
    # A target that verifies fewer positions than the chain holds keeps at most those: 4 drafts with
    # 3 verified keep (1 - 0.8^3) / 0.2 = 2.44 per round, not 3.36; with 1 verified, 1 (no speed-up).
    kw = dict(BASE, draft_model="llama-3.2-1b", draft_tokens=4, acceptance_rate=0.8)
    three = rooflens.analyze("llama-3-8b", "h100", **kw, verify_tokens=3)
    assert three.decode.steps == int(np.ceil(64 / 2.44))
    one = rooflens.analyze("llama-3-8b", "h100", **kw, verify_tokens=1)
    assert one.decode.steps == 64 and one.tpot_s > plain.tpot_s  # drafting for nothing costs time
    with pytest.raises(RooflensError, match="needs the KV cache"):
        rooflens.analyze("llama-3-8b", "h100", draft_model="llama-3.2-1b", kv_cache=False)


# --- early exit ------------------------------------------------------------------------------------


def test_early_exit_runs_fewer_layers_in_decode_only():
    r = rooflens.analyze("llama-2-7b", "a100", **BASE, exit_fraction=0.5)
    plain = rooflens.analyze("llama-2-7b", "a100", **BASE)
    assert op(r, "decode", "q_proj")[0].count == 16
    assert op(r, "prefill", "q_proj")[0].count == 32
    assert r.ttft_s == plain.ttft_s and r.tpot_s < 0.6 * plain.tpot_s
    quarter = rooflens.analyze("llama-2-7b", "a100", **BASE, exit_fraction=0.26)
    assert op(quarter, "decode", "q_proj")[0].count == pytest.approx(0.26 * 32)


def test_early_exit_distribution_takes_the_deepest_token_of_the_batch():
    layers = 32
    half = [0.0] * layers
    half[7], half[31] = 0.5, 0.5  # a token leaves after layer 7 or after the last, equally likely
    for batch, expected in ((1, 8 + 24 * 0.5), (2, 8 + 24 * 0.75)):
        r = rooflens.analyze(
            "llama-2-7b", "a100", batch=batch, prompt=64, gen=9, exit_distribution=tuple(half)
        )
        assert op(r, "decode", "q_proj")[0].count == pytest.approx(expected)


# --- N:M sparsity ----------------------------------------------------------------------------------


def test_2_4_sparsity_halves_weights_plus_metadata_and_uses_the_sparse_peak():
    dense = rooflens.analyze("llama-2-7b", "h100", **BASE)
    sparse = rooflens.analyze("llama-2-7b", "h100", **BASE, sparsity="2:4")
    q_dense, q_sparse = op(dense, "decode", "q_proj")[0], op(sparse, "decode", "q_proj")[0]
    assert q_sparse.weight_bytes == pytest.approx(q_dense.weight_bytes * (2 / 4) * (16 + 2) / 16)
    assert q_sparse.flops == q_dense.flops  # dense-equivalent FLOPs ...
    assert q_sparse.compute_time_s == pytest.approx(q_dense.compute_time_s / 2)  # ... at twice the peak
    assert op(sparse, "decode", "lm_head")[0].weight_bytes == op(dense, "decode", "lm_head")[0].weight_bytes
    v100 = rooflens.analyze("llama-2-7b", "v100", **BASE, sparsity="2:4")
    assert any("no 2:4 sparse tensor cores" in n for n in v100.notes)
    with pytest.raises(RooflensError, match="sparsity must be N:M"):
        rooflens.analyze("gpt2", "h100", sparsity="4:2")


# --- prompt compression and token eviction ----------------------------------------------------------


def test_gemfilter_style_prompt_compression():
    r = rooflens.analyze(
        "llama-3-8b", "h100", batch=1, prompt=8192, gen=65, prompt_keep=0.25, prompt_keep_after=8
    )
    plain = rooflens.analyze("llama-3-8b", "h100", batch=1, prompt=8192, gen=65)
    early, late = op(r, "prefill", "q_proj")
    assert (early.count, late.count) == (8, 24)
    assert late.flops == pytest.approx(early.flops / 8 * 24 * 0.25)  # a quarter of the prompt after layer 8
    per_layer_token = 2 * 1024 * 2
    assert r.memory.kv_cache_bytes == 8 * (8192 + 65) * per_layer_token + 24 * (2048 + 65) * per_layer_token
    assert r.ttft_s < 0.45 * plain.ttft_s and r.tpot_s < plain.tpot_s


def test_prompt_compression_composes_with_a_shared_prefix():
    """Each prefill pass keeps its own share of prompt tokens: the prefix pass (S of them) and the
    suffix pass (P - S queries over all P) both shrink by the kept fraction after layer r."""
    r = rooflens.analyze(
        "llama-3-8b", "h100", batch=4, prompt=4000, gen=2, shared_prefix=1000, prompt_keep=0.5,
        prompt_keep_after=4, estimate=False,
    )  # fmt: skip
    (prefix_early, prefix_late) = op(r, "prefill", "q_proj [shared prefix]")
    suffix_early, suffix_late = op(r, "prefill", "q_proj")
    assert prefix_late.flops / 28 == pytest.approx(prefix_early.flops / 4 * 0.5)  # 1000 -> 500 tokens
    assert suffix_late.flops / 28 == pytest.approx(suffix_early.flops / 4 * 0.5)  # 4 x 3000 -> 4 x 1500
    with pytest.raises(RooflensError, match="keeps less than one of the 10 prompt tokens"):
        rooflens.analyze("gpt2", "h100", prompt=10, prompt_keep=0.05)


def test_kv_budget_caps_decode_reads_and_memory():
    r = rooflens.analyze("llama-3-8b", "h100", batch=8, prompt=16000, gen=129, kv_budget=2048)
    attn = op(r, "decode", "attention")[0]
    assert attn.kv_read_bytes == pytest.approx(r.decode.steps * 32 * 8 * 2048 * 2 * 1024 * 2)
    assert r.memory.kv_cache_bytes == 32 * 8 * 2048 * 2 * 1024 * 2
    plain = rooflens.analyze("llama-3-8b", "h100", batch=8, prompt=16000, gen=129)
    assert r.ttft_s == plain.ttft_s  # the whole prompt is still read once


# --- shared prefixes --------------------------------------------------------------------------------


def test_shared_prefix_is_computed_and_stored_once():
    kw = dict(batch=16, prompt=2048, gen=33)
    plain = rooflens.analyze("llama-3-8b", "h100", **kw)
    shared = rooflens.analyze("llama-3-8b", "h100", **kw, shared_prefix=1536)
    q_ops = op(shared, "prefill", "q_proj [shared prefix]") + op(shared, "prefill", "q_proj")
    assert sum(o.flops for o in q_ops) == pytest.approx(32 * 2 * 4096 * 4096 * (1536 + 16 * 512))
    per_token = 32 * 2 * 1024 * 2
    assert shared.memory.kv_cache_bytes == (1536 + 16 * (2048 + 33 - 1536)) * per_token
    assert shared.ttft_s < 0.5 * plain.ttft_s
    assert shared.tpot_s == pytest.approx(plain.tpot_s)  # each sequence still reads its whole context
    once = rooflens.analyze("llama-3-8b", "h100", **kw, shared_prefix=1536, prefix_reads_once=True)
    assert once.tpot_s < plain.tpot_s
    with pytest.raises(RooflensError, match="cannot exceed the prompt"):
        rooflens.analyze("llama-3-8b", "h100", **kw, shared_prefix=4096)


def test_techniques_compose_with_quantization():
    r = rooflens.analyze(
        "llama-3-8b",
        "h100",
        **BASE,
        quant="awq",
        kv_bits=8,
        sparsity="2:4",
        draft_model="llama-3.2-1b",
        kv_budget=512,
        tp=2,
    )
    plain = rooflens.analyze("llama-3-8b", "h100", **BASE)
    assert r.tpot_s < plain.tpot_s and r.memory.total_bytes < plain.memory.total_bytes
    assert "speculative decoding" in "; ".join(r.notes)


def test_shared_prefix_does_not_count_weights_twice():
    plain = rooflens.analyze("llama-3-8b", "h100", batch=32, prompt=2048, gen=129)
    shared = rooflens.analyze("llama-3-8b", "h100", batch=32, prompt=2048, gen=129, shared_prefix=1800)
    assert shared.memory.weights_bytes == plain.memory.weights_bytes
    assert shared.memory.total_bytes < plain.memory.total_bytes
