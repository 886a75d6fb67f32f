"""Published measurements: what each row measures, rooflens's prediction of it, fitting and errors.

``validation/published.csv`` holds measured inference results from public sources (one row per
measured value, with its source). Its ``split`` column, fixed once, sends each row either to
``calibration`` (used to fit the efficiency profiles shipped in ``hardware/efficiency.yaml``) or to
``report`` (used only to measure accuracy). Errors are relative errors of *time*:
``predicted_time / measured_time - 1`` (a rate r corresponds to the time 1/r).

Metrics:
- ``prefill_tokens_per_s``: batch*prompt tokens / prefill time (llama-bench ``ppN``);
- ``ttft_s``: time to first token;
- ``decode_tokens_per_s``: batch / mean decode-step time over ``gen`` steps from a context of ``prompt``
  (llama-bench ``tgN`` has no prompt: modelled from a 1-token context);
- ``output_tokens_per_s``: batch*gen / end-to-end time of a static batch, per device.

    python -m rooflens.measure.published fit      # refit hardware/efficiency.yaml on the calibration split
    python -m rooflens.measure.published report   # the error table on the report split
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..analysis import make_settings, run
from ..errors import RooflensError
from ..hardware.catalog import load_hardware
from ..hardware.efficiency import EfficiencyProfile
from ..model.catalog import load_model
from ..report import Report
from ..roofline import PhaseResult
from ..settings import kv_preset, preset

Metric = Literal["prefill_tokens_per_s", "ttft_s", "decode_tokens_per_s", "output_tokens_per_s"]
CATEGORY = {
    "prefill_tokens_per_s": "prefill",
    "ttft_s": "prefill",
    "decode_tokens_per_s": "decode",
    "output_tokens_per_s": "end-to-end",
}
DATA = Path("validation") / "published.csv"


class PublishedRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    split: Literal["calibration", "report"]
    engine: str
    hardware: str
    devices: int
    parallel: Literal["", "tp", "pp"] = ""  # how a multi-device row splits the model
    model: str
    precision: str
    batch: int
    prompt: int
    gen: int
    flash_attention: bool | None
    metric: Metric
    value: float
    source: str
    notes: str = ""

    @field_validator("flash_attention", mode="before")
    @classmethod
    def _fa(cls, value: object) -> object:
        return {"on": True, "off": False, "": None}.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _split_named(self) -> PublishedRow:
        if self.devices > 1 and not self.parallel:
            raise ValueError(f"row {self.id}: {self.devices} devices need a parallel mode (tp or pp)")
        if self.devices == 1 and self.parallel:
            raise ValueError(f"row {self.id}: parallel '{self.parallel}' needs more than one device")
        return self

    @property
    def category(self) -> str:
        return CATEGORY[self.metric]

    def analysis_settings(self) -> dict[str, object]:
        kw = preset(self.precision)
        if self.precision.upper() == "FP8":
            # TensorRT-LLM's FP8 recipe also stores the KV cache in FP8 (modelled with a scale per head).
            kw.update(kv_preset("fp8-head"))
        if self.engine == "llama.cpp-cuda" and kw.get("w_bits", 16) < 16:
            # llama.cpp's CUDA matmuls for quantized weights (MMQ) quantize activations to 8 bits and
            # run int8 tensor-core math: W4A8 / W8A8, not W4A16.
            kw["a_bits"] = 8
        kw["batch"] = self.batch
        if self.parallel:
            kw[self.parallel] = self.devices
        if self.flash_attention is not None:
            kw["flash_attention"] = self.flash_attention
        if self.category == "prefill":
            kw.update(prompt=self.prompt, gen=1)
        elif self.category == "decode":
            kw.update(prompt=max(self.prompt, 1), gen=self.gen + 1)
        else:
            kw.update(prompt=self.prompt, gen=self.gen)
        return kw

    def measured_time(self) -> float:
        """The measured time the row implies: per prefill, per decode step, or per static batch."""
        if self.metric == "prefill_tokens_per_s":
            return self.batch * self.prompt / self.value
        if self.metric == "ttft_s":
            return self.value
        if self.metric == "decode_tokens_per_s":
            return self.batch / self.value
        return self.batch * self.gen / (self.value * self.devices)


def find_data(path: str | Path | None = None) -> Path:
    """The dataset: an explicit path, ./validation/published.csv, or the source checkout's copy."""
    candidates = [Path(path)] if path else [DATA, Path(__file__).resolve().parents[3] / DATA]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RooflensError(
        f"published dataset not found (looked for {', '.join(str(c) for c in candidates)}); "
        "run from the rooflens checkout or pass --data PATH"
    )


def load_rows(path: str | Path | None = None) -> list[PublishedRow]:
    with find_data(path).open(newline="") as fh:
        return [PublishedRow(**row) for row in csv.DictReader(fh)]


