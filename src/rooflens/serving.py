"""A server under load: an event-driven simulation of continuous batching built on rooflens's step costs.

Load, as the benchmark clients generate it:
- open loop (``rate``): requests arrive at ``rate`` per second, Poisson or evenly spaced, whether or
  not earlier ones have finished (``vllm bench serve --request-rate``);
- closed loop (``concurrency=C``): C users each send their next request the moment their previous one
  completes (zero think time), all C starting at t=0, until ``requests`` have been sent (``vllm bench
  serve --max-concurrency C`` with an infinite rate, SGLang ``bench_serving --max-concurrency``).

Lengths: a fixed prompt and output length, samples to draw from, or vLLM's random dataset:
``random_range_ratio`` r in [0, 1) draws each length uniformly from the integers
[floor(L * (1 - r)), ceil(L * (1 + r))] (``vllm/benchmarks/datasets/random.py``, the definition since
vLLM moved ``random`` to a spread around the mean; output lengths at least 1). vLLM's special tokens are
not subtracted. SGLang's ``bench_serving --random-range-ratio`` means something else ([L * r, L]).

Scheduling: each engine instance runs steps like vLLM's scheduler: running decodes first, one token
each, then prompt tokens up to the per-step token budget (``chunked_prefill`` splits a long prompt over
steps; without it a prompt is prefilled whole). Where ``mixed_steps`` is off (SGLang's default), a step
with prompt tokens carries no decodes: they wait. KV memory is paged: ``gpu_memory_utilization`` of
device memory, less weights, activations of the largest step and runtime overhead, split into blocks of
``block_size`` tokens; a request is admitted when its prompt's blocks are free, and a decode that needs
a block when none is left preempts the newest request (recomputed later, as vLLM does). A prefix-cache
hit rate skips that share of every prompt's computation. Arrivals wait for the scheduler's next intake:
before every step by default, or every ``recv_interval`` decode steps (SGLang's
``--scheduler-recv-interval``; at once after a step with prompt tokens, or when the instance is idle).
Disaggregation runs prefill and decode on separate instances and moves each prompt's KV cache between
them over the interconnect (or the network), bandwidth plus latency.

Scheduler defaults per engine (``SchedulerConfig.for_engine``; the data and its sources are
``engines.yaml``): ``simulate(engine="vllm")`` takes vLLM's (max_num_seqs 1024, 8192 tokens per step,
blocks of 16, CUDA graphs up to batch 512; 256 and 2048 on GPUs below 70 GiB), ``engine="sglang"``
SGLang's, and so on; TensorRT-LLM's memory share is of what the weights leave free. With no engine
named, the device's default engine (``rooflens.engine.default_engine``) supplies them; ``scheduler=``
overrides them all. The engine also picks the efficiency profile of the step costs (the analysis
setting ``engine``).

CUDA graphs: a decode-only step of b sequences, b at most ``cuda_graph_max_batch``, runs the graph
captured for the next size up, vLLM's list 1, 2, 4, then multiples of 8 below 256, then multiples of
16 (``vllm/config/compilation.py``): its context-independent operators are priced for the padded
batch (the padding rows attend to nothing). Steps with prompt tokens run unpadded.

Step cost: the same operators as ``rooflens.analyze``. Operators whose cost does not depend on the
attended context are evaluated for the step's token count (and the rows that need logits);
context-dependent ones (attention, MLA's decompression) per sequence: decode sequences from a table
over contexts, prompt chunks for their (tokens, context). A lone request therefore costs exactly what
the single analysis says (a test), and so does each of N requests sent one after another by a single
closed-loop user. Events of one instant are all handled before an instance plans its next step: a
closed loop's first C requests share their first step, and a user's next request joins the step that
follows its previous one's completion. With ``basis="estimate"`` the calibrated estimate is used; the
per-pass host cost is counted once per step, the per-sequence one for each sequence in it. A step
mixing prompt chunks and decodes prices its context-independent operators on the prefill path (the
same operators, except MLA's absorbed decode projections). Also on that basis a request reaches the
engine the profile's ``request_overhead_s`` after its client sends it (the API server, tokenization
and streaming, fitted on serving benchmarks): it is in TTFT, E2E and queue, so a lone request's TTFT
is the single analysis's plus that.

Load: an open loop (requests arriving at a rate, Poisson or evenly spaced), a closed loop (C users,
each sending its next request when its last one ends; all start together), or both: arrivals at a
rate with at most C in flight, a due request waiting for a free slot (``vllm bench serve
--request-rate R --max-concurrency C``). As in that tool, a request's latencies count from when it is
sent, not from when it came due.

Metrics, as ``vllm bench serve`` (``benchmark_serving``) defines them; latencies in seconds, each with
mean, p50 (the median), p90, p95 and p99:
- ``ttft``: arrival to first token (queueing included); ``ttft_scheduled``: admission to first token;
- ``tpot``: per request, (e2e - ttft) / (output tokens - 1), requests of one output token left out;
- ``itl``: every gap between consecutive tokens of a request, pooled over all requests;
- ``e2e``: arrival to last token; ``queue``: arrival to admission (on the estimate basis both count
  from when the client sends the request, so they include the profile's ``request_overhead_s``);
- ``duration_s``: first arrival to last completion; ``request_throughput``: requests / duration;
- ``output_tokens_per_s``: generated tokens / duration; ``output_tokens_per_s_per_device``: that over
  the devices (tp x pp x ep per instance, times the instances); ``total_tokens_per_s``: prompt and
  generated tokens / duration;
- ``tokens_per_s_per_user``: mean over requests of 1 / TPOT (InferenceMAX's tok/s/user);
- ``mean_batch``: decode sequences per step over the steps that decode, weighted by step time;
- open loop only: ``achieved_rate``, completions per second between the 10th and 90th percentile
  arrival; ``backlog_growth_per_s``, the slope of requests in the system (arrived, not finished)
  against time over the second half of the arrivals (least squares on an even grid of times); and
  ``saturated``: that slope above a tenth of the offered rate (the server completes less than about
  90% of what arrives) *and* the rise it makes over that window above three standard deviations of
  the count of requests in a steady system (``saturated`` has the arithmetic). Judged from the trend
  and its noise, both as ratios, never from a count of requests: a short run whose few arrivals
  bunch by chance no longer reads as saturated where a long run of the same load is steady, while an
  overload shows at both lengths.

Ignored: sampling and detokenization, scheduler CPU time beyond the calibrated estimate, KV swapping to
host memory, memory fragmentation finer than blocks, sliding-window caches (every layer's KV is held
for the whole context), network jitter, and client overheads beyond the profile's request_overhead_s.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any, Literal

import numpy as np

from .analysis import _check, analyze, engine_settings, executions, make_settings, precision_for, with_formats
from .engine import default_engine, get_engine
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
MAX_REQUESTS = 20_000  # requests (and closed-loop users) one simulation takes: keeps a run bounded
# Generated tokens over all requests: the work of a run is about a few microseconds per decoded token,
# so this keeps any run to seconds (benchmarks/bench_serve.py measures the heaviest).
MAX_GENERATED_TOKENS = 4_000_000
MAX_INSTANCES = 1024
DEFAULT_REQUESTS = 500  # requests a simulation serves when none are given
# Open-loop rates a run takes: from one request a day (a denormal rate made every gap between
# arrivals infinite) to a million a second.
MIN_RATE, MAX_RATE = 1 / 86_400, 1e6
# The work of a run, counted as it goes: each engine step costs STEP_WORK units plus one per sequence
# it carries (about 0.7 us a unit on the benchmark machine: 1M decode steps of one sequence, or 4,096
# of 256 sequences, alike). ``simulate(max_work=...)`` stops a run past its budget (the web API's cap).
STEP_WORK = 10
# ... and each step time it computes for the first time (operators built and placed: 0.5-0.8 ms; a
# prompt chunk's attention a third of that), a decode table one more unit per 5 contexts it spans.
BUILD_WORK = 1000
MAX_SWEEP_POINTS = 64
SATURATION_SHARE = 0.1  # backlog growing faster than this share of the offered rate: saturated
NOISE_SIGMAS = 3.0  # ... by more than this many standard deviations of the count random arrivals make
TREND_POINTS = 1000  # times at which the backlog is sampled for its trend


# --- step cost --------------------------------------------------------------------------------------


class StepCost:
    """Time of one engine step from its tokens and the contexts its sequences attend to."""

    def __init__(self, spec: ModelSpec, hw: HardwareSpec, settings: Any, basis: Basis, max_context: int):
        self.spec, self.hw, self.s = spec, hw, settings
        self.prec = precision_for(spec, settings)
        _, self.prefill_ex, self.decode_ex = executions(spec, settings, hw)
        self.profile = resolve_profile(hw, settings.engine, spec.model_class) if basis == "estimate" else None
        if basis == "estimate" and self.profile is None:
            engine = settings.engine or "its default engine"
            raise RooflensError(
                f"{hw.name} has no efficiency profile for {engine} to estimate step times from; name "
                "another engine or use basis 'ideal' (rooflens simulate: --engine, --ideal)"
            )
        self.host = self.profile.host_cost(spec.model_type, spec.num_layers) if self.profile else None
        # Context-dependent operators are more kernels of the same step: their per-operator costs count,
        # the per-pass and per-sequence host costs are already in the dense part.
        self.context_profile = (
            self.profile.model_copy(
                update={
                    k: 0.0
                    for k in ("step_overhead_s", "seq_overhead_s")
                    if k in type(self.profile).model_fields
                }
            )
            if self.profile is not None
            else None
        )
        self.max_context = max_context
        self.work = 0.0  # units of work spent building step times (see BUILD_WORK)
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

    def _time(self, ops, steps: int, host: bool, sequences: int = 1) -> np.ndarray:
        if host:
            ideal, est = step_times(ops, self.hw, steps, self.profile, self.host, sequences)
        else:
            no_pass = None if self.host is None else 0.0
            ideal, est = step_times(ops, self.hw, steps, self.context_profile, no_pass)
        return ideal if est is None else est

    def dense(self, rows: int, tokens: int, phase: str, sequences: int = 1) -> float:
        """Operators independent of context, for ``tokens`` tokens of which ``rows`` need logits, and the
        step's host costs (per pass, and per each of its ``sequences``)."""
        key = (rows, tokens, phase, sequences)
        if key not in self._dense:
            ex = self.prefill_ex if phase == "prefill" else self.decode_ex
            r = max(rows, 1)
            ops = [
                o for o in self._ops(r, tokens / r, tokens / r, ex) if o.name not in self.context_ops[phase]
            ]
            if rows == 0:  # prompt chunks only: no token is sampled, so no output head this step
                ops = [o for o in ops if o.block != "head"]
            self._dense[key] = float(self._time(ops, 1, host=True, sequences=sequences)[0])
            self.work += BUILD_WORK
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
            self.work += BUILD_WORK + self.max_context / 5
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
            self.work += BUILD_WORK / 3
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

    # Its latencies, as the summary and the per-request records define them (None until they exist).
    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.arrival

    @property
    def tpot(self) -> float | None:
        """The mean gap between its tokens after the first; None with fewer than two."""
        return (self.last_token - self.first_token) / (self.generated - 1) if self.generated > 1 else None

    @property
    def e2e(self) -> float | None:
        return None if self.finished is None else self.finished - self.arrival

    def emit(self, now: float) -> None:
        if self.first_token is None:
            self.first_token = now
        else:
            self.gaps.append(now - self.last_token)
        self.last_token = now
        self.generated += 1


