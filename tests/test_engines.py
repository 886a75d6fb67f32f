"""Engines as an input, the efficiency model's terms (each by hand, on a synthetic profile), the
profile fallback chain, and the estimate's p10-p90 range."""

from __future__ import annotations

import numpy as np
import pytest

import rooflens
from rooflens import RooflensError
from rooflens.engine import default_engine, engine_names, get_engine
from rooflens.hardware.efficiency import EfficiencyProfile, published_profile

BOX = {
    "name": "box",
    "memory_bytes": "80 GiB",
    "memory_bandwidth": "1 TB/s",
    "peak_flops": {"fp16": "100 TFLOPS", "fp8": "200 TFLOPS"},
    "interconnect": {"name": "link", "bandwidth": "100 GB/s", "latency_s": "1 us"},
}


def _profile(**kw) -> EfficiencyProfile:
    """Efficiency 1 everywhere and no fixed cost: each test switches on one term."""
    base = dict(engine="test", source="synthetic", tokens=[1.0, 1024.0], matmul=[1.0, 1.0])
    return EfficiencyProfile(**{**base, **kw})


def _run(profile: EfficiencyProfile, model: str = "gpt2", **settings):
    return rooflens.analyze(model, {**BOX, "efficiency": [profile.model_dump()]}, **settings)


# --- one term at a time ------------------------------------------------------------------------------


def test_per_sequence_cost_is_paid_per_sequence_per_step():
    # batch 4, gen 3: two decode steps of 4 sequences at 1 ms each -> 8 ms over the ideal.
    r = _run(_profile(seq_overhead_s=1e-3), batch=4, prompt=64, gen=3)
    assert r.decode.estimate_s - r.decode.time_s == pytest.approx(2 * 4 * 1e-3, rel=1e-9)
    # The prefill pass is one step of 4 sequences: 4 ms.
    assert r.ttft_estimate_s - r.ttft_s == pytest.approx(4e-3, rel=1e-9)


def test_per_step_cost_is_paid_once_per_pass():
    r = _run(_profile(step_overhead_s=5e-4), batch=8, prompt=64, gen=5)
    assert r.decode.estimate_s - r.decode.time_s == pytest.approx(4 * 5e-4, rel=1e-9)


def test_attention_efficiency_follows_the_attended_context():
    # Factor 0.5 at 512 tokens of context, 1 at 32768; log-linear between: at 4096 (the geometric
    # midpoint, log2 9 of 9..15) 0.5 + 0.5 * (12 - 9) / (15 - 9) = 0.75.
    p = _profile(attention_by_context=[0.5, 1.0])
    for context, factor in ((512, 0.5), (4096, 0.75), (32768, 1.0), (100, 0.5), (1e6, 1.0)):
        assert p.efficiency("attention", "attention", 1.0, context=context) == pytest.approx(factor)
    # In an analysis: the attention operator's estimate at prompt 512 (prefill attends 512) is twice
    # its ideal; a matmul's is its ideal.
    r = _run(p, batch=1, prompt=512, gen=2)
    att = next(o for o in r.prefill.ops if o.kind == "attention")
    mm = next(o for o in r.prefill.ops if o.kind == "matmul")
    assert att.estimate_s == pytest.approx(att.time_s / 0.5) and mm.estimate_s == pytest.approx(mm.time_s)


def test_low_precision_matmuls_take_their_own_factor():
    p = _profile(low_precision={"fp8": 0.5})
    assert p.efficiency("matmul", "matmul", 64.0, dtype="fp8") == pytest.approx(0.5)
    assert p.efficiency("matmul", "matmul", 64.0, dtype="fp16") == pytest.approx(1.0)
    assert p.efficiency("add", "elementwise", 64.0, dtype="fp8") == pytest.approx(1.0)  # matmuls only
    r = _run(p, batch=1, prompt=256, gen=2, quant="fp8")
    fp8 = [o for o in r.prefill.ops if o.kind == "matmul" and o.dtype == "fp8"]
    assert fp8 and all(o.estimate_s == pytest.approx(o.time_s / 0.5) for o in fp8)


