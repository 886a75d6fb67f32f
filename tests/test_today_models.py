"""The 2025-26 architectures: parameter counts against the publishers, hand-derived caches, states,
checkpoint formats and hybrid decode steps, and every new family through each entry point."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError, load_model
from rooflens.analysis import precision_for
from rooflens.cli import app
from rooflens.layers import REGISTRY, kind
from rooflens.memory import CacheShape, kv_cache_bytes, resident_weight_bytes, state_bytes
from rooflens.model import spec_from_config
from rooflens.ops import Execution, Pass, Precision, build_ops
from rooflens.ops.heads import mtp_params
from rooflens.settings import Settings
from rooflens.web import create_app

FP16 = Precision()

# One bundled config of every family this issue adds.
NEW_FAMILIES = {
    "gpt_oss": "gpt-oss-20b",
    "llama4_text": "llama-4-scout",
    "gemma3_text": "gemma-3-4b",
    "qwen3_next": "qwen3-next-80b-a3b",
    "mamba2": "mamba-codestral-7b",
    "nemotron_h": "nemotron-h-8b",
    "granitemoehybrid": "granite-4.0-h-tiny",
    "bamba": "bamba-9b",
    "deepseek_v32": "deepseek-v3.2-exp",
    "kimi_k2": "kimi-k2",
    "glm4_moe": "glm-4.5-air",
    "gptj": "gpt-j-6b",
}
NEW_MODELS = [
    *NEW_FAMILIES.values(),
    "gpt-oss-120b",
    "llama-4-maverick",
    "gemma-3-12b",
    "gemma-3-27b",
    "granite-4.0-h-small",
    "deepseek-r1",
    "glm-4.5",
    "glm-4.6",
    "llama-3.3-70b",
    "phi-4",
    "mistral-small-24b",
    "mistral-small-3.1-24b",
]


def raw_config(name: str) -> dict:
    """The bundled config.json of a catalog model, without rooflens's own block."""
    text = (resources.files("rooflens.model") / "catalog" / f"{name}.json").read_text()
    return {k: v for k, v in json.loads(text).items() if k != "_rooflens"}


def tolerance(spec, published: float) -> float:
    """1%, or half the unit a nominal figure ("8B") is rounded to."""
    return max(0.01 * published, (spec.published_params_rounding or 0) / 2)


def test_catalog_reaches_seventy_models_and_every_new_family():
    models = rooflens.model.list_models()
    assert len(models) >= 70
    assert {m.model_type for m in models} >= set(NEW_FAMILIES)
    assert {load_model(n).model_type for n in NEW_FAMILIES.values()} == set(NEW_FAMILIES)


@pytest.mark.parametrize("name", NEW_MODELS)
def test_totals_and_active_counts_match_the_publisher(name):
    spec = load_model(name)
    total = spec.num_params
    if spec.published_params_includes_mtp:  # GLM-4.6's 357B is the checkpoint's, MTP layer included
        total += mtp_params(spec)
    if spec.published_params_unmodelled:  # Llama-4: Meta's figure includes the vision encoder
        assert spec.published_params * 0.98 <= total <= spec.published_params + tolerance(spec, total)
    else:
        assert abs(total - spec.published_params) <= tolerance(spec, spec.published_params)
    if spec.published_active_params:
        assert abs(spec.active_params_as_published - spec.published_active_params) <= tolerance(
            spec, spec.published_active_params
        )


@pytest.mark.parametrize(
    ("name", "exact"),
    [
        # Exact figures the publishers print: the gpt-oss model card's Table 1 (116.83B, 20.91B: two
        # decimals), Mamba-Codestral's and Bamba's checkpoint totals.
        ("mamba-codestral-7b", 7_285_403_648),
        ("bamba-9b", 9_780_235_392),
    ],
)
def test_exact_counts(name, exact):
    assert load_model(name).num_params == exact


def test_gpt_oss_counts_to_the_model_cards_two_decimals():
    big, small = load_model("gpt-oss-120b"), load_model("gpt-oss-20b")
    assert round(big.num_params / 1e9, 2) == 116.83 and round(small.num_params / 1e9, 2) == 20.91
    # Active without the input embedding (the card counts the unembedding, not the embedding).
    assert round(big.active_params_as_published / 1e9, 2) == 5.13
    assert round(small.active_params_as_published / 1e9, 2) == 3.61


