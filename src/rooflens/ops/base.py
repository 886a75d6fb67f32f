"""The operator record and the constructors shared by every block.

An Op holds the arithmetic of one operator for one occurrence (one layer) of one forward pass:
FLOPs (multiply and add counted separately: a matmul is 2*m*n*k) and bytes moved from/to device
memory, split by what they are. Quantities may be NumPy arrays (one value per decode step); ``count``
says how many times the op occurs per forward pass (the number of layers for per-layer ops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .precision import Precision

Array = float | np.ndarray

# FLOPs per element of the element-wise operators. These are conventions, stated so they can be
# checked: they only matter for time when an op is compute-bound, which element-wise ops never are.
NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}  # rms: square, sum, scale, weight; ln adds mean, shift, bias
ROPE_FLOPS = 3  # x*cos + rotate(x)*sin
SOFTMAX_FLOPS = 5  # max, subtract, exp, sum, divide
SOFTCAP_FLOPS = 3  # divide, tanh, multiply (Gemma-2 logit soft-capping)
ADD_FLOPS = 1
ACTIVATION_FLOPS = {
    "relu": 1,
    "relu2": 2,  # squared ReLU (Nemotron-H): max, square
    "silu": 4,
    "swish": 4,
    "gelu": 8,
    "gelu_new": 8,
    "gelu_fast": 8,
    "gelu_pytorch_tanh": 8,
    "gelu_approximate": 8,
}
DEFAULT_ACTIVATION_FLOPS = 8


def activation_flops(name: str) -> float:
    """FLOPs per element of an activation function (GELU's 8 for one not listed)."""
    return ACTIVATION_FLOPS.get(name, DEFAULT_ACTIVATION_FLOPS)


@dataclass(frozen=True)
class Pass:
    """One forward pass: ``batch`` sequences, each adding ``q`` tokens to a context of ``c`` tokens."""

    batch: int
    q: Array
    c: Array
    kv_cache: bool = True
    flash_attention: bool = True
    window: int | None = None  # sliding-window size of the layers this pass runs
    chunk: int | None = None  # chunked local attention: queries see only keys of their own chunk
    shared_prefix: float = 0.0  # leading context tokens shared by every sequence
    prefix_reads_once: bool = False  # the attention kernel reads the shared prefix once per step

    @property
    def tokens(self) -> Array:
        return self.batch * self.q


BYTE_FIELDS = ("weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes")


def total_bytes(item: object) -> Array:
    """All bytes an op (or an op's result) moves: the sum of its BYTE_FIELDS."""
    return sum(getattr(item, f) for f in BYTE_FIELDS)


@dataclass(slots=True)
class Op:
    name: str
    block: str  # "embed" | "attention" | "mlp" | "head" | "draft"
    kind: str  # "matmul" | "attention" | "norm" | "elementwise" | "embedding" | "comm"
    dtype: str  # the dtype whose peak applies; "vector" for element-wise work, "link" for communication
    count: float  # occurrences per pass (layers; fractional under early exit)
    flops: Array
    weight_bytes: Array = 0.0
    act_in_bytes: Array = 0.0
    act_out_bytes: Array = 0.0
    kv_read_bytes: Array = 0.0
    kv_write_bytes: Array = 0.0
    impl: str = ""  # implementation class for efficiency profiles ("matmul", "rmsnorm", ...)
    sparsity: tuple[int, int] | None = None  # N:M structured-sparse weights (2:4 runs at the sparse peak)
    link_bytes: Array = 0.0  # bytes a communication op sends per device
    messages: float = 0  # sequential message steps of a communication op
    link: str = ""  # "intra" (within a node) or "inter" (network)
    group: str = ""  # the layer group it belongs to, when layers differ ("sliding", "moe", ...)
    layers: tuple[int, ...] = ()  # indices of the layers it stands for
    resident_bytes: float | None = None  # weights it keeps in memory, when more than one pass reads
    tokens: Array = 0.0  # tokens in its pass (keys the efficiency tables); set by build_ops
    inner: int = 0  # reduction dimension K of a matmul (its efficiency depends on it), else 0
    # What keys its efficiency when not its pass's tokens: a grouped (MoE) matmul's tokens per expert.
    eff_tokens: Array | None = None
    context: Array = 0.0  # tokens an attention op attends to (keys the context efficiency table)
    # Parameters it holds per occurrence: matrix weights (what weight quantization applies to), the
    # small vectors beside them (biases, norm weights, per-head constants), and of the matrices the
    # routed-expert part and the part one token uses. Parameter counts are summed from these.
    params: float = 0.0
    other_params: float = 0.0
    routed_params: float = 0.0
    active_routed_params: float = 0.0

    def __post_init__(self) -> None:
        if not self.impl:
            self.impl = self.kind if self.kind in ("matmul", "attention", "embedding") else "add"

    @property
    def bytes(self) -> Array:
        return total_bytes(self)

    @property
    def resident(self) -> float:
        """Weight bytes this operator keeps resident per occurrence (routed experts: all local ones)."""
        return self.resident_bytes if self.resident_bytes is not None else float(np.max(self.weight_bytes))

    @property
    def act_bytes(self) -> Array:
        """Transient activation memory this op touches (inputs + outputs), for the memory peak."""
        return self.act_in_bytes + self.act_out_bytes


def linear(
    name: str,
    block: str,
    n_in: int,
    n_out: int,
    tokens: Array,
    prec: Precision,
    *,
    count: float,
    bias: bool = False,
    w_bits: int | None = None,
    out_bytes: Array | None = None,
    kv_write_bytes: Array = 0.0,
    sparse: bool = True,
) -> Op:
    """A dense projection of ``tokens`` rows: y = x W (+ b).

    ``out_bytes`` overrides the activation output (for projections that write part of their output
    straight into the KV cache; that part goes in ``kv_write_bytes``).
    """
    bits = prec.w_bits if w_bits is None else w_bits
    sparse = sparse and prec.sparsity is not None
    flops = 2.0 * tokens * n_in * n_out + prec.dequant_flops(n_in, n_out, bits)
    weights = prec.weight_bytes(n_in, n_out, bits, sparse=sparse)
    if bias:
        flops = flops + tokens * n_out * ADD_FLOPS
        weights += n_out * prec.hi_bits / 8
    return Op(
        name=name,
        block=block,
        kind="matmul",
        dtype=prec.matmul_dtype(bits),
        count=count,
        flops=flops,
        weight_bytes=weights,
        act_in_bytes=tokens * n_in * prec.a_bytes,
        act_out_bytes=tokens * n_out * prec.a_bytes if out_bytes is None else out_bytes,
        kv_write_bytes=kv_write_bytes,
        inner=n_in,
        sparsity=prec.sparsity if sparse else None,
        params=n_in * n_out,
        other_params=n_out if bias else 0,
    )


def norm(name: str, block: str, kind: str, width: int, rows: Array, prec: Precision, *, count: float) -> Op:
    """RMSNorm or LayerNorm over ``rows`` vectors of ``width`` (weights, plus a bias for LayerNorm)."""
    params = width * (2 if kind == "layernorm" else 1)
    return Op(
        name=name,
        block=block,
        kind="norm",
        dtype="vector",
        count=count,
        impl=kind,
        flops=rows * width * NORM_FLOPS[kind],
        weight_bytes=params * prec.hi_bits / 8,
        act_in_bytes=rows * width * prec.a_bytes,
        act_out_bytes=rows * width * prec.a_bytes,
        other_params=params,
    )


def elementwise(
    name: str,
    block: str,
    elements: Array,
    flops_per_element: float,
    prec: Precision,
    *,
    count: float,
    inputs: int = 1,
    impl: str = "add",
) -> Op:
    """An element-wise op reading ``inputs`` tensors of ``elements`` values and writing one."""
    return Op(
        name=name,
        block=block,
        kind="elementwise",
        dtype="vector",
        count=count,
        impl=impl,
        flops=elements * flops_per_element,
        act_in_bytes=inputs * elements * prec.a_bytes,
        act_out_bytes=elements * prec.a_bytes,
    )
