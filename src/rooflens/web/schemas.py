"""What the web API accepts, and the caps that keep every request cheap.

A request names a catalog model or carries a config.json as data (never a path: the server reads no
file a client names, and a config is parsed as data, never run). The same goes for hardware: a
catalog name, or a spec given field by field. Bounds are tighter than the Python API's because a
server must answer every request in milliseconds: measured at the caps, the heaviest analysis plus
its figures takes about 0.1 s (`benchmarks/bench_serve.py`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_BODY_BYTES = 256 * 1024  # a pasted config.json is a few kB; a custom hardware spec less
MAX_BATCH = 65_536
MAX_PROMPT = 1_048_576
MAX_GEN = 65_536
MAX_COMPARE = 6
Bits = Literal[4, 8, 16, 32]

# Settings the request carries as its own fields; every other analysis setting goes in `settings`.
OWN_FIELDS = ("batch", "prompt", "gen", "w_bits", "a_bits", "kv_bits", "flash_attention", "kv_cache")


class ErrorBody(BaseModel):
    """A refusal: one readable sentence."""

    detail: str


class ErrorItem(BaseModel):
    loc: list[str] = Field(description="where in the body: field names and list positions")
    msg: str
    type: str = Field(description="pydantic's error kind")
    input: str = Field(description="a short printable excerpt of the value given")


class ValidationErrorBody(BaseModel):
    """A body of the wrong shape: one sentence listing every problem, and each on its own."""

    detail: str
    errors: list[ErrorItem]


# Levels of objects and lists a body may nest: a request holds a config.json (which nests at most 16
# deep, model.bounds) inside an analysis inside a comparison. Deeper input is refused before anything
# walks it recursively (serialising a 300-deep list fails inside pydantic).
MAX_BODY_DEPTH = 32


def _valid_text(value: Any) -> Any:
    """Refuse strings that are not valid Unicode (lone surrogates) anywhere in a body, and bodies
    nested deeper than ``MAX_BODY_DEPTH``, up front."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth >= MAX_BODY_DEPTH:
            raise ValueError(
                f"the body nests objects and lists more than {MAX_BODY_DEPTH} levels deep; no request "
                "field needs that many"
            )
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError("the body holds text that is not valid Unicode (a lone surrogate)") from None
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


