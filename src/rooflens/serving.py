"""A server under load: an event-driven simulation of continuous batching built on rooflens's step costs.

Requests arrive (Poisson or evenly spaced) with given prompt and output lengths. Each engine instance
runs steps like vLLM's scheduler: running decodes first, one token each, then prompt tokens up to the
per-step token budget (chunked prefill; without it a step is all-prefill or all-decode). KV memory is
paged: ``gpu_memory_utilization`` of device memory, less weights, activations and runtime overhead,
split into blocks of ``block_size`` tokens; a request is admitted when its prompt's blocks are free,
and a decode that needs a block when none is left preempts the newest request (recomputed later, as
vLLM does). A prefix-cache hit rate skips that share of every prompt's computation. Disaggregation
runs prefill and decode on separate instances and moves each prompt's KV cache between them over the
interconnect (or the network), bandwidth plus latency.

Step cost: the same operators as ``rooflens.analyze``. Operators whose cost does not depend on the
attended context are evaluated for the step's token count (and the rows that need logits);
context-dependent ones (attention, MLA's decompression) per sequence: decode sequences from a table
over contexts, prompt chunks for their (tokens, context). A lone request therefore costs exactly what
the single analysis says (a test). With ``basis="estimate"`` the calibrated estimate is used; the
per-pass host cost is counted once per step. A step mixing prompt chunks and decodes prices its
context-independent operators on the prefill path (the same operators, except MLA's absorbed decode
projections).

Metrics (seconds):
- ``ttft``: arrival to first token (queueing included); ``ttft_scheduled``: admission to first token;
- ``tpot``: per request, (last token - first token) / (output tokens - 1);
- ``itl``: every gap between consecutive tokens of a request, pooled over requests;
- ``e2e``: arrival to last token; ``queue``: arrival to admission;
- throughput: generated tokens / (last completion - first arrival); ``mean_batch``: decode sequences
  per step over the steps that decode, weighted by step time (the batch the server settles at).

Ignored: sampling and detokenization, CUDA graphs and scheduler CPU time beyond the calibrated
estimate, KV swapping to host memory, memory fragmentation finer than blocks, sliding-window caches
(every layer's KV is held for the whole context), network jitter.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .analysis import _check, analyze, executions, make_settings, precision_for, with_formats
from .errors import RooflensError
from .hardware.catalog import HardwareLike, load_hardware
from .hardware.spec import HardwareSpec, resolve_profile
from .memory import CacheShape, kv_cache_bytes, resident_weight_bytes, state_bytes
from .model.catalog import ModelLike, load_model
from .model.spec import ModelSpec
from .ops.base import Pass
from .ops.model import build_ops
from .roofline import step_times

Basis = Literal["ideal", "estimate"]
# Settings that change what one request costs in ways the step model does not follow.
UNSUPPORTED = {
    "draft_model": None, "exit_fraction": 1.0, "exit_distribution": None, "prompt_keep": 1.0,
    "shared_prefix": 0, "kv_budget": None, "pp": 1, "kv_cache": True, "spec_heads": None,
}  # fmt: skip


# --- step cost --------------------------------------------------------------------------------------


class StepCost:
    """Time of one engine step from its tokens and the contexts its sequences attend to."""

    def __init__(self, spec: ModelSpec, hw: HardwareSpec, settings: Any, basis: Basis, max_context: int):
        self.spec, self.hw, self.s = spec, hw, settings
        self.prec = precision_for(spec, settings)
        _, self.prefill_ex, self.decode_ex = executions(spec, settings, hw)
        self.profile = resolve_profile(hw, settings.engine) if basis == "estimate" else None
        if basis == "estimate" and self.profile is None:
            raise RooflensError(f"{hw.name} has no efficiency profile for an estimate; use basis 'ideal'")
        self.host = self.profile.host_cost(spec.model_type, spec.num_layers) if self.profile else None
        # Context-dependent operators are more kernels of the same step: their per-operator costs count,
        # the per-pass cost (step overhead or the framework's host cost) is already in the dense part.
        self.context_profile = (
            self.profile.model_copy(update={"step_overhead_s": 0.0}) if self.profile is not None else None
        )
        self.max_context = max_context
        self.flash = settings.flash_attention
        self._dense: dict[tuple, float] = {}
        self._chunk: dict[tuple[int, int], float] = {}
        self._decode: dict[int, np.ndarray] = {}
        self.context_ops = {
            phase: self._context_dependent(ex)
            for phase, ex in (("prefill", self.prefill_ex), ("decode", self.decode_ex))
        }

    def _ops(self, rows: float, q: float | np.ndarray, c: float | np.ndarray, ex):
        return build_ops(
            self.spec, self.prec, Pass(rows, q, c, kv_cache=True, flash_attention=self.flash), ex
        )

    def _context_dependent(self, ex) -> set[str]:
        """Names of the operators whose cost changes with the attended context."""
        near, far = self._ops(2, 4.0, 4.0, ex), self._ops(2, 4.0, 4000.0, ex)
        return {a.name for a, b in zip(near, far, strict=True) if a.flops != b.flops or a.bytes != b.bytes}

    def _time(self, ops, steps: int, host: bool) -> np.ndarray:
        if host:
            ideal, est = step_times(ops, self.hw, steps, self.profile, self.host)
        else:
            no_pass = None if self.host is None else 0.0
            ideal, est = step_times(ops, self.hw, steps, self.context_profile, no_pass)
        return ideal if est is None else est

    def dense(self, rows: int, tokens: int, phase: str) -> float:
        """Operators independent of context, for ``tokens`` tokens of which ``rows`` need logits."""
        key = (rows, tokens, phase)
        if key not in self._dense:
            ex = self.prefill_ex if phase == "prefill" else self.decode_ex
            r = max(rows, 1)
            ops = [
                o for o in self._ops(r, tokens / r, tokens / r, ex) if o.name not in self.context_ops[phase]
            ]
            if rows == 0:  # prompt chunks only: no token is sampled, so no output head this step
                ops = [o for o in ops if o.block != "head"]
            self._dense[key] = float(self._time(ops, 1, host=True)[0])
        return self._dense[key]

    def decode_context(self, contexts: np.ndarray) -> float:
        """Context-dependent operators of a decode batch whose sequences attend to ``contexts``."""
        b = len(contexts)
        if not b:
            return 0.0
        if b not in self._decode:
            ctx = np.arange(1, self.max_context + 1, dtype=float)
            ops = [o for o in self._ops(b, 1.0, ctx, self.decode_ex) if o.name in self.context_ops["decode"]]
            # Per sequence at each context: b sequences at context c cost b times one (no weights here).
            self._decode[b] = np.concatenate([[0.0], self._time(ops, len(ctx), host=False) / b])
        return float(self._decode[b][contexts].sum())

    def chunk_context(self, tokens: int, context: int) -> float:
        """Context-dependent operators of a prompt chunk of ``tokens`` ending at ``context``."""
        key = (tokens, context)
        if key not in self._chunk:
            ops = [
                o for o in self._ops(1, float(tokens), float(context), self.prefill_ex)
                if o.name in self.context_ops["prefill"]
            ]  # fmt: skip
            self._chunk[key] = float(self._time(ops, 1, host=False)[0])
        return self._chunk[key]


# --- requests and instances -------------------------------------------------------------------------


@dataclass
class Request:
    id: int
    arrival: float
    prompt: int
    gen: int
    cached: int  # prompt tokens found in the prefix cache: not computed
    computed: int = 0  # prompt tokens processed (cached ones included)
    target: int = 0  # tokens the current prefill must reach (prompt, or prompt + generated after preemption)
    generated: int = 0
    blocks: int = 0
    admitted: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    finished: float | None = None
    gaps: list[float] = field(default_factory=list)
    preempted: int = 0

    @property
    def in_prefill(self) -> bool:
        return self.computed < self.target

    def emit(self, now: float) -> None:
        if self.first_token is None:
            self.first_token = now
        else:
            self.gaps.append(now - self.last_token)
        self.last_token = now
        self.generated += 1


@dataclass
class Engine:
    """Knobs real engines expose (names follow vLLM's)."""

    gpu_memory_utilization: float = 0.9
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    block_size: int = 16
    prefix_cache_hit_rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise RooflensError("gpu_memory_utilization must be in (0, 1], e.g. 0.9")
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1 or self.block_size < 1:
            raise RooflensError("max_num_seqs, max_num_batched_tokens and block_size must be at least 1")
        if not 0 <= self.prefix_cache_hit_rate < 1:
            raise RooflensError("prefix_cache_hit_rate must be in [0, 1)")


class Instance:
    """One engine instance (one model replica on ``tp`` devices): its queue, running set and KV blocks."""

    def __init__(self, name: str, role: str, cost: StepCost, engine: Engine, blocks: int):
        self.name, self.role, self.cost, self.engine = name, role, cost, engine
        self.free = self.total_blocks = blocks
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.busy = False
        self.batch_time = 0.0  # sum over steps of decode sequences x step time
        self.step_time = 0.0  # time of the steps that decode
        self.preemptions = 0
        self.peak_blocks = 0

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    def blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.engine.block_size)

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.engine.max_num_seqs:
            r = self.waiting[0]
            need = self.blocks_for(r.target + 1) - r.blocks
            if need > self.free:
                if not self.running and self.blocks_for(r.target + 1) > self.total_blocks:
                    raise RooflensError(
                        f"a request of {r.target} tokens needs more KV blocks than {self.name} has "
                        f"({self.total_blocks} of {self.engine.block_size} tokens)"
                    )
                break
            self.waiting.popleft()
            self.free -= need
            r.blocks += need
            if r.admitted is None:
                r.admitted = self._now
            self.running.append(r)

    def _preempt_for(self, r: Request) -> bool:
        """Free blocks by preempting the newest other request (recomputed later); False if none."""
        victims = [v for v in self.running if v is not r]
        if not victims:
            return False
        v = victims[-1]
        self.running.remove(v)
        self.free += v.blocks
        v.blocks = 0
        v.computed = v.cached  # recomputed from scratch, bar what the prefix cache holds
        v.target = v.prompt + v.generated
        v.preempted += 1
        self.preemptions += 1
        self.waiting.appendleft(v)
        return True

    def _grow(self, r: Request) -> None:
        """One more KV block for a decoding request, preempting the newest others if none is free."""
        while self.free == 0:
            if not self._preempt_for(r):
                raise RooflensError(
                    f"a request of {r.prompt + r.generated} tokens outgrew {self.name}'s KV cache "
                    f"({self.total_blocks} blocks of {self.engine.block_size} tokens)"
                )
        self.free -= 1
        r.blocks += 1

    def plan_step(self, now: float) -> tuple[float, list[Request], list[tuple[Request, int]]] | None:
        """Choose the step's work; returns (duration, decoding requests, prompt chunks) or None if idle."""
        self._now = now
        self._admit()
        budget = self.engine.max_num_batched_tokens
        whole_prompts = not self.engine.chunked_prefill and any(r.in_prefill for r in self.running)
        # Without chunked prefill a step with prompts is all-prefill: decodes wait (what chunking removes).
        if self.role != "prefill" and not whole_prompts:
            for r in [r for r in self.running if not r.in_prefill]:
                if r in self.running and self.blocks_for(r.prompt + r.generated + 1) > r.blocks:
                    self._grow(r)
        decodes = (
            [] if self.role == "prefill" or whole_prompts else [r for r in self.running if not r.in_prefill]
        )
        prefilling = [r for r in self.running if r.in_prefill]
        tokens = len(decodes)
        chunks: list[tuple[Request, int]] = []
        for r in prefilling:
            room = budget - tokens
            left = r.target - r.computed
            if room <= 0 and (self.engine.chunked_prefill or chunks):
                break
            n = min(left, room) if self.engine.chunked_prefill else left
            if not self.engine.chunked_prefill and chunks and tokens + n > budget:
                break
            chunks.append((r, n))
            tokens += n
        if not tokens:
            return None
        completing = sum(1 for r, n in chunks if r.computed + n >= r.target)
        rows = len(decodes) + completing
        phase = "prefill" if chunks else "decode"
        contexts = np.array([r.prompt + r.generated for r in decodes], dtype=np.int64)
        duration = self.cost.dense(rows, tokens, phase) + self.cost.decode_context(contexts)
        duration += sum(self.cost.chunk_context(n, r.computed + n) for r, n in chunks)
        used = self.total_blocks - self.free
        self.peak_blocks = max(self.peak_blocks, used)
        self.batch_time += len(decodes) * duration
        self.step_time += duration if decodes else 0.0
        return duration, decodes, chunks


