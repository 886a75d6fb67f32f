"""The serving simulation against published closed-loop serving runs (the report split by default).

    python benchmarks/validate_serving.py              # every report-split closed-loop run
    python benchmarks/validate_serving.py --limit 12   # the first 12 runs (sorted by id)
    python benchmarks/validate_serving.py --split calibration --free-only --free-spread 0.5
                                                       # how FREE_SPREAD was chosen (see its comment)

``rooflens validate --published`` checks serving rows with a fast steady-state formula (what the
fit can afford). This script checks what users run instead: ``rooflens.serving.simulate`` with
closed-loop clients at the published concurrency, the row's engine (its scheduler defaults and
efficiency profile), parallelism and format, and compares the simulated TTFT and TPOT (the median or
the mean, as the source printed) and the output throughput per device with the published figures of
that run. Slow (seconds to a minute
per run): not part of the test suite; its table is quoted in the README.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from rooflens.errors import RooflensError
from rooflens.measure import published as pub

METRICS = {"ttft_s": ("ttft", "p50"), "tpot_s": ("tpot", "p50")}


def runs(rows: list[pub.PublishedRow], split: str = "report") -> dict[tuple, list[pub.PublishedRow]]:
    """Closed-loop serving runs of ``split``, each with the rows (figures) it published."""
    out: dict[tuple, list[pub.PublishedRow]] = {}
    for r in rows:
        if r.split != split or r.mode != "serving" or r.concurrency is None:
            continue
        if r.metric not in (*METRICS, "output_tokens_per_s") or r.statistic in ("p90", "p99"):
            continue
        key = (r.engine, r.engine_version, r.hardware, r.parallel, r.model, r.precision, r.concurrency,
               r.request_rate, r.prompt, r.gen, r.scheduler, r.requests)  # fmt: skip
        out.setdefault(key, []).append(r)
    return out


# The spread given to a run whose source leaves its lengths free (``fixed_lengths`` empty: a
# conversation dataset, or lengths it does not describe). At its mean lengths and no spread, a
# closed loop's users would finish together and send their next prompts together, a lock-step the
# run did not have (TTFT median error +90% on the calibration split's such runs of two users or
# more; a lone user has no one to keep step with). Chosen on those runs (``--split calibration
# --free-only``: 18 TTFT figures), TTFT median |error| at spreads 0 / 0.25 / 0.5 / 0.8: 89.7 / 16.3 /
# 15.1 / 14.2%; TPOT 1.3 / 3.2 / 3.4 / 3.1%, throughput 2.5 / 3.3 / 2.7 / 2.2%. It was 0.25 (24.9 /
# 12.1 / 12.3 / 13.7% on nine figures) until the RTX 4090 sweep's runs at 8 and 32 users joined the
# calibration split on 2026-12-01, their lengths corrected.
FREE_SPREAD = 0.8


def _inferencex_ratio(row: pub.PublishedRow) -> bool:
    """Whether the run drew its lengths with InferenceX's ``--random-range-ratio 0.8`` (its notes say)."""
    return "random-range-ratio 0.8" in row.notes


def free(row: pub.PublishedRow) -> bool:
    """Whether the run's lengths are free: its source neither fixes them nor states their spread."""
    stated = row.length_spread is not None or _inferencex_ratio(row)
    return row.fixed_lengths is None and not stated


def spread(row: pub.PublishedRow, free_spread: float = FREE_SPREAD) -> float:
    """The run's length spread as vLLM's random_range_ratio (about the mean length): the row's stated
    one, or InferenceX's SGLang-style ratio 0.8, which draws lengths in [0.8 L, L], that is the mean
    0.9 L +- 0.1 L: r = 1/9; ``free_spread`` where the lengths are free (``FREE_SPREAD``); else none
    (fixed lengths, or stated ones that may end early)."""
    if row.length_spread is not None:
        return row.length_spread
    if _inferencex_ratio(row):
        return 1 / 9
    return free_spread if free(row) else 0.0


def simulated(row: pub.PublishedRow, seed: int = 0, free_spread: float = FREE_SPREAD) -> dict:
    """The run simulated as it was run (``published.simulate_row``): its requests where the source
    states them, else 3 C (at least 24) for a steady state."""
    c = row.concurrency or 1
    return pub.simulate_row(
        row, requests=row.requests or max(3 * c, 24), spread=spread(row, free_spread), seed=seed
    ).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="at most this many runs (0: all)")
    parser.add_argument(
        "--split",
        choices=("report", "calibration"),
        default="report",
        help="the split whose runs to simulate (default: report)",
    )
    parser.add_argument(
        "--free-only",
        action="store_true",
        help="only runs of two users or more whose lengths are free (see free())",
    )
    parser.add_argument(
        "--free-spread",
        type=float,
        default=FREE_SPREAD,
        help=f"spread of free lengths, as --random-range-ratio (default {FREE_SPREAD})",
    )
    args = parser.parse_args()
    groups = runs(pub.load_rows(), args.split)
    if args.free_only:
        groups = {k: g for k, g in groups.items() if free(g[0]) and (g[0].concurrency or 1) > 1}
    keys = sorted(groups, key=lambda k: min(r.id for r in groups[k]))
    if args.limit:
        keys = keys[: args.limit]
    errors: dict[str, list[float]] = {m: [] for m in (*METRICS, "output_tokens_per_s")}
    print(f"{'run':60} {'metric':22} {'measured':>10} {'simulated':>10} {'error':>7}")
    start = time.perf_counter()
    for key in keys:
        first = groups[key][0]
        try:
            s = simulated(first, free_spread=args.free_spread)
        except RooflensError as err:
            print(f"{' '.join(map(str, key))[:60]:60} skipped: {err}")
            continue
        for r in groups[key]:
            if r.metric == "output_tokens_per_s":
                sim, meas = s["output_tokens_per_s_per_device"], r.value
                err = meas / sim - 1  # error of time: the rate's inverse
            else:
                block, stat = METRICS[r.metric]
                stat = "mean" if r.statistic == "mean" else stat  # the statistic the source printed
                sim, meas = s[block][stat], r.value
                err = sim / meas - 1
            if sim is None or not math.isfinite(err):
                continue
            errors[r.metric].append(err)
            label = " ".join(map(str, key))[:60]
            print(f"{label:60} {r.metric:22} {meas:10.4g} {sim:10.4g} {err:+7.0%}")
    print()
    for metric, errs in errors.items():
        if errs:
            print(f"{metric:22} runs {len(errs):3d}  median |error| {np.median(np.abs(errs)):.1%}  "
                  f"median error {np.median(errs):+.1%}")  # fmt: skip
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
