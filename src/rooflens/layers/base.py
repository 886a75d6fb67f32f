"""The layer-kind interface and its registry.

A decoder layer is a *mixer* (how tokens see each other: attention of some kind, a state-space scan, a
linear-attention recurrence) followed by a *feed-forward* block (a dense MLP or a mixture of experts);
either may be absent (Nemotron-H's layers are one or the other). Each kind is one ``LayerKind`` in one
module of this package, registered by name; everything the rest of rooflens asks of a layer goes
through it:

- ``ops``: the operators of one pass (a prefill chunk or a decode step) over ``count`` layers;
- parameters: summed from those same operators (``Op.params`` ...), so shapes are written once;
- ``cache``: what a sequence keeps between steps: bytes per cached token (K/V, a latent) and a
  constant per-sequence state (a recurrence's matrix state and its convolution window);
- ``shard``: the fields one tensor-parallel rank holds, and the divisibility it needs;
- ``check``: the config fields the kind needs, in words when they are missing;
- ``siblings``: operators that read the same input (drawn side by side in the block graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from ..model.spec import ModelSpec
    from ..ops.base import Op, Pass
    from ..ops.precision import Precision

Role = Literal["mixer", "ffn"]


@dataclass(frozen=True)
class Context:
    """How the layer runs beyond its pass: latent attention's path and the expert-parallel group."""

    absorb: bool = False  # latent attention with absorbed up-projections (the decode path)
    ep: int = 1
    routing_skew: float = 0.0
    group_tokens: Any = None  # tokens of the whole expert-parallel group (None: the pass's own)
    identical: bool = False  # every sequence of the batch is the same (routing picks the same experts)


PLAIN = Context()


@dataclass(frozen=True)
class CacheNeed:
    """What one sequence keeps for one layer between passes, on one device."""

    per_token: float = 0.0  # bytes per cached token (grows with the context)
    window: int | None = None  # the cache holds at most this many tokens (rolling window or chunk)
    state: float = 0.0  # constant bytes per sequence (recurrent state + convolution window)


class LayerKind:
    """One kind of mixer or feed-forward block. Subclasses set ``name``, ``role`` and ``label``."""

    name: ClassVar[str]
    role: ClassVar[Role]
    label: ClassVar[str] = ""  # how a layer group of this kind is described ('' for the plain kind)
    siblings: ClassVar[tuple[frozenset[str], ...]] = ()
    recurrent: ClassVar[bool] = False  # a mixer with a state instead of attention over a cache

    def check(self, spec: ModelSpec) -> str | None:
        """Why ``spec`` cannot have layers of this kind (missing or inconsistent fields), else None."""
        return None

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        raise NotImplementedError

    def cache(self, spec: ModelSpec, prec: Precision) -> CacheNeed:
        """Per-sequence cache of one layer, for a spec already sharded to one device."""
        return CacheNeed()

    def window(self, spec: ModelSpec) -> tuple[int | None, int | None]:
        """(sliding window, attention chunk) its queries are limited to."""
        return None, None

    def shard(self, spec: ModelSpec, tp: int) -> dict[str, int]:
        """Field updates for the slice one of ``tp`` tensor-parallel ranks holds."""
        return {}


class Absent(LayerKind):
    """No block of this role: Nemotron-H's layers are a mixer alone or a feed-forward block alone."""

    def __init__(self, name: str, role: Role) -> None:
        self.name, self.role = name, role  # type: ignore[misc]

    def ops(self, spec: ModelSpec, prec: Precision, p: Pass, count: float, ctx: Context = PLAIN) -> list[Op]:
        return []


REGISTRY: dict[str, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    if kind.name in REGISTRY:
        raise ValueError(f"layer kind '{kind.name}' is registered twice")
    REGISTRY[kind.name] = kind
    return kind


def kind(name: str) -> LayerKind:
    return REGISTRY[name]


def names(role: Role) -> list[str]:
    """Registered kinds of a role, the absent block last."""
    return sorted((n for n, k in REGISTRY.items() if k.role == role), key=lambda n: n.startswith("no_"))


register(Absent("no_mixer", "mixer"))
register(Absent("no_ffn", "ffn"))


def ceil_part(n: int, tp: int) -> int:
    """A dimension split ``tp`` ways (rounded up: the busiest rank)."""
    return -(-n // tp) if n else 0
