"""Hostile-input fuzzer for the web API and the CLI: no 5xx, no traceback, no long wait.

    python scripts/fuzz.py                   # 5,000 API bodies and 2,000 CLI runs (a few minutes)
    python scripts/fuzz.py --bodies 300 --cli 100 --seed 7

Bodies start from real inputs (a catalog config.json, a catalog device spec with an efficiency table,
a valid analysis request) and have one to three fields replaced by hostile values: NaN, infinities,
1e308, 10**400, the smallest denormal, negatives, wrong types, long or markup-like strings, lone
surrogates, huge lists and deep nesting. CLI runs pass hostile values to each command's options and
hostile model or device files. Every answer must be a 200, 400, 413 or 422 with a JSON ``detail``; every
CLI run must end with exit code 0 or 2 and no traceback, within ``SLOW_S`` seconds. The test suite runs
a smaller sample of the same generators (tests/test_bounds.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SLOW_S = 10.0  # a run past this is reported as a stall


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


HOSTILE: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    -1e308,
    10**400,
    5e-324,
    -1,
    0,
    -0.0,
    2**63,
    1.5,
    True,
    None,
    "",
    "4096",
    "x" * 300,
    "\ud800",
    "[/red]",
    "[bold]x[/bold]",
    [],
    {},
    [1] * 3000,
    ["full_attention"] * 2000,
    _deep(40),
    {"a": [float("nan")]},
]

# Fields a config, a device spec and the settings are most sensitive to, beside the ones present.
CONFIG_KEYS = [
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "vocab_size", "max_position_embeddings", "partial_rotary_factor",
    "mlp_only_layers", "layer_types", "num_local_experts", "num_experts_per_tok", "n_routed_experts",
    "moe_intermediate_size", "sliding_window", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
    "model_type", "text_config", "quantization_config", "rope_scaling", "tie_word_embeddings",
]  # fmt: skip
HARDWARE_KEYS = [
    "name", "memory_bytes", "memory_bandwidth", "peak_flops", "interconnect", "tdp_watts",
    "on_chip_memory_bytes", "scale_up_domain", "host_memory_bytes", "efficiency", "kind",
]  # fmt: skip
EFFICIENCY_KEYS = [
    "tokens", "matmul", "attention", "op_overhead_s", "op_overheads", "step_overhead_s", "frameworks",
    "low_precision", "attention_context", "attention_by_context", "comm_efficiency", "request_overhead_s",
]  # fmt: skip
SETTINGS_KEYS = [
    "tp", "pp", "ep", "kv_budget", "sparsity", "draft_model", "engine", "model", "hardware", "hub",
    "offload", "spec_tokens", "acceptance", "kv_bits", "routing", "prefix_cache_hit_rate", "estimate",
]  # fmt: skip
TOP_KEYS = ["batch", "prompt", "gen", "w_bits", "a_bits", "kv_bits", "quant", "model", "hardware", "format"]
MODELS = ["llama-3-8b", "mixtral-8x7b", "deepseek-v2-lite", "gemma-3-4b", "qwen3-next-80b-a3b", "gpt-oss-20b"]


def _config(name: str) -> dict[str, Any]:
    from rooflens.model.catalog import hf_config

    return hf_config(name)


def _device() -> dict[str, Any]:
    return {
        "name": "fuzz-gpu",
        "memory_bytes": 80e9,
        "memory_bandwidth": 3.35e12,
        "peak_flops": {"fp16": 989e12, "fp8": 1979e12},
        "interconnect": {"name": "nvlink", "bandwidth": 450e9},
        "efficiency": [{"engine": "fuzz", "source": "fuzz", "tokens": [1, 4096], "matmul": [0.5, 0.8]}],
    }


def _mutate(doc: dict[str, Any], keys: list[str], rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(keys + list(doc))
        doc[key] = copy.deepcopy(rng.choice(HOSTILE))
    return doc


def hostile_body(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One (endpoint, body) with hostile values in a config, a device, the settings or the request
    (an analysis, a comparison, a plan or a simulation)."""
    base: dict[str, Any] = {"model": rng.choice(MODELS), "hardware": "h100-sxm", "prompt": 256, "gen": 16}
    kind = rng.choice(["config", "hardware", "efficiency", "settings", "top", "compare", "plan", "simulate"])
    if kind == "plan":  # a plan of a hostile config, or with hostile fields
        plan = {"model": base["model"], "quants": ["fp8"], "hardware": ["h100-sxm", "l4"], "ttft": 1.0,
                "tpot": 0.05, "gen": 16}  # fmt: skip
        if rng.random() < 0.5:
            plan["config"] = _mutate(_config(base["model"]), CONFIG_KEYS, rng)
            return "/api/plan", plan
        return "/api/plan", _mutate(plan, [*plan, "rate", "prices", "kv_formats", "top"], rng)
    if kind == "simulate":  # a simulation of a hostile config or device, or with hostile fields
        sim: dict[str, Any] = {"model": base["model"], "rate": 2.0, "requests": 20, "gen": 16}
        choice = rng.random()
        if choice < 0.35:
            sim["config"] = _mutate(_config(base["model"]), CONFIG_KEYS, rng)
        elif choice < 0.7:
            sim["custom_hardware"] = _mutate(_device(), HARDWARE_KEYS, rng)
        else:
            sim = _mutate(sim, [*sim, "concurrency", "concurrencies", "prompt", "random_range_ratio"], rng)
        return "/api/simulate", sim
    if kind == "config":
        base["config"] = _mutate(_config(base["model"]), CONFIG_KEYS, rng)
    elif kind == "hardware":
        base["custom_hardware"] = _mutate(_device(), HARDWARE_KEYS, rng)
    elif kind == "efficiency":
        device = _device()
        device["efficiency"] = [_mutate(device["efficiency"][0], EFFICIENCY_KEYS, rng)]
        base["custom_hardware"] = device
    elif kind == "settings":
        keys = rng.sample(SETTINGS_KEYS, rng.randint(1, 3))
        base["settings"] = {k: copy.deepcopy(rng.choice([*HOSTILE, 1, 2, 8, "vllm"])) for k in keys}
    elif kind == "top":
        base = _mutate(base, TOP_KEYS, rng)
    else:
        return "/api/compare", {
            "analyses": [base, _mutate(base, TOP_KEYS, rng)],
            "figures": rng.random() < 0.3,
        }
    if rng.random() < 0.2:
        base["figures"] = True
    return "/api/analyze", base


