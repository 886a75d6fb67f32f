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
        )
