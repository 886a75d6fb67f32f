"""Operators of a forward pass: FLOPs and bytes per tensor class, as NumPy-friendly formulas."""

from .base import Op, Pass
from .execution import Execution
from .model import build_ops, weight_memory_bytes
from .precision import Precision

__all__ = ["Execution", "Op", "Pass", "Precision", "build_ops", "weight_memory_bytes"]
