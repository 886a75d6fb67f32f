"""``rooflens validate``: run a real model and compare it with rooflens's ideal bound and estimate.

The model is built with Hugging Face ``transformers`` from a bundled (or given) config with random
weights — nothing is downloaded — and run with PyTorch on the CPU or a CUDA GPU: one prefill pass
(``logits_to_keep=1``, as ``generate()`` does) then a greedy decode loop over a dynamic KV cache, with
SDPA attention. Each workload runs ``repeats`` times after one warm-up run; TTFT is the median prefill
time (argmax of the first token included) and TPOT the median over runs of the mean decode-step time.
Optionally the PyTorch profiler attributes time to operators (matmuls by weight shape, attention,
embedding, and the rest).
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..analysis import make_settings, run
from ..errors import RooflensError
from ..hardware.catalog import HardwareLike, load_hardware
from ..model.catalog import ModelLike, hf_config, load_model
from ..report import Report
from . import hf
from .calibrate import DTYPE_BITS, TORCH_DTYPES, Timer


@dataclass(frozen=True)
class Workload:
    batch: int
    prompt: int
    gen: int

    def label(self) -> str:
        return f"b{self.batch} p{self.prompt} g{self.gen}"


@dataclass
class Measurement:
    ttft_s: list[float]
    tpot_s: list[float]
    peak_memory_bytes: float | None = None
    op_seconds: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> op -> s per pass


@dataclass
class ValidationRow:
    model: str
    device: str
    dtype: str
    batch: int
    prompt: int
    gen: int
    repeats: int
    measured_ttft_s: float
    ideal_ttft_s: float
    estimate_ttft_s: float | None
    measured_tpot_s: float
    ideal_tpot_s: float
    estimate_tpot_s: float | None
    measured_peak_memory_bytes: float | None
    predicted_memory_bytes: float
    hardware: str
    estimate_source: str | None
    ops: list[dict[str, Any]] = field(default_factory=list)
    # Each timed run (after the warm-up), of which the measured figures are the medians.
    ttft_runs_s: list[float] = field(default_factory=list)
    tpot_runs_s: list[float] = field(default_factory=list)

    @staticmethod
    def _err(pred: float | None, meas: float) -> float | None:
        return None if pred is None else pred / meas - 1

    @property
    def errors(self) -> dict[str, float | None]:
        return {
            "ttft_ideal": self._err(self.ideal_ttft_s, self.measured_ttft_s),
            "ttft_estimate": self._err(self.estimate_ttft_s, self.measured_ttft_s),
            "tpot_ideal": self._err(self.ideal_tpot_s, self.measured_tpot_s),
            "tpot_estimate": self._err(self.estimate_tpot_s, self.measured_tpot_s),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **{f"error_{k}": v for k, v in self.errors.items()}}


# --- building and running the real model ---------------------------------------------------------


def build_model(model: ModelLike, device: str, dtype: str):
    """A Hugging Face causal LM from the model's config, random weights, in eval mode on ``device``."""
    return hf.build(hf_config(model), device, dtype)


def measure(lm, workload: Workload, device: str, repeats: int) -> Measurement:
    import torch

    clock = Timer(device)
    vocab = lm.config.vocab_size
    generator = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, vocab, (workload.batch, workload.prompt), generator=generator).to(device)
    if clock.cuda:
        torch.cuda.reset_peak_memory_stats()
    ttfts, tpots = [], []
    with torch.inference_mode():
        for run_index in range(repeats + 1):  # run 0 warms up
            start = clock.now()
            token, cache = hf.prefill(lm, ids)
            ttft = clock.now() - start
            steps = []
            for _ in range(workload.gen - 1):
                start = clock.now()
                token, cache = hf.decode_step(lm, token, cache)
                steps.append(clock.now() - start)
            if run_index:
                ttfts.append(ttft)
                tpots.append(statistics.fmean(steps) if steps else float("nan"))
            del cache
    peak = float(torch.cuda.max_memory_allocated()) if clock.cuda else None
    return Measurement(ttfts, tpots, peak)


