"""Time one full analysis, side by side with the per-token loop it replaces.

The analysis evaluates every decode step at once with NumPy arrays. The baseline builds and
evaluates the operator list once per generated token (what a straightforward implementation does).
Both must give the same TPOT; the script checks that before it reports times.

    python benchmarks/bench_analyze.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import rooflens
from rooflens import load_hardware, load_model, make_settings
from rooflens.ops import Pass, build_ops
from rooflens.roofline import evaluate

CASE = dict(model="llama-3-70b", hardware="h100-sxm", batch=1, prompt=4096, gen=1024)


def per_token_loop_tpot(spec, hw, s) -> float:
    """The slow path: one build_ops + evaluate per decode step."""
    total = 0.0
    for t in range(1, s.gen):
        ctx = s.prompt + t
        ops = build_ops(spec, s.precision, Pass(s.batch, 1, ctx))
        total += evaluate("decode", ops, hw, 1, np.array([float(ctx)])).time_s
    return total / (s.gen - 1)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    model, hardware = CASE["model"], CASE["hardware"]
    settings = {k: v for k, v in CASE.items() if k not in ("model", "hardware")}
    spec, hw, s = load_model(model), load_hardware(hardware), make_settings(**settings)

    report = rooflens.analyze(model, hardware, **settings)
    loop_tpot = per_token_loop_tpot(spec, hw, s)
    assert abs(loop_tpot - report.tpot_s) <= 1e-9 * report.tpot_s, (loop_tpot, report.tpot_s)

    rooflens.run(spec, hw, s)  # warm caches
    fast = timed(lambda: rooflens.run(spec, hw, s), args.repeat)
    with_lookup = timed(lambda: rooflens.analyze(model, hardware, **settings), args.repeat)
    slow = timed(lambda: per_token_loop_tpot(spec, hw, s), max(3, args.repeat // 50))

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"case: {CASE} ({len(report.prefill.ops)} ops per pass, {report.decode.steps} decode steps)")
    print(
        f"analysis (vectorized timeline)      median {statistics.median(fast) * 1e3:8.3f} ms  "
        f"p95 {np.percentile(fast, 95) * 1e3:8.3f} ms"
    )
    print(f"analyze() incl. name lookup + check median {statistics.median(with_lookup) * 1e3:8.3f} ms")
    print(f"per-token loop (decode only)        median {statistics.median(slow) * 1e3:8.3f} ms")
    print(f"speed-up of the vectorized timeline: {statistics.median(slow) / statistics.median(fast):,.0f}x")
    print(f"TPOT {report.tpot_s * 1e3:.4f} ms both ways; TTFT {report.ttft_s * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