def test_grouped_gemm_efficiency_keys_on_tokens_per_expert():
    # Mixtral: 8 experts, top 2, uniform routing. One decode token touches 8 (1 - (1 - 1/4)^1) = 2
    # experts with 2 assignments: 1 token per expert. A 1024-token prefill touches all 8 (to within
    # 8 (3/4)^1024, nothing) with 2048 assignments: 256 tokens per expert.
    p = _profile(classes={"grouped": [0.25, 1.0]})
    r = _run(p, "mixtral-8x7b", batch=1, prompt=1024, gen=2)
    decode = next(o for o in r.decode.ops if o.name == "experts_gate_up")
    prefill = next(o for o in r.prefill.ops if o.name == "experts_gate_up")
    assert decode.impl == "grouped" and decode.eff_tokens == pytest.approx(1.0)
    assert prefill.eff_tokens == pytest.approx(256.0)
    # eff at 256 tokens per expert: 0.25 + 0.75 * log(256) / log(1024) = 0.25 + 0.75 * 0.8 = 0.85.
    assert prefill.estimate_s == pytest.approx(prefill.time_s / 0.85)
    assert decode.estimate_s == pytest.approx(decode.time_s / 0.25)


def test_collectives_take_the_fitted_bandwidth_share_and_latency():
    p = _profile(comm_efficiency=0.5, comm_latency_s=1e-5)
    r = _run(p, "llama-3-8b", batch=1, prompt=128, gen=2, tp=2)
    comm = [o for o in r.prefill.ops if o.kind == "comm"]
    assert comm
    for o in comm:
        bandwidth_part = o.time_s - o.latency_time_s  # bytes / 100 GB/s
        # bytes / (0.5 x 100 GB/s) + messages x (1 us + 10 us)
        expected = 2 * bandwidth_part + o.messages * (1e-6 + 1e-5)
        assert o.estimate_s == pytest.approx(expected, rel=1e-9)


def test_identical_prompts_route_to_the_same_experts():
    # 64 identical sequences decode the same token: 2 of Mixtral's 8 experts, as one sequence does.
    # Uniform routing of 64 distinct tokens touches 8 (1 - (3/4)^64) = 8 experts (to 1e-7).
    same = rooflens.analyze("mixtral-8x7b", "h100", batch=64, prompt=256, gen=2, routing="identical")
    mixed = rooflens.analyze("mixtral-8x7b", "h100", batch=64, prompt=256, gen=2)
    one = rooflens.analyze("mixtral-8x7b", "h100", batch=1, prompt=256, gen=2)

    def expert_bytes(r):
        return next(o for o in r.decode.ops if o.name == "experts_gate_up").weight_bytes

    assert expert_bytes(same) == pytest.approx(expert_bytes(one))
    assert expert_bytes(mixed) == pytest.approx(4 * expert_bytes(one), rel=1e-6)  # 8 experts vs 2
    zipf = rooflens.analyze("mixtral-8x7b", "h100", batch=64, prompt=256, gen=2, routing="zipf")
    assert zipf.settings.routing_skew == 1.0 and expert_bytes(zipf) < expert_bytes(mixed)


# --- engines and the fallback chain ---------------------------------------------------------------------


def test_engines_have_one_home_with_sourced_scheduler_defaults():
    assert {"vllm", "sglang", "tensorrt-llm", "llama.cpp", "mlx", "transformers"} <= set(engine_names())
    for name in engine_names():
        info = get_engine(name)
        assert set(info.scheduler) <= set(info.sources), name  # every default has its source
    assert get_engine("TRTLLM").name == "tensorrt-llm" and get_engine("llama.cpp-cuda").name == "llama.cpp"
    assert default_engine("NVIDIA", "gpu") == "vllm" and default_engine("Apple", "apple") == "llama.cpp"
    assert default_engine("Intel", "cpu") is None
    assert default_engine("AMD", "cpu") is None  # an EPYC is not an Instinct GPU
    assert rooflens.analyze("llama-3-8b", "epyc-9654", prompt=64, gen=4).profile is None
    with pytest.raises(RooflensError, match="unknown engine 'nope'; known engines: vllm, sglang"):
        get_engine("nope")