# --- layer structure read from the configs -----------------------------------------------------------


def test_layer_types_are_honoured():
    oss = load_model("gpt-oss-120b")
    assert oss.attention_kinds().count("sliding") == 18 and oss.attention_kinds()[:2] == ("sliding", "full")
    gemma = load_model("gemma-3-27b")  # five local to one global: layers 5, 11, ..., 59 are global
    assert [i for i, k in enumerate(gemma.attention_kinds()) if k == "full"] == list(range(5, 62, 6))
    scout = load_model("llama-4-scout")  # NoPE global attention on every fourth layer
    assert scout.attention_kinds()[:4] == ("chunked", "chunked", "chunked", "full_nope")
    assert set(scout.mlp_kinds()) == {"moe"}
    maverick = load_model("llama-4-maverick")  # MoE on every second layer, dense between
    assert maverick.mlp_kinds()[:2] == ("dense", "moe") and maverick.mlp_kinds().count("moe") == 24
    nemotron = load_model("nemotron-h-8b")
    assert nemotron.layers[:2] == (("mamba2", "no_ffn"), ("no_mixer", "dense"))
    assert nemotron.attention_kinds().count("full") == 4
    nxt = load_model("qwen3-next-80b-a3b")
    assert (
        nxt.attention_kinds()[:4] == ("gdn", "gdn", "gdn", "full")
        and nxt.attention_kinds().count("full") == 12
    )


def test_mixtral_and_mistral_read_layer_types():
    cfg = {
        **raw_config("mixtral-8x7b"),
        "sliding_window": 4096,
        "layer_types": ["sliding_attention", "full_attention"] * 16,
    }
    spec = spec_from_config(cfg)
    assert spec.attention_kinds().count("sliding") == 16


def test_unknown_layer_type_names_its_index():
    cfg = {**raw_config("gemma-3-4b")["text_config"], "model_type": "gemma3_text"}
    cfg["layer_types"] = ["sliding_attention"] * 5 + ["weird_attention"] + ["full_attention"] * 28
    with pytest.raises(RooflensError, match=r"layer_types\[5\] is 'weird_attention'.*known: full_attention"):
        spec_from_config(cfg)
    with pytest.raises(RooflensError, match=r"layer 3 of hybrid_override_pattern is '\?'"):
        spec_from_config({**raw_config("nemotron-h-8b"), "hybrid_override_pattern": "M-M?" + "M-" * 24})


def test_unknown_kind_in_a_spec_names_layer_and_kind():
    spec = load_model("llama-3.2-1b")
    with pytest.raises(ValueError, match=r"layer 2 has mixer kind 'lstm'.*known: full"):
        spec.model_validate({**spec.model_dump(), "layer_attention": ("full",) * 2 + ("lstm",) * 14})


def test_unknown_model_type_names_the_nearest_and_the_missing_fields():
    with pytest.raises(
        RooflensError, match=r"'mamba' is not supported yet.*Nearest: mamba2.*lacks hidden_size"
    ):
        spec_from_config({"model_type": "mamba"})
    cfg = {**raw_config("llama-3-8b"), "model_type": "llama5"}
    with pytest.raises(RooflensError, match=r"Nearest: llama.*set \"model_type\": \"llama\""):
        spec_from_config(cfg)


# --- hand-derived caches and states --------------------------------------------------------------------


def test_gemma3_kv_cache_at_32k():
    # Gemma-3-27B: 62 layers, global where (i + 1) % 6 == 0: 10 global, 52 local with a 1024 window.
    # 16 KV heads x 128 = 2048 values for K and as many for V, 2 bytes each: 8192 B per token and layer.
    # Global: 10 x 32768 x 8192 = 2,684,354,560; local: 52 x 1024 x 8192 = 436,207,616.
    spec = load_model("gemma-3-27b")
    kv = kv_cache_bytes(spec, FP16, CacheShape(1, 32000, 768))
    assert kv == 2_684_354_560 + 436_207_616