def _encode(body: Any) -> bytes:
    """JSON as a hostile client sends it: NaN and Infinity literals, lone surrogates escaped."""
    return json.dumps(body, allow_nan=True).encode()


def fuzz_web(n: int, seed: int = 0, slow_s: float | None = SLOW_S) -> list[str]:
    """Post ``n`` hostile bodies to the app in process; return the problems found (empty: none).
    ``slow_s``: also report answers slower than this (None: do not time; the tests do not)."""
    from fastapi.testclient import TestClient

    from rooflens.web import create_app

    client = TestClient(create_app(), raise_server_exceptions=False)
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        path, body = hostile_body(rng)
        start = time.perf_counter()
        try:
            content = _encode(body)
        except (ValueError, RecursionError):
            continue  # not expressible as JSON
        res = client.post(path, content=content, headers={"content-type": "application/json"})
        took = time.perf_counter() - start
        short = content[:160].decode(errors="replace")
        if res.status_code not in (200, 400, 413, 422):
            problems.append(f"#{i} {path}: {res.status_code} for {short}")
        elif res.status_code != 200 and not isinstance(res.json().get("detail"), str):
            problems.append(f"#{i} {path}: {res.status_code} without a detail message for {short}")
        if slow_s is not None and took > slow_s:
            problems.append(f"#{i} {path}: {took:.1f} s for {short}")
    return problems


