"""Place operators on a device's roofline.

The ideal time of an op is ``max(flops / peak(dtype), bytes / bandwidth)``, where the peak is the one
of the dtype its math runs in (falling back, with a note, when the device lacks it). A phase is a list
of ops evaluated over one or more steps (decode: one step per generated token, as NumPy arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .hardware.efficiency import EfficiencyProfile
from .hardware.spec import HardwareSpec
from .ops.base import Op, total_bytes

Bound = str  # "compute" | "memory" | "comm"


@dataclass(slots=True)
class OpResult:
    """One operator over a whole phase: totals across its ``count`` layers and all ``steps``."""

    name: str
    block: str
    kind: str
    dtype: str
    peak_dtype: str
    peak_flops: float
    count: float
    steps: int
    flops: float
    weight_bytes: float
    act_in_bytes: float
    act_out_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float
    compute_time_s: float
    memory_time_s: float
    time_s: float
    estimate_s: float | None = None  # calibrated estimate, when an efficiency profile applies
    link_bytes: float = 0.0  # bytes sent over the interconnect (communication ops)
    comm_time_s: float = 0.0
    group: str = ""
    layers: tuple[int, ...] = ()
    impl: str = ""
    eff_tokens: float = 0.0  # mean tokens keying its efficiency (a grouped matmul's tokens per expert)
    messages: float = 0.0  # collective message steps over the phase (communication ops)
    latency_time_s: float = 0.0  # the link-latency part of comm_time_s

    @property
    def bytes(self) -> float:
        return total_bytes(self)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved."""
        return self.flops / self.bytes if self.bytes else float("inf")

    @property
    def bound(self) -> Bound:
        if self.comm_time_s:
            return "comm"
        return "compute" if self.compute_time_s > self.memory_time_s else "memory"


@dataclass(slots=True)
class PhaseResult:
    name: str
    steps: int
    ops: list[OpResult]
    step_time_s: np.ndarray  # ideal time of each step (one entry for prefill)
    context: np.ndarray  # tokens attended at each step
    flops: float = 0.0
    bytes: float = 0.0
    time_s: float = 0.0
    compute_bound_time_s: float = 0.0
    memory_bound_time_s: float = 0.0
    comm_time_s: float = 0.0
    fallbacks: dict[str, str] = field(default_factory=dict)
    step_estimate_s: np.ndarray | None = None  # calibrated estimate of each step
    estimate_s: float | None = None

    @property
    def bound(self) -> Bound | None:
        """The bound that accounts for most of the phase's time."""
        if not self.steps:
            return None
        times = {
            "compute": self.compute_bound_time_s,
            "memory": self.memory_bound_time_s,
            "comm": self.comm_time_s,
        }
        return max(times, key=times.__getitem__)


def _total(x: float | np.ndarray, steps: int) -> float:
    return float(x.sum()) if isinstance(x, np.ndarray) else float(x) * steps


@dataclass(slots=True)
class _Cost:
    """One op's time per layer and step: the ideal and its parts, and the estimate's busy/fixed parts."""

    peak: float
    peak_dtype: str
    compute: float | np.ndarray
    memory: float | np.ndarray
    comm: float | np.ndarray
    ideal: float | np.ndarray
    busy: float | np.ndarray = 0.0
    fixed: float = 0.0
    latency: float | np.ndarray = 0.0  # the link-latency part of a collective's ideal time


def _peak(op: Op, hw: HardwareSpec, peaks: dict[str, tuple[float, str]]) -> tuple[float, str]:
    """The peak an op's math runs at and the dtype it was taken from (memoised in ``peaks``)."""
    if op.dtype not in peaks:
        peaks[op.dtype] = hw.peak(op.dtype)
    peak, used = peaks[op.dtype]
    if op.sparsity == (2, 4):
        peak = peak * _sparse_speedup(hw)
    return peak, used


def _sparse_speedup(hw: HardwareSpec) -> float:
    """2:4 sparse tensor cores skip the zeros: twice the peak (FLOPs stay dense-equivalent), on
    devices that have them."""
    return 2.0 if hw.sparse_2_4 else 1.0


