"""The workload and optimization settings of one analysis, validated at the boundary.

Keyword names match the CLI flags (``--w-bits`` -> ``w_bits``). Limits keep every analysis to a
bounded amount of work (a decode timeline is one array entry per generated token).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .formats import ALIASES, FORMATS, kv_lookup, lookup
from .ops.precision import Precision

Bits = Literal[4, 8, 16, 32]  # activations and KV cache
BITS_ALLOWED = (4, 8, 16, 32)
WEIGHT_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)

MAX_BATCH = 1_000_000
MAX_PROMPT = 10_000_000
MAX_GEN = 1_000_000


class Settings(BaseModel):
    """What to analyse: the workload (batch, prompt, gen) and the optimizations applied."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    batch: int = Field(1, ge=1, le=MAX_BATCH, description="sequences processed together")
    prompt: int = Field(1024, ge=1, le=MAX_PROMPT, description="prompt tokens per sequence")
    gen: int = Field(128, ge=1, le=MAX_GEN, description="generated tokens per sequence")
    w_bits: Literal[1, 2, 3, 4, 5, 6, 7, 8, 16, 32] = Field(16, description="weight bit width (1-8, 16, 32)")
    a_bits: Literal[4, 6, 8, 16, 32] = Field(16, description="activation bit width")
    kv_bits: Bits = Field(16, description="KV-cache bit width")
    state_bits: Literal[16, 32] = Field(16, description="recurrent-state bit width (Mamba-2, Gated DeltaNet)")
    flash_attention: bool = Field(True, description="fused attention: no score-matrix traffic")
    kv_cache: bool = Field(True, description="off: every decode step recomputes the whole sequence")
    dtype: Literal["fp16", "bf16"] = Field("fp16", description="16-bit float format of the model")
    low_bit: Literal["int", "float"] = Field("int", description="8/4-bit math in integers or fp8/fp4")
    group_size: int = Field(128, ge=1, le=1 << 20, description="quantization group size (weights)")
    block_rows: int = Field(
        1, ge=1, le=1 << 20, description="output rows sharing a weight scale (2-D blocks)"
    )
    scale_bits: Literal[8, 16, 32] = Field(
        16, description="bits of one weight scale (E8M0/E4M3 8, fp16, fp32)"
    )
    kv_scale: Literal["none", "tensor", "head", "block"] = Field(
        "head", description="KV-cache scales: per tensor, per head vector, or per block of kv_block values"
    )
    kv_block: int = Field(16, ge=1, le=1024, description="values per KV-cache scale with kv_scale block")
    expert_quant: str | None = Field(None, description="a named format for the routed experts only")
    quantize_embeddings: bool = Field(False, description="also quantize embedding table and LM head")
    symmetric: bool = Field(False, description="quantization scales only, no zero points")
    estimate: bool = Field(True, description="add the calibrated estimate when a profile is known")
    engine: str | None = Field(
        None, description="efficiency profile for the calibrated estimate (None: the device's default)"
    )
    overhead_bytes: float | None = Field(
        None, ge=0, le=1e15, description="runtime memory overhead; None: the hardware entry's figure, else 0"
    )

    # Multi-device execution.
    tp: int = Field(1, ge=1, le=1024, description="tensor-parallel degree")
    pp: int = Field(1, ge=1, le=1024, description="pipeline-parallel stages")
    ep: int = Field(1, ge=1, le=1024, description="expert-parallel degree (attention runs data-parallel)")
    micro_batches: int | None = Field(None, ge=1, le=4096, description="pipeline micro-batches (default: pp)")
    devices_per_node: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="devices sharing the fast interconnect (default: the device's domain)",
    )

    # Tiered memory: shares kept in host memory and streamed over the host link each pass.
    offload_weights: float = Field(
        0.0, ge=0, le=1, description="share of the non-expert weights in host memory"
    )
    offload_experts: float = Field(0.0, ge=0, le=1, description="share of the routed experts in host memory")
    offload_kv: float = Field(0.0, ge=0, le=1, description="share of the KV cache in host memory")
    wide_layers: int = Field(
        0,
        ge=0,
        le=1024,
        description="the first and last N decoder layers kept at 16 bits (as FP8/FP4 checkpoints do)",
    )

    # The survey's techniques; neutral values leave the analysis unchanged.
    draft_model: str | None = Field(None, description="speculative decoding: the draft model")
    draft_tokens: int = Field(4, ge=1, le=64, description="tokens the draft proposes per round")
    acceptance_rate: float = Field(0.8, ge=0, le=1, description="chance each draft token is accepted")
    spec_heads: Literal["mtp", "eagle3", "medusa"] | None = Field(
        None, description="speculative decoding with heads on the target itself: mtp, eagle3 or medusa"
    )
    verify_tokens: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="tokens the target verifies per round (a tree); default draft_tokens + 1",
    )
    draft_vocab: int | None = Field(
        None, ge=1, le=10_000_000, description="EAGLE-3 head's draft vocabulary (default 32,000)"
    )
    exit_fraction: float = Field(1.0, gt=0, le=1, description="early exit: share of layers run per token")
    exit_distribution: tuple[float, ...] | None = Field(
        None, description="early exit: probability a token leaves after each layer (sums to 1)"
    )
    sparsity: str | None = Field(None, description="N:M structured weight sparsity, e.g. '2:4'")
    prompt_keep: float = Field(1.0, gt=0, le=1, description="prompt compression: share of prompt tokens kept")
    prompt_keep_after: int = Field(
        0, ge=0, le=1024, description="layers that see the whole prompt before compression"
    )
    kv_budget: int | None = Field(
        None, ge=1, le=MAX_PROMPT + MAX_GEN, description="token eviction: cached tokens kept per layer"
    )
    shared_prefix: int = Field(
        0, ge=0, le=MAX_PROMPT, description="prompt tokens shared by every sequence of the batch"
    )
    prefix_reads_once: bool = Field(False, description="attention reads the shared prefix once per step")
    routing_skew: float = Field(0.0, ge=0, le=4, description="MoE expert popularity skew (Zipf exponent)")
    routing: Literal["uniform", "zipf", "identical"] = Field(
        "uniform",
        description="MoE routing: uniform, zipf (popularity skew routing_skew, default 1) or identical "
        "(every sequence is the same prompt, so all route to the same experts)",
    )
    mla_absorb: Literal["auto", "always", "never"] = Field(
        "auto", description="latent attention path: auto absorbs in decode, decompresses in prefill"
    )

    @model_validator(mode="before")
    @classmethod
    def _routing(cls, data: object) -> object:
        # zipf names the skewed routing routing_skew measures; without a skew it takes Zipf's 1.
        if isinstance(data, dict) and data.get("routing") == "zipf" and not data.get("routing_skew"):
            return {**data, "routing_skew": 1.0}
        return data

    @model_validator(mode="after")
    def _routing_agrees(self) -> Settings:
        if self.routing_skew and self.routing == "identical":
            raise ValueError(
                "routing 'identical' sends every sequence to the same experts; drop routing_skew"
            )
        if self.routing_skew and self.routing == "uniform" and "routing" in self.model_fields_set:
            raise ValueError(
                f"routing 'uniform' contradicts routing_skew {self.routing_skew:g}; use routing 'zipf' "
                "(or leave routing out) for skewed popularity"
            )
        return self

    @field_validator("sparsity")
    @classmethod
    def _nm(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", value)
        if not match or not 0 < int(match[1]) < int(match[2]) <= 32:
            raise ValueError(f"sparsity must be N:M with 0 < N < M <= 32, such as '2:4' (got {value!r})")
        return f"{int(match[1])}:{int(match[2])}"

    @field_validator("exit_distribution")
    @classmethod
    def _distribution(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and (any(v < 0 for v in value) or abs(sum(value) - 1) > 1e-6):
            raise ValueError("exit_distribution must hold non-negative probabilities that sum to 1")
        return value

    @property
    def sparsity_pattern(self) -> tuple[int, int] | None:
        if self.sparsity is None:
            return None
        n, m = self.sparsity.split(":")
        return int(n), int(m)

    @property
    def precision(self) -> Precision:
        return Precision(
            w_bits=self.w_bits,
            a_bits=self.a_bits,
            kv_bits=self.kv_bits,
            state_bits=self.state_bits,
            float16=self.dtype,
            low_bit=self.low_bit,
            group_size=self.group_size,
            block_rows=self.block_rows,
            scale_bits=self.scale_bits,
            kv_scale=self.kv_scale,
            kv_block=self.kv_block,
            quantize_embeddings=self.quantize_embeddings,
            symmetric=self.symmetric,
            sparsity=self.sparsity_pattern,
        )


# The named formats (rooflens.formats) as settings: one table for every command.
QUANT_PRESETS: dict[str, dict[str, object]] = {
    **{name: dict(fmt.settings) for name, fmt in FORMATS.items()},
    **{alias: dict(FORMATS[target].settings) for alias, target in ALIASES.items()},
}


def preset(name: str) -> dict[str, object]:
    """Settings of a named weight format (case-insensitive: 'Q4_0', 'fp8', 'nvfp4', ...)."""
    return dict(lookup(name).settings)


def kv_preset(name: str) -> dict[str, object]:
    """Settings of a named KV-cache format ('fp8' per tensor, 'fp8-head', 'nvfp4', ...)."""
    kv = kv_lookup(name)
    return {"kv_bits": kv.kv_bits, "kv_scale": kv.kv_scale, "kv_block": kv.kv_block or 16}