# --- the simulation ---------------------------------------------------------------------------------


@dataclass
class ServingResult:
    requests: list[Request]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.summary


def _lengths(
    value: int | Sequence[int], n: int, spread: float, rng: np.random.Generator, name: str
) -> np.ndarray:
    if isinstance(value, int | np.integer):
        if value < 1:
            raise RooflensError(f"{name} must be at least 1")
        if spread:
            if not 0 <= spread < 1:
                raise RooflensError("length spread must be in [0, 1)")
            lo, hi = max(1, round(value * (1 - spread))), max(1, round(value * (1 + spread)))
            return rng.integers(lo, hi + 1, size=n)
        return np.full(n, int(value))
    samples = np.asarray(list(value), dtype=np.int64)
    if not len(samples) or (samples < 1).any():
        raise RooflensError(f"{name} samples must be positive integers")
    return rng.choice(samples, size=n)


def simulate(
    model: ModelLike,
    hardware: HardwareLike = "h100-sxm",
    *,
    rate: float,
    prompt: int | Sequence[int] = 1024,
    gen: int | Sequence[int] = 256,
    length_spread: float = 0.0,
    requests: int = 500,
    arrival: Literal["poisson", "constant"] = "poisson",
    seed: int = 0,
    replicas: int = 1,
    disaggregate: tuple[int, int] | None = None,
    engine: Engine | None = None,
    basis: Basis = "estimate",
    quant: str | None = None,
    kv_format: str | None = None,
    **settings: Any,
) -> ServingResult:
    """Serve ``requests`` requests arriving at ``rate`` per second; return per-request records and a
    summary of the metrics (see the module docstring for their definitions).

    ``replicas`` engine instances share the traffic (least loaded first); ``disaggregate=(p, d)``
    instead runs ``p`` prefill and ``d`` decode instances. ``settings`` are analysis settings of one
    instance (tp, w_bits, a_bits, kv_bits, flash_attention, engine...).
    """
    if rate <= 0:
        raise RooflensError("rate must be a positive number of requests per second")
    if requests < 1 or replicas < 1:
        raise RooflensError("requests and replicas must be at least 1")
    if disaggregate is not None and (len(disaggregate) != 2 or min(disaggregate) < 1):
        raise RooflensError("disaggregate takes (prefill instances, decode instances), each at least 1")
    settings = with_formats(settings, quant, kv_format)  # the named formats, as every command reads them
    clash = sorted(set(settings) & {"batch", "prompt", "gen"})
    if clash:
        raise RooflensError(f"{', '.join(clash)}: the simulation sets these per request")
    for key, neutral in UNSUPPORTED.items():
        if settings.get(key, neutral) != neutral:
            raise RooflensError(f"the serving model does not follow {key}; analyse it with rooflens.analyze")
    if engine is not None and not isinstance(engine, Engine):
        raise RooflensError(
            f"engine takes the scheduler settings (rooflens.serving.Engine(...)), got {str(engine)[:40]!r}; "
            "step costs use the device's default efficiency profile"
        )
    eng = engine or Engine()
    spec, hw = load_model(model), load_hardware(hardware)
    rng = np.random.default_rng(seed)
    prompts = _lengths(prompt, requests, length_spread, rng, "prompt")
    gens = _lengths(gen, requests, length_spread, rng, "gen")
    if (gens < 1).any():
        raise RooflensError("gen must be at least 1")
    gaps = rng.exponential(1 / rate, size=requests) if arrival == "poisson" else np.full(requests, 1 / rate)
    arrivals = np.cumsum(gaps) - gaps[0]
    s = make_settings(**settings, batch=1, prompt=int(prompts.max()), gen=int(gens.max()))
    _check(spec, hw, s)
    cost = StepCost(spec, hw, s, basis, int(prompts.max() + gens.max()) + 1)
    blocks = _kv_blocks(spec, hw, s, eng)
    if disaggregate is None:
        pools = {"mixed": [Instance(f"instance {i}", "mixed", cost, eng, blocks) for i in range(replicas)]}
    else:
        pools = {
            "prefill": [
                Instance(f"prefill {i}", "prefill", cost, eng, blocks) for i in range(disaggregate[0])
            ],
            "decode": [Instance(f"decode {i}", "decode", cost, eng, blocks) for i in range(disaggregate[1])],
        }
    transfer = _transfer_model(spec, hw, s) if disaggregate else None
    reqs = [
        Request(
            i, float(arrivals[i]), int(prompts[i]), int(gens[i]), int(eng.prefix_cache_hit_rate * prompts[i])
        )
        for i in range(requests)
    ]
    for r in reqs:
        r.computed = r.cached
        r.target = r.prompt
    _run(reqs, pools, transfer)
    return ServingResult(reqs, _summary(reqs, pools, rate, eng, blocks, s))


