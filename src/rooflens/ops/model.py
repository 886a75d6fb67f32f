"""build_ops: the operator list of one forward pass of the whole model.

Embedding lookup (only the rows of the tokens in the pass are read), learned positions where the
family has them, the decoder layers (one representative layer with ``count = num_layers``), the final
norm and the LM head. The LM head runs on the last token of each sequence only, in prefill as in
decode: serving engines and ``generate()`` keep only the logits they sample from.
"""

from __future__ import annotations

import numpy as np

from ..model.spec import ModelSpec
from .attention import Pass, attention_ops
from .base import ADD_FLOPS, SOFTCAP_FLOPS, Op, linear, norm
from .mlp import mlp_ops
from .precision import Precision


def embedding_table_bytes(spec: ModelSpec, prec: Precision) -> float:
    """Bytes of the whole token-embedding table (resident in memory even though lookups read rows)."""
    return prec.weight_bytes(spec.hidden_size, spec.vocab_size, prec.head_bits)


def build_ops(spec: ModelSpec, prec: Precision, p: Pass) -> list[Op]:
    h, T, a = spec.hidden_size, p.tokens, prec.a_bytes
    row_bytes = embedding_table_bytes(spec, prec) / spec.vocab_size
    ops = [
        Op(
            name="embedding",
            block="embed",
            kind="embedding",
            dtype="vector",
            count=1,
            flops=T * h if spec.embed_scale else 0.0,  # Gemma scales embeddings by sqrt(hidden)
            weight_bytes=T * row_bytes,
            act_out_bytes=T * h * a,
        )
    ]
    if spec.position == "learned":
        # The same positions serve every sequence of the batch: q rows of the table are read.
        ops.append(
            Op(
                name="pos_embedding",
                block="embed",
                kind="embedding",
                dtype="vector",
                count=1,
                flops=T * h * ADD_FLOPS,
                weight_bytes=p.q * h * prec.hi_bits / 8,
                act_in_bytes=T * h * a,
                act_out_bytes=T * h * a,
            )
        )
    layers = spec.num_layers
    ops += attention_ops(spec, prec, p, layers)
    ops += mlp_ops(spec, prec, p, layers)
    ops.append(norm("final_norm", "head", spec.norm, h, T, prec, count=1))
    logits_rows = float(p.batch)  # last token of each sequence
    ops.append(
        linear("lm_head", "head", h, spec.vocab_size, logits_rows, prec, count=1, w_bits=prec.head_bits)
    )
    if spec.final_logit_softcap:
        ops.append(
            Op(
                name="logit_softcap",
                block="head",
                kind="elementwise",
                dtype="vector",
                count=1,
                flops=logits_rows * spec.vocab_size * SOFTCAP_FLOPS,
                act_in_bytes=logits_rows * spec.vocab_size * a,
                act_out_bytes=logits_rows * spec.vocab_size * a,
            )
        )
    return ops


def weight_memory_bytes(spec: ModelSpec, prec: Precision, ops: list[Op]) -> float:
    """Resident weight bytes, derived from the ops so memory and traffic can never disagree.

    Every non-embedding op reads its whole weight once per pass; the embedding ops read only rows, so
    their tables are added whole (the LM head of a tied model *is* the embedding table).
    """
    read = sum(op.count * float(np.max(op.weight_bytes)) for op in ops if op.kind != "embedding")
    table = 0.0 if spec.tie_word_embeddings else embedding_table_bytes(spec, prec)
    positions = spec.learned_positions * spec.hidden_size * prec.hi_bits / 8
    return read + table + positions
