"""The calibrated estimate: fitting efficiency tables (synthetic data, known answers) and applying them."""

from __future__ import annotations

import numpy as np
import pytest

import rooflens
from rooflens import RooflensError
from rooflens.hardware.efficiency import EfficiencyProfile
from rooflens.measure.calibrate import Sample, build_profile, fit_table

PEAK, BW = 100e12, 1e12

BOX = {
    "name": "box",
    "memory_bytes": "80 GiB",
    "memory_bandwidth": "1 TB/s",
    "peak_flops": {"fp16": "100 TFLOPS"},
}


def synthetic(kind: str, eff: dict[float, float], overhead: float, inner: int = 0) -> list[Sample]:
    """Samples whose measured time follows the model exactly: ideal / eff(T) + overhead."""
    out = []
    for tokens, e in eff.items():
        for flops, nbytes in ((1e9 * tokens, 2e8), (4e9 * tokens, 8e8), (1e7, 5e7)):
            ideal = max(flops / PEAK, nbytes / BW)
            out.append(Sample(kind, tokens, inner, flops, nbytes, ideal / e + overhead))
    return out


def test_fit_table_recovers_known_efficiencies():
    truth = {1.0: 0.4, 16.0: 0.6, 256.0: 0.9}
    fitted = fit_table(synthetic("matmul", truth, 5e-6), PEAK, BW, 5e-6, [1.0, 16.0, 256.0])
    assert fitted == pytest.approx(list(truth.values()), rel=1e-9)
    # Grid points without samples take the nearest measured token count.
    assert fit_table(synthetic("matmul", truth, 0.0), PEAK, BW, 0.0, [2.0, 4096.0]) == pytest.approx(
        [0.4, 0.9]
    )


def test_fit_table_caps_at_the_roofline():
    faster_than_ideal = synthetic("add", {1.0: 1.7}, 0.0)
    assert fit_table(faster_than_ideal, PEAK, BW, 0.0, [1.0]) == [1.0]


def test_build_profile_separates_kinds_classes_and_inner_dimensions():
    samples = (
        synthetic("matmul", {1.0: 0.3, 64.0: 0.8}, 3e-6, inner=1024)
        + synthetic("matmul", {1.0: 0.5, 64.0: 0.9}, 3e-6, inner=4096)
        + synthetic("attention", {1.0: 0.25, 64.0: 0.7}, 0.0)
        + synthetic("add", {1.0: 0.6, 64.0: 1.0}, 0.0)
        + synthetic("rmsnorm", {1.0: 0.2, 64.0: 0.5}, 9e-6)
    )
    data = build_profile(samples, {"matmul": 3e-6, "rmsnorm": 9e-6}, (PEAK, BW), "test", "synthetic")
    profile = EfficiencyProfile(**data)
    assert profile.tokens == [1.0, 64.0]
    assert profile.matmul_by_inner[1024] == pytest.approx([0.3, 0.8])
    assert profile.matmul_by_inner[4096] == pytest.approx([0.5, 0.9])
    assert profile.attention == pytest.approx([0.25, 0.7])
    assert profile.vector == pytest.approx([0.6, 1.0])
    assert profile.classes["rmsnorm"] == pytest.approx([0.2, 0.5])
    # Interpolation: linear in log T, and in log K between measured inner dimensions.
    assert profile.efficiency("matmul", "matmul", 8.0, 1024) == pytest.approx(0.3 + 0.5 * 0.5)
    assert profile.efficiency("matmul", "matmul", 1.0, 2048) == pytest.approx(0.4)
    assert profile.efficiency("matmul", "matmul", 1.0, 65536) == pytest.approx(0.5)  # clamped
    assert profile.efficiency("rmsnorm", "norm", 1e6) == pytest.approx(0.5)
    assert profile.efficiency("layernorm", "norm", 1.0) == pytest.approx(0.6)  # unmeasured class: vector
    assert profile.overhead("rmsnorm") == 9e-6 and profile.overhead("rope") == 0.0


def _profile(**kw) -> EfficiencyProfile:
    base = dict(
        engine="test", source="synthetic", tokens=[1.0, 1024.0], matmul=[0.5, 0.8], op_overhead_s=2e-6
    )
    return EfficiencyProfile(**{**base, **kw})


def test_estimate_is_ideal_over_efficiency_plus_overheads():
    profile = _profile()
    r = rooflens.analyze("gpt2", {**BOX, "efficiency": [profile.model_dump()]}, batch=1, prompt=1024, gen=9)
    ops = r.decode.ops
    # time_s totals an op over its layers (and steps): per step, ideal/eff plus one overhead per layer.
    expected_step = sum(o.time_s / r.decode.steps / 0.5 + o.count * 2e-6 for o in ops)
    assert r.tpot_estimate_s == pytest.approx(expected_step, rel=1e-9)
    expected_prefill = sum(o.time_s / 0.8 + o.count * 2e-6 for o in r.prefill.ops)
    assert r.ttft_estimate_s == pytest.approx(expected_prefill, rel=1e-9)
    assert r.total_estimate_s == pytest.approx(r.ttft_estimate_s + r.decode.estimate_s)
    assert (
        r.ttft_estimate_s >= r.ttft_s and r.tpot_estimate_s >= r.tpot_s
    )  # eff <= 1: never faster than ideal
    d = r.to_dict()
    assert d["decode"]["tpot_estimate_s"] == r.tpot_estimate_s and d["estimate"]["engine"] == "test"
    assert all(o["estimate_s"] is not None for o in d["ops"])