def _cost(
    op: Op,
    hw: HardwareSpec,
    peaks: dict[str, tuple[float, str]],
    profile: EfficiencyProfile | None,
    host_s: float | None,
) -> _Cost:
    if op.kind == "comm":
        link = {"intra": hw.interconnect, "inter": hw.network, "host": hw.host_link}[op.link]
        t_comm = op.link_bytes / link.bandwidth + op.messages * (link.latency_s or 0.0)
        # The estimate: the share of link bandwidth collectives reach and a fitted cost per message.
        busy = t_comm
        if profile is not None:
            busy = op.link_bytes / (link.bandwidth * profile.comm_efficiency) + op.messages * (
                (link.latency_s or 0.0) + profile.comm_latency_s
            )
        latency = op.messages * (link.latency_s or 0.0)
        return _Cost(0.0, "link", 0.0, 0.0, t_comm, t_comm, busy, 0.0, latency)
    peak, used = _peak(op, hw, peaks)
    t_compute = op.flops / peak
    t_memory = op.bytes / hw.memory_bandwidth
    t = np.maximum(t_compute, t_memory)
    cost = _Cost(peak, used, t_compute, t_memory, 0.0, t)
    if profile is not None:
        cost.busy = t / _efficiency(profile, op)
        cost.fixed = 0.0 if host_s is not None else profile.overhead(op.impl)
    return cost


def _lookup_tokens(op: Op) -> float | np.ndarray:
    return op.tokens if op.eff_tokens is None else op.eff_tokens


def _efficiency(profile: EfficiencyProfile, op: Op) -> float | np.ndarray:
    return profile.efficiency(op.impl, op.kind, _lookup_tokens(op), op.inner, op.dtype, op.context)


def _combine(
    device_time: np.ndarray,
    launch_time: np.ndarray,
    profile: EfficiencyProfile,
    host_s: float | None,
    sequences: float = 1.0,
) -> np.ndarray:
    """Estimated step time from device (kernel) time and fixed host costs: per operator (or the
    family's per-pass cost), per step, and per sequence in the step."""
    launch_time = launch_time + (profile.step_overhead_s if host_s is None else host_s)
    launch_time = launch_time + sequences * profile.seq_overhead_s
    return np.maximum(device_time, launch_time) if profile.overlap else device_time + launch_time


@dataclass(slots=True)
class _Rows:
    """Some of a pass's operators: their rows in ``Packed.compute``, their flops and bytes per step
    (one column when they are the same at every step), and their counts."""

    index: np.ndarray  # (k,)
    flops: np.ndarray  # (k, width)
    bytes: np.ndarray  # (k, width)
    count: np.ndarray  # (k,)


@dataclass(slots=True)
class Packed:
    """A pass's operators laid out as arrays, built once and placed on many devices (sweeps, plans)."""

    steps: int
    compute: list[Op]  # every op but communication
    # The ops that cost the same at every step, one column (decode's matmuls, norms...), and the rest
    # (attention, whose context grows), a column per step: a long decode's arrays stay small.
    parts: tuple[_Rows, _Rows]
    count: np.ndarray  # (ops,)
    comm: list[Op]
    # Ops that read the same efficiency (class, kind, K, tokens): one of each, its key, and each op's
    # row in them.
    classes: list[Op]
    class_keys: list[tuple]
    klass: np.ndarray  # (ops,) index into classes
    dtypes: list[str]  # the math dtypes among the ops, and each op's index into them
    dtype_index: np.ndarray  # (ops,)
    sparse: np.ndarray  # (ops,) bool: 2:4 structured sparsity
    impls: list[str]  # the implementation classes among the ops, and each op's index into them
    impl_index: np.ndarray  # (ops,)
    # Efficiencies of each part's ops under each profile met so far (by its efficiency_key): a sweep
    # places one pass on many devices, most of which share a profile's tables.
    efficiencies: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def efficiency(self, profile: EfficiencyProfile, memo: dict | None = None) -> list[np.ndarray]:
        """Each part's efficiencies under ``profile`` (shaped as the part's flops), computed once per
        class; ``memo``, a dict the caller keeps, shares the classes' efficiencies with other passes
        (the same batch at another parallel degree or KV format reads the same tables at the same
        tokens)."""
        key = profile.efficiency_key
        if key not in self.efficiencies:
            memo = {} if memo is None else memo
            rows: list[np.ndarray] = []
            for part in self.parts:
                eff = np.empty(part.flops.shape)
                for r, i in enumerate(part.index):
                    op, class_key = self.classes[self.klass[i]], self.class_keys[self.klass[i]]
                    if (key, class_key) not in memo:
                        memo[key, class_key] = _efficiency(profile, op)
                    eff[r] = memo[key, class_key]
                rows.append(eff)
            self.efficiencies[key] = rows
        return self.efficiencies[key]