def _kv_blocks(spec: ModelSpec, hw: HardwareSpec, s, eng: Engine) -> int:
    """KV blocks one instance has: the memory share the engine may use, less weights, activations of a
    full token budget and runtime overhead, over the bytes of one block (per device)."""
    base = executions(spec, s, hw)[0]
    prec = precision_for(spec, s)
    weights = resident_weight_bytes(spec, prec, base)
    act = analyze(spec, hw, **{**s.model_dump(), "prompt": eng.max_num_batched_tokens, "gen": 1}).memory
    room = hw.memory_bytes * eng.gpu_memory_utilization - weights - act.activations_bytes - act.overhead_bytes
    per_token = kv_cache_bytes(spec, prec, CacheShape(1, 1, 0), base)
    if not per_token:
        raise RooflensError(
            f"{spec.name} keeps no KV cache (only recurrent state), and the serving simulation schedules "
            "paged KV blocks; use rooflens analyze or sweep for it"
        )
    # Recurrent layers' state (hybrids) is reserved for every sequence the engine may run at once.
    room -= state_bytes(spec, prec, eng.max_num_seqs, base)
    blocks = int(room // (per_token * eng.block_size)) if per_token else 0
    if blocks < 1:
        raise RooflensError(
            f"{spec.name} leaves no room for a KV cache on {hw.name} at gpu_memory_utilization "
            f"{eng.gpu_memory_utilization} (weights {weights / 1e9:.1f} GB per device); add devices (tp), "
            "quantize, or raise gpu_memory_utilization"
        )
    return blocks


def _transfer_model(spec: ModelSpec, hw: HardwareSpec, s):
    """Seconds to move one request's KV cache (of ``tokens`` tokens) from a prefill to a decode instance.

    Each device sends its own shard in parallel over the network link when the device has one (the two
    instances sit on different machines), else over its interconnect.
    """
    base = executions(spec, s, hw)[0]
    per_token = kv_cache_bytes(spec, precision_for(spec, s), CacheShape(1, 1, 0), base)
    link = hw.network or hw.interconnect
    if link is None:
        raise RooflensError(f"{hw.name} lists no link to move KV caches over; disaggregation needs one")
    return lambda tokens: tokens * per_token / link.bandwidth + (link.latency_s or 0.0)


def _run(reqs: list[Request], pools: dict[str, list[Instance]], transfer) -> None:
    events: list[tuple[float, int, str, Any]] = []
    seq = 0

    def push(t: float, kind: str, payload: Any) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, payload))
        seq += 1

    first_pool = pools.get("mixed") or pools["prefill"]
    for r in reqs:
        push(r.arrival, "arrive", r)

    def kick(inst: Instance, now: float) -> None:
        if inst.busy:
            return
        step = inst.plan_step(now)
        if step is None:
            return
        inst.busy = True
        duration, decodes, chunks = step
        push(now + duration, "step", (inst, decodes, chunks))

    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == "arrive":
            inst = min(first_pool, key=lambda i: i.load)
            inst.waiting.append(payload)
            kick(inst, now)
        elif kind == "kv":
            r, src = payload
            src.free += r.blocks
            r.blocks = 0
            dst = min(pools["decode"], key=lambda i: i.load)
            dst.waiting.append(r)
            kick(src, now)
            kick(dst, now)
        else:
            inst, decodes, chunks = payload
            inst.busy = False
            for r in decodes:
                r.emit(now)
            for r, n in chunks:
                r.computed += n
                if not r.in_prefill:
                    r.emit(now)
            for r in [*decodes, *(c[0] for c in chunks)]:
                if r.generated >= r.gen and r in inst.running:
                    r.finished = now
                    inst.running.remove(r)
                    inst.free += r.blocks
                    r.blocks = 0
                elif inst.role == "prefill" and not r.in_prefill and r in inst.running:
                    inst.running.remove(r)  # its KV stays allocated until the transfer is done
                    push(now + transfer(r.prompt), "kv", (r, inst))
            kick(inst, now)