def test_profiles_fall_back_from_device_to_generation_to_engine_to_all():
    # TensorRT-LLM measured on the H100 itself: its own profile, not extrapolated.
    own = published_profile("tensorrt-llm", "h100-sxm", "NVIDIA", "hopper")
    assert own.scope == "tensorrt-llm on h100-sxm" and not own.extrapolated
    # A Hopper part it never ran on: the Hopper generation's profile, flagged extrapolated.
    h20 = published_profile("tensorrt-llm", "h20", "NVIDIA", "hopper")
    assert h20.scope == "tensorrt-llm on nvidia-hopper" and h20.extrapolated
    # A vendor it never ran on: the engine across devices.
    tpu = published_profile("tensorrt-llm", "tpu-v5e", "Google", "")
    assert tpu.scope == "tensorrt-llm, all devices" and tpu.extrapolated
    # An engine with no published rows at all: every engine's fit on that generation, else on all.
    none = published_profile("transformers", "h100-sxm", "NVIDIA", "hopper")
    assert none.scope == "all engines on nvidia-hopper" and none.extrapolated
    nothing = published_profile("transformers", "tpu-v5e", "Google", "")
    assert nothing.scope == "all engines, all devices" and nothing.extrapolated
    # llama.cpp names its backend by the device's vendor.
    r = rooflens.analyze("llama-2-7b", "m2-ultra", engine="llama.cpp", prompt=128, gen=4)
    assert r.profile.engine == "llama.cpp-metal"


def test_extrapolated_ranges_are_never_narrower():
    own = published_profile("tensorrt-llm", "h100-sxm", "NVIDIA", "hopper")
    far = published_profile("tensorrt-llm", "h20", "NVIDIA", "hopper")
    for key, (lo, hi) in own.intervals.items():
        assert far.intervals[key][0] <= lo and far.intervals[key][1] >= hi, key


def test_every_estimate_carries_its_range():
    r = rooflens.analyze("llama-3-8b", "h100", batch=8, prompt=512, gen=64, engine="vllm")
    d = r.to_dict(timeline=False)
    for key, value in (
        ("ttft_estimate_range_s", r.ttft_estimate_s),
        ("tpot_estimate_range_s", r.tpot_estimate_s),
        ("total_estimate_range_s", r.total_estimate_s),
        ("throughput_estimate_range_tokens_per_s", r.throughput_estimate_tokens_per_s),
    ):
        lo, hi = d[key]
        assert lo <= value <= hi and lo < hi, key
    # The range is the estimate times the profile's p10/p90 factors for that kind of figure.
    lo_f, hi_f = r.profile.intervals["decode"]
    assert d["tpot_estimate_range_s"] == pytest.approx([r.tpot_estimate_s * lo_f, r.tpot_estimate_s * hi_f])
    # Throughput's range is the end-to-end range turned over: tokens / high time .. tokens / low time.
    lo_t, hi_t = d["total_estimate_range_s"]
    assert d["throughput_estimate_range_tokens_per_s"] == pytest.approx([8 * 64 / hi_t, 8 * 64 / lo_t])
    assert d["estimate"]["extrapolated"] is False and d["estimate"]["scope"]
    bare = rooflens.analyze("llama-3-8b", "h100", estimate=False).to_dict(timeline=False)
    assert bare["ttft_estimate_range_s"] is None


def test_a_device_own_profile_gets_the_widest_published_range():
    r = _run(_profile(), batch=1, prompt=64, gen=4)
    assert r.profile.intervals == {} and r.ttft_estimate_range_s is not None
    lo, hi = r.ttft_estimate_range_s
    assert lo < r.ttft_estimate_s < hi