def pack(ops: list[Op], steps: int) -> Packed:
    """Lay ``ops`` (quantities scalars or arrays of length ``steps``) out for ``step_times``."""
    # Each op's flops, bytes (a sum over its tensors), and the tokens and context its efficiency
    # reads, each read once.
    laid = [
        (op, op.flops, op.bytes, _lookup_tokens(op), op.context if op.kind == "attention" else 0.0)
        for op in ops
        if op.kind != "comm"
    ]
    compute = [row[0] for row in laid]
    # An op is steady when nothing it costs or reads varies over the steps.
    steady = np.array([all(np.ndim(x) == 0 for x in row[1:]) for row in laid], dtype=bool)
    parts = []
    for rows, width in ((np.flatnonzero(steady), 1), (np.flatnonzero(~steady), steps)):
        flops, nbytes = np.empty((len(rows), width)), np.empty((len(rows), width))
        for r, i in enumerate(rows):
            flops[r], nbytes[r] = laid[i][1], laid[i][2]
        parts.append(_Rows(rows, flops, nbytes, np.array([compute[i].count for i in rows], dtype=float)))
    first: dict[tuple, tuple[int, Op]] = {}  # each efficiency key: its row and the first op with it
    klass = np.empty(len(compute), dtype=int)
    for i, (op, _, _, tokens, context) in enumerate(laid):
        key = (
            op.impl,
            op.kind,
            op.inner,
            op.dtype,
            np.asarray(tokens, dtype=float).tobytes(),
            np.asarray(context, dtype=float).tobytes() if op.kind == "attention" else b"",
        )
        klass[i] = first.setdefault(key, (len(first), op))[0]
    classes = [op for _, op in first.values()]
    class_keys = list(first)
    count = np.array([op.count for op in compute], dtype=float)
    comm = [op for op in ops if op.kind == "comm"]
    dtypes, dtype_index = _index([op.dtype for op in compute])
    impls, impl_index = _index([op.impl for op in compute])
    sparse = np.array([op.sparsity == (2, 4) for op in compute], dtype=bool)
    return Packed(
        steps, compute, (parts[0], parts[1]), count, comm, classes, class_keys, klass, dtypes,
        dtype_index, sparse, impls, impl_index,
    )  # fmt: skip


