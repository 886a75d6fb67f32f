"""Hand-derived specification tests of the formula modules, on small invented shapes and devices whose
numbers are easy to follow. Each expected value is worked out in the comment beside it; none is a
snapshot of what the code returned. scripts/mutation.py measures how many single-change mutants of
the formula modules these tests (with the other specification tests) catch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflens
from configs import TINY, TINY_MAMBA, TINY_MOE  # the tiny models both specification files use
from rooflens.hardware.efficiency import EfficiencyProfile
from rooflens.hardware.spec import HardwareSpec, Interconnect
from rooflens.layers.moe import expert_probabilities, moe_ops, routed_load
from rooflens.memory import (
    CacheShape,
    footprint,
    kv_cache_bytes,
    largest_batch,
    peak_activation_bytes,
    resident_weight_bytes,
    residual_bytes,
    runtime_overhead,
    state_bytes,
)
from rooflens.model import spec_from_config
from rooflens.ops import Execution, Op, Pass, Precision, build_ops
from rooflens.ops.comm import all_gather, all_reduce, all_to_all, send
from rooflens.roofline import evaluate, pack, step_times

FP16 = Precision()

# A device with round numbers: 1 TB/s, 100 TFLOP/s fp16, 10 TFLOP/s fp32, 200 TOP/s int8, 2:4 sparsity,
# a 100 GB/s interconnect with 1 us per message, a 10 GB/s network with 10 us, 100 GB of memory.
DEVICE = HardwareSpec(
    name="round",
    memory_bytes=100e9,
    memory_bandwidth=1e12,
    peak_flops={"fp16": 100e12, "fp32": 10e12, "int8": 200e12},
    sparse_2_4=True,
    interconnect={"name": "link", "bandwidth": 100e9, "latency_s": 1e-6},
    network={"name": "net", "bandwidth": 10e9, "latency_s": 10e-6},
)


def op(**fields) -> Op:
    base = dict(name="x", block="attention", kind="matmul", dtype="fp16", count=1, flops=0.0)
    return Op(**{**base, **fields})


# --- the roofline -------------------------------------------------------------------------------------


def test_compute_bound_op():
    # 1 TFLOP at 100 TFLOP/s = 10 ms; 1 GB at 1 TB/s = 1 ms: compute-bound, 10 ms, intensity 1000.
    r = evaluate("prefill", [op(flops=1e12, weight_bytes=1e9)], DEVICE, 1, np.array([1.0])).ops[0]
    assert r.compute_time_s == pytest.approx(0.01) and r.memory_time_s == pytest.approx(0.001)
    assert r.time_s == pytest.approx(0.01) and r.bound == "compute"
    assert r.intensity == pytest.approx(1000.0) and r.peak_flops == 100e12


def test_memory_bound_op_sums_every_byte_class():
    # 1 GFLOP = 10 us of compute; 1+2+3+4+5 GB = 15 GB at 1 TB/s = 15 ms: memory-bound.
    o = op(
        flops=1e9,
        weight_bytes=1e9,
        act_in_bytes=2e9,
        act_out_bytes=3e9,
        kv_read_bytes=4e9,
        kv_write_bytes=5e9,
    )
    r = evaluate("decode", [o], DEVICE, 1, np.array([1.0])).ops[0]
    assert r.bytes == 15e9 and r.time_s == pytest.approx(0.015) and r.bound == "memory"
    assert r.intensity == pytest.approx(1e9 / 15e9)


def test_count_and_steps_multiply_and_arrays_sum():
    # Three layers of a 10-ms op over 4 steps: 120 ms; an op whose FLOPs differ per step (1, 2, 3, 4
    # TFLOP at 100 TFLOP/s: 10+20+30+40 ms) sums its steps.
    ctx = np.arange(4.0)
    phase = evaluate(
        "decode",
        [op(name="a", flops=1e12, count=3), op(name="b", flops=np.array([1e12, 2e12, 3e12, 4e12]))],
        DEVICE,
        4,
        ctx,
    )
    a, b = phase.ops
    assert a.time_s == pytest.approx(0.12) and a.flops == pytest.approx(12e12)
    assert b.time_s == pytest.approx(0.10)
    assert phase.step_time_s == pytest.approx([0.04, 0.05, 0.06, 0.07])  # 30 ms of a + b's own
    assert phase.time_s == pytest.approx(0.22) and phase.flops == pytest.approx(22e12)
    ideal, estimate = step_times(
        [op(name="a", flops=1e12, count=3), op(name="b", flops=np.array([1e12, 2e12, 3e12, 4e12]))], DEVICE, 4
    )
    assert ideal == pytest.approx(phase.step_time_s) and estimate is None


def test_phase_bound_is_the_bound_with_most_time():
    # 10 ms compute-bound + 15 ms memory-bound: the phase is memory-bound; 20 ms + 15 ms: compute.
    mem = op(name="m", flops=1e9, weight_bytes=15e9)
    phase = evaluate("p", [op(flops=1e12), mem], DEVICE, 1, np.array([1.0]))
    assert (phase.compute_bound_time_s, phase.memory_bound_time_s) == pytest.approx((0.01, 0.015))
    assert phase.bound == "memory"
    assert evaluate("p", [op(flops=2e12), mem], DEVICE, 1, np.array([1.0])).bound == "compute"
    assert evaluate("p", [op(flops=1e12)], DEVICE, 0, np.zeros(0)).bound is None


def test_collectives_use_the_link_of_their_group():
    # 1 GB over the 100 GB/s interconnect = 10 ms, plus 10 messages x 1 us; over the 10 GB/s network
    # 100 ms plus 10 x 10 us.
    intra = op(kind="comm", dtype="link", link_bytes=1e9, messages=10, link="intra")
    inter = op(kind="comm", dtype="link", link_bytes=1e9, messages=10, link="inter")
    a, b = evaluate("p", [intra, inter], DEVICE, 1, np.array([1.0])).ops
    assert a.time_s == pytest.approx(0.01 + 10e-6) and a.comm_time_s == a.time_s and a.bound == "comm"
    assert b.time_s == pytest.approx(0.1 + 100e-6)
    phase = evaluate("p", [intra], DEVICE, 1, np.array([1.0]))
    assert phase.comm_time_s == pytest.approx(0.01 + 10e-6) and phase.bound == "comm"


def test_collective_sizes():
    # A ring all-reduce of S bytes over n devices sends 2 (n-1)/n S per device in 2 (n-1) steps;
    # all-gather (n-1)/n S in n-1 steps; all-to-all (n-1)/n S in n-1 steps; a send S in 1 step.
    ar = all_reduce("ar", "attention", 8e6, 4, 2, "intra")
    assert (ar.link_bytes, ar.messages, ar.count) == (2 * 3 / 4 * 8e6, 6, 2)
    ag = all_gather("ag", "head", 8e6, 4, 1, "intra")
    assert (ag.link_bytes, ag.messages) == (3 / 4 * 8e6, 3)
    a2a = all_to_all("a2a", "mlp", 8e6, 4, 1, "inter")
    assert (a2a.link_bytes, a2a.messages, a2a.link) == (3 / 4 * 8e6, 3, "inter")
    s = send("s", "head", 8e6, 3, "intra")
    assert (s.link_bytes, s.messages, s.count) == (8e6, 1, 3)


def test_sparse_peak_only_where_the_device_has_it():
    # 2:4 sparsity doubles the fp16 peak on a device with sparse tensor cores: 1 TFLOP takes 5 ms.
    sparse = op(flops=1e12, sparsity=(2, 4))
    assert evaluate("p", [sparse], DEVICE, 1, np.array([1.0])).ops[0].time_s == pytest.approx(0.005)
    dense_device = DEVICE.model_copy(update={"sparse_2_4": False})
    assert evaluate("p", [sparse], dense_device, 1, np.array([1.0])).ops[0].time_s == pytest.approx(0.01)
    assert evaluate("p", [op(flops=1e12, sparsity=(1, 4))], DEVICE, 1, np.array([1.0])).ops[0].time_s == (
        pytest.approx(0.01)
    )


def test_fallback_peaks_are_reported():
    # No fp8 roof: fp8 math runs at the fp16 peak (10 ms for 1 TFLOP), and the phase says so.
    # fp16 math on its own roof and vector work on fp32 are not fallbacks.
    ops = [op(dtype="fp8", flops=1e12), op(dtype="vector", flops=1e9), op(dtype="fp16", flops=1e9)]
    phase = evaluate("p", ops, DEVICE, 1, np.ones(1))
    assert phase.ops[0].peak_dtype == "fp16" and phase.ops[0].time_s == pytest.approx(0.01)
    assert phase.ops[1].peak_flops == 10e12  # element-wise work on the fp32 vector roof
    assert phase.fallbacks == {"fp8": "fp16"}


def test_step_times_by_hand_on_a_mixed_pass():
    # The sweeps' path lays a pass out as arrays; on a pass with every case it gives, per step:
    #   a: 3 layers x 1 TFLOP at 100 TFLOP/s                      30 ms, 30 ms
    #   b: 1 then 2 TFLOP, 2:4 sparse (200 TFLOP/s)                 5 ms, 10 ms
    #   c: fp8 (runs at fp16's 100 TFLOP/s) 10 ms vs 1 GB / 30 GB   10 ms, 30 ms (memory)
    #   v: element-wise, 1 GFLOP at fp32's 10 TFLOP/s vs 1 GB       1 ms,  1 ms (memory)
    #   ar: 2 x (10 MB / 100 GB/s + 2 x 1 us)                       0.204 ms each step
    #   a2a: 10 MB over the 10 GB/s network + 10 us                 1.01 ms each step
    ops = [
        op(name="a", flops=1e12, count=3),
        op(name="b", flops=np.array([1e12, 2e12]), sparsity=(2, 4)),
        op(name="c", dtype="fp8", flops=1e12, weight_bytes=np.array([1e9, 3e10])),
        op(name="v", kind="norm", dtype="vector", flops=1e9, act_in_bytes=1e9),
        op(name="ar", kind="comm", dtype="link", link_bytes=1e7, messages=2, link="intra", count=2),
        op(name="a2a", kind="comm", dtype="link", link_bytes=1e7, messages=1, link="inter"),
    ]
    ideal, estimate = step_times(ops, DEVICE, 2)
    assert ideal == pytest.approx([0.047214, 0.072214]) and estimate is None
    # Estimate at efficiency 0.5 (device time doubles, the collectives keep their ideal 1.214 ms):
    # 93.214 and 143.214 ms, plus 1 ms per op occurrence (3 + 1 + 1 + 1) and 2 ms per step: + 8 ms.
    p = profile(op_overhead_s=1e-3, step_overhead_s=2e-3)
    ideal, estimate = step_times(ops, DEVICE, 2, p)
    assert estimate == pytest.approx([0.101214, 0.151214])
    phase = evaluate("p", ops, DEVICE, 2, np.ones(2), p)
    assert phase.step_time_s == pytest.approx(ideal) and phase.step_estimate_s == pytest.approx(estimate)
    # One packed pass placed on two devices gives each device's own times.
    packed = pack(ops, 2)
    fast = DEVICE.model_copy(update={"memory_bandwidth": 2e12})
    for device in (DEVICE, fast):
        assert step_times(packed, device, 2, p)[1] == pytest.approx(step_times(ops, device, 2, p)[1])
    # At 2 TB/s, step 2: c takes 15 ms and v 0.5 ms (their bytes), a, b and the collectives as before.
    assert step_times(packed, fast, 2)[0][1] == pytest.approx(0.030 + 0.010 + 0.015 + 0.0005 + 0.001214)
    # Ops of one kernel class in passes of different sizes read their own efficiency: 10 ms at 0.25
    # (1 token) plus 10 ms at 1.0 (10,000 tokens) is 50 ms.
    graded = profile(tokens=[1, 10000], matmul=[0.25, 1.0])
    ops = [op(name="m1", flops=1e12, tokens=1.0), op(name="m2", flops=1e12, tokens=10000.0)]
    assert step_times(ops, DEVICE, 1, graded)[1] == pytest.approx([0.05])


# --- the calibrated estimate ------------------------------------------------------------------------------


def profile(**fields) -> EfficiencyProfile:
    return EfficiencyProfile(**{"engine": "e", "source": "hand-made", "matmul": [0.5], **fields})


def test_estimate_adds_efficiency_and_fixed_costs():
    # Ideal 10 ms at efficiency 0.5 = 20 ms busy, plus a 1 ms per-op overhead; the step adds 2 ms once.
    p = profile(op_overhead_s=1e-3, step_overhead_s=2e-3)
    phase = evaluate("p", [op(flops=1e12, count=2)], DEVICE, 1, np.ones(1), p)
    assert phase.ops[0].estimate_s == pytest.approx(2 * (0.02 + 0.001))
    assert phase.estimate_s == pytest.approx(2 * 0.021 + 0.002)
    _, est = step_times([op(flops=1e12, count=2)], DEVICE, 1, p)
    assert est == pytest.approx([0.044])


def test_overlapped_launches_cost_the_larger_of_device_and_host_time():
    # Device 2 x 20 ms = 40 ms; host 2 x 1 ms + 2 ms = 4 ms: overlapped, the step costs 40 ms, and
    # an op's own estimate is its device time; with 30 ms of host cost per op the host dominates.
    p = profile(op_overhead_s=1e-3, step_overhead_s=2e-3, overlap=True)
    phase = evaluate("p", [op(flops=1e12, count=2)], DEVICE, 1, np.ones(1), p)
    assert phase.estimate_s == pytest.approx(0.04) and phase.ops[0].estimate_s == pytest.approx(0.04)
    slow = profile(op_overhead_s=30e-3, step_overhead_s=2e-3, overlap=True)
    assert evaluate("p", [op(flops=1e12, count=2)], DEVICE, 1, np.ones(1), slow).estimate_s == pytest.approx(
        0.062
    )


def test_measured_host_cost_replaces_per_op_overheads():
    # With the family's measured pass cost (5 ms), per-op overheads and step_overhead_s drop out.
    p = profile(
        op_overhead_s=1e-3, step_overhead_s=2e-3, frameworks={"llama": {"pass_s": 1e-3, "layer_s": 2e-3}}
    )
    host = p.host_cost("llama", 2)
    assert host == pytest.approx(1e-3 + 2 * 2e-3) and p.host_cost("gpt2", 2) is None
    phase = evaluate("p", [op(flops=1e12)], DEVICE, 1, np.ones(1), p, host)
    assert phase.estimate_s == pytest.approx(0.02 + 0.005)


def test_host_cost_with_only_one_measured_part():
    # A family measured per layer only costs layers x layer_s (no pass part); one measured per pass
    # only costs pass_s whatever its depth.
    p = profile(frameworks={"llama": {"layer_s": 2e-3}, "gpt2": {"pass_s": 1e-3}})
    assert p.host_cost("llama", 3) == pytest.approx(6e-3)
    assert p.host_cost("gpt2", 3) == pytest.approx(1e-3)


def test_published_profiles_device_entry_global_fallback_and_gaps(monkeypatch):
    from rooflens.hardware import efficiency as eff

    # The bundled TensorRT-LLM fit has an H100-specific entry: it is used there, the global one elsewhere.
    h100, other = (
        eff.published_profile("tensorrt-llm", "h100-sxm", "NVIDIA", "hopper"),
        eff.published_profile("tensorrt-llm", "t4", "NVIDIA", "turing"),
    )
    assert h100 is not None and other is not None and h100.matmul != other.matmul
    # A data file without engines, devices or a global fit gives no profile rather than an error.
    monkeypatch.setattr(eff, "_published_profiles", lambda: {})
    assert eff.published_engines() == []
    assert eff.published_profile("tensorrt-llm", "h100-sxm") is None
    only_global = {"global": {"source": "s", "matmul": [0.5]}}
    only_devices = {"devices": {"h100-sxm": {"source": "s", "matmul": [0.5]}}}
    monkeypatch.setattr(
        eff, "_published_profiles", lambda: {"engines": {"a": only_global, "b": only_devices}}
    )
    assert eff.published_engines() == ["a", "b"]
    assert eff.published_profile("a", "t4").matmul == [0.5]
    assert eff.published_profile("b", "t4") is None  # no global fit and no all-engines fit
    with_root = {"engines": {"b": only_devices}, "all_engines": {"source": "root", "matmul": [0.25]}}
    monkeypatch.setattr(eff, "_published_profiles", lambda: with_root)
    assert eff.published_profile("b", "t4").matmul == [0.25]


def test_efficiency_interpolates_in_log_tokens_and_clamps():
    # Grid 1, 100, 10000 tokens -> 0.2, 0.6, 0.8: at 10 tokens (halfway in log) 0.4, at 1000 0.7;
    # clamped below 1 and above 10000.
    p = profile(tokens=[1, 100, 10000], matmul=[0.2, 0.6, 0.8])
    assert p.efficiency("matmul", "matmul", 10) == pytest.approx(0.4)
    assert p.efficiency("matmul", "matmul", np.array([1000.0, 0.5, 1e6])) == pytest.approx([0.7, 0.2, 0.8])


def test_efficiency_across_several_k_tables():
    # K tables at 256, 1024 and 4096 (flat 0.2, 0.4, 0.8): K = 2048 sits halfway (in log) between
    # 1024 and 4096: 0.6; K = 512 halfway between 256 and 1024: 0.3; outside the range, clamped.
    p = profile(
        tokens=[1, 100],
        matmul=[0.1, 0.1],
        matmul_by_inner={256: [0.2, 0.2], 1024: [0.4, 0.4], 4096: [0.8, 0.8]},
    )
    assert p.efficiency("matmul", "matmul", 10, 2048) == pytest.approx(0.6)
    assert p.efficiency("matmul", "matmul", 10, 512) == pytest.approx(0.3)
    assert p.efficiency("matmul", "matmul", 10, 100) == pytest.approx(0.2)
    assert p.efficiency("matmul", "matmul", 10, 8192) == pytest.approx(0.8)
    assert p.efficiency("matmul", "matmul", 10, 1024) == pytest.approx(0.4)
    assert p.efficiency("matmul", "matmul", 10, 0) == pytest.approx(0.1)  # K unknown: the plain table
    assert p.efficiency("matmul", "matmul", 10) == pytest.approx(0.1)  # (the default)


def test_efficiency_tables_by_class_and_kind():
    # Class tables win; attention and vector fall back to matmul when unmeasured.
    p = profile(matmul=[0.5], vector=[0.25], classes={"rmsnorm": [0.125]}, op_overheads={"rope": 3e-6})
    assert p.efficiency("rmsnorm", "norm", 8) == 0.125
    assert p.efficiency("add", "elementwise", 8) == 0.25
    assert p.efficiency("attention", "attention", 8) == 0.5
    assert (p.overhead("rope"), p.overhead("add")) == (3e-6, 0.0)
    with pytest.raises(ValueError, match="increasing"):
        profile(tokens=[10, 1], matmul=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0.0001, 10\]"):
        profile(matmul=[0.0])
    with pytest.raises(ValueError, match=r"\[0.0001, 10\]"):
        profile(matmul=[10.5])


# --- operators of a tiny model --------------------------------------------------------------------------


def test_tiny_model_decode_step_by_hand():
    # One decode token at context 10, 16-bit, tiny Llama (h 64, 4 heads x 16, 2 KV heads, MLP 128).
    spec = spec_from_config(TINY)
    ops = {o.name: o for o in build_ops(spec, FP16, Pass(1, 1.0, 10.0))}
    # q_proj 64 -> 64: 2 x 64 x 64 = 8192 FLOPs; weights 64 x 64 x 2 B = 8192 B; in/out 128 B each.
    q = ops["q_proj"]
    assert (q.flops, q.weight_bytes, q.act_in_bytes, q.act_out_bytes) == (8192, 8192, 128, 128)
    # k_proj 64 -> 32 writes nothing but K's activation (rope writes K to the cache); v_proj writes
    # 32 values x 2 B = 64 B of V straight into the cache.
    assert (ops["k_proj"].act_out_bytes, ops["k_proj"].kv_write_bytes) == (64, 0)
    assert (ops["v_proj"].act_out_bytes, ops["v_proj"].kv_write_bytes) == (0, 64)
    # Attention: 4 heads x 10 keys x (2 x 2 x 16 + 5) = 2760 FLOPs; reads K and V of 10 tokens
    # (10 x 32 values x 2 B each = 640 B each).
    att = ops["attention"]
    assert att.flops == 4 * 10 * (2 * 2 * 16 + 5) and att.kv_read_bytes == 2 * 640
    # Rotary over 4 + 2 heads x 16 channels x 3 FLOPs; MLP act: 128 x (4 + 1).
    assert ops["rope"].flops == 6 * 16 * 3 and ops["act_mul"].flops == 128 * 5
    # LM head 64 -> 100 for the one sequence: 12,800 FLOPs, 12,800 B of weights.
    assert (ops["lm_head"].flops, ops["lm_head"].weight_bytes) == (12_800, 12_800)
    assert all(o.count == 2 for o in ops.values() if o.layers)


def test_tiny_model_parameters_by_hand():
    # Per layer: q 4096 + k 2048 + v 2048 + o 4096 + gate, up, down 3 x 8192 + 2 norms x 64 = 36,992;
    # two layers 73,984; embedding and head 6400 each; final norm 64: 86,848.
    spec = spec_from_config(TINY)
    p = spec.params()
    assert (p.linear, p.layer_other) == (2 * 36_864, 2 * 128)
    assert spec.num_params == 86_848


# --- memory -------------------------------------------------------------------------------------------------


def test_footprint_parts_by_hand():
    # Tiny Llama, batch 2, prompt 10, gen 5, 16-bit, 1 kB overhead.
    # Weights: 2 x 36,992 - 2 x 128 = 73,728 matrix + 256 norm values, 6400 x 2 tables, 64 final
    # norm: 86,848 params x 2 B = 173,696 B.
    # KV: 2 sequences x 15 tokens x 2 layers x (K + V: 2 x 32 values x 2 B) = 7680 B.
    # Residual stream of the prompt pass: 2 x 10 x 64 x 2 B = 2560 B, plus the largest op's inputs and
    # outputs: the prefill MLP's act_mul (2 inputs + 1 output of 20 tokens x 128 x 2 B) = 15,360 B.
    r = rooflens.analyze(TINY, DEVICE, batch=2, prompt=10, gen=5, overhead_bytes=1000, estimate=False)
    m = r.memory
    assert m.weights_bytes == 173_696 and m.kv_cache_bytes == 7680 and m.state_bytes == 0
    assert m.activations_bytes == 2560 + 15_360 and m.overhead_bytes == 1000
    assert m.total_bytes == 173_696 + 7680 + 17_920 + 1000
    assert m.utilization == pytest.approx(m.total_bytes / 100e9)
    # Per sequence 3840 B of KV + 8960 B of activations: (100e9 - 174,696) // 12,800 sequences.
    assert m.max_batch == (100e9 - 174_696) // 12_800


def test_largest_batch_cases():
    # 100 B of room beside 40 B fixed, 30 B for 2 sequences (15 B each): 4 sequences per device; an
    # expert-parallel group of 2 serves twice that; nothing fits once the fixed part fills the room.
    assert largest_batch(100, 40, 30, 2, 1) == 4
    assert largest_batch(100, 40, 30, 2, 2) == 8
    assert largest_batch(100, 120, 30, 2, 1) == 0
    assert list(largest_batch(100, 40, np.array([30.0, 60.0]), 2, 1)) == [4, 2]


def test_kv_cache_under_parallelism_and_windows():
    spec = spec_from_config(TINY)
    shape = CacheShape(4, 100, 28)  # 4 sequences of 128 tokens
    # 2 layers x 4 x 128 tokens x 128 B (K + V of 32 values at 2 B) = 131,072 B.
    assert kv_cache_bytes(spec, FP16, shape) == 131_072
    # Pipeline of 2 stages: each holds one layer. TP 2: one KV head each, half. TP 4: the 2 KV heads
    # are replicated, so each rank still holds one: half, not a quarter.
    assert kv_cache_bytes(spec, FP16, shape, Execution(pp=2)) == 65_536
    assert kv_cache_bytes(spec, FP16, shape, Execution(tp=2)) == 65_536
    assert kv_cache_bytes(spec, FP16, shape, Execution(tp=4)) == 65_536
    # Expert parallelism spreads the sequences: 2 per device of a group of 2.
    assert kv_cache_bytes(spec, FP16, shape, Execution(ep=2)) == 65_536
    # A 32-token window keeps 32 of the 128 tokens; a KV budget of 16 keeps 16.
    windowed = spec_from_config({**TINY, "model_type": "mistral", "sliding_window": 32})
    assert kv_cache_bytes(windowed, FP16, shape) == 131_072 * 32 / 128
    assert kv_cache_bytes(spec, FP16, shape, Execution(kv_budget=16)) == 131_072 * 16 / 128
    # A 64-token prefix shared by the 4 sequences is stored once: 64 + 4 x 64 tokens.
    shared = CacheShape(4, 100, 28, shared_prefix=64)
    assert kv_cache_bytes(spec, FP16, shared) == 2 * (64 + 4 * 64) * 128


def test_mistral_window_by_hand():
    # Mistral-7B-v0.1: 32 layers x 8 KV heads x 128 (K and V, 2 B): 131,072 B per token. Batch 8 at a
    # 16,000-token prompt + 129 generated keeps its 4096-token window: 8 x 4096 x 131,072 B.
    spec = rooflens.load_model("mistral-7b-v0.1")
    assert kv_cache_bytes(spec, FP16, CacheShape(8, 16_000, 129)) == 8 * 4096 * 131_072


def test_draft_model_memory_is_added():
    # The draft model's weights and cache add to the target's.
    base = rooflens.analyze("llama-3-8b", DEVICE, batch=2, prompt=100, gen=20, estimate=False)
    draft = rooflens.analyze(
        "llama-3-8b", DEVICE, batch=2, prompt=100, gen=20, estimate=False, draft_model="llama-3.2-1b"
    )
    small = rooflens.load_model("llama-3.2-1b")
    extra_kv = kv_cache_bytes(small, FP16, CacheShape(2, 100, 20))
    # Llama-3.2-1B: 16 layers x 8 KV heads x 64 x 2 (K, V) x 2 B = 32,768 B per token; 2 x 120 tokens.
    assert extra_kv == 2 * 120 * 32_768
    assert draft.memory.kv_cache_bytes == base.memory.kv_cache_bytes + extra_kv
    assert draft.memory.weights_bytes == base.memory.weights_bytes + resident_weight_bytes(small, FP16)


def test_largest_batch_under_tp_and_ep():
    # Under EP 2 the per-device footprint serves half the sequences, and the group's largest batch
    # is twice a device's.
    moe = rooflens.load_model("qwen1.5-moe-a2.7b")
    one = rooflens.analyze(moe, "h100", batch=8, prompt=512, gen=64, ep=2, estimate=False).memory
    per_sequence = (one.kv_cache_bytes + one.activations_bytes) / 4
    room = one.capacity_bytes - one.weights_bytes - one.overhead_bytes
    assert one.max_batch == 2 * math.floor(room / per_sequence)


def test_residual_and_activation_peak():
    spec = spec_from_config(TINY)
    # 3 sequences x 10 prompt tokens x 64 x 2 B; without a KV cache the last pass covers 10 + 5 - 1.
    assert residual_bytes(spec, FP16, 3, 10, 5, True) == 3 * 10 * 64 * 2
    assert residual_bytes(spec, FP16, 3, 10, 5, False) == 3 * 14 * 64 * 2
    ops = [op(act_in_bytes=5.0, act_out_bytes=7.0), op(act_in_bytes=np.array([1.0, 20.0]), act_out_bytes=1.0)]
    assert peak_activation_bytes(100.0, [ops]) == 121.0
    assert runtime_overhead(DEVICE, 5.0) == (5.0, "set by the user")
    assert runtime_overhead(DEVICE, None)[0] == 0.0


def test_state_bytes_by_hand():
    # The tiny two-layer Mamba-2 (inner 32 = 2 heads x 16, state 8, 1 group, kernel 4): state 2 x 16 x 8 = 256
    # values; conv window 3 x (32 + 2 x 8) = 144: 400 values x 2 B = 800 B per layer and sequence.
    mamba = spec_from_config(TINY_MAMBA)
    assert state_bytes(mamba, FP16, 3) == 3 * 2 * 800
    assert state_bytes(mamba, FP16, 4, Execution(pp=2)) == 4 * 800
    assert state_bytes(mamba, Precision(state_bits=32), 1) == 2 * 1600
    assert state_bytes(mamba, Precision(kv_bits=8), 1) == 2 * 800  # an 8-bit KV cache leaves it alone


# --- mixture of experts ---------------------------------------------------------------------------------


def test_expert_reads_by_hand():
    # 8 experts, top-2, uniform: one token touches 2; four tokens 8 (1 - 0.75^4) = 5.46875.
    assert routed_load(8, 2, 1.0, 1, 0.0)[0] == pytest.approx(2.0)
    touched, routed = routed_load(8, 2, 4.0, 1, 0.0)
    assert touched == pytest.approx(8 * (1 - 0.75**4)) and routed == pytest.approx(8.0)
    # EP 2: device 0 holds experts 0, 2, 4, 6 and receives a quarter of each token's picks each.
    touched, routed = routed_load(8, 2, 4.0, 2, 0.0)
    assert touched == pytest.approx(4 * (1 - 0.75**4)) and routed == pytest.approx(4.0)
    # Token counts as an array (one per step) give each count's value: 1 token touches its 2 experts;
    # 4 tokens touch 8 x (1 - (3/4)^4) = 5.47 of 8 (uniform routing, each expert p = 2/8).
    touched, routed = routed_load(8, 2, np.array([1.0, 4.0]), 1, 0.0)
    assert touched == pytest.approx([2.0, 8 * (1 - 0.75**4)]) and routed == pytest.approx([2.0, 8.0])
    # Zipf skew 1: weights 1, 1/2, 1/3, 1/4 (sum 25/12), k = 2: 24/25, 12/25, 8/25, 6/25.
    assert expert_probabilities(4, 2, 1.0) == pytest.approx([24 / 25, 12 / 25, 8 / 25, 6 / 25])
    # Skew 3 over 2 experts: weights 1 and 1/8 (sum 9/8): 16/9 (capped at 1) and 2/9.
    assert expert_probabilities(2, 2, 3.0) == pytest.approx([1.0, 2 / 9])


def test_moe_block_by_hand():
    # h 8, 4 experts of width 4, top-2, one token, W4 (groups of 128 -> one group per row of 8 inputs:
    # 2 B scale + 0.5 B zero point): gate_up 8 -> 8 is 64 values at 0.5 B = 32 B + 8 rows x 2.5 B = 52 B
    # per expert; 2 touched experts: 104 B; dequantization 2 x 2 x 64 FLOPs, matmul 2 x 2 x 64.
    spec = spec_from_config(TINY_MOE)
    w4 = Precision(w_bits=4)
    ops = {o.name: o for o in moe_ops(spec, w4, Pass(1, 1.0, 1.0), 1.0, 1.0, 1, 0.0)}
    gate_up = ops["experts_gate_up"]
    assert gate_up.weight_bytes == pytest.approx(2 * 52)
    assert gate_up.flops == pytest.approx(2 * 2 * 64 + 2 * 2 * 64)
    assert gate_up.resident_bytes == pytest.approx(4 * 52)
    assert (gate_up.act_in_bytes, gate_up.act_out_bytes) == (2 * 8 * 2, 2 * 8 * 2)
    assert gate_up.dtype == "fp16"  # W4A16 dequantizes and runs at the 16-bit peak
    # Router 8 -> 4 (a layer matrix, so W4 too: matmul 2 x 8 x 4 plus dequantization 2 x 32); combine:
    # 2 expert outputs of 8 values weighted and summed (2 x 2 x 8 FLOPs).
    assert ops["router"].flops == 2 * 8 * 4 + 2 * 32 and ops["experts_combine"].flops == 2 * 8 * 2
    assert ops["experts_act"].flops == 2 * 4 * (4 + 1)


# --- everything is finite and non-negative --------------------------------------------------------------

MODELS = [
    "llama-3.2-1b",
    "mixtral-8x7b",
    "deepseek-v2-lite",
    "gemma-2-2b",
    "qwen3-next-80b-a3b",
    "nemotron-h-8b",
]


@pytest.mark.slow  # many whole analyses: left out of mutation runs
@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    batch=st.integers(1, 64),
    prompt=st.integers(1, 4096),
    gen=st.integers(1, 64),
    kv_cache=st.booleans(),
    flash=st.booleans(),
    shared=st.integers(0, 4096),
    reads_once=st.booleans(),
    w_bits=st.sampled_from([4, 8, 16]),
)
def test_every_byte_and_time_is_finite_and_non_negative(
    model, batch, prompt, gen, kv_cache, flash, shared, reads_once, w_bits
):
    r = rooflens.analyze(
        model,
        "h100",
        batch=batch,
        prompt=prompt,
        gen=gen,
        kv_cache=kv_cache,
        flash_attention=flash,
        shared_prefix=min(shared, prompt),
        prefix_reads_once=reads_once,
        w_bits=w_bits,
    )
    for phase in (r.prefill, r.decode):
        for o in phase.ops:
            values = [
                o.flops,
                o.weight_bytes,
                o.act_in_bytes,
                o.act_out_bytes,
                o.kv_read_bytes,
                o.kv_write_bytes,
            ]
            values += [o.time_s, o.compute_time_s, o.memory_time_s]
            assert all(math.isfinite(v) and v >= 0 for v in values), (o.name, values)
            if o.estimate_s is not None:
                assert o.estimate_s >= o.time_s * 0.999 or o.kind == "comm", o.name  # never beats the roof
    m = r.memory
    parts = [m.weights_bytes, m.kv_cache_bytes, m.state_bytes, m.activations_bytes, m.overhead_bytes]
    assert all(math.isfinite(v) and v >= 0 for v in parts) and m.max_batch >= 0


# --- found by mutation testing ----------------------------------------------------------------------------


def test_collective_costs_stay_ideal_under_a_profile_and_without_latency():
    # A collective's estimate is its ideal link time even when the profile adds per-op overheads and
    # halves every efficiency; a link with no stated latency adds none.
    p = profile(op_overhead_s=1e-3, step_overhead_s=0.0, matmul=[0.5])
    ar = op(name="ar", kind="comm", dtype="link", link_bytes=1e9, messages=10, link="intra")
    phase = evaluate("p", [ar], DEVICE, 1, np.ones(1), p)
    r = phase.ops[0]
    assert r.estimate_s == pytest.approx(r.time_s) and phase.estimate_s == pytest.approx(0.01 + 10e-6)
    assert (r.peak_flops, r.compute_time_s, r.memory_time_s, r.flops, r.kind, r.steps) == (
        0.0,
        0.0,
        0.0,
        0.0,
        "comm",
        1,
    )
    assert r.link_bytes == 1e9 and phase.name == "p"
    no_latency = DEVICE.model_copy(update={"interconnect": Interconnect(name="link", bandwidth=100e9)})
    assert evaluate("p", [ar], no_latency, 1, np.ones(1)).ops[0].time_s == pytest.approx(0.01)
    assert all(o.flops == 0 and o.dtype == "link" and o.block == b for o, b in [
        (all_reduce("a", "attention", 1.0, 2, 1, "intra"), "attention"),
        (all_gather("g", "head", 1.0, 2, 1, "intra"), "head"),
        (all_to_all("t", "mlp", 1.0, 2, 1, "inter"), "mlp"),
        (send("s", "head", 1.0, 1, "host"), "head"),
    ])  # fmt: skip


def test_phase_totals_add_over_every_op():
    # Two compute-bound ops (10 + 20 ms), two memory-bound (1 + 2 ms), two collectives (10 + 10 ms).
    ops = [
        op(name="c1", flops=1e12),
        op(name="c2", flops=2e12),
        op(name="m1", weight_bytes=1e9),
        op(name="m2", weight_bytes=2e9),
        op(name="x1", kind="comm", dtype="link", link_bytes=1e9, link="intra"),
        op(name="x2", kind="comm", dtype="link", link_bytes=1e9, link="intra"),
    ]
    phase = evaluate("p", ops, DEVICE, 1, np.ones(1))
    assert phase.compute_bound_time_s == pytest.approx(0.03)
    assert phase.memory_bound_time_s == pytest.approx(0.003)
    assert phase.comm_time_s == pytest.approx(0.02)
    assert phase.bytes == pytest.approx(3e9) and phase.flops == pytest.approx(3e12)
    assert all(r.estimate_s is None for r in phase.ops) and phase.estimate_s is None


def test_estimate_tables_reach_the_operators():
    # The profile's class table (rmsnorm 0.25), K tables (K=64: 0.2) and per-class overheads apply to
    # the operators that name them, in evaluate and in step_times alike.
    p = profile(
        tokens=[1, 100],
        matmul=[0.5, 0.5],
        matmul_by_inner={64: [0.2, 0.2]},
        classes={"rmsnorm": [0.25, 0.25]},
        op_overheads={"rmsnorm": 1e-3},
    )
    norm_op = op(name="n", kind="norm", dtype="vector", impl="rmsnorm", weight_bytes=1e9, tokens=10.0)
    mm = op(name="mm", flops=1e12, inner=64, tokens=10.0)
    phase = evaluate("p", [norm_op, mm], DEVICE, 1, np.ones(1), p)
    n, m = phase.ops
    assert n.estimate_s == pytest.approx(0.001 / 0.25 + 1e-3) and m.estimate_s == pytest.approx(0.01 / 0.2)
    _, est = step_times([norm_op, mm], DEVICE, 1, p)
    assert est == pytest.approx([0.004 + 1e-3 + 0.05])
    # With the family's host cost the per-op overheads drop out in step_times too.
    _, est = step_times([norm_op, mm], DEVICE, 1, p, host_s=0.5)
    assert est == pytest.approx([0.004 + 0.05 + 0.5])


def test_memory_edges():
    # Nothing per sequence: no batch can be sized from it (0). A fraction of a byte per sequence still counts.
    assert largest_batch(100, 40, 0.0, 2, 1) == 0
    assert largest_batch(100, 40, 1.0, 2, 1) == 120
    # Without a KV cache a recurrent model keeps no state between passes either.
    mamba = rooflens.analyze("mamba-codestral-7b", DEVICE, kv_cache=False, prompt=64, gen=4, estimate=False)
    assert mamba.memory.state_bytes == 0
    # Under expert parallelism each device keeps the state of its share of the sequences.
    spec = rooflens.load_model("qwen3-next-80b-a3b")
    assert state_bytes(spec, FP16, 8, Execution(ep=4)) == 2 * state_bytes(spec, FP16, 1)
    # footprint() with no draft model adds nothing.
    spec = spec_from_config(TINY)
    plain = footprint(
        spec, FP16, DEVICE, shape=CacheShape(1, 10, 5), residual_bytes=0.0, kv_cache=True,
        phases=[[op(act_in_bytes=1.0)]], overhead_bytes=0.0,
    )  # fmt: skip
    assert plain.weights_bytes == 173_696 and plain.kv_cache_bytes == 15 * 2 * 128 and plain.host_bytes == 0


def test_registry_rules():
    from rooflens.layers.base import Absent, ceil_part, register

    with pytest.raises(ValueError, match="registered twice"):
        register(Absent("full", "mixer"))
    assert ceil_part(0, 4) == 0 and ceil_part(5, 4) == 2
    absent = Absent("nothing", "ffn")
    assert (absent.name, absent.role) == ("nothing", "ffn")
    # Dense models have no routed parameters: every parameter is active.
    spec = spec_from_config(TINY)
    assert spec.active_params == spec.num_params and spec.params().routed_experts == 0
