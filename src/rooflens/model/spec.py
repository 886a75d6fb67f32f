"""ModelSpec: the architecture facts the analysis needs, normalised across model families.

A ModelSpec is built from a Hugging Face ``config.json`` (see ``families.py``); every field here is
family-neutral so that the operator builder never branches on ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Norm = Literal["rmsnorm", "layernorm"]
Position = Literal["rotary", "learned"]


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

    published_params: float | None = None
    published_params_source: str | None = None
    source: str | None = None
    hf_id: str | None = None

    @model_validator(mode="after")
    def _check_heads(self) -> ModelSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})"
            )
        if self.position == "rotary" and not 0 < self.rotary_dim <= self.head_dim:
            raise ValueError(f"rotary_dim ({self.rotary_dim}) must be in 1..head_dim ({self.head_dim})")
        if self.position == "learned" and self.learned_positions <= 0:
            raise ValueError("learned positions need a positive table size (n_positions)")
        return self

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

    def params(self) -> ParamBreakdown:
        """Parameter counts by role; the analysis sizes weight memory from these."""
        h, i = self.hidden_size, self.intermediate_size
        attn = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        mlp = (3 if self.gated_mlp else 2) * h * i
        bias = 0
        if self.qkv_bias:
            bias += self.q_dim + 2 * self.kv_dim
        if self.o_bias:
            bias += h
        if self.mlp_bias:
            bias += (2 * i if self.gated_mlp else i) + h
        norms = self.norms_per_layer * self.norm_params + (2 * self.head_dim if self.qk_norm else 0)
        return ParamBreakdown(
            linear=self.num_layers * (attn + mlp),
            layer_other=self.num_layers * (bias + norms),
            embedding=self.vocab_size * h,
            positions=self.learned_positions * h,
            final_norm=self.norm_params,
            lm_head=0 if self.tie_word_embeddings else self.vocab_size * h,
        )

    @property
    def num_params(self) -> int:
        return self.params().total

    def summary(self) -> dict[str, object]:
        """Key figures for catalog listings (``rooflens models --format json``)."""
        return {
            "name": self.name,
            "model_type": self.model_type,
            "params": self.num_params,
            "published_params": self.published_params,
            "layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "hf_id": self.hf_id,
            "source": self.source,
        }


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by role.

    ``linear`` are the matrix weights inside the decoder layers (the ones weight quantization
    applies to); ``layer_other`` their biases and norm weights; the rest sit outside the layers.
    """

    linear: int
    layer_other: int
    embedding: int
    positions: int
    final_norm: int
    lm_head: int

    @property
    def total(self) -> int:
        return (
            self.linear + self.layer_other + self.embedding + self.positions + self.final_norm + self.lm_head
        )
