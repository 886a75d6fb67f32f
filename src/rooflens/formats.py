"""The named number formats: one table for weights and one for the KV cache, shared by every command.

A weight format says how a matrix is stored (value bits, number type, how many values share a scale
and how wide the scale is, zero points or not) and what the matmul's other operand is (activation
bits): a matmul runs in the wider of its two operands' formats, so W4A16 (weight-only) dequantizes
and runs at the 16-bit peak, W8A8-fp8 at the fp8 peak, NVFP4 (W4A4) at the fp4 peak where the device
has one (elsewhere at the next peak it has, with a note). Layouts:

- ``group_size`` values along a matrix's input dimension share one scale; ``block_rows`` output rows
  share it too (DeepSeek's 128x128 FP8 blocks); ``1 << 20`` means one scale per tensor or channel;
- ``scale_bits``: 16 (fp16 scales of GPTQ/AWQ/llama.cpp), 32 (fp32 block scales), 8 (E8M0 in the MX
  formats, E4M3 in NVFP4); asymmetric formats add a zero point at the value's own width.

Sources for the layouts: OCP Microscaling Formats (MX) v1.0 (E8M0 scale per 32 values); NVIDIA's
NVFP4 description (E2M1 values, one E4M3 scale per 16, one fp32 scale per tensor); the AWQ and GPTQ
papers (4-bit groups of 128 with fp16 scales and zero points); DeepSeek-V3's technical report (128x128
block scales); llama.cpp's ggml-quants (Q4_0/Q8_0 blocks of 32 with an fp16 scale; Q4_K_M about 4.6
bits per weight).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PER_TENSOR = 1 << 20  # one scale for the whole input dimension (per channel) and, with block_rows, tensor


@dataclass(frozen=True)
class Format:
    """A weight format as the settings that describe it."""

    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bits_per_value(self) -> float:
        """Average stored bits per weight of a large matrix (values plus their share of scales)."""
        s = {
            "w_bits": 16,
            "group_size": 128,
            "block_rows": 1,
            "scale_bits": 16,
            "symmetric": False,
            **self.settings,
        }
        if s["w_bits"] >= 16:
            return float(s["w_bits"])
        meta = s["scale_bits"] + (0 if s["symmetric"] else s["w_bits"])
        return s["w_bits"] + meta / (s["group_size"] * s["block_rows"])


def _f(name: str, description: str, **settings: Any) -> tuple[str, Format]:
    return name, Format(name, description, settings)


FORMATS: dict[str, Format] = dict(
    [
        _f("fp16", "16-bit float weights and activations", w_bits=16, a_bits=16),
        _f("bf16", "bfloat16 weights and activations", w_bits=16, a_bits=16, dtype="bf16"),
        _f("fp32", "32-bit float throughout", w_bits=32, a_bits=32, kv_bits=32),
        _f(
            "fp8",
            "FP8 (E4M3) weights and activations, a 16-bit scale per weight row (W8A8, fp8 math)",
            w_bits=8, a_bits=8, low_bit="float", group_size=PER_TENSOR, symmetric=True,
        ),
        _f(
            "fp8-tensor",
            "FP8 (E4M3) weights and activations, one fp32 scale per tensor (W8A8, fp8 math)",
            w_bits=8, a_bits=8, low_bit="float", group_size=PER_TENSOR, block_rows=PER_TENSOR,
            scale_bits=32, symmetric=True,
        ),
        _f(
            "fp8-channel",
            "FP8 weights with one scale per output channel, dynamic per-token activations (W8A8)",
            w_bits=8, a_bits=8, low_bit="float", group_size=PER_TENSOR, scale_bits=32, symmetric=True,
        ),
        _f(
            "fp8-block",
            "FP8 with one fp32 scale per 128x128 block (DeepSeek-V3/R1 checkpoints), W8A8",
            w_bits=8, a_bits=8, low_bit="float", group_size=128, block_rows=128, scale_bits=32,
            symmetric=True,
        ),
        _f(
            "w8a8",
            "INT8 weights (per channel) and activations (SmoothQuant), int8 math",
            w_bits=8, a_bits=8, group_size=PER_TENSOR, symmetric=True,
        ),
        _f("awq", "INT4 weights in groups of 128 with fp16 scales and zero points, weight-only", w_bits=4,
           group_size=128),
        _f("gptq", "INT4 weights in groups of 128 with fp16 scales and zero points, weight-only", w_bits=4,
           group_size=128),
        _f("int4-g64", "INT4 weights in groups of 64, weight-only", w_bits=4, group_size=64),
        _f("int3-g128", "3-bit weights in groups of 128 (GPTQ 3-bit), weight-only", w_bits=3, group_size=128),
        _f("int2-g64", "2-bit weights in groups of 64, weight-only", w_bits=2, group_size=64),
        _f(
            "nvfp4",
            "NVFP4: E2M1 values, one E4M3 scale per 16 (+ a per-tensor fp32 scale), W4A4 fp4 math",
            w_bits=4, a_bits=4, low_bit="float", group_size=16, scale_bits=8, symmetric=True,
        ),
        _f(
            "nvfp4-w4a16",
            "NVFP4 weights dequantized to 16-bit math (devices without fp4 tensor cores)",
            w_bits=4, low_bit="float", group_size=16, scale_bits=8, symmetric=True,
        ),
        _f(
            "mxfp4",
            "MXFP4: E2M1 values, one E8M0 scale per 32, W4A4 fp4 math",
            w_bits=4, a_bits=4, low_bit="float", group_size=32, scale_bits=8, symmetric=True,
        ),
        _f(
            "mxfp4-w4a16",
            "MXFP4 weights dequantized to 16-bit math (gpt-oss's experts on Hopper)",
            w_bits=4, low_bit="float", group_size=32, scale_bits=8, symmetric=True,
        ),
        _f(
            "mxfp6",
            "MXFP6: E3M2/E2M3 values, one E8M0 scale per 32, W6A6 fp6 math",
            w_bits=6, a_bits=6, low_bit="float", group_size=32, scale_bits=8, symmetric=True,
        ),
        _f(
            "mxfp8",
            "MXFP8: E4M3 values, one E8M0 scale per 32, W8A8 fp8 math",
            w_bits=8, a_bits=8, low_bit="float", group_size=32, scale_bits=8, symmetric=True,
        ),
        _f("q8_0", "llama.cpp Q8_0: 8-bit blocks of 32 with an fp16 scale (embeddings too)", w_bits=8,
           group_size=32, symmetric=True, quantize_embeddings=True),
        _f("q4_0", "llama.cpp Q4_0: 4-bit blocks of 32 with an fp16 scale (embeddings too)", w_bits=4,
           group_size=32, symmetric=True, quantize_embeddings=True),
        _f("q4_k_m", "llama.cpp Q4_K_M, approximated as 4-bit blocks of 32 with scale and minimum "
           "(4.625 bits per weight against ~4.6-4.8 measured)", w_bits=4, group_size=32,
           quantize_embeddings=True),
        _f("q3_k_m", "llama.cpp Q3_K_M, approximated as 3-bit blocks of 16 with scale and minimum "
           "(4.19 bits per weight)", w_bits=3, group_size=16, quantize_embeddings=True),
        _f("q2_k", "llama.cpp Q2_K, approximated as 2-bit blocks of 16 with scale and minimum "
           "(3.125 bits per weight)", w_bits=2, group_size=16, quantize_embeddings=True),
    ]
)  # fmt: skip

# Names that mean the same format (llama.cpp's "f16", plan's "w16a16" / "w4a16").
ALIASES = {"f16": "fp16", "w16a16": "fp16", "w4a16": "awq", "int8": "w8a8", "fp8-block128": "fp8-block"}


@dataclass(frozen=True)
class KvFormat:
    name: str
    description: str
    kv_bits: int
    kv_scale: str  # "none" (16+ bits), "tensor" (no per-vector metadata), "head" (per head vector), "block"
    kv_block: int = 0


KV_FORMATS: dict[str, KvFormat] = {
    k.name: k
    for k in (
        KvFormat("bf16", "16-bit cache", 16, "none"),
        KvFormat("fp8", "FP8 cache with one scale per tensor, as vLLM stores it (no per-vector metadata)", 8,
                 "tensor"),
        KvFormat("fp8-head", "FP8 cache with a 16-bit scale per head vector", 8, "head"),
        KvFormat("int8-head", "INT8 cache with a 16-bit scale and zero point per head vector (KIVI-style)", 8,
                 "head"),
        KvFormat("nvfp4", "NVFP4 cache: 4-bit values, one 8-bit scale per 16", 4, "block", 16),
    )
}  # fmt: skip


def format_names() -> list[str]:
    return [*FORMATS, *ALIASES]


def weight_rows() -> list[dict[str, Any]]:
    """The weight formats (``--quant``) as rows: name, description, stored bits per weight, settings,
    and the other names that mean it."""
    return [
        {"name": f.name, "description": f.description, "bits_per_value": f.bits_per_value,
         "settings": f.settings, "aliases": [a for a, n in ALIASES.items() if n == f.name]}
        for f in FORMATS.values()
    ]  # fmt: skip


def kv_rows() -> list[dict[str, Any]]:
    """The KV-cache formats (``--kv-format``) as rows."""
    return [
        {"name": k.name, "description": k.description, "kv_bits": k.kv_bits, "kv_scale": k.kv_scale}
        for k in KV_FORMATS.values()
    ]


def lookup(name: str) -> Format:
    """The weight format called ``name`` (case-insensitive; '-' and '_' alike)."""
    from .errors import RooflensError, did_you_mean

    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    key = key if key in FORMATS else key.replace("-", "_")
    if key not in FORMATS:
        raise RooflensError(
            f"unknown format '{name}'.{did_you_mean(key, format_names())} Known: {', '.join(format_names())}"
        )
    return FORMATS[key]


def kv_lookup(name: str) -> KvFormat:
    from .errors import RooflensError, did_you_mean

    key = name.strip().lower().replace("_", "-")
    if key not in KV_FORMATS:
        raise RooflensError(
            f"unknown KV-cache format '{name}'.{did_you_mean(key, list(KV_FORMATS))} "
            f"Known: {', '.join(KV_FORMATS)}"
        )
    return KV_FORMATS[key]