def test_overlapping_launches_and_measured_framework_cost():
    profile = _profile(overlap=True, frameworks={"gpt2": {"layer_s": 1e-3, "pass_s": 2e-3}})
    r = rooflens.analyze("gpt2", {**BOX, "efficiency": [profile.model_dump()]}, batch=1, prompt=128, gen=5)
    device = sum(o.time_s for o in r.decode.ops) / r.decode.steps / 0.5
    host = 2e-3 + 12 * 1e-3
    assert host > device
    assert r.tpot_estimate_s == pytest.approx(max(device, host))
    synchronous = _profile(frameworks={"gpt2": {"layer_s": 1e-3, "pass_s": 2e-3}})
    r2 = rooflens.analyze(
        "gpt2", {**BOX, "efficiency": [synchronous.model_dump()]}, batch=1, prompt=128, gen=5
    )
    assert r2.tpot_estimate_s == pytest.approx(device + host)


def test_no_profile_means_ideal_only_and_a_note():
    # A custom GPU gets the default engine's engine-wide profile; a CPU has no default engine.
    custom = rooflens.analyze("gpt2", BOX, prompt=64, gen=4).profile
    assert custom.engine == "vllm" and custom.extrapolated and custom.scope == "vllm, all devices"
    r = rooflens.analyze("gpt2", {**BOX, "kind": "cpu"}, prompt=64, gen=4)
    assert r.tpot_estimate_s is None and r.ttft_estimate_s is None and r.profile is None
    assert any("no efficiency profile" in n for n in r.notes)
    assert rooflens.analyze("gpt2", "h100", prompt=64, gen=4, estimate=False).profile is None


def test_catalog_devices_get_published_profiles_and_engines_can_be_chosen():
    r = rooflens.analyze("llama-2-7b", "h100", prompt=512, gen=64)
    assert r.profile is not None and r.profile.engine == "vllm"  # NVIDIA's default engine
    assert "calibration split" in r.profile.source
    metal = rooflens.analyze("llama-2-7b", "m2-ultra", prompt=512, gen=64)
    assert metal.profile.engine == "llama.cpp-metal"
    cuda = rooflens.analyze("llama-2-7b", "rtx-4090", prompt=512, gen=64, engine="llama.cpp-cuda")
    assert cuda.profile.engine == "llama.cpp-cuda"
    with pytest.raises(RooflensError, match="unknown engine 'vlm'; known engines: vllm, sglang"):
        rooflens.analyze("llama-2-7b", "h100", engine="vlm")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tokens": [4.0, 1.0]}, "increasing"),
        ({"matmul": [0.5]}, "one efficiency per tokens entry"),
        ({"matmul": [0.5, 0.0]}, r"\[0.0001, 10\]"),
        ({"matmul": [0.5, 5e-324]}, r"\[0.0001, 10\]"),  # a denormal efficiency would overflow times
        ({"frameworks": {"llama": {"layer_s": -1.0}}}, r"frameworks.llama costs must be in \[0, 10\]"),
        ({"step_overhead_s": float("inf")}, r"finite number"),
        ({"classes": {"rope": [0.1]}}, "class table 'rope'"),
    ],
)
def test_malformed_profiles_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        _profile(**change)


def test_efficiency_never_makes_a_step_faster_than_ideal():
    profile = _profile(matmul=[1.0, 1.0])
    r = rooflens.analyze("llama-3-8b", {**BOX, "efficiency": [profile.model_dump()]}, prompt=256, gen=8)
    assert np.all(r.decode.step_estimate_s >= r.decode.step_time_s)


def test_a_profile_copy_with_other_tables_gets_its_own_efficiencies():
    """Sweeps reuse an operator class's efficiency across devices whose profiles share their tables
    (``EfficiencyProfile.efficiency_key``). A copy that changes a table must not inherit the key, or a
    sweep would silently place the old efficiencies on it."""
    from rooflens.hardware.efficiency import published_profile
    from rooflens.sweep import sweep

    base = published_profile("vllm", "h100-sxm", "NVIDIA", "hopper")
    key = base.efficiency_key  # worked out (and kept) before the copy, as a sweep would have
    slower = base.model_copy(update={"matmul": [e / 2 for e in base.matmul]})
    assert slower.efficiency_key != key
    assert base.model_copy(update={"version": "0.11"}).efficiency_key == base.efficiency_key
    # Two devices, one shared memo: the slower profile's device gets slower estimates than with the
    # base profile, as a fresh sweep of it alone gives.
    h100 = rooflens.load_hardware("h100-sxm")
    fast = h100.model_copy(update={"name": "fast", "efficiency": [base]})
    slow = h100.model_copy(update={"name": "slow", "efficiency": [slower]})
    grid = dict(batch=[8], prompt=[512], gen=[64])
    both = sweep("llama-3-8b", hardware=[fast, slow], **grid).to_frame().set_index("hardware")
    alone = sweep("llama-3-8b", hardware=[slow], **grid).to_frame().set_index("hardware")
    assert both.loc["slow", "tpot_estimate_s"] == alone.loc["slow", "tpot_estimate_s"]
    assert both.loc["slow", "tpot_estimate_s"] > both.loc["fast", "tpot_estimate_s"]