def test_profile_fields_are_validated():
    with pytest.raises(ValueError, match="attention_by_context needs 2 factors"):
        _profile(attention_by_context=[0.5])
    with pytest.raises(ValueError, match="low_precision factors"):
        _profile(low_precision={"fp8": 0.0})
    with pytest.raises(ValueError):
        _profile(comm_efficiency=1.5)
    assert np.isclose(_profile().efficiency("attention", "attention", 1.0, context=1000.0), 1.0)


def test_an_engine_version_is_taken_and_checked_against_the_measured_ones():
    measured = rooflens.analyze("llama-3-8b", "h100", engine="tensorrt-llm@0.9.0", prompt=128, gen=4)
    assert measured.profile.version == "0.9.0" and "0.9.0" in measured.profile.versions
    assert not measured.extrapolated and measured.to_dict()["estimate"]["version"] == "0.9.0"
    plain = rooflens.analyze("llama-3-8b", "h100", engine="tensorrt-llm", prompt=128, gen=4)
    # A version measured on the device gets its own offset there (the fit chose version offsets by
    # cross-validation); on a device it was not measured at, what the release does everywhere (its
    # offset across devices) still applies; a version never measured pools the versions.
    assert measured.profile.scope == "tensorrt-llm 0.9.0 on h100-sxm"
    assert measured.tpot_estimate_s != plain.tpot_estimate_s
    elsewhere = rooflens.analyze("llama-3-8b", "b200", engine="tensorrt-llm@0.9.0", prompt=128, gen=4)
    b200 = rooflens.analyze("llama-3-8b", "b200", engine="tensorrt-llm", prompt=128, gen=4)
    assert elsewhere.profile.scope == "tensorrt-llm 0.9.0 on b200" and not elsewhere.extrapolated
    assert elsewhere.tpot_estimate_s != b200.tpot_estimate_s
    never = rooflens.analyze("llama-3-8b", "b200", engine="tensorrt-llm@9.9", prompt=128, gen=4)
    assert never.tpot_estimate_s == b200.tpot_estimate_s and never.profile.scope == b200.profile.scope
    # On a device without an offset of its own, the release's profile on the device's generation.
    a100 = rooflens.analyze("llama-3-8b", "a100-pcie-80gb", engine="tensorrt-llm@0.9.0", prompt=128, gen=4)
    assert a100.profile.scope == "tensorrt-llm 0.9.0 on nvidia-ampere"
    unknown = rooflens.analyze("llama-3-8b", "h100", engine="tensorrt-llm@9.9", prompt=128, gen=4)
    assert unknown.extrapolated
    assert any("no calibration row of tensorrt-llm 9.9" in n for n in unknown.notes)
    with pytest.raises(RooflensError, match=r"unknown engine 'tensorrt'; known engines"):
        rooflens.analyze("llama-3-8b", "h100", engine="tensorrt@1.0")
    # A leading v is the same version; anything else that is not a version is refused.
    assert rooflens.analyze("llama-3-8b", "h100", engine="tensorrt-llm@v0.9.0").profile.version == "0.9.0"
    with pytest.raises(RooflensError, match=r"engine version 'x@y' is not a version"):
        rooflens.analyze("llama-3-8b", "h100", engine="vllm@x@y")


def test_a_model_class_the_device_never_saw_is_an_extrapolation():
    # SGLang's calibration rows on MI300X are DeepSeek-R1 runs only (MLA): a dense Llama there is
    # marked extrapolated, says why, and gets the wider extrapolated range; DeepSeek is not marked.
    from rooflens.hardware.catalog import load_hardware
    from rooflens.hardware.spec import resolve_profile

    hw = load_hardware("mi300x")
    seen = resolve_profile(hw, "sglang", "MLA")
    unseen = resolve_profile(hw, "sglang", "dense")
    assert seen.model_classes == ["MLA"] and not seen.extrapolated
    assert unseen.extrapolated and unseen.scope == seen.scope  # the same profile, flagged
    for category in ("decode", "prefill", "throughput"):  # never narrower; wider where held-out residuals are
        lo_seen, hi_seen = seen.range_factors(category)
        lo_unseen, hi_unseen = unseen.range_factors(category)
        assert lo_unseen <= lo_seen and hi_unseen >= hi_seen
    assert unseen.range_factors("prefill") != seen.range_factors("prefill")
    dense = rooflens.analyze("llama-3-8b", "mi300x", engine="sglang", prompt=128, gen=4)
    assert dense.extrapolated and any("MLA models only" in n for n in dense.notes)
    mla = rooflens.analyze("deepseek-r1", "mi300x", engine="sglang", tp=8, prompt=128, gen=4)
    assert not mla.extrapolated
    # Without a class (or with the device's own rows of that class) nothing changes.
    assert not resolve_profile(hw, "sglang").extrapolated