def _pct(values: Sequence[float]) -> dict[str, float | None]:
    if not len(values):
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
    }


def _summary(reqs, pools, rate, eng: Engine, blocks: int, s) -> dict[str, Any]:
    start = min(r.arrival for r in reqs)
    end = max(r.finished for r in reqs)
    tokens = sum(r.generated for r in reqs)
    # Steady window between the 10th and 90th percentile arrival times: in a steady state requests
    # complete as fast as they arrive; an overloaded server completes fewer while its queue grows.
    lo, hi = np.percentile([r.arrival for r in reqs], [10, 90])
    done = sum(1 for r in reqs if lo <= r.finished <= hi)
    achieved = done / (hi - lo) if hi > lo else float("nan")
    instances = [i for pool in pools.values() for i in pool]
    step_time = sum(i.step_time for i in instances if i.role != "prefill")
    return {
        "requests": len(reqs),
        "offered_rate": rate,
        "achieved_rate": achieved,
        "saturated": bool(achieved < 0.9 * rate),
        "duration_s": end - start,
        "output_tokens_per_s": tokens / (end - start) if end > start else None,
        "mean_batch": sum(i.batch_time for i in instances if i.role != "prefill") / step_time
        if step_time
        else 0.0,
        "kv_blocks_per_instance": blocks,
        "block_size": eng.block_size,
        # Requests of the mean length whose whole KV cache fits at once: the paged-memory concurrency limit.
        "max_concurrent_by_kv": int(
            blocks // math.ceil(np.mean([r.prompt + r.gen for r in reqs]) / eng.block_size)
        ),
        "peak_kv_use": max(i.peak_blocks for i in instances) / blocks,
        "preemptions": sum(i.preemptions for i in instances),
        "ttft": _pct([r.first_token - r.arrival for r in reqs]),
        "ttft_scheduled": _pct([r.first_token - r.admitted for r in reqs]),
        "tpot": _pct([(r.last_token - r.first_token) / (r.generated - 1) for r in reqs if r.generated > 1]),
        "itl": _pct([g for r in reqs for g in r.gaps]),
        "e2e": _pct([r.finished - r.arrival for r in reqs]),
        "queue": _pct([r.admitted - r.arrival for r in reqs]),
        "engine": vars(eng),
        "settings": {"tp": s.tp, "w_bits": s.w_bits, "a_bits": s.a_bits, "kv_bits": s.kv_bits},
    }
