"""Mixture-of-experts MLP: router, routed experts (top-k of E), shared experts, combine.

Weight traffic is what makes MoE decode differ from dense decode: a pass reads only the experts its
tokens are routed to. With ``T`` tokens each picking ``k`` of ``E`` experts, expert ``i`` (picked by a
token with probability ``p_i``) is touched with probability ``1 - (1 - p_i)^T``; under uniform routing
``p_i = k / E``, so batch 1 reads k experts and large batches read almost all of them. A Zipf skew
(``p_i`` proportional to ``i^-s``) models popular experts. Under expert parallelism each device holds
``E / ep`` experts (round-robin: device 0 holds the most popular one and is the one reported) and
receives the tokens routed to them from the whole group.
"""

from __future__ import annotations

import numpy as np

from ..model.spec import ModelSpec
from ..ops.base import ADD_FLOPS, Array, Op, Pass, activation_flops, elementwise, linear, norm
from ..ops.precision import Precision
from .base import PLAIN, Context, LayerKind, ceil_part, register

ROUTING_FLOPS = 5  # softmax over the expert logits, plus top-k selection
_SLICE = 1 << 20  # probability x token-count cells evaluated at once (8 MB of floats)


def expert_probabilities(num_experts: int, k: int, skew: float) -> np.ndarray:
    """Probability that one token picks each expert (sums to k); Zipf-skewed when ``skew`` > 0."""
    weights = np.arange(1, num_experts + 1, dtype=float) ** -skew
    return np.minimum(k * weights / weights.sum(), 1.0)