def test_an_engine_must_run_on_the_device_vendor():
    with pytest.raises(RooflensError, match=r"TensorRT-LLM does not run on Apple devices such as m2-ultra"):
        rooflens.analyze("llama-2-7b", "m2-ultra", engine="tensorrt-llm")
    with pytest.raises(RooflensError, match=r"llama\.cpp-cuda is llama\.cpp's backend for NVIDIA devices"):
        rooflens.analyze("llama-2-7b", "m2-ultra", engine="llama.cpp-cuda")
    # Case does not matter for backend names.
    upper = rooflens.analyze("llama-2-7b", "rtx-4090", engine="LLAMA.CPP-CUDA", prompt=64, gen=4)
    assert upper.profile.engine == "llama.cpp-cuda"


def test_the_engine_kernels_set_what_a_format_leaves_open():
    # llama.cpp's CUDA kernels multiply 4-bit weights with 8-bit activations (int8 math) ...
    cuda = rooflens.analyze("llama-2-7b", "rtx-3090", quant="q4_0", engine="llama.cpp", prompt=64, gen=4)
    assert (cuda.settings.a_bits, cuda.precision.a_bits, cuda.settings.low_bit) == (8, 8, "int")
    assert "llama.cpp-cuda's kernels run this format with a_bits 8" in " ".join(cuda.notes)
    # ... its Metal kernels do not; nor does an explicit a_bits give way.
    metal = rooflens.analyze("llama-2-7b", "m2-ultra", quant="q4_0", prompt=64, gen=4)
    assert metal.settings.a_bits == 16
    given = rooflens.analyze("llama-2-7b", "rtx-3090", quant="q4_0", engine="llama.cpp", a_bits=16)
    assert given.settings.a_bits == 16
    # TensorRT-LLM's FP8 checkpoints keep an FP8 KV cache; vLLM's default keeps the model's 16 bits.
    trt = rooflens.analyze("llama-2-7b", "h100", quant="fp8", engine="tensorrt-llm", prompt=64, gen=4)
    vllm = rooflens.analyze("llama-2-7b", "h100", quant="fp8", engine="vllm", prompt=64, gen=4)
    assert (trt.settings.kv_bits, trt.settings.kv_scale) == (8, "head") and vllm.settings.kv_bits == 16
    # The same rules hold in a sweep (one home: analysis.engine_settings).
    from rooflens.sweep import sweep

    row = sweep("llama-2-7b", hardware="rtx-3090", quant="q4_0", engine="llama.cpp", prompt=64, gen=4)
    assert row.columns["a_bits"][0] == 8


def test_expert_parallel_ranks_pay_the_per_sequence_cost_of_their_own_sequences():
    # ep 2, batch 8: each rank steps ceil(8 / 2) = 4 sequences; at 1 ms a sequence, 4 ms a step over
    # the ideal (the profile has no other cost). Two decode steps (gen 3): 8 ms.
    p = _profile(seq_overhead_s=1e-3)
    r = _run(p, "mixtral-8x7b", batch=8, prompt=64, gen=3, ep=2)
    assert r.decode.estimate_s - r.decode.time_s == pytest.approx(2 * 4 * 1e-3, rel=1e-6)