CLI_BASES = [
    ["analyze", "{model}", "-H", "{hardware}", "-p", "{int}", "-g", "{int}", "-b", "{int}"],
    ["analyze", "{model}", "--quant", "{str}", "--kv-format", "{str}"],
    ["analyze", "{model}", "--tp", "{int}", "--ep", "{int}"],
    ["simulate", "{model}", "-r", "{float}", "-n", "{int}", "-g", "{int}"],
    ["simulate", "{model}", "-c", "{int}", "-n", "{int}", "--seed", "{int}", "--replicas", "{int}"],
    ["compare", "{model}", "{model}", "-H", "{hardware}"],
    ["sweep", "{model}", "--batch", "{str}"],
    ["plan", "{model}", "--tpot", "{str}"],
    ["analyze", "{model}", "-o", "{path}"],
]
CLI_VALUES = {
    "int": ["0", "-1", "1", "7", "65536", "1000000000", str(10**30), "nan", "1e400", "x"],
    "float": ["0", "-1", "nan", "inf", "1e308", "0.5", "1e-320", "x"],
    "str": ["", "[/x]", "x" * 300, "fp8", "nvfp4", "1,2,3", "nan", "1e400", "\u00e9\u00e8"],
}


def _cli_files(folder: Path) -> dict[str, list[str]]:
    """Hostile model and device files to pass where a name goes."""
    files: dict[str, Any] = {}
    cfg = _config("llama-3-8b")
    for i, (key, value) in enumerate([("hidden_size", float("nan")), ("num_hidden_layers", 10**9),
                                      ("vocab_size", 10**400), ("mlp_only_layers", "abc")]):  # fmt: skip
        path = folder / f"cfg{i}.json"
        path.write_text(json.dumps({**cfg, key: value}))
        files[f"cfg{i}"] = str(path)
    (folder / "gpu [red].yaml").write_text("name: x\nmemory_bytes: 80e9\nmemory_bandwidth: .inf\n")
    (folder / "bomb.yaml").write_text("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n")
    (folder / "tiny.yaml").write_text("name: t\nmemory_bytes: 8e10\nmemory_bandwidth: 5e-324\n"
                                      "peak_flops: {fp16: 1e15}\n")  # fmt: skip
    return {
        "model": ["llama-3-8b", "gpt2", "[/x]", "x" * 300, "/dev/null", str(folder), *files.values()],
        "hardware": [
            "h100",
            "a100",
            str(folder / "gpu [red].yaml"),
            str(folder / "bomb.yaml"),
            str(folder / "tiny.yaml"),
            "nope",
        ],
        "path": [str(folder / "missing" / "out.json"), str(folder)],
    }


def fuzz_cli(n: int, seed: int = 0, slow_s: float | None = SLOW_S) -> list[str]:
    """Run ``n`` CLI invocations with hostile arguments in process; return the problems found."""
    from typer.testing import CliRunner

    from rooflens.cli import app

    runner = CliRunner()
    rng = random.Random(seed)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        pools = {**CLI_VALUES, **_cli_files(Path(tmp))}
        for i in range(n):
            args = [rng.choice(pools[a[1:-1]]) if a.startswith("{") else a for a in rng.choice(CLI_BASES)]
            start = time.perf_counter()
            result = runner.invoke(app, args, env={"COLUMNS": "100"})
            took = time.perf_counter() - start
            crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
            shown = [a if len(a) <= 40 else a[:37] + "..." for a in args]
            if crashed or result.exit_code not in (0, 2) or "Traceback" in result.output:
                problems.append(f"#{i} {shown}: exit {result.exit_code} {result.exception!r}"[:400])
            if slow_s is not None and took > slow_s:
                problems.append(f"#{i} {shown}: {took:.1f} s")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=5000)
    parser.add_argument("--cli", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    web = fuzz_web(args.bodies, args.seed)
    print(f"{args.bodies:,} API bodies: {len(web)} problems ({time.perf_counter() - start:.0f} s)")
    start = time.perf_counter()
    cli = fuzz_cli(args.cli, args.seed)
    print(f"{args.cli:,} CLI runs: {len(cli)} problems ({time.perf_counter() - start:.0f} s)")
    for line in (web + cli)[:50]:
        print(" ", line)
    return 1 if web or cli else 0


if __name__ == "__main__":
    sys.exit(main())
