"""Serving the page to many: throughput and latency of the web API under concurrent clients, the
server's memory after many requests, the heaviest request the caps allow, and the page's update.

    python benchmarks/bench_serve.py                  # full run, --workers 1 (a few minutes)
    python benchmarks/bench_serve.py --workers 1 2    # once per worker count, one table
    python benchmarks/bench_serve.py --quick          # a short run (fewer requests, 2,000 in all)

For each worker count it starts `rooflens serve --workers N` in a subprocess on a free port, then:
1. POSTs /api/analyze from 1, 10 and 100 concurrent clients (each its own keep-alive connection,
   Accept-Encoding: gzip as a browser sends it): (a) report only, (b) report with the figures the
   page asks for. Every body differs (the batch and prompt change), so each one is computed: these
   are the cache's misses. A last row repeats one body: the cache's hits. It prints requests per
   second (requests / wall time) and the p50, p95, p99 of the latency each client saw;
2. keeps sending (9 report-only requests to 1 with figures, 10 clients) until the server has
   answered `--total` requests, and reads the resident memory (RSS) of the server's processes, with
   the figure after warm-up to compare;
3. the heaviest request within the caps (405B model, largest batch, prompt and generation, figures,
   every decode step), 5 different ones;
4. in Chromium (if present), changes the batch size 30 times and reads the page's own measured time
   from the change to the end of re-rendering (numbers, five plots and the table).

The clients run in this process, on the same machine: on a machine with few cores they take CPU
from the server, most at 100 clients and with several workers. They are a minimal HTTP/1.1 client
on asyncio streams, to take as little of it as they can. Memory is read from /proc (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BASE_BODY = {"model": "llama-3-8b", "hardware": "h100-sxm", "batch": 8, "prompt": 1024, "gen": 128}
CLIENTS = (1, 10, 100)
_serial = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh(figures: bool) -> dict:
    """A body no earlier request had: a cache miss, with the same work as the base body."""
    i = next(_serial)
    return {**BASE_BODY, "batch": 1 + i % 1024, "prompt": 1024 + i // 1024, "figures": figures}


def _pct(ms: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    return ms[max(0, math.ceil(p / 100 * len(ms)) - 1)]


def _request(port: int, body: dict) -> bytes:
    """One POST /api/analyze as bytes on the wire, encoded before the clock starts."""
    data = json.dumps(body).encode()
    head = (
        f"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept-Encoding: gzip\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a keep-alive connection, read the whole answer; its size on the wire.

    A minimal HTTP/1.1 client (Content-Length answers only, as the API gives): a full client
    library costs more CPU per request than the server's report-only answer, and here it would
    share the same few cores."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        None,
    )
    if length is None:
        raise SystemExit(f"an answer without Content-Length: {head[:300]!r}")
    body = await reader.readexactly(length)
    if status != b"200":
        raise SystemExit(f"HTTP {status.decode()}: {body[:300]!r}")
    return len(head) + length


async def _load(port: int, bodies: list[dict], clients: int) -> tuple[list[float], float, int]:
    """Latencies (s), wall time (s) and bytes on the wire of `bodies` sent by `clients` at once."""
    requests = iter([_request(port, body) for body in bodies])
    latencies: list[float] = []
    wire = 0

    async def one_client() -> None:
        nonlocal wire
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in requests:  # shared: each request goes to whichever client is free
                t0 = time.perf_counter()
                size = await _exchange(reader, writer, request)
                wire += size
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, time.perf_counter() - t0, wire


def _row(workers: int, what: str, clients: int, result: tuple[list[float], float, int]) -> str:
    latencies, wall, wire = result
    ms = sorted(1e3 * s for s in latencies)
    n = len(ms)
    return (
        f"| {workers} | {what} | {clients} | {n} | {n / wall:.1f} | {_pct(ms, 50):.1f} | "
        f"{_pct(ms, 95):.1f} | {_pct(ms, 99):.1f} | {wire / n / 1e3:.1f} |"
    )


def _rss_mb(root: int) -> tuple[float, list[float]]:
    """RSS (MB) of a process and all its descendants: the total, and each process's."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    sizes, todo = [], [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        sizes.append(kb / 1024)
    return sum(sizes), sorted(sizes, reverse=True)


def _rss_text(root: int) -> str:
    total, each = _rss_mb(root)
    if not each:
        return "n/a (no /proc)"
    parts = " + ".join(f"{s:.0f}" for s in each)
    return f"{total:.0f} MB" + (f" ({parts})" if len(each) > 1 else "")


