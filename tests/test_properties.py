"""Properties that must hold for every workload, checked on random ones (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflens
from rooflens.hardware import list_hardware

MODELS = ["gpt2", "llama-3.2-1b", "qwen2.5-0.5b", "gemma-2-2b", "pythia-160m", "llama-2-7b", "phi-3-mini-4k"]
DEVICES = ["h100", "a100", "t4", "v100", "rtx-4090", "m2-ultra", "tpu-v5e", "epyc-9654"]
BITS = [4, 8, 16, 32]

workloads = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "hardware": st.sampled_from(DEVICES),
        "batch": st.integers(1, 256),
        "prompt": st.integers(1, 8192),
        "gen": st.integers(1, 300),
        "w_bits": st.sampled_from(BITS),
        "a_bits": st.sampled_from([8, 16]),
        "kv_bits": st.sampled_from(BITS),
        "flash_attention": st.booleans(),
        "kv_cache": st.booleans(),
        "group_size": st.sampled_from([32, 64, 128, 256]),
    }
)
SETTINGS = settings(max_examples=40, deadline=None)


def run(w):
    w = dict(w)
    return rooflens.analyze(w.pop("model"), w.pop("hardware"), **w)


def at_least(new, old):
    return new >= old * (1 - 1e-12)


@SETTINGS
@given(workloads, st.sampled_from(["batch", "prompt", "gen"]), st.integers(1, 500))
def test_time_never_decreases_with_batch_prompt_or_gen(w, field, extra):
    before, after = run(w), run({**w, field: w[field] + extra})
    assert at_least(after.total_time_s, before.total_time_s)
    assert at_least(after.decode.time_s, before.decode.time_s)
    if field != "gen":
        assert at_least(after.ttft_s, before.ttft_s)
    if before.tpot_s is not None:
        assert at_least(after.tpot_s, before.tpot_s)


@SETTINGS
@given(workloads)
def test_flash_attention_keeps_flops_and_never_adds_bytes(w):
    fused, unfused = run({**w, "flash_attention": True}), run({**w, "flash_attention": False})
    for a, b in zip(fused.phases(), unfused.phases(), strict=True):
        assert a.flops == pytest.approx(b.flops, rel=1e-12)
        assert a.bytes <= b.bytes * (1 + 1e-12)
    assert fused.memory.activations_bytes <= unfused.memory.activations_bytes * (1 + 1e-12)


@SETTINGS
@given(workloads, st.sampled_from(["w_bits", "a_bits", "kv_bits"]), st.data())
def test_lowering_a_bit_width_never_increases_bytes(w, field, data):
    high = data.draw(st.sampled_from([b for b in BITS if b > 4]))
    low = data.draw(st.sampled_from([b for b in BITS if b < high]))
    wide, narrow = run({**w, field: high}), run({**w, field: low})
    for a, b in zip(narrow.phases(), wide.phases(), strict=True):
        assert a.bytes <= b.bytes * (1 + 1e-12)
    assert narrow.memory.total_bytes <= wide.memory.total_bytes * (1 + 1e-12)


@SETTINGS
@given(workloads)
def test_per_op_and_per_step_totals_agree_and_steps_never_speed_up(w):
    # Two computations of the same time: summed per operator over the steps, and step by step.
    r = run(w)
    for phase in r.phases():
        assert phase.time_s == pytest.approx(float(np.sum(phase.step_time_s)))
    if r.decode.steps:
        steps = r.decode.step_time_s
        assert np.all(np.diff(steps) >= -1e-15 * steps[:-1])  # a longer context never makes a step faster


@pytest.mark.parametrize("hw", list_hardware(), ids=lambda h: h.name)
@pytest.mark.parametrize("prompt", [128, 4096])
def test_7b_fp16_decode_at_batch_1_is_memory_bound_everywhere(hw, prompt):
    r = rooflens.analyze("llama-2-7b", hw, batch=1, prompt=prompt, gen=64)
    assert r.decode.bound == "memory"
    assert all(op.bound == "memory" for op in r.decode.ops)
