"""ModelSpec: the architecture facts the analysis needs, normalised across model families.

A ModelSpec is built from a Hugging Face ``config.json`` (see ``families.py``); every field here is
family-neutral so that the operator builder never branches on ``model_type``.

Layers may differ: each is a mixer kind (``layer_attention``: dense attention ``full``, ``full_nope``,
``sliding`` or ``chunked``, latent ``mla``, sparse ``dsa``, linear ``gdn``, state-space ``mamba2``, or
``no_mixer``) and a feed-forward kind (``layer_mlp``: ``dense``, ``moe`` or ``no_ffn``), each a
registered kind of ``rooflens.layers``; left empty, every layer has the model's default kind.
``layers`` is the model as data: one (mixer, feed-forward) pair per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Norm = Literal["rmsnorm", "layernorm"]
Position = Literal["rotary", "learned", "none"]


class CheckpointQuant(BaseModel):
    """The quantization a checkpoint's ``config.json`` declares (``quantization_config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str  # "fp8", "mxfp4", "awq", "gptq", "compressed-tensors"
    bits: int = Field(gt=0, le=16)
    number_format: Literal["int", "float"]
    group_size: int = Field(gt=0)  # values along the input dimension sharing a scale
    block_rows: int = Field(1, gt=0)  # output rows sharing it too (128 for 128x128 blocks)
    scale_bits: int = Field(16, gt=0)
    symmetric: bool = True
    activations: int = Field(16, gt=0)  # bits the activations are quantized to at run time
    experts_only: bool = False  # only the routed experts are stored so (gpt-oss)
    skipped: tuple[str, ...] = ()  # modules the checkpoint leaves unconverted (modules_to_not_convert)
    wide_layers: int = Field(0, ge=0)  # its first and last N decoder layers are among them (16-bit)
    description: str


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
    attention_chunk: int | None = Field(default=None, gt=0)  # chunked local attention (Llama-4)
    attention_sinks: bool = False  # one learned softmax logit per head (gpt-oss)
    attn_output_gate: bool = False  # sigmoid gate on the attention output (Qwen3-Next)

    # Per-layer structure (empty: uniform): registered layer-kind names.
    layer_attention: tuple[str, ...] = ()
    layer_mlp: tuple[str, ...] = ()

    # Mixture of experts.
    num_experts: int = Field(default=0, ge=0)
    experts_per_token: int = Field(default=0, ge=0)
    moe_intermediate_size: int = Field(default=0, ge=0)
    shared_experts: int = Field(default=0, ge=0)  # DeepSeek: always-on experts of moe_intermediate_size
    shared_expert_intermediate_size: int = Field(default=0, ge=0)  # Qwen-MoE: one shared expert, gated
    shared_expert_gate: bool = False
    moe_bias: bool = False  # router and expert biases (gpt-oss)

    # State-space (Mamba-2) layers: heads of ssm_head_dim channels, groups of B/C, conv kernel.
    ssm_heads: int = Field(default=0, ge=0)
    ssm_head_dim: int = Field(default=0, ge=0)
    ssm_state_size: int = Field(default=0, ge=0)
    ssm_groups: int = Field(default=0, ge=0)
    ssm_conv_kernel: int = Field(default=0, ge=0)
    ssm_chunk_size: int = Field(default=256, ge=1)
    ssm_bias: bool = False
    ssm_conv_bias: bool = True

    # Gated DeltaNet (linear attention) layers.
    linear_k_heads: int = Field(default=0, ge=0)
    linear_v_heads: int = Field(default=0, ge=0)
    linear_k_head_dim: int = Field(default=0, ge=0)
    linear_v_head_dim: int = Field(default=0, ge=0)
    linear_conv_kernel: int = Field(default=0, ge=0)
    linear_chunk_size: int = Field(default=64, ge=1)

    # DeepSeek sparse attention's indexer.
    index_heads: int = Field(default=0, ge=0)
    index_head_dim: int = Field(default=0, ge=0)
    index_topk: int = Field(default=0, ge=0)

    # Multi-token prediction layers shipped with the checkpoint (DeepSeek-V3/R1), for speculation.
    mtp_layers: int = Field(default=0, ge=0)
    # What the checkpoint stores its weights in, when its config says.
    quantization: CheckpointQuant | None = None
    quantization_unread: str | None = None  # a quantization_config method rooflens does not read

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
    # How exact the published figures are: the unit they were rounded to ("70B": 1e9), what they
    # count that rooflens does not model (a vision encoder), whether they include the MTP layers.
    published_params_rounding: float | None = None
    published_params_unmodelled: str | None = None
    published_params_includes_mtp: bool = False
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
        from ..layers import REGISTRY, names

        for field, role in (("layer_attention", "mixer"), ("layer_mlp", "ffn")):
            kinds = getattr(self, field)
            if kinds and len(kinds) != self.num_layers:
                raise ValueError(f"{field} lists {len(kinds)} layers, the model has {self.num_layers}")
            for i, name in enumerate(kinds):
                if name not in REGISTRY or REGISTRY[name].role != role:
                    raise ValueError(
                        f"layer {i} has {role} kind '{name}', which is not a known kind; known: "
                        + ", ".join(names(role))
                    )
        for name in dict.fromkeys(self.attention_kinds() + self.mlp_kinds()):
            problem = REGISTRY[name].check(self)
            if problem:
                raise ValueError(problem)
        return self

    # --- layer structure -------------------------------------------------------------------------
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def model_class(self) -> str:
        """'MLA' (latent attention, with or without experts), 'MoE' or 'dense': the classes efficiency
        profiles are calibrated on."""
        return "MLA" if self.is_mla else "MoE" if self.num_experts else "dense"

    def attention_kinds(self) -> tuple[str, ...]:
        if self.layer_attention:
            return self.layer_attention
        kind = (
            ("dsa" if self.index_topk else "mla")
            if self.is_mla
            else "sliding"
            if self.sliding_window
            else "full"
        )
        return (kind,) * self.num_layers

    def mlp_kinds(self) -> tuple[str, ...]:
        if self.layer_mlp:
            return self.layer_mlp
        return ("moe" if self.num_experts else "dense",) * self.num_layers

    @property
    def layers(self) -> tuple[tuple[str, str], ...]:
        """The model as data: each layer's (mixer kind, feed-forward kind)."""
        return tuple(zip(self.attention_kinds(), self.mlp_kinds(), strict=True))

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
        """Parameter counts by role, summed from the operators each layer kind builds (one home for
        every matrix shape); the analysis sizes weight memory from these."""
        from ..layers import layer_params

        h = self.hidden_size
        linear, other, routed, active_routed = layer_params(self)
        return ParamBreakdown(
            linear=linear,
            layer_other=other,
            embedding=self.vocab_size * h,
            positions=self.learned_positions * h,
            final_norm=self.norm_params,
            lm_head=0 if self.tie_word_embeddings else self.vocab_size * h,
            routed_experts=routed,
            active_routed_experts=active_routed,
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
            "layer_kinds": sorted(set(self.attention_kinds() + self.mlp_kinds())),
            "hf_id": self.hf_id,
            "source": self.source,
        }


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by role.

    ``linear`` are the matrix weights inside the decoder layers (the ones weight quantization
    applies to), routed experts included; ``layer_other`` their biases, norm weights and other small
    vectors; the rest sit outside the layers. ``routed_experts`` is the part of the layers in routed
    experts (matrices and their biases), of which a token uses ``active_routed_experts``.
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
