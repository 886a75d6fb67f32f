"""Time what a cold command costs before it computes anything: a fresh interpreter that imports
rooflens, reads the fitted efficiency profiles and runs the README's first analysis.

    python benchmarks/bench_startup.py [--repeat 7]

Prints the median wall time of the whole CLI call (`rooflens analyze llama-3-8b -H h100`, in a new
process each time) and, in a new process too, how long parsing the shipped profiles takes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

LOAD = (
    "import time; from rooflens.hardware.efficiency import _published_profiles; "
    "s = time.perf_counter(); _published_profiles(); print(time.perf_counter() - s)"
)
CLI = (
    "import sys; from rooflens.cli import main; "
    "sys.argv = ['rooflens', 'analyze', 'llama-3-8b', '-H', 'h100']; main()"
)


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    wall(CLI)  # warm the file cache and the bytecode
    calls = [wall(CLI) for _ in range(args.repeat)]
    loads = [
        float(subprocess.run([sys.executable, "-c", LOAD], check=True, capture_output=True, text=True).stdout)
        for _ in range(args.repeat)
    ]
    print(f"rooflens analyze llama-3-8b -H h100, a fresh process: median {statistics.median(calls):.2f} s")
    print(f"parsing the fitted efficiency profiles: median {statistics.median(loads) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