def profile_ops(lm, workload: Workload, device: str, report: Report) -> dict[str, dict[str, float]]:
    """Seconds per pass attributed to rooflens operators by the PyTorch profiler.

    Matmuls are matched to operators by their weight shape (operators sharing a shape share its time,
    as k_proj and v_proj do under MHA), fused attention and embedding by name; everything else (norms,
    rotary, residual adds, cache copies) is reported together as "other".
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    spec = report.model
    by_shape: dict[tuple[int, int], list[str]] = {}
    for op in report.prefill.ops:
        if op.kind == "matmul":
            n_in, n_out = _matmul_dims(spec, op.name)
            by_shape.setdefault((n_in, n_out), []).append(op.name)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    ids = torch.randint(0, spec.vocab_size, (workload.batch, workload.prompt)).to(device)
    steps = max(1, min(8, workload.gen - 1))
    result: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        hf.prefill(lm, ids)  # warm-up
        for phase in ("prefill", "decode"):
            token, cache = hf.prefill(lm, ids)
            prof = profile(activities=activities, record_shapes=True, acc_events=True)
            with _quiet_fd2():
                prof.start()
            if phase == "prefill":
                hf.prefill(lm, ids)
            else:
                for _ in range(steps):
                    token, cache = hf.decode_step(lm, token, cache)
            with _quiet_fd2():
                prof.stop()
            passes = 1 if phase == "prefill" else steps
            result[phase] = _attribute(prof, by_shape, device, passes)
    return result


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence the profiler back end's start/stop lines, which it writes straight to file descriptor 2."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _matmul_dims(spec, name: str) -> tuple[int, int]:
    h, i, v = spec.hidden_size, spec.intermediate_size, spec.vocab_size
    return {
        "q_proj": (h, spec.q_dim),
        "k_proj": (h, spec.kv_dim),
        "v_proj": (h, spec.kv_dim),
        "qkv_proj": (h, spec.q_dim + 2 * spec.kv_dim),
        "o_proj": (spec.q_dim, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "gate_up_proj": (h, 2 * i),
        "down_proj": (i, h),
        "fc1": (h, i),
        "fc2": (i, h),
        "lm_head": (h, v),
    }[name]


def _attribute(
    prof, by_shape: dict[tuple[int, int], list[str]], device: str, passes: int
) -> dict[str, float]:
    cuda = device.startswith("cuda")
    seconds: dict[str, float] = {}
    total = 0.0
    for evt in prof.key_averages(group_by_input_shape=True):
        own = (evt.self_device_time_total if cuda else evt.self_cpu_time_total) * 1e-6
        total += own
        name, shapes = evt.key, evt.input_shapes or []
        target = None
        if name in ("aten::addmm", "aten::mm") and len(shapes) >= 2:
            # mm(x, Wᵀ) and addmm(bias, x, Wᵀ) both end with the (in, out) weight operand.
            dims = [s for s in shapes if isinstance(s, list) and len(s) == 2]
            if len(dims) >= 2:
                k, n = dims[-1]
                for key in ((k, n), (n, k)):
                    if key in by_shape:
                        target = by_shape[key]
                        break
        elif "scaled_dot_product" in name or "flash_attention" in name:
            target = ["attention"]
        elif name == "aten::embedding" or name == "aten::index_select":
            target = ["embedding"]
        for op in target or ["other"]:
            seconds[op] = seconds.get(op, 0.0) + own / len(target or ["other"]) / passes
    seconds["total"] = total / passes
    return seconds


# --- comparison ------------------------------------------------------------------------------------


def analysis_for(model: ModelLike, hardware: HardwareLike, dtype: str, workload: Workload) -> Report:
    bits = DTYPE_BITS[dtype]
    hw = load_hardware(hardware)
    engine = f"pytorch-{dtype}"
    return run(
        load_model(model),
        hw,
        make_settings(
            batch=workload.batch,
            prompt=workload.prompt,
            gen=workload.gen,
            w_bits=bits,
            a_bits=bits,
            kv_bits=bits,
            dtype="bf16" if dtype == "bf16" else "fp16",
            engine=engine if any(p.engine == engine for p in hw.efficiency) else None,
        ),
    )


def validate(
    model: ModelLike,
    hardware: HardwareLike,
    workloads: list[Workload],
    *,
    device: str = "cpu",
    dtype: str = "fp32",
    repeats: int = 3,
    with_ops: bool = False,
) -> list[ValidationRow]:
    if dtype not in TORCH_DTYPES:
        raise RooflensError(f"unsupported dtype '{dtype}': choose from {', '.join(TORCH_DTYPES)}")
    if repeats < 1:
        raise RooflensError("repeats must be at least 1")
    lm = build_model(model, device, dtype)
    rows = []
    for w in workloads:
        report = analysis_for(model, hardware, dtype, w)
        m = measure(lm, w, device, repeats)
        ops = []
        if with_ops:
            measured = profile_ops(lm, w, device, report)
            ops = op_comparison(report, measured)
        rows.append(
            ValidationRow(
                model=report.model.name,
                device=device,
                dtype=dtype,
                batch=w.batch,
                prompt=w.prompt,
                gen=w.gen,
                repeats=repeats,
                measured_ttft_s=statistics.median(m.ttft_s),
                ideal_ttft_s=report.ttft_s,
                estimate_ttft_s=report.ttft_estimate_s,
                measured_tpot_s=statistics.median(m.tpot_s),
                ideal_tpot_s=report.tpot_s,
                estimate_tpot_s=report.tpot_estimate_s,
                measured_peak_memory_bytes=m.peak_memory_bytes,
                predicted_memory_bytes=report.memory.total_bytes,
                hardware=report.hardware.name,
                estimate_source=report.profile.label if report.profile else None,
                ops=ops,
                ttft_runs_s=list(m.ttft_s),
                tpot_runs_s=list(m.tpot_s),
            )
        )
    return rows


def op_comparison(report: Report, measured: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Per pass (decode: per step): measured vs ideal vs estimate for each attributed operator."""
    out = []
    for phase in report.phases():
        if not phase.steps or phase.name not in measured:
            continue
        steps = phase.steps
        got = measured[phase.name]
        others_ideal = others_est = 0.0
        for op in phase.ops:
            ideal, est = op.time_s / steps, (op.estimate_s or 0.0) / steps
            if op.name in got:
                out.append(
                    {
                        "phase": phase.name,
                        "op": op.name,
                        "measured_s": got[op.name],
                        "ideal_s": ideal,
                        "estimate_s": est if op.estimate_s is not None else None,
                    }
                )
            else:
                others_ideal += ideal
                others_est += est
        out.append(
            {
                "phase": phase.name,
                "op": "other",
                "measured_s": got.get("other", 0.0),
                "ideal_s": others_ideal,
                "estimate_s": others_est if phase.estimate_s is not None else None,
            }
        )
    return out


# --- the accuracy table ---------------------------------------------------------------------------

TABLE_HEADER = (
    "| Model | batch, prompt, gen | TTFT measured | ideal | estimate | TPOT measured | ideal | estimate |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"


def _signed(error: float) -> str:
    text = f"{error:+.0%}"
    return "-0%" if text == "+0%" and error < 0 else text


def accuracy_table(rows: list[dict[str, Any]]) -> str:
    """The README's markdown table of one validation run (rows of its results.csv)."""
    lines = [TABLE_HEADER]
    for r in rows:
        f = {
            k: float(v) for k, v in r.items() if k.startswith(("measured_", "error_")) and v not in ("", None)
        }
        lines.append(
            f"| {r['model']} | {r['batch']}, {r['prompt']}, {r['gen']} | {_duration(f['measured_ttft_s'])} | "
            f"{_signed(f['error_ttft_ideal'])} | {_signed(f['error_ttft_estimate'])} | "
            f"{_duration(f['measured_tpot_s'])} | {_signed(f['error_tpot_ideal'])} | "
            f"{_signed(f['error_tpot_estimate'])} |"
        )
    return "\n".join(lines)
