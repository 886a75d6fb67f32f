"""Memory footprint: its parts, what fits, the largest batch that fits."""

from __future__ import annotations

import pytest

import rooflens
from rooflens import RooflensError


def test_footprint_parts_of_llama_3_8b():
    # Weights: 8,030,261,248 parameters x 2 B. KV: 32 layers x 8 KV heads x 128 x (K, V) x 2 B =
    # 131,072 B per token, for 8 sequences of 2048 + 512 tokens. The overhead is the one set.
    r = rooflens.analyze("llama-3-8b", "a100", batch=8, prompt=2048, gen=512, overhead_bytes=1e9)
    m = r.memory
    assert m.weights_bytes == 8_030_261_248 * 2
    assert m.kv_cache_bytes == 8 * 2560 * 131_072
    assert m.overhead_bytes == 1e9 and m.overhead_source == "set by the user"
    # Activations: the prompt's residual stream (8 x 2048 x 4096 x 2 B) plus the largest op's working
    # set, the prefill act_mul (two 14,336-wide inputs and one output for 16,384 tokens at 2 B).
    assert m.activations_bytes == 8 * 2048 * 4096 * 2 + 3 * 16_384 * 14_336 * 2
    d = r.to_dict()["memory"]
    assert (d["weights_bytes"], d["kv_cache_bytes"], d["state_bytes"]) == (
        m.weights_bytes,
        m.kv_cache_bytes,
        0,
    )


def test_largest_batch_is_exact():
    kw = dict(prompt=4096, gen=1024)
    r = rooflens.analyze("llama-3-8b", "l4", **kw)
    best = r.memory.max_batch
    assert best >= 1
    assert rooflens.analyze("llama-3-8b", "l4", batch=best, **kw).memory.fits
    assert not rooflens.analyze("llama-3-8b", "l4", batch=best + 1, **kw).memory.fits


def test_a_model_too_big_says_so():
    r = rooflens.analyze("llama-3.1-405b", "h100", prompt=1024, gen=128)
    assert not r.memory.fits and r.memory.max_batch == 0
    assert any(n.startswith("does not fit") for n in r.notes)


def test_kv_cache_is_sized_for_the_whole_sequence_not_summed_over_steps():
    short = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=512)
    long = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=1536)
    assert long.memory.kv_cache_bytes == 2 * short.memory.kv_cache_bytes


def test_unfused_attention_needs_the_score_matrix():
    fused = rooflens.analyze("llama-2-7b", "a100", prompt=4096, gen=8)
    unfused = rooflens.analyze("llama-2-7b", "a100", prompt=4096, gen=8, flash_attention=False)
    scores = 32 * 4096 * 4096 * 2
    assert unfused.memory.activations_bytes >= 2 * scores
    assert fused.memory.activations_bytes < scores


def test_overhead_from_hardware_entry():
    hw = {
        "name": "box",
        "memory_bytes": "24 GiB",
        "memory_bandwidth": "1 TB/s",
        "peak_flops": {"fp16": 1e14},
        "runtime_overhead_bytes": "1 GiB",
    }
    r = rooflens.analyze("gpt2", hw, prompt=16, gen=4)
    assert r.memory.overhead_bytes == 2**30 and "box catalog entry" in r.memory.overhead_source


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, r"batch: Input should be greater than or equal to 1 \(got 0\)"),
        ({"prompt": -5}, r"prompt: Input should be greater than or equal to 1"),
        ({"gen": 10**9}, r"gen: Input should be less than or equal to 1000000"),
        ({"batch": 2.5}, r"batch: Input should be a valid integer"),
        ({"overhead_bytes": -1}, r"overhead_bytes: Input should be greater than or equal to 0"),
        ({"speculative": True}, r"speculative: Extra inputs are not permitted"),
    ],
)
def test_bad_workloads(kwargs, message):
    with pytest.raises(RooflensError, match=message):
        rooflens.analyze("gpt2", "t4", **kwargs)
