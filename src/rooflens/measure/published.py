"""Published measurements: what each row measures, rooflens's prediction of it, the fit, and ranges.

``validation/published.csv`` holds measured inference results from public sources (one row per
measured value, with its source); a built wheel carries a copy next to this module (``find_data``).
Its ``split`` column, fixed by a hash of each row's identifying fields, sends a row either to
``calibration`` (used to fit the efficiency profiles shipped in ``hardware/efficiency.json`` and their
ranges) or to ``report`` (used only to measure accuracy).
Errors are relative errors of *time*: ``predicted_time / measured_time - 1`` (a rate r corresponds
to the time 1/r).

Modes and metrics (``validation/README.md`` has the full table):
- ``static``: one batch run start to end (llama-bench, gptSessionBenchmark): ``prefill_tokens_per_s``
  and ``ttft_s`` (prefill), ``decode_tokens_per_s``, ``tpot_s``, ``itl_s`` (one mean decode step),
  ``output_tokens_per_s`` per device and ``e2e_latency_s`` (the whole batch);
- ``serving`` at a concurrency C (closed-loop clients) and ``offline`` (all requests at once; C is
  then the run's batch limit, else its engine's, or what the KV cache holds under its scheduler's
  memory share, whichever is smaller): the steady state of a
  continuously batching server. Over one request's life the server runs C prompts and ``gen``
  decode steps of C sequences: the cycle ``E2E = prefill(C x prompt) + decode(C, gen)``, and
  ``throughput = C x gen / E2E``; ``TTFT = 0.5 decode steps + the pass that carries the prompt`` (half
  a step's wait on average, then, where the scheduler mixes prompts into decode steps, one pass of the
  prompt and the other users' next tokens, which reads the weights once, else the prompt's own
  pass; a lone user, C = 1, finds no step running, so its TTFT is its prefill);
  ``TPOT = (E2E - TTFT) / (gen - 1)``. Where the
  run's scheduler takes new requests in only every R decode steps (the row's ``scheduler`` column,
  SGLang's ``--scheduler-recv-interval``), a request also waits (R - 1) / 2 steps on average, added to
  its TTFT and to the cycle, and its prompt is prefilled with the others that arrived in the same
  window: ``k = 1 + round(C (R - 1) / gen)`` prompts (at most C) instead of one. A served request
  also pays a fixed cost outside the device (the API server, tokenization, streaming; the profile's
  ``request_overhead_s``, fitted): once in its TTFT and E2E, once per cycle in throughput, not in TPOT.
  Every prediction is thus a weighted sum of phase estimates. Open-loop rows (a request rate alone),
  percentiles beyond the median, and offline latencies (queue-dominated) are kept but not predicted
  here. A capped run (a request rate and a concurrency: ``vllm bench serve --request-rate R
  --max-concurrency C``) is predicted as the closed loop of C users: the dataset keeps such runs only
  where the cap binds (the server achieved at most 75% of the offered rate), so C are always in flight.
- One exception, ``simulated`` rows: the TTFT of a closed loop of two or more users whose source
  states the requests it sent and describes their lengths (``fixed_lengths`` true, or false: the
  stated lengths, perhaps ending early, with any spread it states). The C users start together, so
  the first C prompts queue behind one another, and with equal lengths their successors stay in step;
  the formula's lone prompt joining a desynchronised batch does not hold (it came out 90% short on
  the first calibration row of this kind, and on others it made the fit charge each request up to
  0.2 s outside the device). Where the source says nothing of the lengths, or they vary freely (a
  conversation dataset such as ShareGPT, whose mean lengths a simulation at those means would hold in
  lock-step), the users stay out of step: the formula stays. The row's run is simulated instead
  (``serving.simulate``: its users, requests, engine and scheduler, its lengths with the spread the
  source states, ``length_spread``, and a capped run's arrivals at its rate, which start its users
  out of step), and its TTFT median or mean taken. The fit takes them in a second pass only: each
  run is simulated under the first pass's profiles (fitted on the formula's rows), and that device
  time is held fixed while the fixed cost per request is fitted to them with everything else
  (``fit_two_pass``).

    python -m rooflens.measure.published fit      # refit hardware/efficiency.json on the calibration split
    python -m rooflens.measure.published report   # the error table on the report split
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..analysis import make_settings, run
from ..engine import VERSION, get_engine, split_version
from ..errors import RooflensError, explain_validation
from ..hardware.catalog import load_hardware
from ..hardware.efficiency import EfficiencyProfile, device_class
from ..hardware.spec import HardwareSpec
from ..model.catalog import load_model
from ..report import Report
from ..roofline import PhaseResult
from ..settings import preset

if TYPE_CHECKING:
    from ..serving import SchedulerConfig, ServingResult

Metric = Literal[
    "prefill_tokens_per_s",
    "ttft_s",
    "decode_tokens_per_s",
    "tpot_s",
    "itl_s",
    "e2e_latency_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "requests_per_s",
]
PREFILL = {"prefill_tokens_per_s", "ttft_s"}
DECODE = {"decode_tokens_per_s", "tpot_s", "itl_s"}
THROUGHPUT = {"output_tokens_per_s", "total_tokens_per_s", "requests_per_s"}
CATEGORIES = ("prefill", "decode", "end-to-end", "throughput")
DATA = Path("validation") / "published.csv"  # the dataset's home in the repository
PACKAGED = Path(__file__).with_name("published.csv")  # the copy a built wheel ships
# A source checkout's copy (an editable install, or PYTHONPATH=src).
CHECKOUT = Path(__file__).resolve().parents[3] / DATA
LOW_BIT = ("fp8", "fp6", "fp4", "int8", "int4")


def _optional(value: object) -> object:
    return None if value == "" else value


class PublishedRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    split: Literal["calibration", "report"]
    engine: str
    engine_version: str = ""
    hardware: str
    devices: int
    parallel: str = ""  # degrees such as tp8, tp4pp2, ep8 (their product is devices)
    model: str
    precision: str
    mode: Literal["static", "offline", "serving"] = "static"
    batch: int | None = None
    concurrency: int | None = None
    request_rate: float | None = None
    prompt: int
    gen: int
    flash_attention: bool | None
    metric: Metric
    statistic: Literal["", "mean", "median", "p90", "p99"] = ""
    value: float
    source: str
    notes: str = ""
    # Scheduler settings the source states where they differ from the engine's defaults, as
    # SchedulerConfig fields: name=value pairs separated by spaces (e.g. recv_interval=30).
    scheduler: str = ""
    # Requests a serving run sent, where the source states it (vllm bench serve's --num-prompts).
    requests: int | None = None
    # Whether the source fixes every prompt and output length of a serving run (a random dataset with
    # no length spread, and --ignore-eos), false where it states them but outputs may end early or
    # spread by a stated ratio; empty where it does not say or they vary freely (ShareGPT).
    fixed_lengths: bool | None = None
    # The spread of a serving run's lengths where the source states one: each length drawn uniformly
    # from [L (1 - s), L (1 + s)] (vllm bench serve's --random-range-ratio); empty: none stated.
    length_spread: float | None = None

    _opt = field_validator(
        "batch", "concurrency", "request_rate", "requests", "length_spread", mode="before"
    )(_optional)

    @field_validator("flash_attention", mode="before")
    @classmethod
    def _fa(cls, value: object) -> object:
        return {"on": True, "off": False, "": None}.get(value, value) if isinstance(value, str) else value

    @field_validator("fixed_lengths", mode="before")
    @classmethod
    def _fixed(cls, value: object) -> object:
        return {"true": True, "false": False, "": None}.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> PublishedRow:
        get_engine(
            self.engine
        )  # an unknown one is refused here, with the known ones, not midway through a run
        if self.devices > 1 and not self.parallel:
            raise ValueError(f"row {self.id}: {self.devices} devices need a parallel mode (tp, pp or ep)")
        if self.devices == 1 and self.parallel:
            raise ValueError(f"row {self.id}: parallel '{self.parallel}' needs more than one device")
        degrees = self.degrees
        if self.parallel and math.prod(degrees.values()) != self.devices:
            raise ValueError(f"row {self.id}: parallel '{self.parallel}' does not multiply to {self.devices}")
        if self.mode == "static" and self.batch is None:
            raise ValueError(f"row {self.id}: a static row needs its batch")
        if not self.value > 0:
            raise ValueError(f"row {self.id}: value must be positive")
        if self.mode == "static" and self.requests is not None:
            raise ValueError(f"row {self.id}: requests describes serving and offline runs; leave it empty")
        if self.mode != "serving" and (self.fixed_lengths is not None or self.length_spread is not None):
            raise ValueError(
                f"row {self.id}: fixed_lengths and length_spread describe serving runs; leave them empty"
            )
        if self.length_spread is not None:
            if not 0 < self.length_spread < 1:
                raise ValueError(
                    f"row {self.id}: length_spread is a fraction above 0 and below 1 (0.15 for lengths "
                    f"within 15% of the stated ones), got {self.length_spread}"
                )
            if self.fixed_lengths:
                raise ValueError(f"row {self.id}: a spread of lengths contradicts fixed_lengths true")
        if self.requests is not None and self.concurrency is not None and self.requests < self.concurrency:
            raise ValueError(
                f"row {self.id}: requests {self.requests} < concurrency {self.concurrency}: each user "
                "sends at least one request"
            )
        if self.simulated:  # what serving.simulate takes, checked on load rather than mid-validation
            from ..serving import MAX_GENERATED_TOKENS, MAX_REQUESTS

            if "pp" in self.degrees:
                raise ValueError(f"row {self.id}: a simulated row (a closed loop's TTFT) cannot use pp")
            if self.requests > MAX_REQUESTS or self.requests * self.gen > MAX_GENERATED_TOKENS:
                raise ValueError(
                    f"row {self.id}: {self.requests} requests of {self.gen} tokens exceed what one "
                    f"simulation takes ({MAX_REQUESTS:,} requests, {MAX_GENERATED_TOKENS:,} tokens)"
                )
        overrides = self.scheduler_overrides  # a malformed or unknown setting is refused on load
        limit = overrides.get("max_num_seqs")
        if self.mode == "offline" and self.concurrency is not None and limit not in (None, self.concurrency):
            raise ValueError(
                f"row {self.id}: an offline run's concurrency is its batch limit, {self.concurrency}, "
                f"but its scheduler says max_num_seqs={limit}; state one limit"
            )
        if overrides:
            from ..serving import SchedulerConfig

            try:
                SchedulerConfig(**overrides)
            except (RooflensError, TypeError) as err:
                raise ValueError(f"row {self.id}: scheduler {self.scheduler!r}: {err}") from None
        return self

    @property
    def scheduler_overrides(self) -> dict[str, int | bool | float | str]:
        """The ``scheduler`` column as SchedulerConfig fields: whole numbers (``recv_interval=30``),
        true/false for the on/off ones (``mixed_steps=true``: SGLang's ``--enable-mixed-chunk``), a
        fraction in (0, 1] for the memory share (``gpu_memory_utilization=0.85``: vLLM's
        ``--gpu-memory-utilization``; its range, like every field's, is SchedulerConfig's to check)."""
        from ..serving import BOOL_FIELDS, FRACTION_FIELDS, INT_FIELDS, scheduler_value

        out: dict[str, int | bool | float | str] = {}
        for item in self.scheduler.split():
            name, sep, value = item.partition("=")
            parsed = None
            if sep and name in INT_FIELDS + BOOL_FIELDS + FRACTION_FIELDS:
                with suppress(RooflensError):
                    parsed = scheduler_value(name, value)
            if parsed is None:
                raise ValueError(
                    f"row {self.id}: scheduler takes name=value pairs of SchedulerConfig fields: a whole "
                    f"number for {', '.join(INT_FIELDS)} (e.g. recv_interval=30); true or false for "
                    f"{' or '.join(BOOL_FIELDS)}; a fraction in (0, 1] for {', '.join(FRACTION_FIELDS)} "
                    f"(e.g. gpu_memory_utilization=0.85); got {item!r}"
                )
            out[name] = parsed
        return out

    @property
    def degrees(self) -> dict[str, int]:
        """tp/pp/ep degrees of the row's parallel column."""
        if self.parallel in ("tp", "pp"):  # the degree is the device count
            return {self.parallel: self.devices}
        terms = re.findall(r"(tp|pp|ep)(\d+)", self.parallel)
        if "".join(f"{k}{v}" for k, v in terms) != self.parallel:
            raise ValueError(f"row {self.id}: parallel '{self.parallel}' is not like tp8, tp4pp2 or ep8")
        return {k: int(v) for k, v in terms}

    @property
    def category(self) -> str:
        if self.metric in PREFILL:
            return "prefill"
        if self.metric in DECODE:
            return "decode"
        if self.mode != "static" and self.metric in THROUGHPUT:
            return "throughput"
        return "end-to-end"

    @property
    def predicted(self) -> bool:
        """Whether rooflens predicts this row (see the module docstring for what it leaves out)."""
        if self.mode == "static":
            return True
        open_loop = self.request_rate is not None and self.concurrency is None
        if open_loop or self.statistic in ("p90", "p99"):
            return False
        return not (self.mode == "offline" and (self.metric not in THROUGHPUT or self.one_wave))

    @property
    def one_wave(self) -> bool:
        """An offline run that sent no more requests than its engine runs at once (``requests`` at most
        its ``concurrency``, the batch limit): one wave that ends in a tail of its longest requests at
        a shrinking batch, not the steady state the formula is. Kept, not predicted."""
        return (
            self.mode == "offline"
            and self.requests is not None
            and self.concurrency is not None
            and self.requests <= self.concurrency
        )

    @property
    def simulated(self) -> bool:
        """Whether the row's prediction simulates its run instead of the steady-state formula: a
        closed loop's TTFT where the source states the requests sent and describes the lengths (see
        the module docstring)."""
        return (
            self.mode == "serving"
            and self.metric == "ttft_s"
            and self.statistic in ("mean", "median")
            and self.concurrency is not None
            and self.concurrency > 1  # a lone user has no one to keep in step with: the formula holds
            and self.requests is not None
            and self.fixed_lengths is not None  # lengths free to vary keep the users out of step
        )

    @property
    def fitted(self) -> bool:
        """Whether the row is predicted by the formula the fit is made of (a simulated row enters only
        the fit's second pass, ``fit_two_pass``)."""
        return self.predicted and not self.simulated

    def base_settings(self) -> dict[str, object]:
        # The format as published; what the engine's kernels make of it (llama.cpp CUDA's 8-bit
        # activations, TensorRT-LLM's FP8 KV cache) the analysis adds, as for any user
        # (analysis.engine_settings).
        kw = preset(self.precision)
        kw.update(self.degrees)
        if self.flash_attention is not None:
            kw["flash_attention"] = self.flash_attention
        return kw

    def measured_time(self) -> float:
        """The measured time the row implies (the figure its prediction is compared with)."""
        c = self.batch if self.mode == "static" else None
        match self.metric:
            case "prefill_tokens_per_s":
                return (self.batch or 1) * self.prompt / self.value
            case "decode_tokens_per_s":
                return (self.batch or 1) / self.value
            case "output_tokens_per_s":
                if c is not None:
                    return c * self.gen / (self.value * self.devices)
                return self.gen / (self.value * self.devices)  # per request of the cycle: scaled by C later
            case "total_tokens_per_s":
                return (c or 1) * (self.prompt + self.gen) / (self.value * self.devices)
            case "requests_per_s":
                return (c or 1) / self.value
        return self.value


def find_data(path: str | Path | None = None) -> Path:
    """The dataset: an explicit path, else the copy a built package ships (next to this module), else
    the source checkout's ``validation/published.csv`` (the file's one home in the repository; building
    a wheel copies it into the package, see setup.py)."""
    candidates = [Path(path)] if path else [PACKAGED, CHECKOUT]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if path:
        raise RooflensError(f"published dataset not found: no file at {path}; pass --data an existing CSV")
    raise RooflensError(
        f"published dataset not found (looked for {', '.join(str(c) for c in candidates)}); "
        "reinstall rooflens from a wheel or a checkout, or pass --data PATH"
    )


def load_rows(path: str | Path | None = None) -> list[PublishedRow]:
    """The dataset's rows. A file that is not UTF-8 CSV with the dataset's columns, holds a row that
    breaks its rules, or holds no row is refused, naming what is wrong (and where)."""
    source = find_data(path)
    columns = list(PublishedRow.model_fields)
    try:
        with source.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            missing = [c for c in columns if c not in header]
            unknown = [c for c in header if c not in columns]
            if missing or unknown:
                wrong = [f"missing columns {', '.join(missing)}"] if missing else []
                wrong += [f"unknown columns {', '.join(map(repr, unknown))}"] if unknown else []
                raise RooflensError(
                    f"{source}: not a published dataset: {'; '.join(wrong)}. Its header is: "
                    + ",".join(columns)
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    rows.append(PublishedRow(**row))
                except ValidationError as err:
                    problems = str(explain_validation(err, "row")).removeprefix("invalid row: ")
                    where = f"{source}, line {line} (row {row.get('id') or '?'})"
                    raise RooflensError(f"{where}: {problems.removeprefix('row: ')}") from None
    except UnicodeDecodeError as err:
        raise RooflensError(f"{source}: not UTF-8 text (byte {err.start}); save the CSV as UTF-8") from None
    if not rows:
        raise RooflensError(f"{source}: the dataset holds no row")
    return rows


# --- what a row's prediction is made of -------------------------------------------------------------


def _workload(row: PublishedRow) -> tuple:
    """The fields a prediction depends on (not the measured value or the split)."""
    return (
        row.engine, row.hardware, row.devices, row.parallel, row.model, row.precision, row.mode,
        row.batch, row.concurrency, row.prompt, row.gen, row.flash_attention, row.metric, row.scheduler,
    )  # fmt: skip


@cache
def scheduler_of(row: PublishedRow) -> SchedulerConfig:
    """The scheduler the row's run used: its engine's defaults on its device, with what the source
    states (the ``scheduler`` column)."""
    from dataclasses import replace

    from ..serving import scheduler_defaults

    # Every row's engine is a known one (checked on load).
    return replace(scheduler_defaults(row.hardware, row.engine), **row.scheduler_overrides)


def intake_wait(row: PublishedRow) -> float:
    """Mean decode steps a served request waits for the scheduler to take it in beyond the usual
    half step: (R - 1) / 2 for an intake every R steps."""
    if row.mode != "serving" or concurrency(row) == 1:
        return 0.0  # a lone user's request finds the scheduler idle, and idle it takes requests at once
    return (scheduler_of(row).recv_interval - 1) / 2


def join_steps(row: PublishedRow) -> float:
    """Decode steps of the running batch in a served request's TTFT before the pass that carries its
    prompt: half a step's wait on average, or none for a lone user, whose request finds no batch
    running. (The pass itself is ``first_pass``: with the running users' tokens riding in it where the
    scheduler mixes them, so the weights it reads are read once, not once for the prompt and once for
    a decode step.)"""
    return 0.0 if concurrency(row) == 1 else 0.5


def riders(row: PublishedRow) -> int:
    """Decode tokens that ride in the pass carrying a served request's prompt: the other C - k users'
    next tokens where the scheduler mixes prompts into decode steps (``mixed_steps``: vLLM's default),
    as ``serving.simulate`` plans such a step; none where a step with prompts runs them alone while
    the decodes wait (SGLang's default, TensorRT-LLM as modelled) or for a lone user."""
    if row.mode != "serving" or not _needs_one(row) or not scheduler_of(row).mixed_steps:
        return 0
    return max(concurrency(row) - first_batch(row), 0)


def first_pass(
    row: PublishedRow, profile: EfficiencyProfile | Literal["default"] | None = "default"
) -> Report:
    """The analysis of the pass that yields a served request's first token: its prompt and the others
    taken in with it (``first_batch``: k prompts), with the riders' decode tokens spread over the k
    prompts (each ceil(riders / k) tokens longer: one pass of the right number of tokens, whose
    weights are read once). Left out: the riders' attention to their own contexts, small beside the
    weights at short contexts, but not at long ones with many users (for Llama-3-8B on an H100 at 64
    users, 1,500 tokens of context on average, attention is 44% of a decode step's ideal time)."""
    k = first_batch(row)
    return analyse_row(row, profile, batch=k, prompt=row.prompt + math.ceil(riders(row) / k))


def first_batch(row: PublishedRow) -> int:
    """Prompts prefilled together in the first pass of a row (``first_pass``): for a served request's
    TTFT, its own and those arriving in its intake window, C (R - 1) / gen of them in a closed loop
    (see the module docstring); else 1."""
    if row.mode != "serving" or row.metric != "ttft_s":
        return 1
    c, r = concurrency(row), scheduler_of(row).recv_interval
    return max(1, min(c, 1 + math.floor(c * (r - 1) / max(row.gen, 1) + 0.5)))  # halves up


def concurrency(row: PublishedRow) -> int:
    """Sequences the row runs at once: its batch or concurrency, or for offline runs the batch limit
    (the run's own where the source states it, else its scheduler's) or what the KV cache holds under
    its scheduler's memory share, whichever is smaller."""
    if row.mode == "static":
        return row.batch or 1
    if row.mode == "serving" and row.concurrency is not None:
        return row.concurrency
    settings = tuple(sorted(row.base_settings().items()))
    c = _offline_concurrency(
        row.model, row.hardware, row.engine, scheduler_of(row), settings, row.prompt, row.gen, row.concurrency
    )
    return c


@cache
def _offline_concurrency(
    model: str,
    hardware: str,
    engine: str,
    eng: SchedulerConfig,
    settings: tuple,
    prompt: int,
    gen: int,
    limit: int | None = None,
) -> int:
    from ..serving import kv_room

    limit = limit or eng.max_num_seqs  # the run's own batch limit when the source states it
    kw = dict(settings)
    settings_one = make_settings(**kw, batch=1, prompt=prompt, gen=gen, engine=engine, estimate=False)
    one = run(load_model(model), load_hardware(hardware), settings_one)
    m = one.memory
    room = kv_room(m.capacity_bytes, m.weights_bytes + m.overhead_bytes + m.activations_bytes, eng)
    per_seq = m.kv_cache_bytes + m.state_bytes
    replicas = kw.get("ep", 1)  # attention runs data-parallel over the expert-parallel devices
    fits = int(room // per_seq) * replicas if per_seq > 0 else limit
    if fits < 1:  # as serving.simulate refuses such a server
        raise RooflensError(
            f"{model} on {hardware} leaves no room in the KV cache for one sequence of {prompt + gen} tokens "
            f"at gpu_memory_utilization {eng.gpu_memory_utilization} ({room / 1e9:.1f} GB left per device)"
        )
    return min(limit, fits)


def analyse_row(
    row: PublishedRow,
    profile: EfficiencyProfile | Literal["default"] | None = "default",
    batch: int | None = None,
    prompt: int | None = None,
) -> Report:
    """Run the analysis a row calls for (at ``batch`` sequences: default its concurrency, of ``prompt``
    tokens each: default its prompt); ``profile`` overrides the efficiency profile (None: ideal only)."""
    spec, hw = load_model(row.model), load_hardware(row.hardware)
    b = concurrency(row) if batch is None else batch
    p = row.prompt if prompt is None else prompt
    kw = {**row.base_settings(), "batch": b}
    if row.mode == "static" and row.category == "prefill":
        kw.update(prompt=p, gen=1)
    elif row.mode == "static" and row.category == "decode":
        kw.update(prompt=max(p, 1), gen=row.gen + 1)
    else:
        kw.update(prompt=p, gen=max(row.gen, 2) if row.mode != "static" else row.gen)
    if profile is None:
        return run(spec, hw, make_settings(**kw, engine=row.engine, estimate=False))
    if profile != "default":  # the device's own profile, under the row's engine name so it is chosen
        hw = hw.model_copy(update={"efficiency": [profile.model_copy(update={"engine": row.engine})]})
    return run(spec, hw, make_settings(**kw, engine=row_engine(row)))


def _terms(row: PublishedRow, prefill: float, decode: float, prefill_one: float, decode_steps: int) -> float:
    """The row's predicted time from the estimates of its phases (see the module docstring)."""
    return sum(
        w * t for w, t in zip(_weights(row, decode_steps), (prefill, decode, prefill_one), strict=True)
    )


def _weights(row: PublishedRow, decode_steps: int) -> tuple[float, float, float]:
    """Weights of (prefill of the batch, its decode phase, the first pass carrying a served prompt) in
    the row's time."""
    steps = max(decode_steps, 1)
    if row.mode == "static":
        if row.category == "prefill":
            return 1.0, 0.0, 0.0
        if row.category == "decode":
            return 0.0, 1.0 / steps, 0.0
        return 1.0, 1.0, 0.0
    c = concurrency(row)
    wait = intake_wait(row)  # steps of the running batch a request waits to be taken in
    join = join_steps(row)
    if row.metric == "ttft_s":
        return 0.0, (join + wait) / steps, 1.0
    if row.metric == "itl_s" and row.statistic == "median":
        # The median gap between tokens is a decode-only step: steps that carry a prompt chunk are
        # the long tail, not the middle (vLLM's and SGLang's benchmark tools pool every gap).
        return 0.0, 1.0 / steps, 0.0
    if row.category == "decode":  # (E2E - TTFT) / (gen - 1), the wait in neither
        n = max(row.gen - 1, 1)
        return 1.0 / n, (1.0 - join / steps) / n, -1.0 / n
    cycle = 1.0 + wait / steps
    if row.metric == "output_tokens_per_s":  # measured_time() is per request: the cycle / C
        return 1.0 / c, cycle / c, 0.0
    if row.metric in ("total_tokens_per_s", "requests_per_s"):  # measured_time() assumed C = 1
        return 1.0 / c, cycle / c, 0.0
    return 1.0, cycle, 0.0  # e2e latency: the cycle


def predicted_times(
    row: PublishedRow, report: Report, one: Report | None = None
) -> tuple[float, float | None]:
    """(ideal, estimate) of the time the row measures, from its analysis (and its first pass's, serving)."""
    steps = report.decode.steps
    one_ideal = one.prefill.time_s if one is not None else 0.0
    ideal = _terms(row, report.prefill.time_s, report.decode.time_s, one_ideal, steps)
    if report.prefill.estimate_s is None:
        return ideal, None
    one_est = one.prefill.estimate_s if one is not None else 0.0
    profile = report.profile
    served = request_overheads(row) * (profile.request_overhead_s if profile else 0.0)
    # The first pass's analysis holds its k prompts; the riders are sequences of that step too, each
    # with its per-sequence cost (as the fit's Design and serving.simulate count them).
    riding = riders(row) * profile.seq_overhead_s if profile is not None and one is not None else 0.0
    return ideal, served + _terms(
        row, report.prefill.estimate_s, report.decode.estimate_s or 0.0, (one_est or 0.0) + riding, steps
    )


def simulate_row(
    row: PublishedRow,
    basis: str = "estimate",
    hardware: HardwareSpec | None = None,
    requests: int | None = None,
    spread: float | None = None,
    seed: int = 0,
) -> ServingResult:
    """The row's serving run served again by ``serving.simulate``: its concurrency of closed-loop users
    (arriving at its request rate, where it has one as well: a capped run), its lengths, engine,
    scheduler, parallelism and format. ``requests`` (default: the row's) and ``spread`` (the lengths'
    random_range_ratio; default: the row's ``length_spread``, else none) for runs whose source leaves
    them out; ``hardware``: the row's device with a profile of its own (default: the catalog's, with
    the shipped profiles)."""
    from ..serving import simulate

    return simulate(
        row.model, hardware or row.hardware, rate=row.request_rate, concurrency=row.concurrency,
        requests=row.requests if requests is None else requests, prompt=row.prompt, gen=row.gen,
        random_range_ratio=(row.length_spread or 0.0) if spread is None else spread,
        engine=row_engine(row), scheduler=scheduler_of(row), basis=basis, seed=seed, **row.base_settings(),
    )  # fmt: skip


def simulated_times(row: PublishedRow, hardware: HardwareSpec | None = None) -> tuple[float, float]:
    """(ideal, estimate) of a simulated row's TTFT statistic: its run simulated (``simulate_row``).
    ``hardware``: the row's device with a profile of its own (default: the catalog's)."""
    assert row.concurrency is not None and row.requests is not None  # row.simulated holds
    out: list[float] = []
    for basis in ("ideal", "estimate"):
        try:
            result = simulate_row(row, basis, hardware)
        except RooflensError as err:
            raise RooflensError(f"row {row.id} (a simulated row) cannot be simulated: {err}") from None
        ttft = result.summary["ttft"]
        out.append(float(ttft["p50"] if row.statistic == "median" else ttft["mean"]))
    return out[0], out[1]


def request_overheads(row: PublishedRow) -> float:
    """Times a served request's fixed cost outside the device enters the row's figure: once in TTFT
    and E2E, once per cycle in a closed loop's throughput (per request: 1 / C); never in TPOT, static
    runs or offline throughput."""
    if row.mode != "serving":
        return 0.0
    if row.metric in ("ttft_s", "e2e_latency_s"):
        return 1.0
    if row.category == "throughput":
        return 1.0 / concurrency(row)
    return 0.0


def _needs_one(row: PublishedRow) -> bool:
    return row.mode != "static" and row.metric in PREFILL | DECODE


# --- fitting ------------------------------------------------------------------------------------------

# The parameters of a published profile, in log space, with their bounds.
PARAMS = (
    ("matmul@1", 0.01, 1.0),  # matmul (and element-wise) efficiency at 1 token per pass
    ("matmul@1024", 0.01, 1.0),  # ... at 1024 tokens per pass
    ("op_overhead_s", 1e-9, 1e-3),  # fixed cost per operator
    ("step_overhead_s", 1e-7, 0.05),  # fixed cost per forward pass (scheduler, launch of the step)
    ("seq_overhead_s", 1e-9, 1e-3),  # per sequence per step (batch bookkeeping, sampling)
    ("attention@1", 0.01, 1.0),  # attention efficiency at 1 token per pass
    ("attention@1024", 0.01, 1.0),
    ("attention_short_context", 0.05, 1.0),  # attention factor at 512 tokens of context (1 at 32k)
    ("grouped@1", 0.01, 1.0),  # MoE grouped GEMM efficiency at 1 token per expert
    ("grouped@1024", 0.01, 1.0),  # ... at 1024 tokens per expert
    ("low_precision", 0.1, 1.0),  # factor on matmuls in fp8/fp4/int8/int4
    ("comm_efficiency", 0.05, 1.0),  # share of link bandwidth collectives reach
    ("comm_latency_s", 1e-8, 1e-3),  # fitted cost per collective message
    ("request_overhead_s", 1e-5, 0.5),  # per served request, outside the device (API server, streaming)
)
REQUEST = [p[0] for p in PARAMS].index("request_overhead_s")
LOWER = np.log([p[1] for p in PARAMS])
UPPER = np.log([p[2] for p in PARAMS])
# Where every fit starts, and what the root (all engines) is gently held toward where the data is silent.
START = np.log([0.7, 0.6, 3e-6, 2e-4, 2e-6, 0.5, 0.5, 0.7, 0.4, 0.6, 0.8, 0.7, 5e-6, 1e-3])
ROOT_WEIGHT = 0.05
FIT_TOKENS = [1.0, 1024.0]
CONTEXTS = [512.0, 32768.0]


@dataclass(frozen=True)
class Phase:
    """What the estimate of one evaluated phase needs: its ideal time split by how it is made faster
    or slower, and the counts its fixed costs multiply."""

    steps: int
    sequences: float  # per step
    ops: float  # device operators per step
    tokens: float  # tokens per pass (keys matmul, attention and element-wise efficiency)
    per_expert: float  # tokens per routed expert (keys grouped efficiency)
    context: float  # mean attended context
    matmul: float
    matmul_low: float
    grouped: float
    grouped_low: float
    attention: float
    vector: float
    comm_bandwidth: float
    comm_latency: float
    messages: float


def summarise(phase: PhaseResult, sequences: float, tokens: float) -> Phase:
    """A phase's ideal time by part (totals over its steps)."""
    parts = dict.fromkeys(("matmul", "matmul_low", "grouped", "grouped_low", "attention", "vector"), 0.0)
    comm_bw = comm_lat = messages = 0.0
    per_expert, grouped_time = [], []
    for o in phase.ops:
        if o.kind == "comm":
            comm_lat += o.latency_time_s
            comm_bw += o.time_s - o.latency_time_s
            messages += o.messages
            continue
        low = o.kind == "matmul" and o.dtype in LOW_BIT
        if o.impl == "grouped":
            parts["grouped_low" if low else "grouped"] += o.time_s
            per_expert.append(o.eff_tokens)
            grouped_time.append(o.time_s)
        elif o.kind == "matmul":
            parts["matmul_low" if low else "matmul"] += o.time_s
        elif o.kind == "attention":
            parts["attention"] += o.time_s
        else:
            parts["vector"] += o.time_s
    ops = sum(o.count for o in phase.ops if o.kind != "comm")
    context = float(np.mean(phase.context)) if len(phase.context) else 1.0
    pe = float(np.average(per_expert, weights=grouped_time)) if sum(grouped_time) > 0 else 1.0
    return Phase(
        phase.steps, sequences, ops, tokens, pe, context, **parts,
        comm_bandwidth=comm_bw, comm_latency=comm_lat, messages=messages,
    )  # fmt: skip


_PHASES: dict[tuple, tuple[Phase, Phase, Phase | None]] = {}


def row_phases(row: PublishedRow) -> tuple[Phase, Phase, Phase | None]:
    """(prefill of the batch, its decode, the first pass of a served prompt) of a row, summarised
    (memoised)."""
    key = _workload(row)
    if key not in _PHASES:
        report = analyse_row(row, profile=None)
        s = report.settings
        per_device = math.ceil(s.batch / s.ep)
        prefill = summarise(report.prefill, per_device, per_device * s.prompt)
        decode = summarise(report.decode, per_device, per_device)
        one = None
        if _needs_one(row):
            first = first_pass(row, profile=None)
            one = summarise(
                first.prefill, first_batch(row) + riders(row), first.settings.batch * first.settings.prompt
            )
        _PHASES[key] = (prefill, decode, one)
    return _PHASES[key]


class Design:
    """The phases of many rows as arrays: the estimate of every row for a parameter vector at once."""

    FIELDS = Phase.__dataclass_fields__

    def __init__(self, rows: list[PublishedRow], pinned: dict[str, float] | None = None):
        """``pinned``: the device time of simulated rows, by id (``pinned_device_times``); such a row
        has no phases, only that time and its request's fixed cost."""
        pinned = pinned or {}
        cols: dict[str, list[float]] = {f: [] for f in self.FIELDS}
        index, weight = [], []
        self.pinned = np.array([pinned.get(r.id, 0.0) for r in rows], dtype=float)
        for i, row in enumerate(rows):
            if row.simulated:
                if row.id not in pinned:
                    raise ValueError(f"row {row.id} is simulated: the fit takes it only with its pinned time")
                continue
            prefill, decode, one = row_phases(row)
            for w, ph in zip(_weights(row, decode.steps), (prefill, decode, one), strict=True):
                if w == 0 or ph is None:
                    continue
                for f in self.FIELDS:
                    cols[f].append(float(getattr(ph, f)))
                index.append(i)
                weight.append(w)
        self.a = {f: np.asarray(v) for f, v in cols.items()}
        self.requests = np.array([request_overheads(r) for r in rows], dtype=float)
        self.index, self.weight, self.n = np.asarray(index, dtype=int), np.asarray(weight), len(rows)
        self.measured = np.array([r.measured_time() for r in rows])
        self.log_tokens = np.log(np.maximum(self.a["tokens"], 1.0)) if self.n else np.zeros(0)
        self.log_expert = np.log(np.maximum(self.a["per_expert"], 1.0)) if self.n else np.zeros(0)
        self.log_context = np.log(np.maximum(self.a["context"], 1.0)) if self.n else np.zeros(0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Estimated time of every row, by the same formula as ``roofline.evaluate`` (with the attention
        context and tokens per expert at their means over the phase's steps). ``x``: one parameter
        vector for every row, or one per row."""
        x = np.clip(np.atleast_2d(x), LOWER, UPPER)
        v = np.exp(x if x.shape[0] == 1 else x[self.index])
        a = self.a
        lt = np.log(FIT_TOKENS)
        e_mm = _lerp(self.log_tokens, lt, v[:, 0], v[:, 1])
        e_att = _lerp(self.log_tokens, lt, v[:, 5], v[:, 6]) * _lerp(
            self.log_context, np.log(CONTEXTS), v[:, 7], 1.0
        )
        e_grp = _lerp(self.log_expert, lt, v[:, 8], v[:, 9])
        low = v[:, 10]
        device = (
            (a["matmul"] + a["vector"]) / e_mm
            + a["matmul_low"] / (e_mm * low)
            + a["grouped"] / e_grp
            + a["grouped_low"] / (e_grp * low)
            + a["attention"] / e_att
            + a["comm_bandwidth"] / v[:, 11]
            + a["comm_latency"]
            + a["messages"] * v[:, 12]
        )
        host = a["steps"] * (a["ops"] * v[:, 2] + v[:, 3] + a["sequences"] * v[:, 4])
        per_row = np.exp(x[0, REQUEST]) if x.shape[0] == 1 else np.exp(x[:, REQUEST])
        served = self.requests * per_row
        phases = np.bincount(self.index, weights=self.weight * (device + host), minlength=self.n)
        return phases + served + self.pinned

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """log(estimate / measured) per row."""
        return np.log(np.maximum(self.predict(x), 1e-15) / self.measured)


def _lerp(t: np.ndarray, grid: np.ndarray, y0, y1) -> np.ndarray:
    """Linear interpolation in ``t`` between two grid points, clamped at both (as np.interp)."""
    w = np.clip((t - grid[0]) / (grid[1] - grid[0]), 0.0, 1.0)
    return y0 + (y1 - y0) * w


def fit_profile(design: Design, prior: np.ndarray, weight: float, loss: str = "linear") -> np.ndarray:
    """Least squares on log time ratios, each parameter held toward ``prior`` with ``weight``."""
    return prior + fit_offset(design, np.broadcast_to(prior, (design.n, len(PARAMS))), weight, loss)


LOSS_SCALE = 0.15  # residuals (log time ratio) beyond about 15% count less under a robust loss


# What an offset of a single device or version may change: the efficiencies together, by one factor
# (the same kernels running faster or slower), and each fixed cost and the collectives on their own.
# Column j of the map sends a reduced offset's coordinate j to the parameters it moves.
_EFFICIENCIES = ("matmul@1", "matmul@1024", "attention@1", "attention@1024", "grouped@1", "grouped@1024")
_OWN = ("op_overhead_s", "step_overhead_s", "seq_overhead_s", "comm_efficiency", "comm_latency_s",
        "request_overhead_s")  # fmt: skip
NARROW = np.array(
    [[1.0 if p[0] in _EFFICIENCIES else 0.0 for p in PARAMS]]
    + [[1.0 if p[0] == own else 0.0 for p in PARAMS] for own in _OWN]
).T


# An engine on one device, at one version there or on any device: the narrow shape (chosen by CV).
NARROW_LEVELS = ("devices", "versions", "releases")


def fit_offset(
    design: Design, base: np.ndarray, weight: float, loss: str = "linear", span_map: np.ndarray | None = None
) -> np.ndarray:
    """The one offset (log space) added to every row's parameters ``base`` that best fits the rows,
    held toward zero with ``weight``; ``loss`` 'linear' is least squares, 'soft_l1' and 'cauchy' let
    rows that disagree with the rest (two software versions of one workload) pull less. With
    ``span_map`` (parameters x coordinates) the offset is ``span_map @ c`` for a shorter ``c``."""
    from scipy.optimize import least_squares

    m = np.eye(len(PARAMS)) if span_map is None else span_map

    def residuals(c: np.ndarray) -> np.ndarray:
        return np.concatenate([design.residuals(base + m @ c), weight * c])

    span = (UPPER - LOWER).max()
    start = np.zeros(m.shape[1])
    c = least_squares(residuals, start, bounds=(-span, span), max_nfev=100, loss=loss, f_scale=LOSS_SCALE).x
    return m @ c


def profile_fields(params: np.ndarray, source: str) -> dict:
    """The efficiency.json entry of a parameter vector (the EfficiencyProfile fields)."""
    v = [float(f"{x:.4g}") for x in np.exp(np.clip(params, LOWER, UPPER))]
    return {
        "source": source,
        "tokens": FIT_TOKENS,
        "matmul": v[0:2],
        "attention": v[5:7],
        "attention_context": CONTEXTS,
        "attention_by_context": [v[7], 1.0],
        "classes": {"grouped": v[8:10]},
        "low_precision": dict.fromkeys(LOW_BIT, v[10]),
        "op_overhead_s": v[2],
        "step_overhead_s": v[3],
        "seq_overhead_s": v[4],
        "comm_efficiency": v[11],
        "comm_latency_s": v[12],
        "request_overhead_s": v[REQUEST],
    }


MIN_GROUP_ROWS = 3  # an engine on a generation, or on a device, gets its own offset with this many rows
SHRINK_GRID = (0.1, 0.3, 1.0)
LOSS_GRID = ("linear", "soft_l1", "cauchy")
ROUNDS = 2  # back-fitting passes over the offsets


def device_class_of(device: str) -> str:
    hw = load_hardware(device)
    return device_class(hw.vendor, hw.generation)


def row_version(row: PublishedRow) -> str:
    """The row's engine version as a user would name it (``--engine sglang@0.5.9``); '' where the
    source gives none or only a description (a PR, a build date)."""
    v = row.engine_version
    return split_version(f"{row.engine}@{v}")[1] if v and VERSION.fullmatch(v) else ""


def row_engine(row: PublishedRow) -> str:
    """The engine as the user who ran the row would name it: with its version where it has one."""
    version = row_version(row)
    return f"{row.engine}@{version}" if version else row.engine


def _klass(row: PublishedRow) -> str:
    return device_class_of(row.hardware)


@dataclass
class Fitted:
    """An additive fit in log space: parameters of an engine on a device = all engines' + the device
    generation's offset (any engine) + the engine's offset (any device) + the engine's offset on that
    generation + on that device + of its version on any device (``releases``: what one release does
    everywhere, such as its API server's cost per request) + of its version on that device, each
    present where the calibration rows had enough of it."""

    root: np.ndarray
    classes: dict[str, np.ndarray]
    engines: dict[str, np.ndarray]
    pairs: dict[tuple[str, str], np.ndarray]
    devices: dict[tuple[str, str], np.ndarray]
    seen: frozenset
    versions: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    releases: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def compose(
        self, engine: str | None, klass: str | None, device: str | None = None, version: str = ""
    ) -> np.ndarray:
        x = self.root.copy()
        zero = np.zeros_like(x)
        x += self.classes.get(klass, zero) if klass else zero
        x += self.engines.get(engine, zero) if engine else zero
        if engine and version:
            x += self.releases.get((engine, version), zero)
        if engine and klass:
            x += self.pairs.get((engine, klass), zero)
        if engine and device:
            x += self.devices.get((engine, device), zero)
            if version:
                x += self.versions.get((engine, device, version), zero)
        return np.clip(x, LOWER, UPPER)

    def params(self, row: PublishedRow) -> tuple[np.ndarray, bool]:
        """The parameters resolve_profile would serve for the row (its engine version named, as the
        user who ran it would), and whether it had no own data."""
        x = self.compose(row.engine, _klass(row), row.hardware, row_version(row))
        return x, (row.engine, row.hardware) not in self.seen


def _versions_among(rows: list[PublishedRow]) -> Iterable[tuple[str, list[PublishedRow]]]:
    """(version, its rows) for each engine version named among ``rows`` with enough rows for an offset
    of its own and not all of them (a version among others, or among rows that name none)."""
    for v in sorted({row_version(r) for r in rows} - {""}):
        at_v = [r for r in rows if row_version(r) == v]
        if MIN_GROUP_ROWS <= len(at_v) < len(rows):
            yield v, at_v


def fit_hierarchy(
    rows: list[PublishedRow],
    shrink: float,
    loss: str = "linear",
    versions: bool = True,
    pinned: dict[str, float] | None = None,
) -> Fitted:
    """Fit all engines, then back-fit the offsets of device generations, engines, engines on a
    generation, engines on a device and (``versions``) engine versions on a device measured at more
    than one version, each held toward zero with ``shrink``. Simulated rows take part only with a
    ``pinned`` device time (``fit_two_pass``)."""
    pinned = pinned or {}
    rows = [r for r in rows if r.fitted or r.id in pinned]
    root = fit_profile(Design(rows, pinned), START, ROOT_WEIGHT, loss)
    klass = {r.id: _klass(r) for r in rows}
    groups: list[tuple[str, object, list[PublishedRow]]] = []
    for c in sorted(set(klass.values())):
        groups.append(("classes", c, [r for r in rows if klass[r.id] == c]))
    for e in sorted({r.engine for r in rows}):
        of_e = [r for r in rows if r.engine == e]
        groups.append(("engines", e, of_e))
        for v, at_v in _versions_among(of_e) if versions else ():
            # A release measured on two devices or more: on one, what the release does everywhere and
            # what it does there cannot be told apart (that device's version offset is the one to fit).
            if len({r.hardware for r in at_v}) > 1:
                groups.append(("releases", (e, v), at_v))
    for e, c in sorted({(r.engine, klass[r.id]) for r in rows}):
        mine = [r for r in rows if r.engine == e and klass[r.id] == c]
        if len(mine) >= MIN_GROUP_ROWS:
            groups.append(("pairs", (e, c), mine))
            for d in sorted({r.hardware for r in mine}):
                on_d = [r for r in mine if r.hardware == d]
                if MIN_GROUP_ROWS <= len(on_d) < len(mine):
                    groups.append(("devices", (e, d), on_d))
                for v, at_v in _versions_among(on_d) if versions else ():
                    groups.append(("versions", (e, d, v), at_v))
    fitted = Fitted(root, {}, {}, {}, {}, frozenset((r.engine, r.hardware) for r in rows))
    designs = {id(g): Design(g[2], pinned) for g in groups}
    for _ in range(ROUNDS):
        for g in groups:
            kind, key, mine = g
            table = getattr(fitted, kind)
            table.pop(key, None)  # the others' offsets stay; this one is refitted from zero
            base = np.array([fitted.compose(r.engine, klass[r.id], r.hardware, row_version(r)) for r in mine])
            narrow = NARROW if kind in NARROW_LEVELS else None
            table[key] = fit_offset(designs[id(g)], base, shrink, loss, narrow)
    return fitted


def pinned_device_times(rows: list[PublishedRow], fitted: Fitted) -> dict[str, float]:
    """The device part of each simulated row's estimate under ``fitted`` (a fit made without them):
    its run simulated with the profile the fit gives it, less the fixed cost per request that profile
    charges (which reaches its TTFT once)."""
    out = {}
    for r in rows:
        if not r.simulated:
            continue
        x, _ = fitted.params(r)
        fields = profile_fields(x, "first pass of the fit")
        hw = load_hardware(r.hardware)
        own = EfficiencyProfile(engine=r.engine, **fields)  # the device's own profile serves first
        hw = hw.model_copy(update={"efficiency": [own]})
        out[r.id] = max(simulated_times(r, hw)[1] - fields["request_overhead_s"], 0.0)
    return out


def fit_two_pass(
    rows: list[PublishedRow], shrink: float, loss: str = "linear", versions: bool = True
) -> tuple[Fitted, Fitted, dict[str, float]]:
    """(first pass, second pass, pinned times). The first pass fits the formula rows; each simulated
    row's run is then simulated under it (``pinned_device_times``), and the second pass fits every
    row, a simulated one as its pinned device time plus the fixed cost per request: the rows the
    formula cannot describe still tell the fit what a request costs outside the device."""
    first = fit_hierarchy(rows, shrink, loss, versions)
    pinned = pinned_device_times(rows, first)
    if not pinned:
        return first, first, {}
    return first, fit_hierarchy(rows, shrink, loss, versions, pinned), pinned


RUN = ("engine", "hardware", "devices", "parallel", "model", "precision", "mode", "batch", "concurrency",
       "request_rate", "prompt", "gen", "flash_attention")  # fmt: skip


def run_key(row: PublishedRow) -> str:
    """What identifies the run a row measures (its workload, whatever the metric, statistic, engine
    version or source), the fields the split's run rule hashes (rows from P198 on): cross-validation
    holds runs out whole by it. Runs that share a workload share a key, and so a fold."""
    return "|".join(str(getattr(row, k)) for k in RUN)


def _folds(rows: list[PublishedRow], k: int) -> list[list[PublishedRow]]:
    """k folds of whole runs, each run's by a hash of its key: a fold never trains on another figure of
    a run it tests, and adding rows moves no run to another fold."""
    parts: list[list[PublishedRow]] = [[] for _ in range(k)]
    for r in sorted((r for r in rows if r.fitted or r.simulated), key=lambda r: r.id):
        parts[int.from_bytes(hashlib.sha256(run_key(r).encode()).digest()[:4], "big") % k].append(r)
    return parts


def cross_validate(
    rows: list[PublishedRow],
    shrink: float,
    folds: int = 5,
    loss: str = "linear",
    versions: bool = True,
    two_pass: bool = False,
) -> list[tuple[PublishedRow, float, bool]]:
    """(row, log(estimate / measured), extrapolated) for every calibration row, each predicted by a fit
    that did not see it (k-fold within the calibration split). ``two_pass``: each fold fits as
    ``fit_two_pass`` does, and predicts its simulated rows too (their runs simulated under the fold's
    first pass); else simulated rows are left out."""
    out = []
    parts = _folds(rows, folds)
    for k, held in enumerate(parts):
        train = [r for j, part in enumerate(parts) if j != k for r in part]
        if two_pass:
            first, fitted, _ = fit_two_pass(train, shrink, loss, versions)
            pinned = pinned_device_times(held, first)
        else:
            fitted, pinned = fit_hierarchy(train, shrink, loss, versions), {}
        for r in held:
            if r.simulated and r.id not in pinned:
                continue
            x, extrapolated = fitted.params(r)
            out.append((r, float(Design([r], pinned).residuals(x)[0]), extrapolated))
    return out


def leave_device_out(
    rows: list[PublishedRow], shrink: float, folds: int = 5, loss: str = "linear", versions: bool = True
) -> list[tuple[PublishedRow, float]]:
    """Residuals of rows predicted with all rows of their (engine, device) pair held out (grouped
    k-fold over the pairs): how far an extrapolated estimate strays."""
    out = []
    usable = [r for r in rows if r.fitted]
    pairs = sorted({(r.engine, r.hardware) for r in usable})
    for k in range(folds):
        held_pairs = set(pairs[k::folds])
        held = [r for r in usable if (r.engine, r.hardware) in held_pairs]
        train = [r for r in usable if (r.engine, r.hardware) not in held_pairs]
        if not held or not train:
            continue
        fitted = fit_hierarchy(train, shrink, loss, versions)
        for r in held:
            x, _ = fitted.params(r)
            out.append((r, float(Design([r]).residuals(x)[0])))
    return out


def _cv_score(calibration: list[PublishedRow], shrink: float, loss: str, versions: bool) -> float:
    """Mean over (engine, kind of figure) groups of their cross-validated median |error|."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r, res, _ in cross_validate(calibration, shrink, loss=loss, versions=versions):
        groups.setdefault((r.engine, r.category), []).append(abs(math.expm1(res)))
    return float(np.mean([np.median(v) for v in groups.values() if len(v) >= 5]))


def choose_hyper(calibration: list[PublishedRow]) -> tuple[tuple[float, str, bool], dict[str, float]]:
    """Pick the pull toward zero of the offsets and the loss, then whether engine versions get their
    own offsets, by k-fold cross-validation *within* the calibration split, scoring each candidate by
    the mean over (engine, kind of figure) groups of their median |error| (so that one engine's many
    rows do not decide for all), on the formula's rows (simulating runs for every candidate and fold
    would take minutes more). The report split plays no part: it is only ever used to measure the
    final error."""
    scores = {}
    for loss in LOSS_GRID:
        for shrink in SHRINK_GRID:
            scores[f"{loss} {shrink}"] = round(_cv_score(calibration, shrink, loss, True), 4)
    best = min(scores, key=scores.__getitem__)
    loss, shrink = best.split()
    scores[f"{best} without version offsets"] = round(_cv_score(calibration, float(shrink), loss, False), 4)
    versions = scores[best] <= scores[f"{best} without version offsets"]
    return (float(shrink), loss, versions), scores


MIN_INTERVAL_ROWS = 8  # residuals a range needs before it is specific to an engine (or its generation)


def interval_table(residuals: list[tuple[PublishedRow, float]]) -> dict[str, dict[str, list[float]]]:
    """p10-p90 factors (measured / estimated time) per engine|class and category, from residuals,
    general levels first: '*|*' (all), 'engine|*', 'engine|class'; split-conformal quantile levels."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r, res in residuals:
        ratio = -res  # log(measured / estimate)
        for key in ("*|*", f"{r.engine}|*", f"{r.engine}|{_klass(r)}"):
            groups.setdefault((key, r.category), []).append(ratio)
            groups.setdefault((key, "all"), []).append(ratio)
    table: dict[str, dict[str, list[float]]] = {}
    for (key, category), values in sorted(groups.items()):
        if len(values) < MIN_INTERVAL_ROWS and key != "*|*":
            continue
        # Split-conformal levels: with n residuals the p90 bound is the ceil((n + 1) 0.9)-th smallest,
        # a little beyond the empirical 90th percentile (and symmetrically for p10).
        n = len(values)
        upper = min(1.0, 0.9 * (n + 1) / n)
        lo, hi = np.exp(np.percentile(values, [100 * (1 - upper), 100 * upper]))
        table.setdefault(key, {})[category] = [float(f"{lo:.4g}"), float(f"{hi:.4g}")]
    return table


def fit_all(rows: list[PublishedRow]) -> dict:
    """Profiles (all engines, engines, vendor generations, devices) and their ranges, from calibration
    rows only."""
    calibration = [r for r in rows if r.split == "calibration"]
    (shrink, loss, versions), scores = choose_hyper(calibration)
    _, fitted, pinned = fit_two_pass(calibration, shrink, loss, versions)
    fitted_rows = [r for r in calibration if r.fitted or r.id in pinned]
    cv = cross_validate(calibration, shrink, loss=loss, versions=versions, two_pass=True)
    lodo = leave_device_out(calibration, shrink, loss=loss, versions=versions)
    note = f"additive fit on the calibration split of validation/published.csv (pull {shrink}, {loss} loss)"
    klasses = sorted(fitted.classes)
    engines: dict[str, dict] = {}
    for engine in sorted(fitted.engines):
        mine = [r for r in fitted_rows if r.engine == engine]
        sources = sorted({r.source.split(" (")[0] for r in mine})
        rows_on = {d: sum(r.hardware == d for r in mine) for d in sorted({r.hardware for r in mine})}
        entry = {
            "rows": rows_on,
            "model_classes": {d: sorted({model_class(r) for r in mine if r.hardware == d}) for d in rows_on},
            "versions": sorted({r.engine_version for r in mine if r.engine_version}),
            "global": profile_fields(
                fitted.compose(engine, None),
                f"{engine} across devices: {len(mine)} calibration rows ({'; '.join(sources)}); {note}",
            ),
            "classes": {
                c: profile_fields(
                    fitted.compose(engine, c),
                    f"{engine} on {c}: all engines + {c}'s offset + {engine}'s"
                    + (f" + {engine} on {c}'s" if (engine, c) in fitted.pairs else "")
                    + f"; {note}",
                )
                for c in klasses
            },
            "devices": {
                d: profile_fields(
                    fitted.compose(engine, device_class_of(d), d),
                    f"{engine} on {d}: its generation's profile + an offset from its {rows_on[d]} rows; "
                    + note,
                )
                for e, d in sorted(fitted.devices)
                if e == engine
            },
        }
        by_version: dict[str, dict] = {}
        for e, d, v in sorted(fitted.versions):
            if e == engine:
                n = sum(r.hardware == d and row_version(r) == v for r in mine)
                by_version.setdefault(v, {})[d] = profile_fields(
                    fitted.compose(engine, device_class_of(d), d, v),
                    f"{engine} {v} on {d}: its profile on {d} + an offset from its {n} rows at {v}; {note}",
                )
        for e, v in sorted(fitted.releases):
            if e != engine:
                continue
            n = sum(row_version(r) == v for r in mine)
            at_v = by_version.setdefault(v, {})
            what = f"{engine} {v}: its profile there + an offset from its {n} rows at {v} (any device); "
            what += note
            for d in sorted(entry["devices"]):  # the devices with an offset of their own
                at_v.setdefault(d, profile_fields(fitted.compose(engine, device_class_of(d), d, v), what))
            at_v["classes"] = {c: profile_fields(fitted.compose(engine, c, None, v), what) for c in klasses}
            at_v["global"] = profile_fields(fitted.compose(engine, None, None, v), what)
        if by_version:
            entry["by_version"] = by_version
        engines[engine] = entry
    return {
        "fit": {
            "about": "Efficiency profiles fitted on the calibration split of validation/published.csv by "
            "`python -m rooflens.measure.published fit`; do not edit by hand.",
            "calibration_rows": len(calibration),
            "fitted_rows": len(fitted_rows),
            "simulated_rows": len(pinned),
            "min_group_rows": MIN_GROUP_ROWS,
            "shrink": shrink,
            "loss": loss,
            "version_offsets": versions,
            "loss_scale": LOSS_SCALE,
            "cross_validation_mean_group_median_abs_error": scores,
        },
        "all_engines": profile_fields(
            fitted.root, f"all engines: {len(fitted_rows)} calibration rows; {note}"
        ),
        "all_engine_classes": {
            c: profile_fields(fitted.compose(None, c), f"all engines on {c}; {note}") for c in klasses
        },
        "engines": engines,
        "intervals": {
            "calibrated": interval_table([(r, res) for r, res, extrap in cv if not extrap]),
            "extrapolated": interval_table(lodo),
        },
    }


# --- errors ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    row: PublishedRow
    measured_s: float
    ideal_s: float
    estimate_s: float | None
    low_s: float | None = None  # the estimate's p10-p90 range
    high_s: float | None = None
    extrapolated: bool = False

    @property
    def ideal_error(self) -> float:
        return self.ideal_s / self.measured_s - 1

    @property
    def estimate_error(self) -> float | None:
        return None if self.estimate_s is None else self.estimate_s / self.measured_s - 1

    @property
    def covered(self) -> bool | None:
        if self.low_s is None or self.high_s is None:
            return None
        return self.low_s <= self.measured_s <= self.high_s


def result_dict(r: RowResult) -> dict[str, object]:
    return {
        **r.row.model_dump(),
        "category": r.row.category,
        "simulated": r.row.simulated,
        "measured_s": r.measured_s,
        "ideal_s": r.ideal_s,
        "estimate_s": r.estimate_s,
        "estimate_range_s": None if r.low_s is None else [r.low_s, r.high_s],
        "extrapolated": r.extrapolated,
        "ideal_error": r.ideal_error,
        "estimate_error": r.estimate_error,
    }


def evaluate_rows(rows: Iterable[PublishedRow]) -> list[RowResult]:
    """Each predicted row through the whole analysis, as a user would run it (engine named)."""
    out = []
    for row in rows:
        if not row.predicted:
            continue
        report = analyse_row(row)
        if row.simulated:
            ideal, estimate = simulated_times(row)
        else:
            one = first_pass(row) if _needs_one(row) else None
            ideal, estimate = predicted_times(row, report, one)
        lo = hi = None
        profile = report.profile
        if estimate is not None and profile is not None:
            lo, hi = profile.time_range(estimate, row.category)  # the range a user sees
        extrapolated = bool(profile and profile.extrapolated)
        out.append(RowResult(row, row.measured_time(), ideal, estimate, lo, hi, extrapolated))
    return out


def vendor(row: PublishedRow) -> str:
    return load_hardware(row.hardware).vendor or "other"


def model_class(row: PublishedRow) -> str:
    """'MLA' (latent attention, with or without experts), 'MoE' or 'dense'."""
    return load_model(row.model).model_class


def error_summary(results: list[RowResult]) -> list[dict[str, object]]:
    """Median absolute errors and range coverage by category and engine, each category over all
    engines, by device vendor, by model class (dense, MoE, MLA), and the multi-device rows (every
    phase) on their own."""
    groups: dict[tuple[str, str], list[RowResult]] = {}
    for r in results:
        groups.setdefault((r.row.category, r.row.engine), []).append(r)
        groups.setdefault((r.row.category, "all engines"), []).append(r)
        groups.setdefault((r.row.category, f"vendor {vendor(r.row)}"), []).append(r)
        groups.setdefault((r.row.category, f"{model_class(r.row)} models"), []).append(r)
        if r.row.devices > 1:
            groups.setdefault(("all phases", "multi-device rows"), []).append(r)
    summary = []
    for (category, engine), rs in sorted(
        groups.items(),
        key=lambda kv: (kv[0][0] == "all phases", kv[0][0], kv[0][1] == "all engines", kv[0][1]),
    ):
        ideal = np.abs([r.ideal_error for r in rs])
        est = np.abs([r.estimate_error for r in rs if r.estimate_error is not None])
        covered = [r.covered for r in rs if r.covered is not None]
        summary.append(
            {
                "category": category,
                "engine": engine,
                "rows": len(rs),
                "devices": len({r.row.hardware for r in rs}),
                "ideal_median_abs_error": float(np.median(ideal)),
                "ideal_median_error": float(np.median([r.ideal_error for r in rs])),
                "estimate_median_abs_error": float(np.median(est)) if len(est) else None,
                "estimate_p90_abs_error": float(np.percentile(est, 90)) if len(est) else None,
                "range_coverage": float(np.mean(covered)) if covered else None,
            }
        )
    return summary


def write_profiles(fitted: dict, target: Path) -> None:
    """Write the fit as ``efficiency.json``: one key or value per line, so a refit's diff reads."""
    target.write_text(json.dumps(fitted, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    rows = load_rows()
    if args[:1] == ["fit"]:
        target = Path(__file__).resolve().parents[1] / "hardware" / "efficiency.json"
        write_profiles(fit_all(rows), target)
        print(f"wrote {target}")
        return
    split = "calibration" if args[:1] == ["calibration"] else "report"
    results = evaluate_rows(r for r in rows if r.split == split)
    for line in error_summary(results):
        print(line)


if __name__ == "__main__":
    main()
