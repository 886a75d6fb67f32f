"""Bit widths: bytes with group-wise metadata, and the peak each kind of math runs at."""

from __future__ import annotations

import pytest

import rooflens
from rooflens import RooflensError
from rooflens.ops import Precision


def op(report, phase, name):
    return next(o for o in getattr(report, phase).ops if o.name == name)


def test_group_wise_weight_bytes():
    w4 = Precision(w_bits=4, group_size=128)
    # 4-bit data + per 128 inputs one fp16 scale and one 4-bit zero point, per output column.
    assert w4.weight_bytes(4096, 4096, 4) == 4096 * 4096 / 2 + 4096 * 32 * (16 + 4) / 8
    assert Precision().weight_bytes(4096, 4096, 16) == 4096 * 4096 * 2
    assert Precision(group_size=4096).weight_bytes(4096, 11008, 8) == 4096 * 11008 + 11008 * (16 + 8) / 8


def test_w4a16_dequantizes_and_uses_the_fp16_peak():
    r = rooflens.analyze("llama-2-7b", "h100", prompt=512, gen=8, w_bits=4)
    q = op(r, "prefill", "q_proj")
    assert q.dtype == "fp16" and q.peak_dtype == "fp16" and q.peak_flops == 989.4e12
    assert q.flops == 32 * (2 * 512 * 4096 * 4096 + 2 * 4096 * 4096)  # matmul + dequantization
    plain = rooflens.analyze("llama-2-7b", "h100", prompt=512, gen=8)
    assert r.memory.weights_bytes < 0.32 * plain.memory.weights_bytes


def test_w8a8_uses_the_int8_peak_and_w4a4_int4():
    r = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=8, w_bits=8, a_bits=8)
    q = op(r, "prefill", "q_proj")
    assert (q.dtype, q.peak_flops) == ("int8", 624e12)
    assert op(r, "prefill", "q_proj").flops == 32 * 2 * 512 * 4096 * 4096  # no dequantization
    r4 = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=8, w_bits=4, a_bits=4)
    assert op(r4, "prefill", "q_proj").peak_dtype == "int4"
    fp8 = rooflens.analyze("llama-2-7b", "h100", prompt=512, gen=8, w_bits=8, a_bits=8, low_bit="float")
    assert op(fp8, "prefill", "q_proj").peak_dtype == "fp8"


def test_mixed_w4a8_computes_in_8_bit():
    r = rooflens.analyze("llama-2-7b", "h100", prompt=512, gen=8, w_bits=4, a_bits=8)
    assert op(r, "prefill", "q_proj").peak_dtype == "int8"


def test_missing_int8_peak_is_said_not_hidden():
    r = rooflens.analyze("llama-2-7b", "v100", prompt=512, gen=8, w_bits=8, a_bits=8)
    assert op(r, "prefill", "q_proj").peak_dtype == "fp16"
    assert any("v100-sxm2-32gb lists no int8 peak: int8 math uses the fp16 peak" in n for n in r.notes)
    r = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=8, w_bits=8, a_bits=8, low_bit="float")
    assert any("no fp8 peak" in n for n in r.notes)


def test_kv_bits_shrink_the_cache_with_scales():
    base = rooflens.analyze("llama-3-8b", "h100", prompt=1000, gen=24)
    kv8 = rooflens.analyze("llama-3-8b", "h100", prompt=1000, gen=24, kv_bits=8)
    per_token_8 = 2 * 32 * (1024 * 1 + 8 * (16 + 8) / 8)  # 8 KV heads: one scale + zero each
    assert kv8.memory.kv_cache_bytes == 1024 * per_token_8
    assert kv8.memory.kv_cache_bytes < 0.52 * base.memory.kv_cache_bytes
    assert op(kv8, "decode", "attention").kv_read_bytes < op(base, "decode", "attention").kv_read_bytes


def test_quantize_embeddings_moves_the_head():
    kept = rooflens.analyze("llama-2-7b", "h100", prompt=64, gen=8, w_bits=4)
    quantized = rooflens.analyze("llama-2-7b", "h100", prompt=64, gen=8, w_bits=4, quantize_embeddings=True)
    assert op(quantized, "decode", "lm_head").weight_bytes < 0.3 * op(kept, "decode", "lm_head").weight_bytes
    assert quantized.memory.weights_bytes < kept.memory.weights_bytes


def test_fp32_model_uses_fp32_everywhere():
    r = rooflens.analyze("gpt2", "h100", prompt=64, gen=8, w_bits=32, a_bits=32, kv_bits=32)
    assert op(r, "prefill", "qkv_proj").peak_dtype == "fp32"
    assert r.memory.weights_bytes == 4 * 124_439_808


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Weights take 1-8, 16 or 32 bits (issue 11: LLM-Viewer's 1- to 8-bit range).
        ({"w_bits": 12}, r"w_bits: Input should be 1, 2, 3, 4, 5, 6, 7, 8, 16 or 32 \(got 12\)"),
        ({"kv_bits": 2}, r"kv_bits: Input should be 4, 8, 16 or 32"),
        ({"dtype": "fp64"}, r"dtype: Input should be 'fp16' or 'bf16'"),
        ({"low_bit": "nf4"}, r"low_bit: Input should be 'int' or 'float'"),
        ({"group_size": 0}, r"group_size: Input should be greater than or equal to 1"),
    ],
)
def test_unsupported_precision_settings(kwargs, message):
    with pytest.raises(RooflensError, match=message):
        rooflens.analyze("gpt2", "t4", **kwargs)