def _stats(samples: list[float]) -> str:
    ms = sorted(1e3 * s for s in samples)
    return f"median {statistics.median(ms):7.1f} ms   p95 {_pct(ms, 95):7.1f} ms   (n={len(ms)})"


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
            batch = 2 + i * 7  # a new batch each time: computed, not answered from the cache
            page.fill("#batch", str(batch))
            page.dispatch_event("#batch", "change")
            page.wait_for_function(f"document.body.dataset.renders === '{i + 2}'", timeout=30_000)
            times.append(float(page.evaluate("document.body.dataset.lastUpdateMs")) / 1e3)
        browser.close()
    return times


def _start(workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rooflens.cli", "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as client:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text()}")
            try:
                client.get("/api/hardware").raise_for_status()
                return server, base
            except httpx.TransportError:
                time.sleep(0.05)
    server.terminate()
    raise SystemExit(f"the server did not answer within 30 s:\n{log.read_text()}")


def _bench(workers: int, args: argparse.Namespace, rows: list[str], notes: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server, base = _start(workers, Path(tmp) / "server.log")
        try:
            _measure(server, base, workers, args, rows, notes)
        finally:
            server.terminate()
            server.wait(30)


def _measure(
    server: subprocess.Popen,
    base: str,
    workers: int,
    args: argparse.Namespace,
    rows: list[str],
    notes: list[str],
) -> None:
    sent = 0
    port = int(base.rsplit(":", 1)[1])

    def load(bodies: list[dict], clients: int):
        nonlocal sent
        sent += len(bodies)
        return asyncio.run(_load(port, bodies, clients))

    # Warm-up: every worker imports plotly and builds its catalogs on its first requests.
    load([_fresh(True) for _ in range(10 * workers)], 2 * workers)
    warm_rss = _rss_text(server.pid)
    for figures, n in ((False, args.report_requests), (True, args.figure_requests)):
        what = "report + figures" if figures else "report only"
        for clients in CLIENTS:
            result = load([_fresh(figures) for _ in range(max(n, clients))], clients)
            rows.append(_row(workers, what, clients, result))
            print(rows[-1], flush=True)
    same = {**BASE_BODY, "figures": True}
    load([same], 1)  # now in the cache
    result = load([same] * args.report_requests, 10)
    rows.append(_row(workers, "report + figures, one body repeated (cache hits)", 10, result))
    print(rows[-1], flush=True)
    while sent < args.total:
        n = min(1000, args.total - sent)
        load([_fresh(i % 10 == 9) for i in range(n)], 10)
    notes.append(
        f"workers {workers}: server RSS after warm-up {warm_rss}; after {sent:,} requests "
        f"{_rss_text(server.pid)}"
    )
    print(notes[-1], flush=True)
    with httpx.Client(base_url=base, timeout=300) as client:
        worst = {
            "model": "llama-3.1-405b", "hardware": "h200", "batch": 65_536, "prompt": 1_048_576,
            "gen": 65_536, "figures": True, "timeline": True, "settings": {"tp": 8},
        }  # fmt: skip
        times = []
        for i in range(5):
            t0 = time.perf_counter()
            client.post("/api/analyze", json={**worst, "gen": 65_536 - i}).raise_for_status()
            times.append(time.perf_counter() - t0)
    notes.append(f"workers {workers}: heaviest request in caps   {_stats(times)}")
    print(notes[-1], flush=True)
    if args.page:
        page = _page(base)
        if page is None:
            notes.append(f"workers {workers}: page update: skipped (no Chromium)")
        else:
            notes.append(
                f"workers {workers}: page update after a change  {_stats(page)}  (measured in the page)"
            )
        print(notes[-1], flush=True)


def _load_avg() -> str:
    """The machine's load: other work on it makes every figure here worse."""
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts to run")
    parser.add_argument("--quick", action="store_true", help="a short run: fewer requests")
    parser.add_argument("--report-requests", type=int, help="per client count, report only (1000)")
    parser.add_argument("--figure-requests", type=int, help="per client count, with figures (300)")
    parser.add_argument("--total", type=int, help="requests before reading the memory (10000)")
    parser.add_argument("--no-page", dest="page", action="store_false", help="skip the Chromium part")
    args = parser.parse_args()
    quick = {"report_requests": 200, "figure_requests": 100, "total": 2000}
    full = {"report_requests": 1000, "figure_requests": 300, "total": 10_000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    print(
        f"{os.cpu_count()} CPU cores; Python {sys.version.split()[0]}; {' '.join(sys.argv)}; {_load_avg()}\n"
    )
    header = [
        "| workers | requests | clients | n | req/s | p50 ms | p95 ms | p99 ms | kB/answer (gzip) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(header), flush=True)
    rows: list[str] = []
    notes: list[str] = []
    t0 = time.perf_counter()
    for workers in args.workers:
        _bench(workers, args, rows, notes)
    print("\n" + "\n".join(header + rows))
    print("\n" + "\n".join(f"- {n}" for n in notes))
    print(f"\n({time.perf_counter() - t0:.0f} s in all; {_load_avg()})")


if __name__ == "__main__":
    main()