def _index(values: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct values (in order of first appearance) and each value's index into them."""
    distinct = list(dict.fromkeys(values))
    where = {v: i for i, v in enumerate(distinct)}
    return distinct, np.array([where[v] for v in values], dtype=int)


def step_times(
    ops: list[Op] | Packed,
    hw: HardwareSpec,
    steps: int,
    profile: EfficiencyProfile | None = None,
    host_s: float | None = None,
    sequences: float = 1.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(ideal, estimate) time of each step, without the per-op results: evaluate() for sweeps.

    The same roofline as ``evaluate``, over all operators at once: give ``pack(ops, steps)`` to place
    one pass on many devices without laying it out again (``device_step_times`` places it on several
    at once).
    """
    p = ops if isinstance(ops, Packed) else pack(ops, steps)
    ideal, estimates = device_step_times(p, [hw], [profile], [host_s], sequences)
    return ideal[0], estimates[0]


def device_step_times(
    p: Packed,
    hws: Sequence[HardwareSpec],
    profiles: Sequence[EfficiencyProfile | None],
    hosts: Sequence[float | None],
    sequences: float = 1.0,
    memo: dict | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """``step_times`` of one packed pass on several devices, each with its profile and host cost:
    the ideal time per (device, step), and each device's estimate per step (None without a profile).
    The arithmetic runs over every device in one go (a plan places each pass on every device);
    ``memo`` shares efficiencies across passes (``Packed.efficiency``)."""
    n, steps = len(hws), p.steps
    ideal = np.zeros((n, steps))
    device = np.zeros((n, steps))
    launch = np.zeros(n)
    for i, (hw, profile, host_s) in enumerate(zip(hws, profiles, hosts, strict=True)):
        peaks: dict[str, tuple[float, str]] = {}
        for op in p.comm:
            c = _cost(op, hw, peaks, profile, host_s)
            ideal[i] += op.count * c.ideal
            device[i] += op.count * c.busy
    estimated = [i for i, profile in enumerate(profiles) if profile is not None]
    if p.compute:
        # Each op's peak on each device, as _peak gives it: (devices, ops).
        peak = np.array([[hw.peak(d)[0] for d in p.dtypes] for hw in hws])[:, p.dtype_index]
        speedup = np.array([_sparse_speedup(hw) for hw in hws])[:, None]
        peak = np.where(p.sparse[None, :], peak * speedup, peak)
        bandwidth = np.array([hw.memory_bandwidth for hw in hws])[:, None, None]
        effs = [p.efficiency(profiles[i], memo) for i in estimated]
        for j, part in enumerate(p.parts):  # times (devices, ops, 1 or steps)
            if not len(part.index):
                continue
            t = np.maximum(part.flops / peak[:, part.index, None], part.bytes / bandwidth)
            ideal += part.count @ t
            if estimated:
                device[estimated] += part.count @ (t[estimated] / np.stack([e[j] for e in effs]))
        for i in estimated:
            if hosts[i] is None:
                overheads = np.array([profiles[i].overhead(impl) for impl in p.impls])
                launch[i] = p.count @ overheads[p.impl_index]
    estimates: list[np.ndarray | None] = [None] * n
    for i in estimated:
        estimates[i] = _combine(device[i], np.full(steps, launch[i]), profiles[i], hosts[i], sequences)
    return ideal, estimates


def evaluate(
    name: str,
    ops: list[Op],
    hw: HardwareSpec,
    steps: int,
    context: np.ndarray,
    profile: EfficiencyProfile | None = None,
    host_s: float | None = None,
    sequences: float = 1.0,
) -> PhaseResult:
    """Evaluate ``ops`` on ``hw``; op quantities are scalars or arrays of length ``steps``.

    ``profile``, when given, adds the calibrated estimate beside the ideal time, its efficiency tables
    keyed by each op's tokens per pass. ``host_s``, the profile's measured fixed cost of a pass of this
    model's family, replaces the per-operator overheads when given; ``sequences`` (per step) prices
    the profile's per-sequence host cost.
    """
    step_time = np.zeros(steps)
    device_time = np.zeros(steps)  # estimated device (kernel) time per step
    launch_time = np.zeros(steps)  # fixed per-operator costs per step
    results: list[OpResult] = []
    peaks: dict[str, tuple[float, str]] = {}
    for op in ops:
        c = _cost(op, hw, peaks, profile, host_s)
        t = c.ideal
        step_time += op.count * t
        k = op.count
        estimate = None
        if profile is not None:
            device_time += k * c.busy
            launch_time += k * c.fixed
            est = c.busy if profile.overlap else c.busy + c.fixed
            estimate = k * _total(est, steps)
        results.append(
            OpResult(
                name=op.name,
                block=op.block,
                kind=op.kind,
                dtype=op.dtype,
                peak_dtype=c.peak_dtype,
                peak_flops=c.peak,
                count=k,
                steps=steps,
                flops=k * _total(op.flops, steps),
                weight_bytes=k * _total(op.weight_bytes, steps),
                act_in_bytes=k * _total(op.act_in_bytes, steps),
                act_out_bytes=k * _total(op.act_out_bytes, steps),
                kv_read_bytes=k * _total(op.kv_read_bytes, steps),
                kv_write_bytes=k * _total(op.kv_write_bytes, steps),
                compute_time_s=k * _total(c.compute, steps),
                memory_time_s=k * _total(c.memory, steps),
                time_s=k * _total(t, steps),
                estimate_s=estimate,
                link_bytes=k * _total(op.link_bytes, steps),
                comm_time_s=k * _total(c.comm, steps),
                group=op.group,
                layers=op.layers,
                impl=op.impl,
                eff_tokens=float(np.mean(_lookup_tokens(op))),
                messages=k * _total(op.messages, steps),
                latency_time_s=k * _total(c.latency, steps),
            )
        )
    phase = PhaseResult(name=name, steps=steps, ops=results, step_time_s=step_time, context=context)
    if profile is not None:
        phase.step_estimate_s = _combine(device_time, launch_time, profile, host_s, sequences)
        phase.estimate_s = float(phase.step_estimate_s.sum())
    # Substituted roofs, for the report's notes. Element-wise ("vector") math normally uses fp32.
    phase.fallbacks = {d: u for d, (_, u) in peaks.items() if u != (d if d != "vector" else "fp32")}
    for r in results:
        phase.flops += r.flops
        phase.bytes += r.bytes
        phase.time_s += r.time_s
        if r.bound == "compute":
            phase.compute_bound_time_s += r.time_s
        elif r.bound == "comm":
            phase.comm_time_s += r.time_s
        else:
            phase.memory_bound_time_s += r.time_s
    return phase
