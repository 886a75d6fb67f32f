"""build_ops: the operator list of one forward pass, as one device runs it.

Embedding lookup (only the rows of the tokens in the pass are read), learned positions where the
family has them, the decoder layers (one set of operators per layer group, ``count`` = its layers),
the final norm and the LM head. The LM head runs on the last token of each sequence only, in prefill
as in decode: serving engines and ``generate()`` keep only the logits they sample from.

Multi-device execution (``Execution``): tensor parallelism shards every layer (``shard``) and adds two
all-reduces per layer, a vocabulary-parallel embedding all-reduce and a logits all-gather; expert
parallelism spreads the sequences over the group for attention and dense parts (data parallel),
gives each device ``E / ep`` experts and adds an all-to-all dispatch and combine per MoE layer;
pipeline parallelism splits the layers into stages (latency still runs through every layer) and adds
one activation transfer per stage boundary.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..layers.base import REGISTRY, Context
from ..model.spec import ModelSpec
from .base import ADD_FLOPS, SOFTCAP_FLOPS, Op, Pass, linear, norm
from .comm import all_gather, all_reduce, all_to_all, send
from .execution import Execution, LayerGroup, group_pass, layer_groups, shard
from .precision import Precision

PLAIN = Execution()


def embedding_table_bytes(spec: ModelSpec, prec: Precision) -> float:
    """Bytes of the whole token-embedding table (resident in memory even though lookups read rows)."""
    return prec.weight_bytes(spec.hidden_size, spec.vocab_size, prec.head_bits)


def weight_memory_bytes(spec: ModelSpec, prec: Precision, ops: list[Op], ex: Execution = PLAIN) -> float:
    """Resident weight bytes on one device, derived from the operators that use them.

    Layer operators hold their weights once per layer of their group (whatever the fraction of layers
    a pass runs); the embedding lookups read rows, so their tables are counted whole (a tied LM head
    *is* the embedding table). Under pipeline parallelism a device holds its stage's layers plus the
    embedding (first stage) or the head (last stage), whichever is larger.
    """
    layers = sum(len(op.layers) * op.resident for op in ops if op.layers and op.kind != "comm")
    head = sum(op.resident for op in ops if not op.layers and op.kind not in ("embedding", "comm"))
    local = shard(spec, ex.tp)
    table = 0.0 if spec.tie_word_embeddings else embedding_table_bytes(local, prec)
    positions = spec.learned_positions * spec.hidden_size * prec.hi_bits / 8
    if ex.pp == 1:
        return layers + head + table + positions
    first = (
        table + positions if not spec.tie_word_embeddings else embedding_table_bytes(local, prec) + positions
    )
    return layers / ex.pp + max(first, head)


def device_pass(p: Pass, ex: Execution) -> Pass:
    """The pass one device runs: under expert parallelism attention and dense parts are data-parallel,
    and a device holds its share of the sequences (the busiest one, when they do not divide evenly)."""
    return replace(p, batch=math.ceil(p.batch / ex.ep)) if ex.ep > 1 else p


def group_ops(spec: ModelSpec, prec: Precision, p: Pass, group: LayerGroup, ex: Execution) -> list[Op]:
    """One layer group's operators on one device (``p`` is the whole pass): its mixer, its
    feed-forward block and their collectives."""
    local = shard(spec, ex.tp)
    gp = group_pass(device_pass(p, ex), group, spec, ex)
    ctx = Context(
        absorb=ex.mla_absorb,
        ep=ex.ep,
        routing_skew=ex.routing_skew,
        identical=ex.identical,
        group_tokens=group_pass(p, group, spec, ex).tokens,  # all reach the experts (all-to-all)
    )
    if group.wide:
        prec = prec.widened()
    block = REGISTRY[group.attention].ops(local, prec, gp, group.count, ctx)
    block += REGISTRY[group.mlp].ops(local, prec, gp, group.count, ctx)
    block += _layer_comm(spec, prec, gp, group, group.count, ex)
    for op in block:  # freshly built: label them in place (dataclasses.replace is slow in sweeps)
        op.group, op.layers, op.tokens = group.label, group.layers, gp.tokens
        if op.kind == "attention":
            op.context = gp.c
    return block


def build_ops(spec: ModelSpec, prec: Precision, p: Pass, ex: Execution = PLAIN) -> list[Op]:
    local = shard(spec, ex.tp)
    mine = device_pass(p, ex)
    ops = _embedding_ops(local, prec, mine, ex)
    for op in ops:
        op.tokens = mine.tokens
    for group in layer_groups(spec, ex):
        ops += group_ops(spec, prec, p, group, ex)
    if ex.pp > 1:
        size = mine.tokens * spec.hidden_size * prec.a_bytes
        ops.append(send("pp_send", "head", size, ex.pp - 1, ex.link(ex.devices)))
    head = _head_ops(local, spec, prec, mine, ex)
    for op in head:
        op.tokens = mine.tokens
    ops += head
    return ops + _offload_ops(ops, ex)


def _offload_ops(ops: list[Op], ex: Execution) -> list[Op]:
    """Host-memory traffic of a pass: the offloaded shares of the weights, experts and KV cache it reads
    (and the KV it writes) cross the host link (PCIe, NVLink-C2C), one transfer per tier."""
    if not ex.offloads:
        return []
    weights = experts = kv = 0.0
    for op in ops:
        if op.kind == "comm":
            continue
        if op.routed_params:
            experts = experts + op.count * op.weight_bytes
        else:
            weights = weights + op.count * op.weight_bytes
        kv = kv + op.count * (op.kv_read_bytes + op.kv_write_bytes)
    moved = ex.offload_weights * weights + ex.offload_experts * experts + ex.offload_kv * kv
    return [send("host_transfer", "offload", moved, 1.0, "host")]


def _embedding_ops(spec: ModelSpec, prec: Precision, p: Pass, ex: Execution) -> list[Op]:
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
    if ex.tp > 1:  # each rank looked up only the rows of its vocabulary shard
        ops.append(all_reduce("embed_allreduce", "embed", T * h * a, ex.tp, 1, ex.link(ex.tp)))
    return ops


def _layer_comm(spec: ModelSpec, prec: Precision, p: Pass, group, count: float, ex: Execution) -> list[Op]:
    size = p.tokens * spec.hidden_size * prec.a_bytes
    ops = []
    if ex.tp > 1:  # partial sums of the mixer's output projection and of down_proj (or the combine)
        link = ex.link(ex.tp)
        if group.attention != "no_mixer":
            ops.append(all_reduce("attn_allreduce", "attention", size, ex.tp, count, link))
        if group.mlp != "no_ffn":
            ops.append(all_reduce("mlp_allreduce", "mlp", size, ex.tp, count, link))
    if group.mlp == "moe" and ex.ep > 1:  # each token's k expert inputs go out and come back
        routed = size * spec.experts_per_token
        link = ex.link(ex.ep * ex.tp)
        ops += [
            all_to_all("moe_dispatch", "mlp", routed, ex.ep, count, link),
            all_to_all("moe_combine", "mlp", routed, ex.ep, count, link),
        ]
    return ops


def _head_ops(local: ModelSpec, spec: ModelSpec, prec: Precision, p: Pass, ex: Execution) -> list[Op]:
    h, T, a = spec.hidden_size, p.tokens, prec.a_bytes
    rows = float(p.batch)  # last token of each sequence
    ops = [
        norm("final_norm", "head", spec.norm, h, T, prec, count=1),
        linear(
            "lm_head", "head", h, local.vocab_size, rows, prec, count=1, w_bits=prec.head_bits, sparse=False
        ),
    ]
    if spec.final_logit_softcap:
        ops.append(
            Op(
                name="logit_softcap",
                block="head",
                kind="elementwise",
                dtype="vector",
                count=1,
                flops=rows * local.vocab_size * SOFTCAP_FLOPS,
                act_in_bytes=rows * local.vocab_size * a,
                act_out_bytes=rows * local.vocab_size * a,
            )
        )
    if ex.tp > 1:
        ops.append(all_gather("logits_gather", "head", rows * spec.vocab_size * a, ex.tp, 1, ex.link(ex.tp)))
    return ops