def test_gpt_oss_kv_cache_at_32k():
    # gpt-oss-120b: 36 layers alternating banded (128) and full; 8 KV heads x 64 = 512 values for K and
    # V, 2 bytes: 2048 B per token and layer. Full: 18 x 32768 x 2048 = 1,207,959,552; banded:
    # 18 x 128 x 2048 = 4,718,592. Batch 2 doubles both.
    spec = load_model("gpt-oss-120b")
    assert kv_cache_bytes(spec, FP16, CacheShape(2, 32000, 768)) == 2 * (1_207_959_552 + 4_718_592)


def test_mamba2_state():
    # Mamba-Codestral: 128 heads x 64 channels x 128 state = 1,048,576 state values per layer; the
    # conv window holds 3 (kernel 4 - 1) of 8192 + 2 x 8 groups x 128 = 10,240 channels = 30,720.
    # (1,048,576 + 30,720) x 2 B = 2,158,592 B per layer; 64 layers: 138,149,888 B per sequence.
    spec = load_model("mamba-codestral-7b")
    assert kind("mamba2").cache(spec, FP16).state == 2_158_592
    assert state_bytes(spec, FP16, 3) == 3 * 138_149_888
    assert kv_cache_bytes(spec, FP16, CacheShape(3, 4096, 4096)) == 0  # nothing grows with the context
    # The state does not depend on the context, unlike a KV cache.
    r1 = rooflens.analyze(spec, "a100", prompt=1000, gen=2)
    r2 = rooflens.analyze(spec, "a100", prompt=100_000, gen=2)
    assert r1.memory.state_bytes == r2.memory.state_bytes == 138_149_888


def test_gated_deltanet_state():
    # Qwen3-Next: 32 value heads x 128 x 128 = 524,288 state values per layer; the conv window holds 3
    # of 2 x 16 x 128 + 32 x 128 = 8192 channels = 24,576. (524,288 + 24,576) x 2 B = 1,097,728 B;
    # 36 linear-attention layers: 39,518,208 B per sequence. Under TP 2 each rank holds half the heads.
    spec = load_model("qwen3-next-80b-a3b")
    assert kind("gdn").cache(spec, FP16).state == 1_097_728
    assert state_bytes(spec, FP16, 1) == 39_518_208
    assert state_bytes(spec, FP16, 1, Execution(tp=2)) == 39_518_208 / 2
    # Its 12 attention layers: 2 KV heads x 256 = 512 values for K and V: 2048 B per token and layer.
    assert kv_cache_bytes(spec, FP16, CacheShape(1, 1000, 24)) == 12 * 1024 * 2048


