"""Layer kinds, one module each, looked up by name in ``REGISTRY``.

Mixers: ``full``, ``full_nope``, ``sliding``, ``chunked`` (dense attention, ``attention.py``), ``mla``
(multi-head latent attention, ``mla.py``), ``dsa`` (DeepSeek sparse attention, ``dsa.py``), ``gdn``
(Gated DeltaNet, ``gdn.py``), ``mamba2`` (``mamba2.py``), ``no_mixer``. Feed-forward blocks:
``dense`` (``mlp.py``), ``moe`` (``moe.py``), ``no_ffn``. Adding a kind is one module with a
``LayerKind`` subclass, its ``register`` call and an import below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import attention, dsa, gdn, mamba2, mla, mlp, moe  # noqa: F401  (each registers its kinds)
from .base import PLAIN, REGISTRY, CacheNeed, Context, LayerKind, kind, names

if TYPE_CHECKING:
    from ..model.spec import ModelSpec

__all__ = ["PLAIN", "REGISTRY", "CacheNeed", "Context", "LayerKind", "kind", "layer_params", "names"]


def layer_params(spec: ModelSpec) -> tuple[int, int, int, int]:
    """(matrix weights, other parameters, routed-expert parameters, routed parameters one token
    uses) of all decoder layers, summed from the operators each kind builds for one token."""
    from ..ops.base import Pass
    from ..ops.precision import Precision

    one, prec = Pass(1, 1.0, 1.0), Precision()
    totals = [0.0, 0.0, 0.0, 0.0]
    layers: dict[str, int] = {}
    for mixer, ffn in spec.layers:
        layers[mixer] = layers.get(mixer, 0) + 1
        layers[ffn] = layers.get(ffn, 0) + 1
    for name, n in layers.items():
        for op in REGISTRY[name].ops(spec, prec, one, 1.0):
            for i, value in enumerate(
                (op.params, op.other_params, op.routed_params, op.active_routed_params)
            ):
                totals[i] += n * value
    return tuple(round(t) for t in totals)  # type: ignore[return-value]
