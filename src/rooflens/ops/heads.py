"""Head-based speculative decoding: draft tokens from small heads on the target's own hidden states
instead of a separate draft model.

- ``mtp``: DeepSeek's multi-token prediction module (``num_nextn_predict_layers``; GLM-4.5 has one
  too): the next token's embedding and the last hidden state, each normalised, are concatenated and
  projected (``eh_proj``, 2h -> h), run through one decoder layer of the model's own kind (latent
  attention and MoE for DeepSeek) and the shared final norm and LM head. A chain of ``k`` drafts
  reuses the module ``k`` times (as SGLang and vLLM run it).
- ``eagle3``: one Llama-style decoder layer at the target's width whose attention projections read
  the token embedding and the draft's hidden state side by side (2h), fed by ``fc`` fusing three of
  the target's hidden states (3h -> h, once per round), and its own LM head over a reduced draft
  vocabulary (32,000 tokens in the released EAGLE-3 heads); chained ``k`` times.
- ``medusa``: ``k`` heads, each a residual block (h -> h, SiLU) and its own LM head over the full
  vocabulary, all run once per round on the last hidden state.

The embedding table and (MTP) the LM head are the target's: their weights are read again but not
held twice. The MTP and EAGLE layers keep their own one-layer KV cache.
"""

from __future__ import annotations

from ..layers.attention import attention_ops
from ..layers.base import REGISTRY
from ..model.spec import ModelSpec
from .base import ADD_FLOPS, Op, Pass, elementwise, linear, norm
from .execution import Execution, LayerGroup, shard
from .model import device_pass, group_ops
from .precision import Precision

EAGLE_DRAFT_VOCAB = 32_000  # the reduced vocabulary of the released EAGLE-3 heads
SILU_FLOPS = 4
SHARED = ("embedding", "lm_head")  # target weights a head reads but does not hold again


def _embedding(spec: ModelSpec, prec: Precision, p: Pass) -> Op:
    row = spec.hidden_size * prec.head_bits / 8
    return Op(
        name="embedding",
        block="draft",
        kind="embedding",
        dtype="vector",
        count=1,
        flops=0.0,
        weight_bytes=p.tokens * row,
        act_out_bytes=p.tokens * spec.hidden_size * prec.a_bytes,
    )


def _lm_head(spec: ModelSpec, prec: Precision, rows, vocab: int, name: str = "lm_head") -> Op:
    return linear(name, "draft", spec.hidden_size, vocab, rows, prec, count=1, w_bits=prec.head_bits)


def mtp_ops(spec: ModelSpec, prec: Precision, p: Pass, ex: Execution) -> list[Op]:
    """One step of the multi-token prediction module over ``p`` (the whole pass): a decoder layer of
    the model's last-layer kinds, sharded and distributed like the model's own layers."""
    local, mine = shard(spec, ex.tp), device_pass(p, ex)
    h, T = spec.hidden_size, mine.tokens
    mixer, ffn = spec.layers[-1]
    ops = [
        _embedding(local, prec, mine),
        norm("mtp_enorm", "draft", spec.norm, h, T, prec, count=1),
        norm("mtp_hnorm", "draft", spec.norm, h, T, prec, count=1),
        linear("mtp_eh_proj", "draft", 2 * h, h, T, prec, count=1),
    ]
    ops += group_ops(spec, prec, p, LayerGroup(mixer, ffn, False, (spec.num_layers,), 1.0), ex)
    ops += [
        norm("mtp_norm", "draft", spec.norm, h, T, prec, count=1),
        _lm_head(local, prec, float(mine.batch), local.vocab_size),
    ]
    return ops


def eagle3_ops(spec: ModelSpec, prec: Precision, p: Pass, draft_vocab: int) -> list[Op]:
    """One chained step of an EAGLE-3 head: its decoder layer reads [embedding, hidden] (2h wide)."""
    h, T = spec.hidden_size, p.tokens
    # Projections read 2h; the norm over the 2h concatenation stands for EAGLE-3's two h-wide norms.
    wide = spec.model_copy(update={"hidden_size": 2 * h, "num_layers": 1})
    layer = [op for op in attention_ops(wide, prec, p, 1.0) if op.name not in ("o_proj", "attn_residual")]
    ops = [_embedding(spec, prec, p), *layer]
    ops.append(linear("o_proj", "draft", spec.q_dim, h, T, prec, count=1))
    ops.append(elementwise("attn_residual", "draft", T * h, ADD_FLOPS, prec, count=1, inputs=2))
    ops += REGISTRY["dense"].ops(spec, prec, p, 1.0)
    ops += [
        norm("eagle_norm", "draft", spec.norm, h, T, prec, count=1),
        _lm_head(spec, prec, float(p.batch), draft_vocab, "draft_lm_head"),
    ]
    return ops


def eagle3_fuse_op(spec: ModelSpec, prec: Precision, p: Pass) -> Op:
    """EAGLE-3's ``fc``: three target hidden states fused into one (3h -> h), once per round."""
    return linear("eagle_fc", "draft", 3 * spec.hidden_size, spec.hidden_size, p.tokens, prec, count=1)


def medusa_ops(spec: ModelSpec, prec: Precision, p: Pass, heads: int) -> list[Op]:
    """All ``heads`` Medusa heads on the last hidden state of each sequence."""
    h, rows = spec.hidden_size, float(p.batch)
    return [
        linear("medusa_block", "draft", h, h, rows, prec, count=heads, bias=True),
        elementwise("medusa_act", "draft", rows * h, SILU_FLOPS + ADD_FLOPS, prec, count=heads, inputs=2),
        linear("medusa_lm_head", "draft", h, spec.vocab_size, rows, prec, count=heads, w_bits=prec.head_bits),
    ]


def head_weight_bytes(ops: list[Op]) -> float:
    """Weights a head adds to memory: all its own, none of the target's it shares."""
    return sum(op.count * op.resident for op in ops if op.name not in SHARED and op.kind != "comm")


def mtp_params(spec: ModelSpec) -> int:
    """Parameters of the checkpoint's MTP layers (shared embedding and head left out)."""
    ops = mtp_ops(spec, Precision(), Pass(1, 1.0, 1.0), Execution())
    one = sum(op.params + op.other_params for op in ops if op.name not in SHARED)
    return round(spec.mtp_layers * one)