def analyse_row(
    row: PublishedRow, profile: EfficiencyProfile | Literal["default"] | None = "default"
) -> Report:
    """Run the analysis a row calls for; ``profile`` overrides the efficiency profile (None: ideal only)."""
    spec, hw = load_model(row.model), load_hardware(row.hardware)
    if profile is None:
        return run(spec, hw, make_settings(**row.analysis_settings(), estimate=False))
    if profile != "default":
        hw = hw.model_copy(update={"efficiency": [profile]})
    return run(spec, hw, make_settings(**row.analysis_settings(), engine=row.engine))


def predicted_times(row: PublishedRow, report: Report) -> tuple[float, float | None]:
    """(ideal, estimate) of the time the row measures."""
    if row.category == "prefill":
        return report.ttft_s, report.ttft_estimate_s
    if row.category == "decode":
        return report.tpot_s, report.tpot_estimate_s
    return report.total_time_s, report.total_estimate_s


# --- fitting ---------------------------------------------------------------------------------------

FIT_TOKENS = [1.0, 1024.0]  # efficiency grid of published profiles: decode-like and prefill-like passes


@dataclass(frozen=True)
class _Phase:
    """What the estimate of one phase needs: ideal time of the device ops, steps, device ops per pass,
    tokens per pass, and the time of the collectives (kept at their ideal, as roofline.evaluate does)."""

    ideal_s: float
    steps: int
    ops_per_pass: int
    tokens: float
    comm_s: float = 0.0


def _phase(phase: PhaseResult, tokens: float, per_step: bool = False) -> _Phase:
    """The fit's summary of one evaluated phase (``per_step``: one mean decode step)."""
    comm = sum(o.time_s for o in phase.ops if o.kind == "comm")
    n_ops = sum(o.count for o in phase.ops if o.kind != "comm")
    scale = 1 / phase.steps if per_step else 1
    steps = 1 if per_step else phase.steps
    return _Phase((phase.time_s - comm) * scale, steps, n_ops, tokens, comm * scale)


@cache
def _phases(row: PublishedRow) -> list[_Phase]:
    report = analyse_row(row, profile=None)
    s = report.settings
    prefill = _phase(report.prefill, s.batch * s.prompt)
    if row.category == "prefill":
        return [prefill]
    if row.category == "decode":
        return [_phase(report.decode, s.batch, per_step=True)]
    return [prefill, _phase(report.decode, s.batch)]


def profile_from_params(engine: str, params: np.ndarray, source: str) -> EfficiencyProfile:
    e1, e2, t0 = np.exp(params)
    return EfficiencyProfile(
        engine=engine,
        source=source,
        tokens=FIT_TOKENS,
        matmul=[float(e1), float(e2)],
        op_overhead_s=float(t0),
    )


def _estimate(phases: list[_Phase], params: np.ndarray) -> float:
    """Same formula as roofline.evaluate with one efficiency table for every operator kind."""
    e1, e2, t0 = np.exp(params)
    total = 0.0
    for p in phases:
        eff = np.interp(np.log(p.tokens), np.log(FIT_TOKENS), [e1, e2])
        total += p.ideal_s / eff + p.steps * p.ops_per_pass * t0 + p.comm_s
    return total


def fit_profile(rows: list[PublishedRow], prior: np.ndarray | None = None, weight: float = 0.0) -> np.ndarray:
    """Least-squares fit of (ln eff@1, ln eff@1024, ln op_overhead) on log time ratios.

    ``prior`` with ``weight`` > 0 shrinks the fit toward it (used for device-specific profiles, which
    have few rows).
    """
    from scipy.optimize import least_squares

    data = [(_phases(r), r.measured_time()) for r in rows]

    def residuals(x: np.ndarray) -> np.ndarray:
        res = [np.log(_estimate(ph, x) / t) for ph, t in data]
        if prior is not None and weight > 0:
            res += list(weight * (x - prior))
        return np.asarray(res)

    start = prior if prior is not None else np.log([0.5, 0.5, 5e-6])
    # Efficiency is capped at 1: the roofline is an upper bound on speed.
    lower, upper = np.log([0.01, 0.01, 1e-9]), np.log([1.0, 1.0, 1e-3])
    return least_squares(residuals, np.clip(start, lower + 1e-9, upper - 1e-9), bounds=(lower, upper)).x


MIN_DEVICE_ROWS = 3  # a device gets its own profile only with at least this many calibration rows
SHRINK_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)


def _fit_engines(
    rows: list[PublishedRow], shrink: float
) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """engine -> (engine-wide parameters, {device: device parameters shrunk toward them})."""
    fitted = {}
    for engine in sorted({r.engine for r in rows}):
        mine = [r for r in rows if r.engine == engine]
        base = fit_profile(mine)
        devices = {}
        for device in sorted({r.hardware for r in mine}):
            rows_dev = [r for r in mine if r.hardware == device]
            if len(rows_dev) >= MIN_DEVICE_ROWS:
                devices[device] = fit_profile(rows_dev, prior=base, weight=shrink)
        fitted[engine] = (base, devices)
    return fitted