def cuda_graph_sizes(max_batch: int) -> list[int]:
    """Decode batch sizes vLLM captures CUDA graphs for, up to ``max_batch``: 1, 2, 4, multiples of 8
    below 256, then multiples of 16 (``vllm/config/compilation.py``). None for 0."""
    small = [b for b in (1, 2, 4) if b <= max_batch]
    return small + list(range(8, min(max_batch + 1, 256), 8)) + list(range(256, max_batch + 1, 16))


@cache
def _graph_sizes(max_batch: int) -> np.ndarray:
    return np.array(cuda_graph_sizes(max_batch), dtype=np.int64)


# The scheduler's whole-number, on/off and fractional fields: what a published row's scheduler column
# may set (validation/README.md); ``scheduler_value`` reads them, there and from engines.yaml (whose
# other fields are floats or, for memory_share_of, a word).
INT_FIELDS = (
    "max_num_seqs", "max_num_batched_tokens", "block_size", "cuda_graph_max_batch", "recv_interval",
)  # fmt: skip
BOOL_FIELDS = ("chunked_prefill", "mixed_steps")
FRACTION_FIELDS = ("gpu_memory_utilization",)  # in (0, 1] (SchedulerConfig checks): --gpu-memory-utilization


def scheduler_value(name: str, value: object) -> int | bool | float | str:
    """``value`` (a number or word from engines.yaml, or text from a published row) as the type of
    SchedulerConfig field ``name``: a whole number, true/false, a word for memory_share_of, else a
    number. Its range is SchedulerConfig's to check. A value of the wrong kind raises RooflensError."""
    text = str(value).strip().lower()
    if name in INT_FIELDS and not isinstance(value, bool) and (isinstance(value, int) or text.isdigit()):
        return int(text)
    if name in BOOL_FIELDS and text in ("true", "false"):
        return text == "true"
    if name == "memory_share_of":
        return text
    if name not in INT_FIELDS + BOOL_FIELDS and not isinstance(value, bool):
        try:
            return float(text)
        except ValueError:
            pass
    kind = "a whole number" if name in INT_FIELDS else "true or false" if name in BOOL_FIELDS else "a number"
    raise RooflensError(f"scheduler field {name} takes {kind}, got {value!r}")


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler knobs serving engines expose (names follow vLLM's)."""

    gpu_memory_utilization: float = 0.9
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    # Whether a step that carries prompt tokens also carries the running decodes (vLLM V1, llama.cpp),
    # or runs the prompts alone while the decodes wait (SGLang without --enable-mixed-chunk).
    mixed_steps: bool = True
    block_size: int = 16
    prefix_cache_hit_rate: float = 0.0
    cuda_graph_max_batch: int = 0  # decode batches up to this run padded CUDA graphs; 0: none
    # What gpu_memory_utilization is a share of: all device memory (vLLM), or what the weights and
    # activations leave free (TensorRT-LLM's free_gpu_memory_fraction).
    memory_share_of: str = "total"
    # Decode steps between two intakes of newly arrived requests (SGLang's --scheduler-recv-interval):
    # 1 takes them in before every step; N only after N decode steps, or at once after a step with
    # prompt tokens or when idle.
    recv_interval: int = 1

    def __post_init__(self) -> None:
        if self.memory_share_of not in ("total", "free"):
            raise RooflensError(f"memory_share_of takes 'total' or 'free', got {self.memory_share_of!r}")
        for name in INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise RooflensError(f"{name} takes a whole number, got {value!r}")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise RooflensError(f"{name} takes True or False, got {getattr(self, name)!r}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise RooflensError("gpu_memory_utilization must be in (0, 1], e.g. 0.9")
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1 or self.block_size < 1:
            raise RooflensError("max_num_seqs, max_num_batched_tokens and block_size must be at least 1")
        if not 0 <= self.prefix_cache_hit_rate < 1:
            raise RooflensError("prefix_cache_hit_rate must be in [0, 1)")
        if not 0 <= self.cuda_graph_max_batch <= 65536:
            raise RooflensError("cuda_graph_max_batch must be in [0, 65536] (0: no CUDA graphs)")
        if not 1 <= self.recv_interval <= 10_000:
            raise RooflensError("recv_interval must be in [1, 10000] decode steps (1: every step)")

    @classmethod
    def for_engine(cls, name: str) -> SchedulerConfig:
        """The scheduler defaults of engine ``name`` (vllm, sglang, ...; aliases accepted), from
        ``engines.yaml``, where each figure names its source."""
        info = get_engine(name)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(info.scheduler) - known)
        if unknown:
            raise RooflensError(f"engines.yaml: {info.name} lists unknown scheduler fields {unknown}")
        return cls(**{key: scheduler_value(key, value) for key, value in info.scheduler.items()})

    def graph_batch(self, batch: int) -> int:
        """Rows a decode-only step of ``batch`` sequences computes: the captured size at or above it,
        or ``batch`` itself when it runs without a graph."""
        sizes = _graph_sizes(self.cuda_graph_max_batch)
        if not len(sizes) or batch > sizes[-1]:
            return batch
        return int(sizes[np.searchsorted(sizes, batch)])


def scheduler_defaults(hardware: HardwareLike, engine: str | None = None) -> SchedulerConfig:
    """The scheduler a simulation on ``hardware`` assumes: the named engine's defaults (with its
    smaller-GPU defaults on devices below their memory threshold), else the device's default
    engine's, else ``SchedulerConfig()``."""
    hw = load_hardware(hardware)
    if engine is None:
        engine = default_engine(hw.vendor, hw.kind)
        if engine is None:
            return SchedulerConfig()
    config = SchedulerConfig.for_engine(engine)
    small = get_engine(engine).small_gpu
    if small and hw.memory_bytes < float(small["below_gib"]) * 2**30:
        config = replace(config, **{k: int(v) for k, v in small.items() if k != "below_gib"})
    return config


class Instance:
    """One engine instance (one model replica on ``tp`` devices): its queue, running set and KV blocks."""

    def __init__(self, name: str, role: str, cost: StepCost, engine: SchedulerConfig, blocks: int):
        self.name, self.role, self.cost, self.engine = name, role, cost, engine
        self.free = self.total_blocks = blocks
        self.inbox: deque[Request] = deque()  # arrived, not yet taken in by the scheduler
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.since_intake = engine.recv_interval  # decode steps since the last intake
        self.busy = False
        self.batch_time = 0.0  # sum over steps of decode sequences x step time
        self.step_time = 0.0  # time of the steps that decode
        self.preemptions = 0
        self.peak_blocks = 0
        self.steps = 0

    @property
    def load(self) -> int:
        return len(self.inbox) + len(self.waiting) + len(self.running)

    def _intake(self) -> None:
        """Take in the requests that arrived, if the scheduler looks this step: every
        ``recv_interval`` decode steps, after a step with prompt tokens, or when it has nothing to run."""
        idle = not self.running and not self.waiting
        if idle or self.since_intake >= self.engine.recv_interval:
            self.waiting.extend(self.inbox)
            self.inbox.clear()
            self.since_intake = 0

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
        self._intake()
        self._admit()
        budget = self.engine.max_num_batched_tokens
        # Where steps are not mixed, a step with prompts is all-prefill: the decodes wait.
        prompts_alone = not self.engine.mixed_steps and any(r.in_prefill for r in self.running)
        if self.role != "prefill" and not prompts_alone:
            for r in [r for r in self.running if not r.in_prefill]:
                # r.blocks == 0: preempted by an earlier one of these (a list lookup here was
                # quadratic in the batch)
                if r.blocks and self.blocks_for(r.prompt + r.generated + 1) > r.blocks:
                    self._grow(r)
        decodes = (
            [] if self.role == "prefill" or prompts_alone else [r for r in self.running if not r.in_prefill]
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
        contexts = np.array([r.prompt + r.generated for r in decodes], dtype=np.int64)
        sequences = len(decodes) + len(chunks)
        if chunks:
            dense = self.cost.dense(rows, tokens, "prefill", sequences)
        else:  # a decode-only step: a CUDA graph, if one is captured, computes its padded batch
            padded = self.engine.graph_batch(len(decodes))
            dense = self.cost.dense(padded, padded, "decode", sequences)
        duration = dense + self.cost.decode_context(contexts)
        duration += sum(self.cost.chunk_context(n, r.computed + n) for r, n in chunks)
        used = self.total_blocks - self.free
        self.peak_blocks = max(self.peak_blocks, used)
        self.batch_time += len(decodes) * duration
        self.step_time += duration if decodes else 0.0
        self.steps += 1
        # SGLang counts a decode step as 1 towards the next intake and a step with prompts as enough.
        self.since_intake += self.engine.recv_interval if chunks else 1
        return duration, decodes, chunks


# --- the simulation ---------------------------------------------------------------------------------


@dataclass
class ServingResult:
    requests: list[Request]
    summary: dict[str, Any]
    work: float = 0.0  # units of simulation work it took (STEP_WORK per step plus its sequences)

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def records(self) -> list[dict[str, Any]]:
        """One row per request, in arrival order (``simulate --format csv``): when it arrived, its
        lengths, its TTFT, TPOT and end-to-end latency in seconds (None where it never finished) and
        its preemptions."""
        return [
            {"id": r.id, "arrival_s": r.arrival, "prompt": r.prompt, "gen": r.gen, "cached_prompt": r.cached,
             "ttft_s": r.ttft, "tpot_s": r.tpot, "e2e_s": r.e2e, "preempted": r.preempted}
            for r in sorted(self.requests, key=lambda r: (r.arrival, r.id))
        ]  # fmt: skip


def _lengths(
    value: int | Sequence[int], n: int, ratio: float, rng: np.random.Generator, name: str
) -> np.ndarray:
    """``n`` lengths: ``value`` itself, drawn as vLLM's random dataset draws them around it, or drawn
    from samples."""
    if isinstance(value, bool):
        raise RooflensError(f"{name} takes a number of tokens or a list of them, got {value!r}")
    if isinstance(value, int | np.integer):
        if value < 1:
            raise RooflensError(f"{name} must be at least 1")
        if not ratio:
            return np.full(n, int(value))
        lo, hi = math.floor(value * (1 - ratio)), math.ceil(value * (1 + ratio))
        if name == "gen":
            lo, hi = max(lo, 1), max(hi, 1)  # as vLLM: never 0 output tokens
        elif lo < 1:
            raise RooflensError(
                f"prompt {value} with random_range_ratio {ratio} can draw 0 tokens (floor({value} x "
                f"{1 - ratio:g}) = {lo}); raise the prompt length or lower the ratio"
            )
        return rng.integers(lo, hi + 1, size=n)
    samples = np.asarray(list(value), dtype=np.int64)
    if not len(samples) or (samples < 1).any():
        raise RooflensError(f"{name} samples must be positive integers")
    if ratio:
        raise RooflensError("random_range_ratio spreads a fixed length; with length samples leave it 0")
    return rng.choice(samples, size=n)


def _whole(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise RooflensError(f"{name} takes a whole number from {lo:,} to {hi:,}, got {value!r}")
    return int(value)


def simulate(
    model: ModelLike,
    hardware: HardwareLike = "h100-sxm",
    *,
    rate: float | None = None,
    concurrency: int | None = None,
    prompt: int | Sequence[int] = 1024,
    gen: int | Sequence[int] = 256,
    random_range_ratio: float = 0.0,
    requests: int = DEFAULT_REQUESTS,
    arrival: Literal["poisson", "constant"] = "poisson",
    seed: int = 0,
    replicas: int = 1,
    disaggregate: tuple[int, int] | None = None,
    engine: str | None = None,
    scheduler: SchedulerConfig | None = None,
    basis: Basis = "estimate",
    quant: str | None = None,
    kv_format: str | None = None,
    max_work: float | None = None,
    **settings: Any,
) -> ServingResult:
    """Serve ``requests`` requests, arriving at ``rate`` per second (open loop) or sent by
    ``concurrency`` users one after another (closed loop), or both: arriving at ``rate`` with at most
    ``concurrency`` in flight, each further one sent when a request ends (``vllm bench serve
    --request-rate R --max-concurrency C``; its latencies count from that send, as the tool's do).
    Returns per-request records and a summary of the metrics (see the module docstring for their
    definitions).

    ``engine`` names the serving engine (vllm, sglang, tensorrt-llm, llama.cpp, mlx, transformers):
    its scheduler defaults and its efficiency profile; ``scheduler`` overrides the defaults.
    ``replicas`` engine instances share the traffic (least loaded first); ``disaggregate=(p, d)``
    instead runs ``p`` prefill and ``d`` decode instances. ``settings`` are analysis settings of one
    instance (tp, ep, w_bits, a_bits, kv_bits, flash_attention...). ``max_work``, given, refuses a run
    that needs more than that many units of work (``STEP_WORK`` per engine step plus one per sequence
    in it) once it has spent them.
    """
    if rate is None and concurrency is None:
        raise RooflensError(
            "give rate (requests per second, open loop), concurrency (users sending one request after "
            "another, closed loop) or both (arrivals at rate, at most concurrency in flight)"
        )
    if rate is not None:
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not MIN_RATE <= rate <= MAX_RATE
        ):
            raise RooflensError(
                f"rate takes requests per second from {MIN_RATE:g} (one a day) to {MAX_RATE:g}, got "
                f"{str(rate)[:40]}"
            )
        if arrival not in ("poisson", "constant"):
            raise RooflensError(f"arrival takes 'poisson' or 'constant', got {str(arrival)[:40]!r}")
    elif arrival != "poisson":
        raise RooflensError("arrival sets how requests arrive at a rate; without rate leave it out")
    if concurrency is not None:
        concurrency = _whole(concurrency, "concurrency", 1, MAX_REQUESTS)
    requests = _whole(requests, "requests", 1, MAX_REQUESTS)
    seed = _whole(seed, "seed", 0, 2**63 - 1)
    if concurrency is not None and rate is None and concurrency > requests:
        raise RooflensError(
            f"concurrency {concurrency} needs at least as many requests (got {requests}): each user sends "
            f"one at a time; give at least {concurrency} requests ({2 * concurrency} or more for a steady "
            "state)"
        )
    replicas = _whole(replicas, "replicas", 1, MAX_INSTANCES)
    if disaggregate is not None and (
        len(disaggregate) != 2
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_INSTANCES for d in disaggregate
        )
    ):
        raise RooflensError(
            f"disaggregate takes (prefill instances, decode instances), each from 1 to {MAX_INSTANCES}"
        )
    if disaggregate is not None and replicas != 1:
        raise RooflensError(
            f"replicas ({replicas}) and disaggregate ({disaggregate}) both set the instances: give "
            "replicas for instances that each serve whole requests, or disaggregate for prefill and "
            "decode instances, not both"
        )
    if isinstance(random_range_ratio, bool) or not (
        isinstance(random_range_ratio, int | float) and 0 <= random_range_ratio < 1
    ):
        raise RooflensError(
            f"random_range_ratio must be in [0, 1) (vLLM's random dataset), got {random_range_ratio!r}"
        )
    if engine is not None and not isinstance(engine, str):
        raise RooflensError(
            f"engine takes an engine name (vllm, sglang, ...), got {str(engine)[:40]!r}; scheduler knobs "
            "go in scheduler=SchedulerConfig(...)"
        )
    if scheduler is not None and not isinstance(scheduler, SchedulerConfig):
        raise RooflensError(
            f"scheduler takes a rooflens.serving.SchedulerConfig, got {str(scheduler)[:40]!r}"
        )
    settings = with_formats(settings, quant, kv_format)  # the named formats, as every command reads them
    clash = sorted(set(settings) & {"batch", "prompt", "gen"})
    if clash:
        raise RooflensError(f"{', '.join(clash)}: the simulation sets these per request")
    for key, neutral in UNSUPPORTED.items():
        if settings.get(key, neutral) != neutral:
            raise RooflensError(f"the serving model does not follow {key}; analyse it with rooflens.analyze")
    if engine is not None:
        get_engine(engine)  # an unknown name is refused here, with the known ones
        settings["engine"] = engine.strip()
    if basis == "ideal":
        settings.setdefault("estimate", False)  # no efficiency profile is looked up
    elif basis != "estimate":
        raise RooflensError(f"basis takes 'ideal' or 'estimate', got {str(basis)[:40]!r}")
    eng = scheduler or scheduler_defaults(hardware, engine)
    spec, hw = load_model(model), load_hardware(hardware)
    rng = np.random.default_rng(seed)
    prompts = _lengths(prompt, requests, random_range_ratio, rng, "prompt")
    gens = _lengths(gen, requests, random_range_ratio, rng, "gen")
    if int(gens.sum()) > MAX_GENERATED_TOKENS:
        raise RooflensError(
            f"{requests:,} requests generating {int(gens.mean()):,} tokens each make {int(gens.sum()):,} "
            f"tokens to simulate; a run takes at most {MAX_GENERATED_TOKENS:,} (a few seconds of work): "
            "give fewer requests or shorter outputs"
        )
    if rate is not None:
        gaps = (
            rng.exponential(1 / rate, size=requests) if arrival == "poisson" else np.full(requests, 1 / rate)
        )
        arrivals = np.cumsum(gaps) - gaps[0]
    else:
        # All due at once: the first ``concurrency`` go at 0, the rest as slots free.
        arrivals = np.zeros(requests)
    s = make_settings(**settings, batch=1, prompt=int(prompts.max()), gen=int(gens.max()))
    s = engine_settings(s, resolve_profile(hw, s.engine, spec.model_class))
    _check(spec, hw, s)
    cost = StepCost(spec, hw, s, basis, int(prompts.max() + gens.max()) + 1)
    # The largest step: a full token budget, or every sequence the engine runs with its longest prompt.
    step_tokens = min(eng.max_num_batched_tokens, eng.max_num_seqs * int(prompts.max() + gens.max()))
    blocks = _kv_blocks(spec, hw, s, eng, step_tokens)
    longest = int((prompts + gens).max())
    if math.ceil(longest / eng.block_size) > blocks:  # refused now, not after simulating its decode
        raise RooflensError(
            f"a request of {longest:,} tokens (prompt + generated) does not fit one instance's KV cache "
            f"({blocks:,} blocks of {eng.block_size} tokens = {blocks * eng.block_size:,} tokens): use "
            "shorter requests, more tensor parallelism (--tp) or a smaller KV format (--kv-format fp8)"
        )
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
    # A served request's fixed cost outside the device (API server, tokenization, streaming): it reaches
    # the engine that long after the client sends it.
    front = cost.profile.request_overhead_s if cost.profile is not None else 0.0
    work = _run(reqs, concurrency, pools, transfer, front, max_work)
    load = {
        "mode": "closed" if rate is None else "open" if concurrency is None else "capped",
        "offered_rate": rate,
        "concurrency": concurrency,
    }
    devices = s.tp * s.pp * s.ep * sum(len(pool) for pool in pools.values())
    summary = _summary(reqs, pools, load, eng, engine, blocks, s, devices)
    summary["estimate_ranges"] = _ranges(summary, cost.profile)
    return ServingResult(reqs, summary, work)


def _ranges(summary: dict[str, Any], profile) -> dict[str, Any] | None:
    """p10-p90 ranges of the headline figures from the profile's cross-validated factors (TTFT as a
    prefill, TPOT and ITL as decode, E2E end to end, throughput as serving throughput); None on the
    ideal basis. Also whether the profile is extrapolated for this device."""
    if profile is None:
        return None

    def span(value: float | None, category: str) -> list[float] | None:
        return None if value is None else profile.time_range(value, category)

    out_rate = summary["output_tokens_per_s_per_device"]
    return {
        "ttft_p50_estimate_range_s": span(summary["ttft"]["p50"], "prefill"),
        "tpot_p50_estimate_range_s": span(summary["tpot"]["p50"], "decode"),
        "e2e_p50_estimate_range_s": span(summary["e2e"]["p50"], "end-to-end"),
        "throughput_estimate_range_tokens_per_s": None
        if out_rate is None
        else profile.rate_range(out_rate, "throughput"),
        "profile": profile.scope or profile.engine,
        "extrapolated": profile.extrapolated,
    }


def sweep_concurrency(
    model: ModelLike,
    hardware: HardwareLike = "h100-sxm",
    concurrencies: Sequence[int] = (1, 2, 4, 8, 16),
    **simulate_kwargs: Any,
) -> list[dict[str, Any]]:
    """One closed-loop simulation per concurrency; their summaries, in order (the throughput against
    interactivity curve of InferenceMAX and ``vllm bench serve --max-concurrency`` sweeps).

    ``simulate_kwargs`` go to every ``simulate`` (lengths, requests, engine, tp, ...); ``requests``
    is the total per point, best several times the largest concurrency; a ``max_work`` is the budget
    of the whole sweep.
    """
    given = sorted({"rate", "concurrency", "arrival"} & set(simulate_kwargs))
    if given:
        raise RooflensError(f"sweep_concurrency sets the load itself; leave out {', '.join(given)}")
    if isinstance(concurrencies, str | bytes) or not isinstance(concurrencies, Sequence):
        raise RooflensError("concurrencies takes a list of whole numbers, e.g. [1, 2, 4, 8]")
    if not 1 <= len(concurrencies) <= MAX_SWEEP_POINTS:
        raise RooflensError(f"concurrencies takes 1 to {MAX_SWEEP_POINTS} values, got {len(concurrencies)}")
    values = [_whole(c, "concurrency", 1, MAX_REQUESTS) for c in concurrencies]
    requests = simulate_kwargs.get("requests", DEFAULT_REQUESTS)
    short = [c for c in values if isinstance(requests, int) and c > requests]
    if short:  # every point checked before the first runs, not when the sweep reaches it
        raise RooflensError(
            f"concurrency {short[0]} needs at least as many requests (got {requests}): each user sends "
            f"one at a time; give at least {max(short)} requests per point, or a smaller concurrency"
        )
    budget = simulate_kwargs.pop("max_work", None)  # shared by the points, in order
    summaries = []
    for c in values:
        run = simulate(model, hardware, concurrency=c, max_work=budget, **simulate_kwargs)
        budget = None if budget is None else budget - run.work
        summaries.append(run.summary)
    return summaries


def kv_room(capacity: float, used: float, eng: SchedulerConfig) -> float:
    """Bytes left for the KV cache on a device of ``capacity`` when weights, activations and runtime
    overhead take ``used``: the engine's memory share of all memory, or of what is left free."""
    if eng.memory_share_of == "free":
        return (capacity - used) * eng.gpu_memory_utilization
    return capacity * eng.gpu_memory_utilization - used


def _kv_blocks(spec: ModelSpec, hw: HardwareSpec, s, eng: SchedulerConfig, step_tokens: int) -> int:
    """KV blocks one instance has: the memory share the engine may use, less weights, activations of
    the largest step (``step_tokens``) and runtime overhead, over the bytes of one block (per device)."""
    base = executions(spec, s, hw)[0]
    prec = precision_for(spec, s)
    weights = resident_weight_bytes(spec, prec, base)
    act = analyze(spec, hw, **{**s.model_dump(), "prompt": step_tokens, "gen": 1}).memory
    room = kv_room(hw.memory_bytes, weights + act.activations_bytes + act.overhead_bytes, eng)
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


def _run(
    everyone: list[Request],
    cap: int | None,
    pools: dict[str, list[Instance]],
    transfer,
    front: float = 0.0,
    max_work: float | None = None,
) -> float:
    """Play the events out. Each request comes due at its ``arrival`` and is sent then, or, with
    ``cap`` requests in flight, when one of them finishes (in order; its ``arrival`` becomes that
    send); it reaches the engine ``front`` seconds after. Returns the work it took (see STEP_WORK),
    refusing the run past ``max_work``."""
    events: list[tuple[float, int, str, Any]] = []
    seq = 0

    def push(t: float, kind: str, payload: Any) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, payload))
        seq += 1

    first_pool = pools.get("mixed") or pools["prefill"]
    backlog: deque[Request] = deque()  # due, waiting for a free slot
    in_flight = 0

    def send(r: Request, now: float) -> None:
        nonlocal in_flight
        in_flight += 1
        r.arrival = now
        push(now + front, "arrive", r)

    for r in everyone:
        push(r.arrival, "due", r)
    # Every step moves at least one token; preemptions recompute prompts. A run past this many steps
    # would be a scheduling loop, not a server.
    max_steps = 20 * sum(r.prompt + r.gen for r in everyone) + 1000
    steps = 0
    work = 0.0

    def kick(inst: Instance, now: float) -> None:
        nonlocal steps, work
        if inst.busy:
            return
        step = inst.plan_step(now)
        if step is None:
            return
        steps += 1
        if steps > max_steps:
            raise RooflensError(f"the simulation ran past {max_steps:,} steps without finishing; a bug")
        inst.busy = True
        duration, decodes, chunks = step
        work += STEP_WORK + len(decodes) + len(chunks)
        if max_work is not None and work + inst.cost.work > max_work:
            done = sum(r.finished is not None for r in everyone)
            raise RooflensError(
                f"this simulation needs more than the {max_work:,.0f} units of work allowed per run "
                f"({steps:,} engine steps in, {done:,} of {len(everyone):,} requests done; a step costs "
                f"{STEP_WORK} units plus one per sequence in it): fewer requests, shorter prompts or "
                "outputs, or more users sharing each step; or run `rooflens simulate` locally"
            )
        push(now + duration, "step", (inst, decodes, chunks))

    # Instances to plan a step for once every event of this instant is handled: requests arriving
    # together (a closed loop's first C, or a user's next request at its previous one's end) are
    # scheduled together.
    due: dict[int, Instance] = {}
    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == "due":
            if cap is None or in_flight < cap:
                send(payload, now)
            else:
                backlog.append(payload)
        elif kind == "arrive":
            inst = min(first_pool, key=lambda i: i.load)
            inst.inbox.append(payload)
            due[id(inst)] = inst
        elif kind == "kv":
            r, src = payload
            src.free += r.blocks
            r.blocks = 0
            dst = min(pools["decode"], key=lambda i: i.load)
            dst.waiting.append(r)
            due[id(src)] = src
            due[id(dst)] = dst
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
                    in_flight -= 1
                    if backlog:  # a slot is free: the next request that is due goes now
                        send(backlog.popleft(), now)
                elif inst.role == "prefill" and not r.in_prefill and r in inst.running:
                    inst.running.remove(r)  # its KV stays allocated until the transfer is done
                    push(now + transfer(r.prompt), "kv", (r, inst))
            due[id(inst)] = inst
        if not events or events[0][0] > now:
            for inst in due.values():
                kick(inst, now)
            due.clear()
    return work + first_pool[0].cost.work  # the instances share one StepCost


