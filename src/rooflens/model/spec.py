"""ModelSpec: the architecture facts the analysis needs, normalised across model families.

A ModelSpec is built from a Hugging Face ``config.json`` (see ``families.py``); every field here is
family-neutral so that the operator builder never branches on ``model_type``.

Layers may differ: each has an attention kind ("full", "sliding" window, or "mla" for DeepSeek's
multi-head latent attention) and an MLP kind ("dense" or "moe"). ``layer_attention`` and
``layer_mlp`` list them per layer; left empty, every layer has the model's default kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Norm = Literal["rmsnorm", "layernorm"]
Position = Literal["rotary", "learned"]
AttentionKind = Literal["full", "sliding", "mla"]
MlpKind = Literal["dense", "moe"]


class ModelSpec(BaseModel):
    """A decoder-only transformer, as far as inference cost is concerned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    model_type: str
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int | None = Field(default=None, gt=0)

    gated_mlp: bool = True
    activation: str = "silu"
    norm: Norm = "rmsnorm"
    norms_per_layer: int = Field(default=2, ge=1, le=4)
    qk_norm: bool = False
    qk_norm_per_head: bool = True  # Qwen3 normalises each head; OLMoE the whole q and k projections
    position: Position = "rotary"
    rotary_dim: int = Field(default=0, ge=0)
    learned_positions: int = Field(default=0, ge=0)
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    parallel_residual: bool = False
    embed_scale: bool = False
    sliding_window: int | None = Field(default=None, gt=0)
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None

    # Per-layer structure (empty: uniform).
    layer_attention: tuple[AttentionKind, ...] = ()
    layer_mlp: tuple[MlpKind, ...] = ()

    # Mixture of experts.
    num_experts: int = Field(default=0, ge=0)
    experts_per_token: int = Field(default=0, ge=0)
    moe_intermediate_size: int = Field(default=0, ge=0)
    shared_experts: int = Field(default=0, ge=0)  # DeepSeek: always-on experts of moe_intermediate_size
    shared_expert_intermediate_size: int = Field(default=0, ge=0)  # Qwen-MoE: one shared expert, gated
    shared_expert_gate: bool = False

    # Multi-head latent attention (DeepSeek-V2/V3).
    kv_lora_rank: int = Field(default=0, ge=0)
    q_lora_rank: int = Field(default=0, ge=0)
    qk_nope_head_dim: int = Field(default=0, ge=0)
    qk_rope_head_dim: int = Field(default=0, ge=0)
    v_head_dim: int = Field(default=0, ge=0)

    published_params: float | None = None
    published_params_source: str | None = None
    published_active_params: float | None = None
    # How the publisher counts active parameters: "with input embedding" (Mistral, Qwen, AI2) or
    # "without input embedding" (DeepSeek; a lookup reads one row of the table).
    active_params_convention: str | None = None
    source: str | None = None
    hf_id: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})"
            )
        if self.position == "rotary" and not 0 < self.rotary_dim <= self.head_dim:
            raise ValueError(f"rotary_dim ({self.rotary_dim}) must be in 1..head_dim ({self.head_dim})")
        if self.position == "learned" and self.learned_positions <= 0:
            raise ValueError("learned positions need a positive table size (n_positions)")
        for name, kinds in (("layer_attention", self.layer_attention), ("layer_mlp", self.layer_mlp)):
            if kinds and len(kinds) != self.num_layers:
                raise ValueError(f"{name} lists {len(kinds)} layers, the model has {self.num_layers}")
        if "sliding" in self.attention_kinds() and not self.sliding_window:
            raise ValueError("sliding-window layers need a sliding_window size")
        moe_ok = 0 < self.experts_per_token <= self.num_experts and self.moe_intermediate_size > 0
        if "moe" in self.mlp_kinds() and not moe_ok:
            raise ValueError(
                "MoE layers need num_experts > 0, 1 <= experts per token <= num_experts and a "
                f"moe_intermediate_size (got {self.num_experts}, {self.experts_per_token}, "
                f"{self.moe_intermediate_size})"
            )
        if "mla" in self.attention_kinds() and not (
            self.kv_lora_rank and self.qk_nope_head_dim and self.qk_rope_head_dim and self.v_head_dim
        ):
            raise ValueError("latent attention needs kv_lora_rank, qk_nope/qk_rope head dims and v_head_dim")
        return self

    # --- layer structure -------------------------------------------------------------------------
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    def attention_kinds(self) -> tuple[str, ...]:
        if self.layer_attention:
            return self.layer_attention
        kind = "mla" if self.is_mla else "sliding" if self.sliding_window else "full"
        return (kind,) * self.num_layers

    def mlp_kinds(self) -> tuple[str, ...]:
        if self.layer_mlp:
            return self.layer_mlp
        return ("moe" if self.num_experts else "dense",) * self.num_layers

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def norm_params(self) -> int:
        """Parameters of one norm over hidden_size (LayerNorm has a bias, RMSNorm does not)."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def kv_cache_values(self, attention: str) -> int:
        """Values cached per token per layer: K and V, or MLA's compressed latent plus its rope key."""
        if attention == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_dim

    def _attention_params(self, kind: str) -> tuple[int, int]:
        """(matrix weights, biases + norms) of one attention block."""
        h = self.hidden_size
        if kind == "mla":
            heads, qk = self.num_heads, self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank * heads * qk) if self.q_lora_rank else h * heads * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv += self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            o = heads * self.v_head_dim * h
            return q + kv + o, self.q_lora_rank + self.kv_lora_rank  # the two latent RMSNorms
        matrices = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        other = (self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0) + (h if self.o_bias else 0)
        if self.qk_norm:
            other += 2 * self.head_dim if self.qk_norm_per_head else self.q_dim + self.kv_dim
        return matrices, other

    def _mlp_params(self, kind: str) -> tuple[int, int, int]:
        """(matrix weights, biases, routed-expert weights among the matrices) of one MLP block."""
        h, i = self.hidden_size, self.intermediate_size
        if kind == "dense":
            matrices = (3 if self.gated_mlp else 2) * h * i
            bias = ((2 * i if self.gated_mlp else i) + h) if self.mlp_bias else 0
            return matrices, bias, 0
        expert = 3 * h * self.moe_intermediate_size
        routed = self.num_experts * expert
        shared = self.shared_experts * expert + 3 * h * self.shared_expert_intermediate_size
        gate = h if self.shared_expert_gate else 0
        return h * self.num_experts + routed + shared + gate, 0, routed

    def params(self) -> ParamBreakdown:
        """Parameter counts by role; the analysis sizes weight memory from these."""
        h = self.hidden_size
        linear = other = routed = 0
        for attention, mlp in zip(self.attention_kinds(), self.mlp_kinds(), strict=True):
            a_mat, a_other = self._attention_params(attention)
            m_mat, m_bias, m_routed = self._mlp_params(mlp)
            linear += a_mat + m_mat
            other += a_other + m_bias + self.norms_per_layer * self.norm_params
            routed += m_routed
        moe_layers = self.mlp_kinds().count("moe")
        return ParamBreakdown(
            linear=linear,
            layer_other=other,
            embedding=self.vocab_size * h,
            positions=self.learned_positions * h,
            final_norm=self.norm_params,
            lm_head=0 if self.tie_word_embeddings else self.vocab_size * h,
            routed_experts=routed,
            active_routed_experts=moe_layers * self.experts_per_token * 3 * h * self.moe_intermediate_size,
        )

    @property
    def num_params(self) -> int:
        return self.params().total

    @property
    def active_params(self) -> int:
        """Parameters one token uses: all but the routed experts it is not sent to."""
        return self.params().active

    @property
    def active_params_as_published(self) -> int:
        """active_params in the publisher's convention (DeepSeek leaves out the input embedding)."""
        p = self.params()
        return p.active - (p.embedding if self.active_params_convention == "without input embedding" else 0)

    def summary(self) -> dict[str, object]:
        """Key figures for catalog listings (``rooflens models --format json``)."""
        return {
            "name": self.name,
            "model_type": self.model_type,
            "params": self.num_params,
            "active_params": self.active_params,
            "published_params": self.published_params,
            "layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "num_experts": self.num_experts,
            "experts_per_token": self.experts_per_token,
            "attention": sorted(set(self.attention_kinds())),
            "hf_id": self.hf_id,
            "source": self.source,
        }


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by role.

    ``linear`` are the matrix weights inside the decoder layers (the ones weight quantization
    applies to), routed experts included; ``layer_other`` their biases and norm weights; the rest sit
    outside the layers. ``routed_experts`` is the part of ``linear`` in routed experts, of which a
    token uses ``active_routed_experts``.
    """

    linear: int
    layer_other: int
    embedding: int
    positions: int
    final_norm: int
    lm_head: int
    routed_experts: int = 0
    active_routed_experts: int = 0

    @property
    def total(self) -> int:
        return (
            self.linear + self.layer_other + self.embedding + self.positions + self.final_norm + self.lm_head
        )

    @property
    def active(self) -> int:
        return self.total - self.routed_experts + self.active_routed_experts