def choose_shrink(calibration: list[PublishedRow], folds: int = 5) -> tuple[float, dict[float, float]]:
    """Pick the device-profile shrinkage by k-fold cross-validation *within* the calibration split.

    The report split plays no part: it is only ever used to measure the final error.
    """
    order = sorted(calibration, key=lambda r: r.id)
    scores = {}
    for shrink in SHRINK_GRID:
        errors = []
        for k in range(folds):
            held = order[k::folds]
            train = [r for r in order if r not in held]
            fitted = _fit_engines(train, shrink)
            for r in held:
                if r.engine not in fitted:
                    continue
                base, devices = fitted[r.engine]
                params = devices.get(r.hardware, base)
                errors.append(abs(_estimate(_phases(r), params) / r.measured_time() - 1))
        scores[shrink] = float(np.median(errors))
    best = min(scores, key=scores.__getitem__)
    return best, scores


def fit_all(rows: list[PublishedRow]) -> dict:
    """Engine-wide profiles plus device-specific ones (shrunk toward the engine's), from calibration rows."""
    calibration = [r for r in rows if r.split == "calibration"]
    shrink, scores = choose_shrink(calibration)
    engines: dict[str, dict] = {}
    for engine, (base, devices) in _fit_engines(calibration, shrink).items():
        mine = [r for r in calibration if r.engine == engine]
        sources = sorted({r.source.split(" (")[0] for r in mine})
        note = f"fitted on {len(mine)} calibration rows of validation/published.csv ({'; '.join(sources)})"
        entry = {"global": _yaml_profile(profile_from_params(engine, base, note)), "devices": {}}
        for device, params in devices.items():
            n = sum(r.hardware == device for r in mine)
            dev_note = (
                f"fitted on the {n} calibration rows of {device} in validation/published.csv, "
                f"shrunk toward the {engine} profile (weight {shrink})"
            )
            entry["devices"][device] = _yaml_profile(profile_from_params(engine, params, dev_note))
        engines[engine] = entry
    return {
        "default_engine": {"gpu": "tensorrt-llm", "apple": "llama.cpp-metal"},
        "fit": {
            "calibration_rows": len(calibration),
            "min_device_rows": MIN_DEVICE_ROWS,
            "shrink": shrink,
            "cross_validation_median_abs_error": {str(k): round(v, 4) for k, v in scores.items()},
        },
        "engines": engines,
    }


def _yaml_profile(p: EfficiencyProfile) -> dict:
    return {
        "source": p.source,
        "tokens": p.tokens,
        "matmul": [round(v, 4) for v in p.matmul],
        "op_overhead_s": float(f"{p.op_overhead_s:.4g}"),
    }


# --- errors ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    row: PublishedRow
    measured_s: float
    ideal_s: float
    estimate_s: float | None

    @property
    def ideal_error(self) -> float:
        return self.ideal_s / self.measured_s - 1

    @property
    def estimate_error(self) -> float | None:
        return None if self.estimate_s is None else self.estimate_s / self.measured_s - 1


def result_dict(r: RowResult) -> dict[str, object]:
    return {
        **r.row.model_dump(),
        "category": r.row.category,
        "measured_s": r.measured_s,
        "ideal_s": r.ideal_s,
        "estimate_s": r.estimate_s,
        "ideal_error": r.ideal_error,
        "estimate_error": r.estimate_error,
    }


def evaluate_rows(rows: Iterable[PublishedRow]) -> list[RowResult]:
    out = []
    for row in rows:
        ideal, estimate = predicted_times(row, analyse_row(row))
        out.append(RowResult(row, row.measured_time(), ideal, estimate))
    return out


def error_summary(results: list[RowResult]) -> list[dict[str, object]]:
    """Median absolute errors by category and engine, each category over all engines, and the
    multi-device rows (every phase) on their own, since they also test the collectives' model."""
    groups: dict[tuple[str, str], list[RowResult]] = {}
    for r in results:
        groups.setdefault((r.row.category, r.row.engine), []).append(r)
        groups.setdefault((r.row.category, "all engines"), []).append(r)
        if r.row.devices > 1:
            groups.setdefault(("all phases", "multi-device rows"), []).append(r)
    summary = []
    for (category, engine), rs in sorted(
        groups.items(),
        key=lambda kv: (kv[0][0] == "all phases", kv[0][0], kv[0][1] == "all engines", kv[0][1]),
    ):
        ideal = np.abs([r.ideal_error for r in rs])
        est = np.abs([r.estimate_error for r in rs if r.estimate_error is not None])
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
            }
        )
    return summary


def main(argv: list[str] | None = None) -> None:
    import yaml

    args = argv if argv is not None else sys.argv[1:]
    rows = load_rows()
    if args[:1] == ["fit"]:
        fitted = fit_all(rows)
        target = Path(__file__).resolve().parents[1] / "hardware" / "efficiency.yaml"
        header = (
            "# Efficiency profiles fitted on the calibration split of validation/published.csv.\n"
            "# Generated by `python -m rooflens.measure.published fit`; do not edit by hand.\n"
        )
        target.write_text(header + yaml.safe_dump(fitted, sort_keys=False, width=120))
        print(f"wrote {target}")
        return
    split = "calibration" if args[:1] == ["calibration"] else "report"
    results = evaluate_rows(r for r in rows if r.split == split)
    for line in error_summary(results):
        print(line)


if __name__ == "__main__":
    main()