def test_state_counts_in_the_largest_batch():
    # 80 GB H100 capacity 85.9 GB; the state is per sequence, so the batch that fits shrinks by it.
    spec = load_model("mamba-codestral-7b")
    r = rooflens.analyze(spec, "h100", batch=4, prompt=1024, gen=128)
    per_sequence = (r.memory.state_bytes + r.memory.kv_cache_bytes + r.memory.activations_bytes) / 4
    free = r.memory.capacity_bytes - r.memory.weights_bytes - r.memory.overhead_bytes
    assert r.memory.max_batch == int(free // per_sequence)
    assert r.to_dict()["memory"]["state_bytes"] == 4 * 138_149_888


def test_hybrid_decode_step_grows_only_in_its_attention_layers():
    # Nemotron-H-8B: 4 attention layers of 8 KV heads x 128 (K and V: 4096 B per token), 24 Mamba-2
    # layers, 24 MLPs. One more context token adds K and V reads in the attention layers only:
    # from context 1000 to 2000, 4 x 1000 x 4096 = 16,384,000 B more, and 4 layers x 32 heads x 1000
    # keys x (2 x 2 x 128 + 5 softmax) = 66,176,000 FLOPs more; every other op is unchanged.
    spec = load_model("nemotron-h-8b")
    a = build_ops(spec, FP16, Pass(1, 1.0, 1000.0))
    b = build_ops(spec, FP16, Pass(1, 1.0, 2000.0))
    grown = {x.name for x, y in zip(a, b, strict=True) if x.bytes != y.bytes or x.flops != y.flops}
    assert grown == {"attention"}
    assert sum(y.count * y.bytes - x.count * x.bytes for x, y in zip(a, b, strict=True)) == 16_384_000
    assert sum(y.count * y.flops - x.count * x.flops for x, y in zip(a, b, strict=True)) == 66_176_000
    # The Mamba scan reads and writes its state once: 128 heads x 64 x 128 values x 2 B each way.
    scan = next(op for op in a if op.name == "ssd_scan")
    assert scan.kv_read_bytes == scan.kv_write_bytes == 128 * 64 * 128 * 2


def test_mamba2_scan_flops():
    # Decode (one token): 5 FLOPs per state value plus the skip: 5 x 128 x 64 x 128 + 2 x 128 x 64.
    spec = load_model("mamba-codestral-7b")
    decode = next(op for op in build_ops(spec, FP16, Pass(1, 1.0, 10.0)) if op.name == "ssd_scan")
    assert decode.flops == 5 * 128 * 64 * 128 + 2 * 128 * 64
    # Prefill of 512 tokens, chunks of 256: per token 2 x 256 x (8 x 128 + 128 x 64) within the chunk,
    # 4 x 128 x 64 x 128 across chunks, plus the skip; a fresh sequence reads no state.
    prefill = next(op for op in build_ops(spec, FP16, Pass(1, 512.0, 512.0)) if op.name == "ssd_scan")
    per_token = 2 * 256 * (8 * 128 + 128 * 64) + 4 * 128 * 64 * 128 + 2 * 128 * 64
    assert prefill.flops == 512 * per_token
    assert prefill.kv_read_bytes == 0 and prefill.kv_write_bytes == 128 * 64 * 128 * 2


def test_chunked_attention_keys():
    # Llama-4's chunks of 8192: a decode query at position 10,000 sees the keys from 8193 on: 1808.
    spec = load_model("llama-4-scout")
    ops = build_ops(spec, FP16, Pass(1, 1.0, 10_000.0))
    chunked = next(op for op in ops if op.name == "attention" and op.group.startswith("chunked"))
    full = next(op for op in ops if op.name == "attention" and "no rope" in op.group)
    # K and V of 8 KV heads x 128 values, 2 bytes: 4096 B per key.
    assert chunked.kv_read_bytes == 1808 * 4096 and full.kv_read_bytes == 10_000 * 4096
    # The cache keeps one chunk on the 36 chunked layers and everything on the 12 global ones.
    kv = kv_cache_bytes(spec, FP16, CacheShape(1, 20_000, 1))
    assert kv == 36 * 8192 * 4096 + 12 * 20_001 * 4096


# --- the checkpoint's own format ------------------------------------------------------------------------


def test_gpt_oss_mxfp4_expert_bytes():
    # gpt-oss-120b's experts: 36 layers x 128 experts of gate_up (2880 -> 5760) and down (2880 -> 2880).
    # 4-bit values: (16,588,800 + 8,294,400) x 0.5 B = 12,441,600 B; one E8M0 (1-byte) scale per 32
    # inputs: 5760 x 90 + 2880 x 90 = 777,600 B; bf16 biases (5760 + 2880) x 2 = 17,280 B.
    # Per expert 13,236,480 B; all: 36 x 128 x 13,236,480 = 60,993,699,840 B. Everything else
    # (attention, router, norms, sinks, embeddings, head) stays bf16: 2 B per parameter.
    spec = load_model("gpt-oss-120b")
    prec = precision_for(spec, Settings())
    routed = 36 * 128 * (2880 * 5760 + 2880 * 2880 + 5760 + 2880)
    assert resident_weight_bytes(spec, prec) == (spec.num_params - routed) * 2 + 60_993_699_840
    r = rooflens.analyze("gpt-oss-120b", "h100")
    assert "MXFP4" in r.notes[0] and r.to_dict()["precision"]["expert_w_bits"] == 4


def test_deepseek_r1_fp8_block_scales():
    # DeepSeek-R1's FP8 with one fp32 scale per 128x128 block: q_b_proj (1536 -> 128 x 192 = 24,576)
    # is 37,748,736 B of values and 12 x 192 blocks x 4 B = 9,216 B of scales; kv_a_proj
    # (7168 -> 576) is 4,128,768 B and 56 x 5 x 4 = 1,120 B.
    spec = load_model("deepseek-r1")
    prec = precision_for(spec, Settings())
    assert (prec.w_bits, prec.a_bits, prec.low_bit, prec.block_rows) == (8, 8, "float", 128)
    ops = {op.name: op for op in build_ops(spec, prec, Pass(1, 1.0, 1.0))}
    assert ops["q_b_proj"].weight_bytes == 37_748_736 + 9_216
    assert ops["kv_a_proj"].weight_bytes == 4_128_768 + 1_120
    assert ops["q_b_proj"].dtype == "fp8"
    # The whole model: about 1 byte per matrix weight (scales add 4 / 16,384 per value), 2 B for the rest.
    p = spec.params()
    weights = resident_weight_bytes(spec, prec)
    assert (
        p.linear + 2 * (p.total - p.linear)
        < weights
        < p.linear * (1 + 4.01 / 16_384) + 2 * (p.total - p.linear)
    )
    # Half the 16-bit figure the tool used to report for it.
    assert weights < 0.52 * resident_weight_bytes(spec, FP16)


def test_quant_options_override_the_checkpoint_with_a_note():
    r = rooflens.analyze("deepseek-r1", "h200", tp=8, w_bits=4)
    assert r.to_dict()["precision"]["w_bits"] == 4
    assert any("overriding the checkpoint's FP8" in n for n in r.notes)
    r16 = rooflens.analyze("deepseek-r1", "h200", tp=8, quant="bf16")
    assert r16.to_dict()["precision"]["w_bits"] == 16


def test_quantization_configs_are_read():
    from rooflens.model.families import checkpoint_quant

    awq = checkpoint_quant({"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}})
    assert (awq.bits, awq.group_size, awq.symmetric) == (4, 128, False)
    gptq = checkpoint_quant(
        {"quantization_config": {"quant_method": "gptq", "bits": 3, "group_size": 128, "sym": True}}
    )
    assert (gptq.bits, gptq.symmetric) == (3, True)
    ct = checkpoint_quant(
        {
            "quantization_config": {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {
                        "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                        "input_activations": {"num_bits": 8, "type": "float"},
                    }
                },
            }
        }
    )
    assert (ct.bits, ct.number_format, ct.activations) == (8, "float", 8)
    assert checkpoint_quant({"quantization_config": {"quant_method": "bitsandbytes"}}) == "bitsandbytes"
    with pytest.raises(RooflensError, match="bits"):
        checkpoint_quant({"quantization_config": {"quant_method": "awq", "bits": "four"}})


def test_unread_quantization_is_said():
    cfg = {**raw_config("llama-3-8b"), "quantization_config": {"quant_method": "bitsandbytes"}}
    r = rooflens.analyze(cfg, "h100")
    assert any("bitsandbytes" in n and "not read" in n for n in r.notes)


# --- head-based speculative decoding -----------------------------------------------------------------


def test_mtp_layer_params_and_memory():
    # DeepSeek-R1's MTP module: eh_proj (14,336 -> 7168), three norms (7168 each), one MLA + MoE layer
    # like the model's last: 11.6 B parameters (DeepSeek's 14B counts the embedding and head copies).
    spec = load_model("deepseek-r1")
    assert 11.5e9 < mtp_params(spec) < 11.7e9
    plain = rooflens.analyze(spec, "h200", tp=8)
    mtp = rooflens.analyze(spec, "h200", tp=8, spec_heads="mtp", draft_tokens=1, acceptance_rate=0.9)
    assert mtp.memory.weights_bytes > plain.memory.weights_bytes
    assert mtp.tpot_s < plain.tpot_s
    assert mtp.to_dict()["speculative"]["method"] == "mtp"
    with pytest.raises(RooflensError, match="no multi-token prediction"):
        rooflens.analyze("llama-3-8b", "h100", spec_heads="mtp")


def test_medusa_heads_weights():
    # Five Medusa heads on Llama-3-8B: each h x h (+ bias) and h x vocab: 5 x (4096^2 + 4096 + 4096 x
    # 128,256) parameters at 2 bytes = 5,421,342,720 B added to memory.
    base = rooflens.analyze("llama-3-8b", "h100")
    med = rooflens.analyze("llama-3-8b", "h100", spec_heads="medusa", draft_tokens=5, verify_tokens=32)
    assert med.memory.weights_bytes - base.memory.weights_bytes == 5 * (4096**2 + 4096 + 4096 * 128_256) * 2
    assert med.to_dict()["speculative"]["verify_tokens"] == 32


def test_eagle3_zero_acceptance_is_never_faster():
    plain = rooflens.analyze("llama-3.1-8b", "h100", gen=64)
    eagle = rooflens.analyze("llama-3.1-8b", "h100", gen=64, spec_heads="eagle3", acceptance_rate=0.0)
    assert eagle.tpot_s > plain.tpot_s
    with pytest.raises(RooflensError, match="not both"):
        rooflens.analyze("llama-3.1-8b", "h100", spec_heads="eagle3", draft_model="llama-3.2-1b")


# --- every entry point -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NEW_FAMILIES.values()))
def test_every_new_family_analyses_from_a_pasted_config(name, tmp_path):
    cfg = raw_config(name)
    by_name = rooflens.analyze(name, "h200", tp=8 if load_model(name).num_params > 100e9 else 1, gen=8)
    pasted = rooflens.analyze(cfg, "h200", tp=by_name.settings.tp, gen=8)
    assert pasted.tpot_s == by_name.tpot_s and pasted.memory.total_bytes == by_name.memory.total_bytes
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = CliRunner().invoke(
        app, ["analyze", str(path), "-H", "h200", "--tp", str(by_name.settings.tp), "-g", "8", "-f", "json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["decode"]["tpot_s"] == pytest.approx(by_name.tpot_s)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt-oss-20b", "qwen3-next-80b-a3b", "nemotron-h-8b", "gemma-3-4b"])
def test_web_api_takes_new_configs(name):
    client = TestClient(create_app())
    cfg = raw_config(name)
    res = client.post("/api/analyze", json={"config": cfg, "hardware": "h200", "gen": 8})
    assert res.status_code == 200, res.text
    report = res.json()["report"]
    assert report["decode"]["tpot_s"] == pytest.approx(rooflens.analyze(cfg, "h200", gen=8).tpot_s)


def test_every_registered_kind_builds_operators_for_a_model_that_uses_it():
    used = {k for m in rooflens.model.list_models() for k in m.attention_kinds() + m.mlp_kinds()}
    assert set(REGISTRY) == used  # no kind without a bundled model that exercises it


@pytest.mark.slow
def test_readme_figures_for_todays_architectures():
    """The figures the README's "Today's architectures" section quotes."""
    oss = rooflens.analyze("gpt-oss-120b", "h100", prompt=32000, gen=768)
    assert (
        round(oss.memory.kv_cache_bytes / 1e9, 2) == 1.21 and round(oss.memory.weights_bytes / 1e9, 1) == 65.2
    )
    bf16 = rooflens.analyze("gpt-oss-120b", "h100", prompt=32000, gen=768, quant="bf16")
    assert round(bf16.memory.weights_bytes / 1e9) == 234
    nxt = rooflens.analyze("qwen3-next-80b-a3b", "h200", prompt=131072, gen=2)
    assert round(nxt.memory.kv_cache_bytes / 1e9, 2) == 3.22 and round(nxt.memory.state_bytes / 1e6) == 40
    dense = rooflens.analyze("qwen3-30b-a3b", "h200", prompt=131072, gen=2)
    assert round(dense.memory.kv_cache_bytes / 1e9, 1) == 12.9
    r1 = rooflens.analyze("deepseek-r1", "h200", tp=8)
    assert round(r1.memory.weights_bytes / 1e9, 1) == 85.0
    assert (
        round(rooflens.analyze("deepseek-r1", "h200", tp=8, quant="bf16").memory.weights_bytes / 1e9) == 170
    )
    kw = dict(tp=8, batch=8, prompt=2048, gen=513)
    plain = rooflens.analyze("deepseek-r1", "h200", **kw)
    mtp = rooflens.analyze(
        "deepseek-r1", "h200", **kw, spec_heads="mtp", draft_tokens=1, acceptance_rate=0.85
    )
    assert (round(plain.tpot_s * 1e3, 2), round(mtp.tpot_s * 1e3, 2)) == (8.25, 6.21)
    assert round((mtp.memory.weights_bytes - plain.memory.weights_bytes) / 1e9, 1) == 1.8


# --- found in review --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sweeps_and_simulations_keep_the_checkpoint_format():
    from rooflens.sweep import sweep

    r = rooflens.analyze("gpt-oss-120b", "h100", batch=4, prompt=512, gen=32)
    row = sweep("gpt-oss-120b", hardware="h100", batch=4, prompt=512, gen=32).to_frame().iloc[0]
    assert row.weights_bytes == r.memory.weights_bytes and row.tpot_s == pytest.approx(r.tpot_s, rel=1e-9)
    assert (row.w_bits, row.a_bits) == (16, 16)  # attention in bf16; the experts' MXFP4 is in the bytes
    q4 = rooflens.analyze("llama-3-8b", "h100", quant="q4_0")
    row = sweep("llama-3-8b", hardware="h100", quant="q4_0").to_frame().iloc[0]
    assert row.weights_bytes == q4.memory.weights_bytes and row.w_bits == 4
    with pytest.raises(RooflensError, match="spec_heads"):
        sweep("deepseek-r1", hardware="h200", tp=8, spec_heads="mtp")


def test_hybrid_mamba_head_dim_is_read():
    # Bamba's mamba_d_head: 32-wide heads, 256 of them (the same 8192 inner width) give the same
    # parameters; "auto" derives the width from expand x hidden / heads.
    cfg = raw_config("bamba-9b")
    narrow = spec_from_config({**cfg, "mamba_d_head": 32, "mamba_n_heads": 256})
    auto = spec_from_config({**cfg, "mamba_d_head": "auto", "mamba_n_heads": 256})
    assert (narrow.ssm_head_dim, narrow.ssm_heads) == (32, 256) == (auto.ssm_head_dim, auto.ssm_heads)
    # in_proj grows by the 128 extra dt heads (h x 128) and A, D, dt bias by 3 x 128, on 29 Mamba layers.
    assert narrow.num_params - load_model("bamba-9b").num_params == 29 * (4096 * 128 + 3 * 128)


def test_a_dense_checkpoint_skipping_some_attention_is_still_quantized():
    cfg = {
        **raw_config("llama-3-8b"),
        "quantization_config": {
            "quant_method": "awq",
            "bits": 4,
            "group_size": 128,
            "modules_to_not_convert": ["model.layers.0.self_attn.o_proj"],
        },
    }
    spec = spec_from_config(cfg)
    assert not spec.quantization.experts_only
    assert rooflens.analyze(cfg, "h100").memory.weights_bytes < 6e9  # not the 16 GB of bf16


def test_chunked_attention_under_a_kv_budget_keeps_its_chunks():
    # At context 8200 a Llama-4 chunked layer sees the 8 keys of its chunk (8193-8200); a 512-token
    # budget leaves it alone, while it caps the global layers at 512 keys.
    spec = load_model("llama-4-scout")
    ops = build_ops(spec, FP16, Pass(1, 1.0, 8200.0), Execution(kv_budget=512))
    reads = {op.group.split(",")[0]: op.kv_read_bytes / 4096 for op in ops if op.name == "attention"}
    assert reads == {"chunked": 8, "no rope": 512}


@pytest.mark.slow
def test_mtp_under_expert_parallelism_holds_its_share_of_the_experts():
    # The MTP layer's 256 experts are spread like the model's: at EP 8 it adds less than at TP 8 x 1/8
    # of its experts... each device holds 32 of the MTP layer's 256 experts.
    plain = rooflens.analyze("deepseek-r1", "h200", ep=8, batch=8)
    mtp = rooflens.analyze("deepseek-r1", "h200", ep=8, batch=8, spec_heads="mtp")
    # 32 experts x 3 x 7168 x 2048 FP8 values (+ block scales) is 1.41 GB; the MTP layer's attention,
    # shared expert, eh_proj and norms stay whole on every device (about 2.2 GB in FP8 and bf16).
    extra = mtp.memory.weights_bytes - plain.memory.weights_bytes
    assert 3.0e9 < extra < 4.0e9
    assert (
        rooflens.analyze("deepseek-r1", "h200", tp=8, batch=8, spec_heads="mtp").tpot_s
        < rooflens.analyze("deepseek-r1", "h200", tp=8, batch=8).tpot_s
    )