class _Body(BaseModel):
    """A request body: strict JSON types as declared (no "5" for 5, no 0 for false), no unknown
    fields, and no text that is not valid Unicode anywhere in it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        return _valid_text(data)


# A pasted config.json and a described device: declared once, taken by analyses, plans and simulations.
ConfigField = Field(None, description="a Hugging Face config.json, as JSON data (overrides `model`)")
CustomHardwareField = Field(
    None,
    description="a device spec: name, memory_bytes, memory_bandwidth, peak_flops {dtype: FLOP/s}, ... "
    "(overrides `hardware`)",
)


def _one_model(body: Any) -> None:
    if body.model is None and body.config is None:
        raise ValueError("give `model` (a catalog name) or `config` (a config.json as data)")


class AnalyzeRequest(_Body):
    """One analysis: a model, a device, a workload and its settings."""

    model: str | None = Field(
        "llama-3-8b", max_length=128, description="catalog model name (GET /api/models); or give `config`"
    )
    config: dict[str, Any] | None = ConfigField
    hardware: str | None = Field(
        "h100-sxm",
        max_length=128,
        description="catalog device (GET /api/hardware); or give `custom_hardware`",
    )
    custom_hardware: dict[str, Any] | None = CustomHardwareField
    quant: str | None = Field(None, max_length=32, description="named format preset: q4_0, awq, fp8, ...")
    batch: int = Field(1, ge=1, le=MAX_BATCH)
    prompt: int = Field(1024, ge=1, le=MAX_PROMPT)
    gen: int = Field(128, ge=1, le=MAX_GEN)
    w_bits: Literal[1, 2, 3, 4, 5, 6, 7, 8, 16, 32] | None = Field(
        None, description="weight bits (default 16, or the format's or checkpoint's)"
    )
    a_bits: Literal[4, 6, 8, 16, 32] | None = Field(None, description="activation bits")
    kv_bits: Bits | None = Field(None, description="KV-cache bits")
    flash_attention: bool = True
    kv_cache: bool = True
    settings: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        description="any other analysis setting by name (tp, pp, ep, draft_model, sparsity, kv_budget, ...)",
    )
    figures: bool = Field(False, description="also return the plotly figures the web page draws")
    block_group: str | None = Field(
        None,
        max_length=64,
        description="the layer group the block-graph figures draw (an op's `group`, e.g. 'mla, moe'); "
        "default: the group most layers share",
    )
    timeline: bool = Field(False, description="include every decode step in report.decode.timeline")
    format: Literal["json", "csv"] = Field("json", description="csv: the per-operator table as CSV")

    @field_validator("w_bits", "a_bits", "kv_bits", mode="before")
    @classmethod
    def _bits_not_bool(cls, value: Any, info: ValidationInfo) -> Any:
        # true == 1 in Python, so a literal 1 would take true even in strict mode.
        if isinstance(value, bool):
            raise ValueError(f"{info.field_name} takes a number of bits, not {str(value).lower()}")
        return value

    @model_validator(mode="after")
    def _no_doubles(self) -> AnalyzeRequest:
        doubled = sorted(set(self.settings) & {*OWN_FIELDS, "quant", "model", "hardware"})
        if doubled:
            raise ValueError(f"give {', '.join(doubled)} as top-level fields, not inside `settings`")
        if "hub" in self.settings:
            raise ValueError("settings.hub: the server never fetches configs; send the config as `config`")
        _one_model(self)
        if self.hardware is None and self.custom_hardware is None:
            raise ValueError("give `hardware` (a catalog name) or `custom_hardware` (a device spec)")
        return self


class CompareRequest(_Body):
    """Two or more analyses side by side; the first is the baseline."""

    analyses: list[AnalyzeRequest] = Field(min_length=2, max_length=MAX_COMPARE)
    figures: bool = Field(False, description="also return the comparison figure")


# Plans and serving simulations: bounded tighter than the Python API so one request stays within a
# second (benchmarks/bench_bounds.py times the heaviest of each).
MAX_PLAN_DEVICES = 16
# A plan's search work (rooflens.plan.search_size: configurations weighted by decode length): one
# format on every priced device (15 x 2 KV formats x 4 TP degrees = 120 configurations) fits at
# up to 2,048 generated tokens (120 x (1 + 2048 / 4096) = 180); the page plans each format in its
# own request.
MAX_PLAN_WORK = 180
MAX_PLAN_ENTRIES = 100
MAX_SIM_REQUESTS = 2_000
MAX_SIM_CONCURRENCY = 1_024
MAX_SIM_POINTS = 16
MAX_SIM_TOTAL = 8_000  # requests x concurrency points of one sweep
MAX_SIM_INSTANCES = 16  # engine instances of one run: replicas, or prefill + decode ones
MAX_SIM_TOKENS = 1_000_000  # generated tokens per simulate request, refused before it runs
# Units of simulation work per request (rooflens.serving.STEP_WORK: engine steps, the sequences in
# them, the step times built), counted as it runs: about 0.5-0.8 s. A run past it is refused then.
MAX_SIM_WORK = 1_000_000


class PlanRequest(_Body):
    """The cheapest set-ups that fit and meet TTFT and TPOT targets (`rooflens.plan.plan`)."""

    model: str | None = Field(
        None, min_length=1, max_length=200, description="catalog model name; or `config`"
    )
    config: dict[str, Any] | None = ConfigField
    prompt: int = Field(1024, ge=1, le=MAX_PROMPT)
    gen: int = Field(256, ge=2, le=MAX_GEN)
    ttft: float = Field(gt=0, le=3600, description="TTFT target, seconds")
    tpot: float = Field(gt=0, le=60, description="TPOT target, seconds")
    rate: float | None = Field(None, gt=0, le=1e6, description="requests per second to keep up with")
    hardware: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_PLAN_DEVICES,
        description="device names (default: every priced one)",
    )
    prices: dict[str, float] = Field(
        default_factory=dict, max_length=MAX_PLAN_DEVICES, description="device name -> USD per device-hour"
    )
    quants: list[str] | None = Field(None, min_length=1, max_length=8, description="weight formats to try")
    tp: list[int] | None = Field(
        None, min_length=1, max_length=8, description="TP degrees to try (each 1-64)"
    )
    kv_formats: list[str] | None = Field(None, min_length=1, max_length=5)
    allow_offload: bool = False
    top: int = Field(20, ge=1, le=MAX_PLAN_ENTRIES, description="entries returned, cheapest first")
    figure: bool = Field(False, description="also return the cost-against-TPOT figure of the candidates")

    @model_validator(mode="after")
    def _bounded(self) -> PlanRequest:
        _one_model(self)
        if any(len(n) > 64 for n in [*(self.hardware or []), *(self.quants or []), *(self.kv_formats or [])]):
            raise ValueError("device and format names are at most 64 characters")
        if any(not 1 <= t <= 64 for t in self.tp or []):
            raise ValueError("tp degrees go from 1 to 64")
        if any(not 0 < p <= 1e6 for p in self.prices.values()):
            raise ValueError("prices are positive USD per device-hour, at most 1e6")
        return self


# The request's own fields (and the sweep's), which `settings` may not give again.
SIMULATE_OWN = frozenset(
    {"rate", "concurrency", "concurrencies", "prompt", "gen", "random_range_ratio", "requests", "arrival",
     "seed", "replicas", "engine", "basis", "quant", "model", "hardware", "hub"}
)  # fmt: skip


class SimulateRequest(_Body):
    """A serving simulation (`rooflens.serving.simulate`): requests arriving at ``rate`` per second,
    or ``concurrency`` users; ``concurrencies`` sweeps several (`sweep_concurrency`)."""

    model: str | None = Field(
        None, min_length=1, max_length=200, description="catalog model name; or `config`"
    )
    config: dict[str, Any] | None = ConfigField
    hardware: str = Field("h100-sxm", min_length=1, max_length=64, description="catalog device name")
    custom_hardware: dict[str, Any] | None = CustomHardwareField
    rate: float | None = Field(
        None, gt=0, le=1e5, description="requests per second (open loop; with concurrency, capped)"
    )
    concurrency: int | None = Field(
        None, ge=1, le=MAX_SIM_CONCURRENCY, description="users (closed loop), or with rate the cap in flight"
    )
    concurrencies: list[int] | None = Field(
        None, min_length=1, max_length=MAX_SIM_POINTS, description="a sweep of closed-loop concurrencies"
    )
    prompt: int = Field(1024, ge=1, le=MAX_PROMPT)
    gen: int = Field(256, ge=1, le=MAX_GEN)
    random_range_ratio: float = Field(0.0, ge=0, lt=1, description="lengths drawn within +-ratio")
    requests: int = Field(200, ge=1, le=MAX_SIM_REQUESTS, description="requests (per sweep point)")
    arrival: Literal["poisson", "constant"] = "poisson"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    replicas: int = Field(1, ge=1, le=MAX_SIM_INSTANCES)
    engine: str | None = Field(None, max_length=64)
    basis: Literal["estimate", "ideal"] = "estimate"
    quant: str | None = Field(None, max_length=32)
    settings: dict[str, Any] = Field(
        default_factory=dict, max_length=64, description="analysis settings of one instance (tp, ep, ...)"
    )
    figure: bool = Field(
        False, description="with concurrencies: also the figure of throughput per device against per user"
    )

    @model_validator(mode="after")
    def _one_load(self) -> SimulateRequest:
        _one_model(self)
        given = [k for k in ("rate", "concurrency", "concurrencies") if getattr(self, k) is not None]
        if given not in (["rate"], ["concurrency"], ["rate", "concurrency"], ["concurrencies"]):
            raise ValueError(
                "give rate (requests per second), concurrency (users), both (arrivals at rate, at most "
                f"concurrency in flight) or concurrencies (a sweep); got {', '.join(given) or 'none'}"
            )
        points = self.concurrencies or []
        if any(not 1 <= c <= MAX_SIM_CONCURRENCY for c in points):
            raise ValueError(f"concurrencies go from 1 to {MAX_SIM_CONCURRENCY}")
        if self.requests * max(1, len(points)) > MAX_SIM_TOTAL:
            raise ValueError(
                f"requests x sweep points is at most {MAX_SIM_TOTAL:,}; got {self.requests} x {len(points)}"
            )
        tokens = self.requests * max(1, len(points)) * self.gen
        if tokens > MAX_SIM_TOKENS:
            raise ValueError(
                f"requests x sweep points x gen is {tokens:,} generated tokens to simulate; this server "
                f"takes at most {MAX_SIM_TOKENS:,} per request: fewer requests or shorter "
                "outputs, or rooflens simulate on your machine"
            )
        doubled = sorted(set(self.settings) & SIMULATE_OWN)
        if doubled:
            raise ValueError(f"give {', '.join(doubled)} as top-level fields, not inside `settings`")
        if "max_work" in self.settings or "scheduler" in self.settings:
            raise ValueError(
                "settings.max_work and settings.scheduler are not settable here: this server caps the "
                "work itself, and runs each engine's scheduler defaults (give `engine`)"
            )
        split = self.settings.get("disaggregate")
        if split is not None and (
            not isinstance(split, list)
            or len(split) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in split)
            or sum(split) > MAX_SIM_INSTANCES
        ):
            raise ValueError(
                "settings.disaggregate takes [prefill instances, decode instances], each at least 1 and "
                f"at most {MAX_SIM_INSTANCES} in all (as `replicas`), e.g. [1, 2]"
            )
        return self
