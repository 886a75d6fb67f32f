"""Latency of the web API on loopback, of the page's update after a change, and of the worst request
the caps allow.

    python benchmarks/bench_serve.py [--requests 200]

Starts `rooflens serve` in a subprocess on a free port, then:
1. POST /api/analyze `--requests` times with keep-alive (plain report; then with the figures the
   page asks for), median and p95 of the wall time seen by the client;
2. in Chromium (if present), changes the batch size 30 times and reads the page's own measured time
   from the change to the end of re-rendering (numbers, five plots and the table);
3. the heaviest request within the caps (405B model, largest batch, prompt and generation, figures).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(samples: list[float]) -> str:
    ms = sorted(1e3 * s for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def _timed(client: httpx.Client, body: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post("/api/analyze", json=body)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


def _page(base: str) -> list[float] | None:
    chromium = os.environ.get("ROOFLENS_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return None
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(base + "/")
        page.wait_for_function("document.body.dataset.renders === '1'", timeout=30_000)
        times = []
        for i in range(30):
            batch = 1 + (i % 6) * 7
            page.fill("#batch", str(batch))
            page.dispatch_event("#batch", "change")
            page.wait_for_function(f"document.body.dataset.renders === '{i + 2}'", timeout=30_000)
            times.append(float(page.evaluate("document.body.dataset.lastUpdateMs")) / 1e3)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "rooflens.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(200):
                try:
                    client.get("/api/hardware")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            body = {"model": "llama-3-8b", "hardware": "h100-sxm", "batch": 8, "prompt": 1024, "gen": 128}
            _timed(client, {**body, "figures": True}, 5)  # warm-up
            print(f"analyze, report only        {_stats(_timed(client, body, args.requests))}")
            figs = _timed(client, {**body, "figures": True}, args.requests)
            print(f"analyze, report + 6 figures {_stats(figs)}")
            worst = {
                "model": "llama-3.1-405b", "hardware": "h200", "batch": 65_536, "prompt": 1_048_576,
                "gen": 65_536, "figures": True, "timeline": True, "settings": {"tp": 8},
            }  # fmt: skip
            print(f"heaviest request in caps    {_stats(_timed(client, worst, 5))}")
        page = _page(base)
        if page is None:
            print("page update: skipped (no Chromium)")
        else:
            print(f"page update after a change  {_stats(page)}  (measured in the page)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
