"""Pieces shared by the recurrent mixers (Mamba-2, Gated DeltaNet): a per-sequence state that is read
and written once per pass, and the short causal convolution in front of the scan.

The state lives at ``state_bits`` (16, the model's dtype, by default; 32 for engines that keep it in
fp32, as vLLM's ``mamba_ssm_cache_dtype`` allows; an 8-bit KV cache does not apply to it) and is the
same size at any context: what a recurrent layer stores instead of
a KV cache. A pass that continues a sequence (``c > q``: a decode step, or a prefill chunk after the
first) reads the state first; every pass writes it back.
"""

from __future__ import annotations

import numpy as np

from ..ops.base import Array, Op, Pass
from ..ops.precision import Precision

SILU_FLOPS = 4
CONV_FLOPS = 2  # multiply-add per tap


def state_width(prec: Precision) -> float:
    """Bytes per value of a recurrent state or convolution window."""
    return prec.state_bits / 8


def continues(p: Pass) -> Array:
    """1 where the pass continues an existing sequence (its state must be read), else 0."""
    return np.where(np.asarray(p.c) > np.asarray(p.q), 1.0, 0.0)


def conv_state_values(channels: int, kernel: int) -> int:
    """Values of a causal convolution's window: the last ``kernel - 1`` inputs of every channel."""
    return channels * (kernel - 1)


def causal_conv(
    name: str, channels: int, kernel: int, bias: bool, p: Pass, prec: Precision, count: float
) -> Op:
    """A depthwise causal convolution with SiLU over ``channels`` (fused as engines run it); its
    window is read when the pass continues a sequence and written back for the next one."""
    T, a = p.tokens, prec.a_bytes
    window = p.batch * conv_state_values(channels, kernel) * state_width(prec) if p.kv_cache else 0.0
    params = channels * kernel + (channels if bias else 0)
    return Op(
        name,
        "attention",
        "elementwise",
        "vector",
        count,
        impl="conv1d",
        flops=T * channels * (CONV_FLOPS * kernel + SILU_FLOPS + (1 if bias else 0)),
        weight_bytes=params * prec.hi_bits / 8,
        act_in_bytes=T * channels * a,
        act_out_bytes=T * channels * a,
        kv_read_bytes=window * continues(p),
        kv_write_bytes=window,
        other_params=params,
    )


def gated_norm(name: str, width: int, rows: Array, weight: int, prec: Precision, count: float) -> Op:
    """RMSNorm of ``y * silu(z)`` (Mamba-2's and Gated DeltaNet's output norm): two inputs, one output."""
    a = prec.a_bytes
    return Op(
        name,
        "attention",
        "norm",
        "vector",
        count,
        impl="rmsnorm",
        flops=rows * width * (4 + SILU_FLOPS + 1),
        weight_bytes=weight * prec.hi_bits / 8,
        act_in_bytes=2 * rows * width * a,
        act_out_bytes=rows * width * a,
        other_params=weight,
    )
