"""How fast hostile input is refused, and what the heaviest request inside the caps costs.

    python benchmarks/bench_bounds.py

- the refusal of a config with 10**9 layers (and other out-of-bounds configs), through the Python API
  and through the web API in process: median and worst of 200 tries, in milliseconds;
- the heaviest analysis inside every cap the web API sets: an MoE config with 4,096 experts (the cap),
  batch 65,536, a 1,048,576-token prompt, 65,536 generated tokens and no KV cache (every decode step
  recomputes the whole sequence): its time and the peak memory of a fresh process running it alone,
  and the same request posted to /api/analyze and to /api/compare (6 copies, the cap); the heaviest
  simulation /api/simulate takes (near its 1,000,000 units of work) and how soon two past it are
  refused; the heaviest plan /api/plan takes
  (MAX_PLAN_WORK: one format on every priced device, 2 KV formats, 4 TP degrees, 2,048 generated
  tokens, targets loose enough that every batch that fits is searched, for the catalog's heaviest
  model to plan, with the figure) and one page Plan click (five such requests at 256 tokens).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

HEAVY = (
    "import json, resource, sys, time\n"
    "import rooflens\n"
    "from rooflens.model.catalog import hf_config\n"
    "cfg = {**hf_config('mixtral-8x7b'), 'num_local_experts': 4096, 'num_experts_per_tok': 8}\n"
    "rooflens.analyze('gpt2', 'h100')  # catalogs loaded once per process, as in a running server\n"
    "t = time.perf_counter()\n"
    "rooflens.analyze(cfg, 'h100', batch=65_536, prompt=1_048_576, gen=65_536, kv_cache=False)\n"
    "took = time.perf_counter() - t\n"
    "print(json.dumps({'s': took, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


def _times(fn, n: int = 200) -> tuple[float, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out), max(out)


def main() -> None:
    from fastapi.testclient import TestClient

    from rooflens.errors import RooflensError
    from rooflens.model.catalog import hf_config
    from rooflens.model.families import spec_from_config
    from rooflens.web import create_app

    llama = hf_config("llama-3-8b")
    hostile = {
        "num_hidden_layers 10**9": {**llama, "num_hidden_layers": 10**9},
        "vocab_size 10**400": {**llama, "vocab_size": 10**400},
        "hidden_size NaN": {**llama, "hidden_size": float("nan")},
        "layer_types x 100,000": {**llama, "layer_types": ["full_attention"] * 100_000},
    }
    print("Refusals (median / worst of 200, ms)")
    client = TestClient(create_app())
    for name, cfg in hostile.items():

        def python_api(cfg=cfg):
            try:
                spec_from_config(cfg)
            except RooflensError:
                return
            raise AssertionError("accepted")

        body = json.dumps({"config": cfg}, allow_nan=True).encode()

        def web_api(body=body):
            res = client.post("/api/analyze", content=body, headers={"content-type": "application/json"})
            assert res.status_code in (400, 413, 422), res.status_code

        med, worst = _times(python_api)
        wmed, wworst = _times(web_api, 50)
        print(f"  {name:26s} Python API {med:7.3f} / {worst:7.3f}   web API {wmed:7.2f} / {wworst:7.2f}")

    heavy = json.loads(subprocess.run([sys.executable, "-c", HEAVY], capture_output=True, text=True,
                                      check=True).stdout)  # fmt: skip
    print(f"Heaviest analysis inside the caps: {heavy['s']:.2f} s, peak {heavy['peak_mb']:.0f} MB (process)")
    cfg = {**hf_config("mixtral-8x7b"), "num_local_experts": 4096, "num_experts_per_tok": 8}
    one = {"config": cfg, "hardware": "h100-sxm", "batch": 65_536, "prompt": 1_048_576, "gen": 65_536,
           "kv_cache": False}  # fmt: skip
    # The heaviest simulation the server takes (951,000 of its 1,000,000 units of work: 2,000 requests
    # of 300 tokens from 256 users), and the heaviest plan (see the docstring).
    simulate = {"model": "llama-3-8b", "concurrency": 256, "requests": 2000, "gen": 300}
    plan = {"model": "qwen3-next-80b-a3b", "quants": ["nvfp4"], "gen": 2048, "ttft": 3600, "tpot": 60,
            "figure": True}  # fmt: skip
    for path, body in (("/api/analyze", one), ("/api/compare", {"analyses": [one] * 6}),
                       ("/api/simulate", simulate), ("/api/plan", plan)):  # fmt: skip
        t = time.perf_counter()
        res = client.post(path, json=body)
        print(f"  {path} {res.status_code}: {time.perf_counter() - t:.2f} s")
    # Simulations past the work budget, refused when they reach it: one user and 1,000,000 generated
    # tokens (a million steps), and 1M-token prompts arriving 1,000 a second.
    for name, body in (
        ("one user, 2,000 x 500 tokens",
         {"model": "llama-3-8b", "concurrency": 1, "requests": 2000, "gen": 500}),
        ("1M-token prompts", {"model": "llama-3-8b", "hardware": "b200", "rate": 1000, "requests": 100,
                              "gen": 100, "prompt": 1_000_000, "settings": {"tp": 8}}),
    ):  # fmt: skip
        t = time.perf_counter()
        res = client.post("/api/simulate", json=body)
        print(f"  /api/simulate, {name}: {res.status_code} after {time.perf_counter() - t:.2f} s")
    took = []
    for prompt in (1000, 1001, 1002):  # distinct prompts: the answer cache does not serve them
        t = time.perf_counter()
        assert client.post("/api/plan", json={**plan, "prompt": prompt}).status_code == 200
        took.append(time.perf_counter() - t)
    print(f"  heaviest /api/plan, 3 more: median {statistics.median(took):.2f} s, worst {max(took):.2f} s")
    t = time.perf_counter()
    for quant in ("w16a16", "fp8", "w8a8", "w4a16", "nvfp4"):
        body = {"model": "llama-3-8b", "quants": [quant], "ttft": 0.5, "tpot": 0.05, "figure": True}
        assert client.post("/api/plan", json=body).status_code == 200
    print(
        f"  a page Plan click (llama-3-8b, five formats, one request each): {time.perf_counter() - t:.2f} s"
    )
    print(f"Peak memory of this process after all of it: {_peak_mb():.0f} MB")


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
