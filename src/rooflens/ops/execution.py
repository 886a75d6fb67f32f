"""How a forward pass is executed, beyond precision: parallelism and the techniques that change operators.

Layers that are executed the same way form a *layer group*: same mixer kind (full, sliding, MLA,
Mamba-2, ...), same feed-forward kind (dense, MoE, ...; see ``rooflens.layers``) and same context
treatment (prompt-compressed or not). Operators are built once per group with ``count`` = the
expected number of its layers a pass runs (fractional under early exit), so a 61-layer model with
three layer kinds costs three sets of formulas, not 61.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ..layers.base import REGISTRY
from ..model.spec import ModelSpec
from .base import Pass


@dataclass(frozen=True)
class Execution:
    """Everything besides precision that shapes the operators of one pass.

    Neutral values (tp = ep = pp = 1, no budget, keep_fraction 1, layer_run None) give the plain
    analysis exactly.
    """

    tp: int = 1
    ep: int = 1
    pp: int = 1
    devices_per_node: int = 8
    kv_budget: int | None = None  # decode attends over at most this many cached tokens (H2O, SnapKV)
    keep_fraction: float = 1.0  # share of the prompt kept after layer keep_after (GemFilter)
    keep_after: int = 0
    prompt: int = 0  # prompt length, for prompt compression
    layer_run: tuple[float, ...] | None = None  # probability each layer runs in this pass (early exit)
    mla_absorb: bool = False  # latent attention with absorbed up-projections (the decode path)
    routing_skew: float = 0.0  # Zipf exponent of expert popularity (0: uniform routing)
    identical: bool = False  # the batch's sequences are identical (they route to the same experts)
    offload_weights: float = 0.0  # shares held in host memory and streamed over the host link
    offload_experts: float = 0.0
    offload_kv: float = 0.0
    wide_layers: int = 0  # the first and last N layers run at 16 bits whatever the format

    @property
    def offloads(self) -> bool:
        return bool(self.offload_weights or self.offload_experts or self.offload_kv)

    @property
    def devices(self) -> int:
        return self.tp * self.ep * self.pp

    def link(self, group: int) -> str:
        """The link a collective over ``group`` devices uses: within a node, or across nodes."""
        return "intra" if group <= self.devices_per_node else "inter"


@dataclass(frozen=True)
class LayerGroup:
    attention: str  # its mixer kind (a name in rooflens.layers.REGISTRY)
    mlp: str  # its feed-forward kind
    kept: bool  # runs on the compressed prompt
    layers: tuple[int, ...]
    count: float  # expected layers of the group run per pass
    wide: bool = False  # kept at 16-bit weights and activations (first/last layers of FP8/FP4 models)

    @property
    def label(self) -> str:
        """How the group differs from a plain layer, for display ('' for plain layers)."""
        parts = [REGISTRY[k].label for k in (self.attention, self.mlp) if REGISTRY[k].label]
        if self.kept:
            parts.append("compressed prompt")
        if self.wide:
            parts.append("16-bit")
        return ", ".join(parts)


def layer_groups(spec: ModelSpec, ex: Execution) -> list[LayerGroup]:
    return list(_groups(spec.layers, ex.keep_fraction, ex.keep_after, ex.layer_run, ex.wide_layers))


@lru_cache(maxsize=512)
def _groups(
    layers: tuple[tuple[str, str], ...],
    keep_fraction: float,
    keep_after: int,
    layer_run: tuple | None,
    wide_layers: int = 0,
) -> tuple[LayerGroup, ...]:
    """Layers grouped by (mixer, feed-forward, compressed prompt, 16-bit): cached, as every pass asks."""
    members: dict[tuple[str, str, bool, bool], list[int]] = {}
    for i, (attention, mlp) in enumerate(layers):
        kept = keep_fraction < 1 and i >= keep_after
        wide = i < wide_layers or i >= len(layers) - wide_layers
        members.setdefault((attention, mlp, kept, wide), []).append(i)
    run = layer_run or (1.0,) * len(layers)
    return tuple(
        LayerGroup(attention, mlp, kept, tuple(members_), float(sum(run[i] for i in members_)), wide)
        for (attention, mlp, kept, wide), members_ in members.items()
    )


def group_pass(p: Pass, group: LayerGroup, spec: ModelSpec, ex: Execution) -> Pass:
    """The pass as the group's layers see it: compressed prompt, KV budget, sliding window."""
    q, c = p.q, p.c
    if group.kept:  # the dropped prompt tokens are gone from these layers' queries and context
        # Queries are the last q of the c positions; the prompt is positions [0, prompt). A pass may
        # cover part of the prompt only (a shared prefix, or the suffix after it).
        drop = 1 - ex.keep_fraction
        prompt_in_c = np.minimum(c, ex.prompt)
        prompt_in_q = np.maximum(0.0, prompt_in_c - (c - q))
        q = q - prompt_in_q * drop
        c = c - prompt_in_c * drop
    window, chunk = REGISTRY[group.attention].window(spec)
    if ex.kv_budget is not None and p.kv_cache:  # eviction applies to decode (q < c), not prefill
        if chunk:  # chunks keep their boundaries: the budget caps the keys a decode query reads
            if np.all(np.asarray(q) < np.asarray(c)):
                window = ex.kv_budget
        else:
            c = np.where(np.asarray(q) < np.asarray(c), np.minimum(c, ex.kv_budget), c)
    return replace(p, q=q, c=c, window=window, chunk=chunk)


def shard(spec: ModelSpec, tp: int) -> ModelSpec:
    """The slice of every layer one tensor-parallel rank holds.

    Each layer kind the model has says what it splits (attention heads, KV heads replicated when
    fewer than ``tp``, MLP and expert widths, Mamba and linear-attention heads; MLA's latent
    projections stay whole on every rank); the vocabulary splits ``tp`` ways.
    """
    if tp == 1:
        return spec
    update = {"vocab_size": math.ceil(spec.vocab_size / tp)}
    for name in dict.fromkeys(spec.attention_kinds() + spec.mlp_kinds()):
        update.update(REGISTRY[name].shard(spec, tp))
    return spec.model_copy(update=update)
