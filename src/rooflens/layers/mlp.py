"""The feed-forward half of a decoder layer.

Gated MLPs (Llama, Qwen, Gemma, Phi-3): gate and up projections to ``intermediate_size``, act(gate)*up,
down projection. Plain MLPs (GPT-2, OPT, Pythia): fc1 to ``intermediate_size``, activation, fc2.
The activation tensor is sized by ``intermediate_size``, not ``hidden_size``.
"""

from __future__ import annotations

from ..model.spec import ModelSpec
from ..ops.base import ADD_FLOPS, Op, Pass, activation_flops, elementwise, linear, norm
from ..ops.precision import Precision
from .base import PLAIN, Context, LayerKind, ceil_part, register


def mlp_ops(spec: ModelSpec, prec: Precision, p: Pass, count: float) -> list[Op]:
    h, i, T = spec.hidden_size, spec.intermediate_size, p.tokens
    act_flops = activation_flops(spec.activation)
    bias = spec.mlp_bias
    # GPT-J's MLP reads the attention's normalised input: one norm serves both halves of the layer.
    shared_norm = spec.norms_per_layer == 1
    ops = [] if shared_norm else [norm("mlp_norm", "mlp", spec.norm, h, T, prec, count=count)]
    if spec.gated_mlp:
        if spec.fused_gate_up:
            ops.append(linear("gate_up_proj", "mlp", h, 2 * i, T, prec, count=count, bias=bias))
        else:
            ops.append(linear("gate_proj", "mlp", h, i, T, prec, count=count, bias=bias))
            ops.append(linear("up_proj", "mlp", h, i, T, prec, count=count, bias=bias))
        # act(gate) * up: two inputs, one output, the activation plus one multiply per element.
        ops.append(
            elementwise(
                "act_mul",
                "mlp",
                T * i,
                act_flops + 1,
                prec,
                count=count,
                inputs=2,
                impl=f"act:{spec.activation}:gated",
            )
        )
        ops.append(linear("down_proj", "mlp", i, h, T, prec, count=count, bias=bias))
    else:
        ops.append(linear("fc1", "mlp", h, i, T, prec, count=count, bias=bias))
        ops.append(
            elementwise("act", "mlp", T * i, act_flops, prec, count=count, impl=f"act:{spec.activation}")
        )
        ops.append(linear("fc2", "mlp", i, h, T, prec, count=count, bias=bias))
    if spec.norms_per_layer == 4:
        ops.append(norm("post_mlp_norm", "mlp", spec.norm, h, T, prec, count=count))
    # A parallel-residual layer (GPT-NeoX) adds attention and MLP outputs to x in one 3-input add.
    inputs = 3 if spec.parallel_residual else 2
    ops.append(
        elementwise("mlp_residual", "mlp", T * h, ADD_FLOPS * (inputs - 1), prec, count=count, inputs=inputs)
    )
    return ops


class DenseMlp(LayerKind):
    name = "dense"
    role = "ffn"
    siblings = (frozenset({"gate_proj", "up_proj"}),)

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return mlp_ops(spec, prec, p, count)

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        return {"intermediate_size": ceil_part(spec.intermediate_size, tp)}


register(DenseMlp())
