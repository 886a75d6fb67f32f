"""Number formats (one table for every command), today's hardware, and tiered memory (offloading)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import rooflens
from rooflens import RooflensError
from rooflens.analysis import make_settings
from rooflens.formats import ALIASES, FORMATS, KV_FORMATS, lookup
from rooflens.hardware import list_hardware
from rooflens.memory import resident_weight_bytes
from rooflens.ops import Precision
from rooflens.settings import preset
from rooflens.sweep import sweep
from rooflens.web import create_app

L70 = rooflens.load_model("llama-3-70b")
P70 = L70.params()  # 70B: matrix weights (quantized) and the rest (16-bit)


def precision(name: str) -> Precision:
    return make_settings(**preset(name)).precision


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        # NVFP4: 4-bit values + one 8-bit scale per 16 = 0.5 bits of scale per value.
        ("nvfp4", 4 + 8 / 16),
        # MXFP4: one 8-bit E8M0 scale per 32 = 0.25 bits per value.
        ("mxfp4", 4 + 8 / 32),
        # FP8 with one fp32 scale per 128 x 128 block: 32 / 16,384 bits per value.
        ("fp8-block", 8 + 32 / 16_384),
        # 3-bit groups of 128 with a 16-bit scale and a 3-bit zero point: (16 + 3) / 128 per value.
        ("int3-g128", 3 + 19 / 128),
    ],
)
def test_weight_bytes_of_a_70b_model_by_format(name, bits):
    # Every matrix of Llama-3-70B has input and output widths divisible by 128 (8192, 1024, 28,672), so
    # the scales come out exact; embeddings, head and norms stay 16-bit.
    expected = P70.linear * bits / 8 + (P70.total - P70.linear) * 2
    assert resident_weight_bytes(L70, precision(name)) == pytest.approx(expected, rel=1e-12)
    assert lookup(name).bits_per_value == pytest.approx(bits)


def test_fp4_math_runs_at_the_fp4_peak_where_there_is_one():
    # B200: 9,000 TFLOP/s of dense FP4. The prefill matmuls of an NVFP4 (W4A4) model run there.
    b200 = rooflens.analyze("llama-3-70b", "b200", quant="nvfp4", prompt=2048, gen=2)
    q = next(o for o in b200.prefill.ops if o.name == "q_proj")
    assert (q.peak_dtype, q.peak_flops) == ("fp4", 9000e12)
    assert q.compute_time_s == pytest.approx(q.flops / 9000e12)
    # H100 has no FP4 roof: the same math runs at its FP8 peak, and the report says so.
    h100 = rooflens.analyze("llama-3-70b", "h100", quant="nvfp4", tp=2, prompt=2048, gen=2)
    q = next(o for o in h100.prefill.ops if o.name == "q_proj")
    assert q.peak_dtype == "fp8" and any("no fp4 peak" in n and "fp8 peak" in n for n in h100.notes)
    # Weight-only MXFP4 dequantizes to 16-bit math.
    w4a16 = rooflens.analyze("llama-3-70b", "b200", quant="mxfp4-w4a16", prompt=2048, gen=2)
    assert next(o for o in w4a16.prefill.ops if o.name == "q_proj").peak_dtype == "fp16"


def test_offloaded_70b_on_one_l40s_is_bound_by_pcie():
    # 70% of Llama-3-70B's non-expert weights in host memory. A decode step reads every layer matrix,
    # norm and the LM head (all weights but the embedding table, of which one row): 2 B x (70,553,706,496
    # - 1,050,673,152) + 8192 x 2 B = 139,006,083,072 B; 70% of it crosses PCIe 4.0 x16 (32 GB/s):
    # 97,304,258,150 B, 3.04 s per token, which bounds the step.
    r = rooflens.analyze("llama-3-70b", "l40s", offload_weights=0.7, prompt=512, gen=3)
    moved = 0.7 * (2 * (70_553_706_496 - 128_256 * 8192) + 8192 * 2)
    t = next(o for o in r.decode.ops if o.name == "host_transfer")
    steps = r.decode.steps
    assert t.link_bytes / steps == pytest.approx(moved) and t.time_s / steps == pytest.approx(moved / 32e9)
    assert t.bound == "comm" and r.tpot_s == pytest.approx(
        moved / 32e9 + r.decode.time_s / steps - moved / 32e9
    )
    assert t.time_s > 0.9 * r.decode.time_s  # the link, not the GPU, sets the pace
    # Memory: 30% of the weights stay on the device, 70% in host memory.
    total = 2 * 70_553_706_496
    assert r.memory.weights_bytes == pytest.approx(0.3 * total) and r.memory.host_bytes >= 0.7 * total
    assert r.memory.fits and any("host memory" in n for n in r.notes)


def test_offload_errors_and_suggestions():
    with pytest.raises(RooflensError, match="lists none; give the device a host_link"):
        rooflens.analyze("llama-3-8b", "m2-ultra", offload_weights=0.5)
    with pytest.raises(RooflensError, match="needs a mixture-of-experts model"):
        rooflens.analyze("llama-3-8b", "h100", offload_experts=0.5)
    r = rooflens.analyze("llama-3-70b", "l40s")
    note = next(n for n in r.notes if n.startswith("does not fit"))
    # The note states the shortfall; the ways out are fits_with's, each checked (test_fits_with.py).
    assert "needs 141.7 GB per device, l40s has 51.5 GB" in note and "fits_with lists" in note


def test_kv_formats_by_hand():
    # Llama-3-8B: 8 KV heads x 128 = 1024 values for K per token and layer.
    spec = rooflens.load_model("llama-3-8b")
    one = {
        "bf16": 1024 * 2,
        "fp8": 1024,  # per-tensor scales: nothing stored per vector
        "fp8-head": 1024 + 8 * (16 + 8) / 8,  # a 16-bit scale and an 8-bit zero point per head vector
        "nvfp4": 512 + 1024 / 16,  # 4-bit values and one 8-bit scale per 16
    }
    for name, per_vector in one.items():
        r = rooflens.analyze(spec, "h100", kv_format=name, batch=1, prompt=100, gen=1)
        # 32 layers x (K + V) x 101 tokens.
        assert r.memory.kv_cache_bytes == pytest.approx(32 * 2 * 101 * per_vector), name
    assert set(KV_FORMATS) >= {"bf16", "fp8", "fp8-head", "int8-head", "nvfp4"}


def test_per_module_formats():
    # bf16 attention and MXFP4 experts, chosen per module; the checkpoint's own choice for gpt-oss.
    mix = rooflens.analyze("mixtral-8x7b", "h100", expert_quant="mxfp4-w4a16", tp=2)
    plain = rooflens.analyze("mixtral-8x7b", "h100", tp=2)
    d = mix.to_dict()["precision"]
    assert (d["w_bits"], d["expert_w_bits"]) == (16, 4)
    assert mix.memory.weights_bytes < 0.35 * plain.memory.weights_bytes
    with pytest.raises(RooflensError, match="unknown format 'fp3'"):
        rooflens.analyze("mixtral-8x7b", "h100", expert_quant="fp3")


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(RooflensError, match=r"unknown format 'nvfp3'.*Did you mean 'nvfp4'.*Known: fp16"):
        rooflens.analyze("llama-3-8b", "h100", quant="nvfp3")
    with pytest.raises(RooflensError, match=r"unknown KV-cache format 'fp9'.*Known: bf16"):
        rooflens.analyze("llama-3-8b", "h100", kv_format="fp9")


NAMES = [*FORMATS, *ALIASES]


@pytest.mark.parametrize("name", NAMES)
def test_one_name_gives_the_same_bytes_in_every_command(name):
    """The same format name gives the same memory in analyze, compare and sweep (plan, the web API and
    simulate below; plot runs the analysis)."""
    kw = dict(batch=4, prompt=256, gen=32)
    report = rooflens.analyze("llama-3-8b", "h100", quant=name, **kw)
    total = report.memory.total_bytes
    row = sweep("llama-3-8b", hardware="h100", quant=name, **kw).to_frame().iloc[0]
    assert row.total_bytes == pytest.approx(total, rel=1e-12)
    from rooflens.compare import compare

    cmp = compare([report, rooflens.analyze("llama-3-8b", "h100", **kw)])
    assert next(r for r in cmp.metric_rows() if r["metric"] == "total_bytes")["values"][0] == total


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fp16", "w8a8", "awq", "fp8", "nvfp4", "q4_k_m"])
def test_one_name_in_plan_and_the_web_api(name):
    from rooflens.plan import plan

    kw = dict(batch=4, prompt=256, gen=32)
    total = rooflens.analyze("llama-3-8b", "h100", quant=name, **kw).memory.total_bytes
    p = plan(
        "llama-3-8b", prompt=256, gen=32, ttft=1e6, tpot=1e6, hardware=["h100"], tp=[1], batches=[4],
        quants=[name], kv_formats=["bf16"], every_batch=True,
    )  # fmt: skip
    assert p.entries.iloc[0].memory_per_device_bytes == pytest.approx(total, rel=1e-12)
    res = TestClient(create_app()).post("/api/analyze", json={"model": "llama-3-8b", "quant": name, **kw})
    assert res.status_code == 200 and res.json()["report"]["memory"]["total_bytes"] == pytest.approx(total)
    # simulate reads the same name into the same settings: its KV capacity (memory left after the
    # weights) equals the one the preset's explicit bit widths give.
    from rooflens.serving import simulate
    from rooflens.settings import preset

    run = dict(rate=1.0, prompt=256, gen=32, requests=5, basis="ideal")
    named = simulate("llama-3-8b", "h100", quant=name, **run).summary
    explicit = simulate("llama-3-8b", "h100", **preset(name), **run).summary
    assert named == explicit


def test_todays_hardware():
    devices = {h.name: h for h in list_hardware()}
    assert len(devices) >= 55
    wanted = set(
        [
            "b300",
            "gb200",
            "gb300",
            "h20",
            "h200-nvl",
            "rtx-5090",
            "rtx-pro-6000",
            "gb10",
            "jetson-agx-thor",
            "l40",
            "a800-sxm-80gb",
            "mi350x",
            "mi355x",
            "gaudi3",
            "tpu-v5p",
            "tpu-v6e",
            "tpu-v7",
            "trainium2",
            "xeon-6980p",
            "epyc-9965",
            "mi250x-gcd",
        ]
    )
    assert wanted <= set(devices)
    # The NVL72 rack is one 72-GPU NVLink domain: TP 16 stays on NVLink there, not on the network.
    assert devices["gb200"].scale_up_domain == 72 and devices["b300"].scale_up_domain == 8
    nvl = rooflens.analyze("llama-3.1-405b", "gb200", tp=16, batch=8)
    hgx = rooflens.analyze("llama-3.1-405b", "b200", tp=16, batch=8)  # 8 per NVLink board: 2 nodes
    assert nvl.decode.comm_time_s < 0.5 * hgx.decode.comm_time_s
    # One GCD of an MI250X is half the module.
    assert devices["mi250x-gcd"].memory_bandwidth == pytest.approx(devices["mi250x"].memory_bandwidth / 2)


def test_first_and_last_layers_kept_at_16_bits_by_hand():
    # Llama-3-8B's decoder layer holds q and o (4096 x 4096 each), k and v (4096 x 1024 each) and the
    # gated MLP (3 x 4096 x 14336): 33.55M + 8.39M + 176.16M = 218.1M weights. FP8 stores each in 1 byte
    # (per-channel scales are 0.04% on top), bf16 in 2: keeping layers 0 and 31 at 16 bits adds
    # 2 x 218.1M x 1 B = 436 MB, and those two layers' matmuls run at the 16-bit peak.
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
    fp8 = rooflens.analyze("llama-3-8b", "h100", quant="fp8")
    wide = rooflens.analyze("llama-3-8b", "h100", quant="fp8", wide_layers=1)
    assert wide.memory.weights_bytes - fp8.memory.weights_bytes == pytest.approx(2 * per_layer, rel=1e-3)
    qkv = {o.group: o for o in wide.decode.ops if o.name == "q_proj"}
    assert set(qkv) == {"", "16-bit"}
    assert qkv["16-bit"].layers == (0, 31) and qkv[""].layers == tuple(range(1, 31))
    assert qkv["16-bit"].peak_dtype == "fp16" and qkv[""].peak_dtype == "fp8"
    assert wide.tpot_s > fp8.tpot_s  # more bytes per decode step
    with pytest.raises(RooflensError, match="use at most 16"):
        rooflens.analyze("llama-3-8b", "h100", quant="fp8", wide_layers=17)


def test_a_checkpoint_that_skips_its_outer_layers_keeps_them_at_16_bits():
    # An FP8 checkpoint whose modules_to_not_convert names layers 0 and 3 of 4 (and the head) is read as
    # --wide-layers 1; a list naming other layers, or only the head, is not. A format given in the
    # settings replaces the checkpoint's, outer layers included, unless --wide-layers is given too.
    from rooflens.model import spec_from_config

    def tiny(skip):
        return spec_from_config(
            {
                "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100,
                "quantization_config": {"quant_method": "fp8", "modules_to_not_convert": skip},
            }
        )  # fmt: skip

    outer = tiny(["lm_head", "model.layers.0.self_attn", "model.layers.0.mlp", "model.layers.3.mlp"])
    assert outer.quantization.wide_layers == 1
    assert tiny(["lm_head"]).quantization.wide_layers == 0
    assert tiny(["model.layers.1.mlp", "model.layers.3.mlp"]).quantization.wide_layers == 0
    r = rooflens.analyze(outer, "h100")
    assert {o.group for o in r.decode.ops if o.layers} == {"", "16-bit"}
    assert {o.group for o in rooflens.analyze(outer, "h100", quant="fp8").decode.ops if o.layers} == {""}
    assert {o.group for o in rooflens.analyze(outer, "h100", quant="fp8", wide_layers=1).decode.ops} >= {
        "16-bit"
    }
