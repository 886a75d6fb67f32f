"""Vectorised sweep against the single-analysis API in a loop, side by side in one run, on one core.

    python benchmarks/bench_sweep.py

The grid: Llama-3-8B on 6 devices x TP 1/2/4/8 x weights 16/8/4 bits x batch 1..1024 (11 values) x
16 prompt lengths x 16 generation lengths = 202,752 configurations. The loop times rooflens.analyze
on a random sample of the same configurations (every one would take minutes) and the rate is
compared; the sample's results are also checked against the sweep's rows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: no threaded BLAS either
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time

import numpy as np

import rooflens
from rooflens.sweep import sweep

GRID = dict(
    hardware=["h100-sxm", "a100-sxm-80gb", "h200", "l40s", "mi300x", "rtx-4090"],
    tp=[1, 2, 4, 8],
    w_bits=[16, 8, 4],
    batch=[2**i for i in range(11)],
    prompt=[128 * i for i in range(1, 17)],
    gen=[64 * i for i in range(1, 17)],
)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sweep("llama-3-8b", **{**GRID, "hardware": ["h100-sxm"], "batch": [1]})  # warm caches
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = sweep("llama-3-8b", **GRID)
        runs.append(time.perf_counter() - t0)
    n = len(result)
    best = min(runs)
    frame = result.to_frame()
    rng = np.random.default_rng(0)
    sample = frame.iloc[rng.choice(n, size=300, replace=False)]
    t0 = time.perf_counter()
    worst = 0.0
    for row in sample.itertuples():
        r = rooflens.analyze(
            "llama-3-8b", row.hardware, batch=row.batch, prompt=row.prompt, gen=row.gen,
            w_bits=row.w_bits, tp=row.tp,
        )  # fmt: skip
        worst = max(
            worst, abs(r.total_time_s / row.total_time_s - 1), abs(r.memory.total_bytes / row.total_bytes - 1)
        )
    loop = (time.perf_counter() - t0) / len(sample)
    rate = n / best
    print(f"sweep: {n:,} configurations in {best:.3f} s (best of 3: {', '.join(f'{r:.3f}' for r in runs)})")
    print(f"       {rate:,.0f} configurations/s on one core")
    print(f"loop:  rooflens.analyze {loop * 1e3:.3f} ms per configuration = {1 / loop:,.0f} configurations/s")
    print(
        f"speed-up {rate * loop:,.0f}x; largest relative difference on the {len(sample)} sampled rows "
        f"{worst:.1e}"
    )


if __name__ == "__main__":
    main()
