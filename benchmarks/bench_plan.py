"""Time the default plan search: every priced device x TP (within its scale-up domain) x the default
formats x KV-cache formats x batch, for the README's planning question.

    python benchmarks/bench_plan.py [--repeat 3]

Prints the configurations evaluated, the median wall time of the whole search (after one warm-up run,
so imports and catalog loading are not counted) and the winner.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rooflens.plan import KV_FORMATS, QUANTS, plan

QUESTION = dict(prompt=2048, gen=512, ttft=0.5, tpot=0.03, rate=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="llama-3-8b")
    args = parser.parse_args()
    plan(args.model, **QUESTION)  # warm-up: imports, catalogs, profiles
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = plan(args.model, **QUESTION)
        times.append(time.perf_counter() - start)
    best = result.entries.iloc[0]
    print(f"formats {', '.join(QUANTS)}; KV formats {', '.join(KV_FORMATS)}")
    print(f"configurations evaluated: {result.considered} (larger batches pruned once one misses)")
    print(
        f"default search: median {statistics.median(times):.2f} s, best {min(times):.2f} s over {args.repeat}"
    )
    print(
        f"winner: {best.hardware} x{best.devices} {best.quant} KV {best.kv_format} batch {best.batch} "
        f"${best.usd_per_million_tokens:.3f}/M tokens"
    )


if __name__ == "__main__":
    main()