def test_routing_settings_that_contradict_are_refused():
    with pytest.raises(ValueError, match="routing 'identical' sends every sequence"):
        rooflens.analyze("mixtral-8x7b", "h100", routing="identical", routing_skew=1.0)
    with pytest.raises(ValueError, match=r"routing 'uniform' contradicts routing_skew 1\.2"):
        rooflens.analyze("mixtral-8x7b", "h100", routing="uniform", routing_skew=1.2)
    skewed = rooflens.analyze("mixtral-8x7b", "h100", routing_skew=1.2, prompt=64, gen=2)
    assert skewed.settings.routing_skew == 1.2  # the skew alone still means Zipf popularity


def test_range_lookup_by_engine_generation_and_kind(monkeypatch):
    """Hand-made interval tables: the most specific level wins per kind of figure, an extrapolated
    range spans the calibrated one and the held-out one, and no table at all gives [1, 1]."""
    from rooflens.hardware import efficiency as eff

    fields = {"source": "s", "matmul": [0.5]}
    data = {
        "engines": {"e": {"rows": {"d1": 5}, "global": fields}},
        "intervals": {
            "calibrated": {
                "*|*": {"decode": [0.5, 2.0], "all": [0.6, 1.6]},
                "e|*": {"decode": [0.8, 1.3]},
                "e|nvidia-hopper": {"prefill": [0.9, 1.1]},
            },
            "extrapolated": {"*|*": {"decode": [0.7, 1.2], "prefill": [0.95, 1.4], "throughput": [0.5, 2.5]}},
        },
    }
    monkeypatch.setattr(eff, "_published_profiles", lambda: data)
    own = eff.published_profile("e", "d1", "NVIDIA", "hopper")
    assert own.intervals == {"decode": [0.8, 1.3], "all": [0.6, 1.6], "prefill": [0.9, 1.1]}
    assert own.range_factors("end-to-end") == [0.6, 1.6]  # no such kind: the general one
    other_generation = eff.published_profile("e", "d1", "NVIDIA", "ampere")
    assert "prefill" not in other_generation.intervals  # the Hopper entry does not reach an Ampere part
    assert other_generation.range_factors("prefill") == [0.6, 1.6]
    far = eff.published_profile("e", "d2", "NVIDIA", "hopper")  # no row of e on d2: extrapolated
    # decode: calibrated [0.8, 1.3] and held out [0.7, 1.2] -> [0.7, 1.3]; prefill: [0.9, 1.1] and
    # [0.95, 1.4] -> [0.9, 1.4]; throughput only held out -> [0.5, 2.5]; "all" only calibrated -> kept.
    assert far.intervals == {
        "decode": [0.7, 1.3],
        "prefill": [0.9, 1.4],
        "throughput": [0.5, 2.5],
        "all": [0.6, 1.6],
    }
    monkeypatch.setattr(eff, "_published_profiles", lambda: {"engines": {"e": {"global": fields}}})
    assert eff.published_profile("e", "d1").range_factors("decode") == [1.0, 1.0]