def routed_load(num_experts: int, k: int, tokens: Array, ep: int, skew: float) -> tuple[Array, Array]:
    """(distinct experts touched, token-expert assignments) on the busiest expert-parallel device."""
    local = expert_probabilities(num_experts, k, skew)[::ep]  # device 0: experts 0, ep, 2ep, ...
    tokens = np.asarray(tokens, dtype=float)
    # Computed once per distinct probability and distinct token count (decode steps share one batch
    # size; uniform routing has one probability), in slices of bounded size: never an experts x steps
    # matrix, whose size would be the product of two request parameters.
    probs, weight = np.unique(local, return_counts=True)
    counts, back = np.unique(tokens.reshape(-1), return_inverse=True)
    touched = np.empty(counts.shape)
    step = max(1, _SLICE // probs.size)
    for i in range(0, counts.size, step):
        part = counts[i : i + step]
        touched[i : i + step] = weight @ (1 - (1 - probs[:, None]) ** part[None, :])
    return touched[back].reshape(tokens.shape), tokens * local.sum()


def moe_ops(
    spec: ModelSpec,
    prec: Precision,
    p: Pass,
    count: float,
    group_tokens: Array,
    ep: int,
    skew: float,
    distinct: Array | None = None,
) -> list[Op]:
    """One MoE MLP block on a device: ``p`` is the device's own pass, ``group_tokens`` the tokens of the
    whole expert-parallel group (they all reach the experts through the all-to-all). ``distinct``: how
    many of them choose experts independently (identical sequences: one sequence's tokens)."""
    h, ie, T = spec.hidden_size, spec.moe_intermediate_size, p.tokens
    E, k = spec.num_experts, spec.experts_per_token
    touched, routed = routed_load(E, k, group_tokens, ep, skew)
    if distinct is not None:
        touched = routed_load(E, k, np.minimum(distinct, group_tokens), ep, skew)[0]
    a = prec.a_bytes
    act_flops = activation_flops(spec.activation)
    xp = prec.experts  # the routed experts' own format (gpt-oss: MXFP4 experts, bf16 elsewhere)
    expert_dtype = xp.matmul_dtype(xp.w_bits)
    sparse = xp.sparsity is not None

    def experts(name: str, n_in: int, n_out: int) -> Op:
        # One expert's matrix, plus its bias where the model has expert biases (gpt-oss).
        one = xp.weight_bytes(n_in, n_out, xp.w_bits, sparse=sparse)
        bias = n_out if spec.moe_bias else 0
        one_bytes = one + bias * xp.hi_bits / 8
        return Op(
            name=name,
            block="mlp",
            kind="matmul",
            dtype=expert_dtype,
            count=count,
            flops=2.0 * routed * n_in * n_out
            + touched * xp.dequant_flops(n_in, n_out, xp.w_bits)
            + routed * bias,
            weight_bytes=touched * one_bytes,
            act_in_bytes=routed * n_in * a,
            act_out_bytes=routed * n_out * a,
            inner=n_in,
            impl="grouped",
            # A grouped GEMM's speed follows the tokens each expert receives, not the pass's tokens.
            eff_tokens=np.maximum(routed / np.maximum(touched, 1e-12), 1.0),
            sparsity=xp.sparsity if sparse else None,
            resident_bytes=E / ep * one_bytes,
            params=E * n_in * n_out,
            other_params=E * bias,
            routed_params=E * (n_in * n_out + bias),
            active_routed_params=k * (n_in * n_out + bias),
        )

    ops = [
        norm("mlp_norm", "mlp", spec.norm, h, T, prec, count=count),
        linear("router", "mlp", h, E, T, prec, count=count, sparse=False, bias=spec.moe_bias),
        elementwise("routing", "mlp", T * E, ROUTING_FLOPS, prec, count=count),
        experts("experts_gate_up", h, 2 * ie),
        elementwise(
            "experts_act",
            "mlp",
            routed * ie,
            act_flops + 1,
            prec,
            count=count,
            inputs=2,
            impl=f"act:{spec.activation}:gated",
        ),
        experts("experts_down", ie, h),
        # Weighted sum of each token's k expert outputs (gathered back to the token's device).
        Op(
            "experts_combine",
            "mlp",
            "elementwise",
            "vector",
            count,
            flops=T * k * h * 2,
            act_in_bytes=T * k * h * a,
            act_out_bytes=T * h * a,
        ),
    ]
    shared = spec.shared_experts * spec.moe_intermediate_size + spec.shared_expert_intermediate_size
    if shared:
        ops += [
            linear("shared_gate_up", "mlp", h, 2 * shared, T, prec, count=count),
            elementwise(
                "shared_act",
                "mlp",
                T * shared,
                act_flops + 1,
                prec,
                count=count,
                inputs=2,
                impl=f"act:{spec.activation}:gated",
            ),
            linear("shared_down", "mlp", shared, h, T, prec, count=count),
        ]
        if spec.shared_expert_gate:  # Qwen-MoE scales the shared expert by sigmoid(x W), W: h -> 1
            ops.append(linear("shared_gate", "mlp", h, 1, T, prec, count=count, sparse=False))
    ops.append(elementwise("mlp_residual", "mlp", T * h, ADD_FLOPS, prec, count=count, inputs=2))
    return ops


class MixtureOfExperts(LayerKind):
    name = "moe"
    role = "ffn"
    label = "moe"
    siblings = (frozenset({"experts_gate_up", "shared_gate_up"}),)

    def check(self, spec: ModelSpec) -> str | None:
        if not (0 < spec.experts_per_token <= spec.num_experts and spec.moe_intermediate_size > 0):
            return (
                "MoE layers need num_experts > 0, 1 <= experts per token <= num_experts and a "
                f"moe_intermediate_size (got {spec.num_experts}, {spec.experts_per_token}, "
                f"{spec.moe_intermediate_size})"
            )
        return None

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        everyone = p.tokens if ctx.group_tokens is None else ctx.group_tokens
        # Identical sequences route alike: only one sequence's tokens are distinct choices of experts.
        distinct = p.q if ctx.identical else None
        return moe_ops(spec, prec, p, count, everyone, ctx.ep, ctx.routing_skew, distinct)

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        return {
            "moe_intermediate_size": ceil_part(spec.moe_intermediate_size, tp),
            "shared_expert_intermediate_size": ceil_part(spec.shared_expert_intermediate_size, tp),
        }


MOE = register(MixtureOfExperts())