def _pct(values: Sequence[float]) -> dict[str, float | None]:
    if not len(values):
        return {"mean": None, "p50": None, "p90": None, "p95": None, "p99": None}
    arr = np.asarray(values, dtype=float)
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return {
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
    }


def backlog_growth(arrivals: np.ndarray, finished: np.ndarray) -> float:
    """Requests in the system (arrived, not finished) per second of growth over the second half of the
    arrivals: the least-squares slope of that count sampled at ``TREND_POINTS`` even times."""
    arr, fin = np.sort(arrivals), np.sort(finished)
    t0, t1 = arr[len(arr) // 2], arr[-1]
    if not t1 > t0:
        return 0.0
    t = np.linspace(t0, t1, TREND_POINTS)
    in_system = np.searchsorted(arr, t, side="right") - np.searchsorted(fin, t, side="right")
    return float(np.polyfit(t - t0, in_system.astype(float), 1)[0])


def saturated(arrivals: np.ndarray, admitted: np.ndarray, finished: np.ndarray, rate: float) -> bool:
    """Whether the server falls behind an open-loop load of ``rate`` requests per second.

    Two conditions, both over the second half of the arrivals (a window of T seconds): the backlog grows
    faster than ``SATURATION_SHARE`` of the offered rate (the server completes less than about 90% of
    what arrives), and the rise that trend makes over the window, growth x T, stands out of the noise:
    it exceeds ``NOISE_SIGMAS`` times sqrt(2 rate S), the spread of the difference of two counts of
    requests in a steady system (Poisson arrivals at ``rate`` each staying S seconds, S the median time
    from admission to completion, make a count of mean and variance rate x S). A long run meets the
    first alone; in a short one, where the window holds few arrivals per request in the system, random
    bunching of arrivals can tilt the trend as much as an overload would, and the second keeps that from
    reading as saturation. Both are ratios (a share of the rate, a number of standard deviations), so
    one load gets one verdict at any run length that resolves it.
    """
    growth = backlog_growth(arrivals, finished)
    order = np.argsort(arrivals)
    late = order[len(order) // 2 :]
    window = float(arrivals[late].max() - arrivals[late].min())
    stay = float(np.median(finished[late] - admitted[late]))
    noise = math.sqrt(2 * rate * max(stay, 0.0))
    return bool(growth > SATURATION_SHARE * rate and growth * window > NOISE_SIGMAS * noise)


def _summary(reqs, pools, load: dict, eng: SchedulerConfig, engine: str | None, blocks: int, s,
             devices: int) -> dict[str, Any]:  # fmt: skip
    arrivals = np.array([r.arrival for r in reqs])
    finished = np.array([r.finished for r in reqs])
    start, end = float(arrivals.min()), float(finished.max())
    duration = end - start
    out_tokens = sum(r.generated for r in reqs)
    in_tokens = sum(r.prompt for r in reqs)
    tpots = [r.tpot for r in reqs if r.generated > 1]
    instances = [i for pool in pools.values() for i in pool]
    step_time = sum(i.step_time for i in instances if i.role != "prefill")
    per_s = (lambda x: x / duration) if duration > 0 else (lambda x: None)
    out_per_s = per_s(out_tokens)
    summary: dict[str, Any] = {
        **load,
        "requests": len(reqs),
        "devices": devices,
        "duration_s": duration,
        "request_throughput": per_s(len(reqs)),
        "output_tokens_per_s": out_per_s,
        "output_tokens_per_s_per_device": None if out_per_s is None else out_per_s / devices,
        "tokens_per_s_per_user": float(np.mean(1 / np.asarray(tpots))) if tpots and min(tpots) > 0 else None,
        "total_tokens_per_s": per_s(in_tokens + out_tokens),
        "input_tokens": in_tokens,
        "output_tokens": out_tokens,
    }
    if load["mode"] == "open":
        rate = load["offered_rate"]
        # Steady window between the 10th and 90th percentile arrival times: completions per second.
        lo, hi = np.percentile(arrivals, [10, 90])
        done = int(((finished >= lo) & (finished <= hi)).sum())
        admitted = np.array([r.admitted for r in reqs])
        summary |= {
            "achieved_rate": done / (hi - lo) if hi > lo else None,
            "backlog_growth_per_s": backlog_growth(arrivals, finished),
            "saturated": saturated(arrivals, admitted, finished, rate),
        }
    else:
        summary |= {"achieved_rate": None, "backlog_growth_per_s": None, "saturated": None}
    summary |= {
        "mean_batch": sum(i.batch_time for i in instances if i.role != "prefill") / step_time
        if step_time
        else 0.0,
        "steps": sum(i.steps for i in instances),
        "kv_blocks_per_instance": blocks,
        "block_size": eng.block_size,
        # Requests of the mean length whose whole KV cache fits at once: the paged-memory concurrency limit.
        "max_concurrent_by_kv": int(
            blocks // math.ceil(np.mean([r.prompt + r.gen for r in reqs]) / eng.block_size)
        ),
        "peak_kv_use": max(i.peak_blocks for i in instances) / blocks,
        "preemptions": sum(i.preemptions for i in instances),
        "ttft": _pct([r.ttft for r in reqs]),
        "ttft_scheduled": _pct([r.first_token - r.admitted for r in reqs]),
        "tpot": _pct(tpots),
        "itl": _pct([g for r in reqs for g in r.gaps]),
        "e2e": _pct([r.e2e for r in reqs]),
        "queue": _pct([r.admitted - r.arrival for r in reqs]),
        "engine": engine,
        "scheduler": asdict(eng),
        "settings": {"tp": s.tp, "ep": s.ep, "w_bits": s.w_bits, "a_bits": s.a_bits, "kv_bits": s.kv_bits},
    }
    return summary
