"""The workload and optimization settings of one analysis, validated at the boundary.

Keyword names match the CLI flags (``--w-bits`` -> ``w_bits``). Limits keep every analysis to a
bounded amount of work (a decode timeline is one array entry per generated token).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .ops.precision import Precision

Bits = Literal[4, 8, 16, 32]
BITS_ALLOWED = (4, 8, 16, 32)

MAX_BATCH = 1_000_000
MAX_PROMPT = 10_000_000
MAX_GEN = 1_000_000


class Settings(BaseModel):
    """What to analyse: the workload (batch, prompt, gen) and the optimizations applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: int = Field(1, ge=1, le=MAX_BATCH, description="sequences processed together")
    prompt: int = Field(1024, ge=1, le=MAX_PROMPT, description="prompt tokens per sequence")
    gen: int = Field(128, ge=1, le=MAX_GEN, description="generated tokens per sequence")
    w_bits: Bits = Field(16, description="weight bit width")
    a_bits: Bits = Field(16, description="activation bit width")
    kv_bits: Bits = Field(16, description="KV-cache bit width")
    flash_attention: bool = Field(True, description="fused attention: no score-matrix traffic")
    kv_cache: bool = Field(True, description="off: every decode step recomputes the whole sequence")
    dtype: Literal["fp16", "bf16"] = Field("fp16", description="16-bit float format of the model")
    low_bit: Literal["int", "float"] = Field("int", description="8/4-bit math in integers or fp8/fp4")
    group_size: int = Field(128, ge=1, le=1 << 20, description="quantization group size (weights)")
    quantize_embeddings: bool = Field(False, description="also quantize embedding table and LM head")
    symmetric: bool = Field(False, description="quantization scales only, no zero points")
    estimate: bool = Field(True, description="add the calibrated estimate when a profile is known")
    engine: str | None = Field(
        None, description="efficiency profile for the calibrated estimate (None: the device's default)"
    )
    overhead_bytes: float | None = Field(
        None, ge=0, description="runtime memory overhead; None: the hardware entry's figure, else 0"
    )

    @property
    def precision(self) -> Precision:
        return Precision(
            w_bits=self.w_bits,
            a_bits=self.a_bits,
            kv_bits=self.kv_bits,
            float16=self.dtype,
            low_bit=self.low_bit,
            group_size=self.group_size,
            quantize_embeddings=self.quantize_embeddings,
            symmetric=self.symmetric,
        )


# Named quantization formats, as the settings that describe their storage and math. llama.cpp's
# k-quants mix block sizes and widths; Q4_K_M is approximated by 4-bit groups of 32 with scale and
# minimum (4.625 bits/weight against its ~4.6-4.8 measured).
QUANT_PRESETS: dict[str, dict[str, object]] = {
    "fp16": {},
    "f16": {},  # llama.cpp's name for the same
    "bf16": {"dtype": "bf16"},
    "fp32": {"w_bits": 32, "a_bits": 32, "kv_bits": 32},
    "q8_0": {"w_bits": 8, "group_size": 32, "symmetric": True, "quantize_embeddings": True},
    "q4_0": {"w_bits": 4, "group_size": 32, "symmetric": True, "quantize_embeddings": True},
    "q4_k_m": {"w_bits": 4, "group_size": 32, "quantize_embeddings": True},
    "awq": {"w_bits": 4, "group_size": 128},
    "gptq": {"w_bits": 4, "group_size": 128},
    "w8a8": {"w_bits": 8, "a_bits": 8, "group_size": 1 << 20, "symmetric": True},
    "fp8": {
        "w_bits": 8,
        "a_bits": 8,
        "kv_bits": 8,
        "low_bit": "float",
        "group_size": 1 << 20,
        "symmetric": True,
    },
}


def preset(name: str) -> dict[str, object]:
    """Settings of a named quantization format (case-insensitive: 'Q4_0', 'fp8', ...)."""
    from .errors import RooflensError, did_you_mean

    key = name.strip().lower().replace("-", "_")
    if key not in QUANT_PRESETS:
        raise RooflensError(
            f"unknown quantization preset '{name}'.{did_you_mean(key, QUANT_PRESETS)} "
            f"Known: {', '.join(QUANT_PRESETS)}"
        )
    return dict(QUANT_PRESETS[key])