def test_routing_from_the_command_line():
    from typer.testing import CliRunner

    from rooflens.cli import app

    args = ["analyze", "mixtral-8x7b", "-H", "h100", "-b", "64", "--routing", "identical", "-f", "json"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0 and '"routing": "identical"' in run.output
    bad = CliRunner().invoke(app, ["analyze", "mixtral-8x7b", "--routing", "bogus"])
    assert bad.exit_code == 2 and "'uniform', 'zipf' or 'identical'" in bad.output


def test_packed_path_prices_the_new_terms_as_evaluate_does():
    """step_times (sweeps, plans, the simulation) equals evaluate on a pass whose attention ops differ
    only in the context they attend to, with a per-sequence cost and a link without a stated latency.

    Device: 1 TB/s, 100 TFLOP/s fp16, a 100 GB/s link with no latency. Per step: two attention ops of
    1 GB each (1 ms ideal) at contexts 512 (factor 0.5 -> 2 ms) and 32768 (factor 1 -> 1 ms); one
    collective of 100 MB (1 ms ideal; at half the bandwidth 2 ms, plus 3 messages x 10 us = 0.03 ms,
    the link adding none). Fixed: 4 sequences x 0.1 ms. Total 2 + 1 + 2.03 + 0.4 = 5.43 ms a step."""
    from rooflens.ops.base import Op
    from rooflens.roofline import evaluate, step_times

    device = rooflens.hardware.catalog.load_hardware(
        {**BOX, "memory_bandwidth": "1 TB/s", "interconnect": {"name": "pcie", "bandwidth": "100 GB/s"}}
    )

    def attention(name: str, context: float) -> Op:
        return Op(name, "attention", "attention", "fp16", 1, flops=0.0, act_in_bytes=1e9, tokens=1.0,
                  context=context)  # fmt: skip

    ops = [
        attention("att_near", 512.0),
        attention("att_far", 32768.0),
        Op("ar", "attention", "comm", "link", 1, flops=0.0, link_bytes=1e8, messages=3, link="intra"),
    ]
    p = _profile(
        attention_by_context=[0.5, 1.0], comm_efficiency=0.5, comm_latency_s=1e-5, seq_overhead_s=1e-4
    )
    ideal, estimate = step_times(ops, device, 2, p, sequences=4)
    assert ideal == pytest.approx([3e-3, 3e-3])  # the link's latency is not stated: none is added
    assert estimate == pytest.approx([5.43e-3, 5.43e-3])
    phase = evaluate("p", ops, device, 2, np.ones(2), p, sequences=4)
    assert phase.step_estimate_s == pytest.approx(estimate)
    comm = next(o for o in phase.ops if o.kind == "comm")
    assert comm.latency_time_s == 0.0 and comm.messages == 6  # 3 a step, 2 steps
    # Without a sequence count, one sequence a step.
    assert step_times(ops, device, 2, p)[1] == pytest.approx([5.13e-3, 5.13e-3])
    assert evaluate("p", ops, device, 2, np.ones(2), p).step_estimate_s == pytest.approx([5.13e-3, 5.13e-3])


def test_identical_routing_in_prefill_and_under_expert_parallelism():
    def expert_bytes(r, phase="decode"):
        return next(o for o in getattr(r, phase).ops if o.name == "experts_gate_up").weight_bytes

    # Prefill: 4 identical 256-token prompts choose experts as one prompt's 256 tokens do.
    same = rooflens.analyze("mixtral-8x7b", "h100", batch=4, prompt=256, gen=2, routing="identical")
    one = rooflens.analyze("mixtral-8x7b", "h100", batch=1, prompt=256, gen=2)
    assert expert_bytes(same, "prefill") == pytest.approx(expert_bytes(one, "prefill"))
    # Expert parallelism over 2 devices: device 0 holds experts 0, 2, 4, 6, each picked by a token with
    # probability 2/8; 64 identical sequences decode one token: 4 x 1/4 = 1 expert touched there.
    ep = rooflens.analyze("mixtral-8x7b", "h100", batch=64, prompt=256, gen=2, ep=2, routing="identical")
    ep_one = rooflens.analyze("mixtral-8x7b", "h100", batch=2, prompt=256, gen=2, ep=2)
    assert expert_bytes(ep) == pytest.approx(expert_bytes(ep_one) * (1.0 / (4 * (1 - 0.75**2))), rel=1e-9)


def test_tokens_per_expert_when_fewer_than_one_expert_is_touched():
    # Mixtral over 8 expert-parallel devices holds one expert each (picked with probability 1/4). Two
    # decode tokens: touched 1 - (3/4)^2 = 0.4375 experts, assignments 2 x 1/4 = 0.5, so the grouped
    # GEMM sees 0.5 / 0.4375 = 1.142857 tokens per expert it runs.
    r = rooflens.analyze("mixtral-8x7b", "h100", batch=2, prompt=64, gen=2, ep=8)
    op = next(o for o in r.decode.ops if o.name == "experts_gate_up")
    assert op.eff_tokens == pytest.approx(0.5 / 0.4375, rel=1e-9)
