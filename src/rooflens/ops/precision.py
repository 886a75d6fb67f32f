"""Bit widths, the bytes they imply (with quantization metadata), and the dtype the math runs in.

Rules:
- weights use ``w_bits`` (matrix weights inside the layers; embeddings and LM head too only when
  ``quantize_embeddings``), activations ``a_bits``, the KV cache ``kv_bits``;
- quantized tensors (fewer than 16 bits) carry one scale (``scale_bits``, 16 unless the format says
  else) and, unless ``symmetric``, one zero point (at the tensor's own width) per group of
  ``group_size`` values along the input dimension (weights; ``block_rows`` output rows share it in
  2-D block scaling such as DeepSeek's 128x128 FP8) or per head vector (KV cache): the asymmetric
  group-wise layout of GPTQ, AWQ and KIVI-style caches; llama.cpp's Q4_0/Q8_0 and fp8 are symmetric
  (scales only); MXFP4 has one 8-bit E8M0 scale per 32 values;
- a checkpoint may store its routed experts in another format (``expert_format``);
- a matmul runs in the wider of its two operands' formats: W4A16 dequantizes to fp16 and uses the fp16
  peak (paying 2 FLOPs per weight for the dequantization), W8A8 uses the int8 peak, W4A4 int4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

SCALE_BITS = 16  # one fp16 scale per quantization group


@dataclass(frozen=True)
class Precision:
    w_bits: int = 16
    a_bits: int = 16
    kv_bits: int = 16
    state_bits: int = 16  # recurrent (Mamba-2, Gated DeltaNet) state: the model dtype, or fp32
    float16: str = "fp16"  # which 16-bit float the model runs in: "fp16" or "bf16"
    low_bit: str = "int"  # number format of 8- and 4-bit math: "int" or "float" (fp8/fp4)
    group_size: int = 128
    quantize_embeddings: bool = False
    symmetric: bool = False
    sparsity: tuple[int, int] | None = None  # N:M structured sparsity of the layer weight matrices
    scale_bits: int = SCALE_BITS  # width of one scale: 16 (fp16), 32 (fp32 block scales), 8 (E8M0)
    block_rows: int = 1  # output rows sharing a scale: 128 for 128x128 block-scaled FP8, else 1
    expert_format: Precision | None = None  # routed experts stored differently (gpt-oss: MXFP4)
    kv_scale: str = "head"  # KV-cache scales: "tensor" (none stored per vector), "head", "block"
    kv_block: int = 16  # values per scale with kv_scale "block" (NVFP4: 16, an 8-bit scale each)

    @property
    def experts(self) -> Precision:
        """The precision of the routed experts' weights (this one unless the checkpoint says else)."""
        return self.expert_format or self

    def widened(self) -> Precision:
        """This precision with 16-bit weights and activations (experts too): the layers FP8 and FP4
        checkpoints keep unquantized. The KV cache keeps its format."""
        return replace(self, w_bits=16, a_bits=16, expert_format=None, sparsity=None)

    def _meta_bits(self, bits: int) -> int:
        """Metadata bits per quantization group: its scale, plus a zero point if asymmetric."""
        return self.scale_bits + (0 if self.symmetric else bits)

    def dtype(self, bits: int) -> str:
        """The compute dtype name for math carried out at ``bits`` bits."""
        if bits >= 32:
            return "fp32"
        if bits == 16:
            return self.float16
        prefix = "fp" if self.low_bit == "float" else "int"
        return f"{prefix}{bits}"

    @property
    def hi_bits(self) -> int:
        """Width of tensors never quantized (norm weights, biases): the model's float width."""
        return 32 if self.w_bits == 32 else 16

    @property
    def head_bits(self) -> int:
        """Width of the embedding table and LM head."""
        return self.w_bits if self.quantize_embeddings else self.hi_bits

    @property
    def a_bytes(self) -> float:
        return self.a_bits / 8

    def matmul_dtype(self, w_bits: int) -> str:
        return self.dtype(max(w_bits, self.a_bits))

    @property
    def attention_dtype(self) -> str:
        return self.dtype(max(self.a_bits, self.kv_bits))

    def dequant_flops(self, n_in: int, n_out: int, w_bits: int) -> float:
        """Weight-only quantization dequantizes every weight once per call (scale and shift: 2 FLOPs).

        Counted once per call, not per token, because fused kernels dequantize a weight tile once and
        reuse it across the tokens of a tile; this is a lower bound for very large token counts.
        """
        if w_bits < 16 and w_bits < self.a_bits:
            return 2.0 * n_in * n_out
        return 0.0

    def weight_bytes(self, n_in: int, n_out: int, bits: int, sparse: bool = False) -> float:
        """Bytes of an n_in x n_out weight matrix at ``bits``, with group scales and zero points.

        ``sparse`` with an N:M pattern keeps N of every M values, each with a log2(M)-bit index (2:4:
        2 bits per kept value, so 16-bit weights shrink to 9/16 of their size).
        """
        data = n_in * n_out * bits / 8
        if sparse and self.sparsity:
            n, m = self.sparsity
            data = n_in * n_out * n / m * (bits + math.ceil(math.log2(m))) / 8
        if bits >= 16:
            return data
        groups = math.ceil(n_out / self.block_rows) * math.ceil(n_in / self.group_size)
        return data + groups * self._meta_bits(bits) / 8

    def kv_vector_bytes(self, dim: int, heads: int) -> float:
        """Bytes of one token's K (or V) over ``heads`` heads of total width ``dim``, at kv_bits."""
        data = dim * self.kv_bits / 8
        if self.kv_bits >= 16 or self.kv_scale in ("none", "tensor"):
            return data
        if self.kv_scale == "block":  # one 8-bit scale per kv_block values (NVFP4)
            return data + math.ceil(dim / self.kv_block)
        return data + heads * (SCALE_BITS + (0 if self.symmetric else self.kv_bits)) / 8
