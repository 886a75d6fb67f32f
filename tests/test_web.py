"""The web API: every endpoint, bad input with readable 4xx messages, the caps, and no 5xx ever."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rooflens
from rooflens.web import create_app
from rooflens.web.schemas import MAX_BODY_BYTES, MAX_COMPARE, MAX_GEN


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def test_catalog_endpoints(client):
    models = client.get("/api/models").json()
    assert {"llama-3-8b", "mixtral-8x7b", "deepseek-v3"} <= {m["name"] for m in models}
    assert all(m["params"] > 0 and m["source"] for m in models)
    hardware = client.get("/api/hardware").json()
    h100 = next(h for h in hardware if h["name"] == "h100-sxm")
    assert h100["memory_bandwidth"] == pytest.approx(3.35e12) and h100["sources"]


def test_analyze_matches_the_python_api(client):
    body = {"model": "llama-3-8b", "hardware": "a100", "batch": 4, "prompt": 512, "gen": 64, "w_bits": 4}
    got = client.post("/api/analyze", json=body).json()["report"]
    want = rooflens.analyze("llama-3-8b", "a100", batch=4, prompt=512, gen=64, w_bits=4).to_dict(
        timeline=False
    )
    assert got == json.loads(json.dumps(want))
    assert "timeline" not in got["decode"]
    with_timeline = client.post("/api/analyze", json={**body, "timeline": True}).json()["report"]
    assert len(with_timeline["decode"]["timeline"]["step_time_s"]) == 63


def test_analyze_figures_read_the_report(client):
    data = client.post("/api/analyze", json={"model": "llama-3-8b", "batch": 2, "figures": True}).json()
    figs, report = data["figures"], data["report"]
    assert set(figs) == {"roofline", "breakdown", "memory", "timeline", "block_prefill", "block_decode"}
    weights = next(t for t in figs["memory"]["data"] if t["name"].startswith("weights"))
    assert weights["x"][0] == pytest.approx(report["memory"]["weights_bytes"] / 1e9)
    nodes = next(t for t in figs["block_decode"]["data"] if t.get("customdata"))
    decode_ops = [o for o in report["ops"] if o["phase"] == "decode"]
    assert [decode_ops[i]["name"] for i in nodes["customdata"]] == nodes["text"]


# A small pasted config.json and a device described field by field (units as text), for the tests
# that send data instead of catalog names.
TINY_CONFIG = {
    "model_type": "llama", "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8,
    "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 32000,
}  # fmt: skip
TINY_DEVICE = {
    "name": "mine",
    "memory_bytes": "24 GB",
    "memory_bandwidth": "1 TB/s",
    "peak_flops": {"fp16": 1e14},
}


def test_custom_config_and_hardware(client):
    config, device = TINY_CONFIG, TINY_DEVICE
    res = client.post("/api/analyze", json={"config": config, "custom_hardware": device, "gen": 16})
    assert res.status_code == 200, res.text
    report = res.json()["report"]
    assert report["hardware"]["memory_bandwidth"] == 1e12 and report["model"]["layers"] == 8
    assert report == json.loads(json.dumps(rooflens.analyze(config, device, gen=16).to_dict(timeline=False)))


def test_plan_and_simulate_take_a_config_and_a_device_spec(client):
    """A pasted config.json plans and serves as a catalog model does; a described device serves."""
    from rooflens.plan import plan
    from rooflens.serving import simulate

    config, device = TINY_CONFIG, TINY_DEVICE
    body = {"config": config, "ttft": 0.2, "tpot": 0.01, "quants": ["fp8"], "hardware": ["h100-sxm", "l4"]}
    got = client.post("/api/plan", json=body).json()["plan"]
    want = plan(
        config, prompt=1024, gen=256, ttft=0.2, tpot=0.01, quants=["fp8"], hardware=["h100-sxm", "l4"]
    )
    assert got["entries"] == json.loads(rooflens.render.to_json(want.to_dict(), indent=None))["entries"][:20]
    sim = {"config": config, "custom_hardware": device, "rate": 2, "requests": 50, "gen": 32}
    summary = client.post("/api/simulate", json=sim).json()["summary"]
    assert summary == json.loads(
        rooflens.render.to_json(simulate(config, device, rate=2, requests=50, gen=32).summary, indent=None)
    )
    # One of model or config, always.
    for path, bad in (("/api/plan", {**body, "config": None}), ("/api/simulate", {**sim, "config": None})):
        res = client.post(path, json=bad)
        assert res.status_code == 422 and "give `model` (a catalog name) or `config`" in res.text


def test_csv_export(client):
    res = client.post("/api/analyze", json={"model": "gpt2", "format": "csv"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert res.text.splitlines()[0].startswith("name,phase,block,kind")


def test_compare(client):
    body = {"analyses": [{"model": "llama-3-8b"}, {"model": "llama-3-8b", "w_bits": 4}], "figures": True}
    data = client.post("/api/compare", json=body).json()
    assert [a["label"] for a in data["comparison"]["analyses"]] == ["w_bits=16", "w_bits=4"]
    assert data["figure"]["data"][0]["x"] == ["w_bits=16", "w_bits=4"]


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/analyze", "/api/compare", "/api/models", "/api/hardware"} <= set(paths)
    assert "AnalyzeRequest" in json.dumps(paths["/api/analyze"])


def test_page_and_bundled_plotly(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text and "cdn" not in page.text.lower()
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "llama-3-8x"}, 400, "Did you mean 'llama-3-8b'"),
        ({"hardware": "h1000"}, 400, "unknown hardware 'h1000'"),
        ({"batch": 0}, 422, "batch: Input should be greater than or equal to 1"),
        ({"gen": MAX_GEN + 1}, 422, "gen: Input should be less than or equal to"),
        ({"w_bits": 12}, 422, "w_bits: Input should be 1, 2, 3, 4, 5, 6, 7, 8, 16 or 32"),
        ({"w_bits": True}, 422, "w_bits takes a number of bits, not true"),  # true == 1 in Python
        ({"settings": {"tp": 3}}, 400, "does not divide"),
        ({"settings": {"batch": 2}}, 422, "give batch as top-level fields"),
        ({"settings": {"quant": "fp8"}}, 422, "give quant as top-level fields"),
        ({"settings": {"hub": True}}, 422, "never fetches configs"),
        ({"settings": {"warp_speed": 9}}, 400, "warp_speed"),
        ({"bogus": 1}, 422, "bogus: Extra inputs are not permitted"),
        ({"model": None, "config": None}, 422, "give `model`"),
        ({"config": {"model_type": "llama"}}, 400, "hidden_size"),
        ({"config": {"model_type": "mamba"}}, 400, "mamba"),
        ({"custom_hardware": {"name": "x", "memory_bytes": 1}}, 400, "memory_bandwidth"),
        ({"quant": "q3_z"}, 400, "q3_z"),
    ],
)
def test_bad_input_is_a_readable_4xx(client, body, status, message):
    res = client.post("/api/analyze", json=body)
    assert res.status_code == status, res.text
    assert message in res.json()["detail"]


def test_deep_nesting_is_a_4xx(client):
    """A body nested past MAX_BODY_DEPTH (32) levels is refused up front: 300 levels of lists inside
    `settings` (530 bytes) was a 500 once, when serialising the request for the cache failed."""
    from rooflens.web.schemas import MAX_BODY_DEPTH

    assert MAX_BODY_DEPTH == 32
    for path, head, tail in (
        ("/api/analyze", '{"settings":{"tp":', "}}"),
        ("/api/plan", '{"ttft":1,"tpot":1,"config":{"x":', "}}"),
        ("/api/fit", '{"custom_hardware":{"x":', "}}"),
        ("/api/compare", '{"analyses":[{"settings":{"x":', '}},{"model":"gpt2"}]}'),
    ):
        body = head + "[" * 300 + "]" * 300 + tail
        res = client.post(path, content=body, headers={"content-type": "application/json"})
        assert res.status_code == 422 and "more than 32 levels deep" in res.json()["detail"], (path, res.text)
    # The body and `settings` are two levels: 31 lists inside make 33 (past the cap), 30 make 32.
    nested = lambda n: {"model": "gpt2", "settings": {"x": json.loads("[" * n + "]" * n)}}  # noqa: E731
    assert client.post("/api/analyze", json=nested(31)).status_code == 422
    res = client.post("/api/analyze", json=nested(30))
    assert res.status_code == 400 and "x" in res.json()["detail"]  # an unknown setting, not a depth


def test_errors_name_the_api_fields_not_the_command_line_options(client):
    """The core words its errors for the command line (--tp, --requests, --price NAME=USD); an API
    client reads its own fields instead: settings.tp for an analysis, tp for a plan, requests, prices."""
    from rooflens.web.app import api_wording

    res = client.post("/api/analyze", json={"model": "llama-3-8b", "settings": {"tp": 3}})
    assert res.status_code == 400 and "settings.tp 3 does not divide" in res.json()["detail"]
    res = client.post("/api/plan", json={"model": "llama-3-8b", "ttft": 1, "tpot": 1, "tp": [3],
                                         "quants": ["fp8"], "hardware": ["h100"]})  # fmt: skip
    detail = res.json()["detail"]
    assert res.status_code == 400 and "tp 3 does not divide" in detail and "--tp" not in detail
    res = client.post("/api/plan", json={"model": "llama-3-8b", "ttft": 1, "tpot": 1, "hardware": ["mi300x"]})
    assert res.status_code == 400 and "or `prices` in Python" in res.json()["detail"]
    assert api_wording("give --requests 2048 or more", "/api/simulate") == "give requests 2048 or more"
    assert api_wording("raise --devices-per-node", "/api/analyze") == "raise settings.devices_per_node"
    assert api_wording("run it with --ideal", "/api/simulate") == 'run it with basis "ideal"'
    # an option the endpoint has no field for stays as written; so does any text off the API
    assert api_wording("--max-num-seqs 4", "/api/simulate") == "--max-num-seqs 4"
    assert api_wording("--tp 3", "/docs") == "--tp 3"


def test_a_device_listed_by_the_api_can_be_sent_back(client):
    """GET /api/hardware's entries carry the derived ridge point; sent back as `custom_hardware` they
    analyse as the catalog name does. A ridge point that disagrees with the spec is refused."""
    h100 = next(h for h in client.get("/api/hardware").json() if h["name"] == "h100-sxm")
    body = {"model": "llama-3-8b", "batch": 4}
    by_name = client.post("/api/analyze", json={**body, "hardware": "h100-sxm"}).json()["report"]
    by_spec = client.post("/api/analyze", json={**body, "custom_hardware": h100}).json()["report"]
    assert by_spec["decode"] == by_name["decode"] and by_spec["prefill"] == by_name["prefill"]
    res = client.post("/api/analyze", json={**body, "custom_hardware": {**h100, "ridge_point_fp16": 5}})
    assert res.status_code == 400 and "ridge_point_fp16 is derived" in res.json()["detail"]


def test_no_file_is_read_from_client_paths(client, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 1, "n_head": 2}))
    for body in (
        {"model": str(config)},
        {"hardware": str(tmp_path / "hw.yaml")},
        {"settings": {"draft_model": str(config)}},
    ):
        res = client.post("/api/analyze", json=body)
        assert res.status_code == 400 and "unknown" in res.json()["detail"], res.text


def test_caps(client):
    big = json.dumps({"model": "gpt2", "config": {"pad": "x" * MAX_BODY_BYTES}}).encode()
    res = client.post("/api/analyze", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413 and "KiB" in res.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(MAX_BODY_BYTES // 1000 + 2):
            yield b" " * 1000

    res = client.post("/api/analyze", content=chunks(), headers={"content-type": "application/json"})
    assert res.status_code == 413
    deep = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 5000,
            "num_attention_heads": 4, "vocab_size": 100}  # fmt: skip
    res = client.post("/api/analyze", json={"config": deep})
    detail = res.json()["detail"]
    assert res.status_code == 400 and "num_hidden_layers" in detail and "0 to 1024" in detail, detail
    many = {"analyses": [{"model": "gpt2"}] * (MAX_COMPARE + 1)}
    assert client.post("/api/compare", json=many).status_code == 422
    assert client.post("/api/compare", json={"analyses": [{"model": "gpt2"}]}).status_code == 422


MODELS = ["gpt2", "llama-3-8b", "mixtral-8x7b", "deepseek-v2-lite", "gemma-2-9b", "qwen3-30b-a3b"]
HARDWARE = ["h100-sxm", "a100", "rtx-4090", "m2-ultra", "mi300x", "tpu-v5e"]

requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "hardware": st.sampled_from(HARDWARE),
        "batch": st.integers(1, 65_536),
        "prompt": st.integers(1, 1_048_576),
        "gen": st.integers(1, 4096),
        "w_bits": st.sampled_from([4, 8, 16, 32]),
        "a_bits": st.sampled_from([4, 8, 16, 32]),
        "kv_bits": st.sampled_from([4, 8, 16, 32]),
        "flash_attention": st.booleans(),
        "kv_cache": st.booleans(),
        "figures": st.booleans(),
    },
    optional={
        "quant": st.sampled_from(["q4_0", "fp8", "awq", "w8a8", "nope"]),
        "settings": st.fixed_dictionaries(
            {},
            optional={
                "tp": st.integers(1, 16),
                "pp": st.integers(1, 8),
                "ep": st.integers(1, 8),
                "sparsity": st.sampled_from(["2:4", "1:4", "4:2", "x"]),
                "kv_budget": st.integers(-5, 10_000),
                "exit_fraction": st.floats(-0.5, 1.5, allow_nan=False),
                "shared_prefix": st.integers(0, 5000),
                "draft_model": st.sampled_from(["llama-3.2-1b", "gpt2", "nope"]),
                "routing_skew": st.floats(0, 5, allow_nan=False),
                "prompt_keep": st.floats(0, 1, allow_nan=False),
                "engine": st.sampled_from(["llama.cpp-cuda", "tensorrt-llm", "nope", None]),
                "mla_absorb": st.sampled_from(["auto", "always", "never", "sometimes"]),
                "exit_distribution": st.lists(st.floats(0, 1, allow_nan=False), max_size=3),
                "quant": st.just("fp8"),
                "overhead_bytes": st.floats(-1, 1e12, allow_nan=False),
            },
        ),
    },
)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a NaN or an overflow is a silently wrong number
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=requests)
def test_random_requests_never_5xx(client, body):
    res = client.post("/api/analyze", json=body)
    assert res.status_code in (200, 400, 422), (body, res.status_code, res.text[:500])
    if res.status_code != 200:
        detail = res.json()["detail"]
        assert isinstance(detail, str) and detail


def _counting(monkeypatch):
    """Count the analyses the web layer asks the core for."""
    import rooflens.web.app as web_app

    calls = []
    real = web_app.run_analysis

    def counted(*args, **kwargs):
        calls.append(kwargs.get("batch"))
        return real(*args, **kwargs)

    monkeypatch.setattr(web_app, "run_analysis", counted)
    return calls


def test_identical_requests_are_answered_from_the_cache(monkeypatch):
    calls = _counting(monkeypatch)
    client = TestClient(create_app())
    body = {"model": "gpt2", "hardware": "a100", "batch": 2, "gen": 16, "figures": True}
    first = client.post("/api/analyze", json=body)
    # Same request, keys in another order and a default spelled out: one analysis in all.
    again = client.post("/api/analyze", json={"kv_cache": True, **dict(reversed(body.items()))})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["content-type"] == "application/json"
    assert calls == [2]
    # Any difference is another request: computed, and answered with its own figures.
    other = client.post("/api/analyze", json={**body, "batch": 3})
    assert calls == [2, 3] and other.json()["report"]["settings"]["batch"] == 3
    assert client.post("/api/analyze", json={**body, "figures": False}).json().keys() == {"report"}
    assert calls == [2, 3, 2]
    csv_ = client.post("/api/analyze", json={**body, "format": "csv"})
    assert calls == [2, 3, 2, 2] and csv_.headers["content-type"].startswith("text/csv")
    pair = {"analyses": [{"model": "gpt2", "batch": 5}, {"model": "gpt2", "batch": 6}]}
    assert client.post("/api/compare", json=pair).content == client.post("/api/compare", json=pair).content
    assert calls == [2, 3, 2, 2, 5, 6]
    answers = client.app.state.answers
    assert (answers.hits, answers.misses, len(answers)) == (2, 5, 5)


def test_errors_are_never_cached(monkeypatch):
    import rooflens.web.app as web_app

    calls = _counting(monkeypatch)
    client = TestClient(create_app())
    bad = {"model": "llama-3-8b", "settings": {"tp": 3}}
    for _ in range(2):  # each time analysed again, and the same 400
        res = client.post("/api/analyze", json=bad)
        assert res.status_code == 400 and "does not divide" in res.json()["detail"]
    assert len(calls) == 2 and len(client.app.state.answers) == 0
    # A failure that would not happen again (here: faked) must not stick to the request.
    real, failed = web_app.run_analysis, []

    def once_broken(*args, **kwargs):
        if not failed:
            failed.append(1)
            raise rooflens.RooflensError("transient")
        return real(*args, **kwargs)

    monkeypatch.setattr(web_app, "run_analysis", once_broken)
    body = {"model": "gpt2", "batch": 7}
    assert client.post("/api/analyze", json=body).status_code == 400
    assert client.post("/api/analyze", json=body).status_code == 200


def test_the_cache_keeps_only_the_most_recent_answers(monkeypatch):
    calls = _counting(monkeypatch)
    client = TestClient(create_app(cache_entries=2))
    for batch in (1, 2, 3, 3, 2):  # 1 falls out when 3 comes in; 3 and 2 are answered from memory
        assert (
            client.post("/api/analyze", json={"model": "gpt2", "gen": 8, "batch": batch}).status_code == 200
        )
    assert calls == [1, 2, 3]
    client.post("/api/analyze", json={"model": "gpt2", "gen": 8, "batch": 1})
    assert calls == [1, 2, 3, 1] and len(client.app.state.answers) == 2
    off = TestClient(create_app(cache_entries=0))
    for _ in range(2):
        off.post("/api/analyze", json={"model": "gpt2", "gen": 8})
    assert len(calls) == 6


def test_answer_cache_bounds_entries_and_bytes():
    import sys

    from rooflens.web.cache import AnswerCache

    cache = AnswerCache(max_entries=3, max_bytes=80_000)
    for i in range(10):
        cache.put(f"k{i}", bytes(5000), "application/json")
        assert len(cache) <= 3
    assert [k for k in ("k7", "k8", "k9") if cache.get(k)] == ["k7", "k8", "k9"]
    assert cache.get("k6") is None
    cache.get("k7")  # used: now the most recent, so k8 goes first
    cache.put("k10", b"x", "text/csv")
    assert cache.get("k8") is None and cache.get("k7") is not None
    cache.put("huge", bytes(80_000 // 8), "application/json")  # over an eighth of the budget: not kept
    assert cache.get("huge") is None
    for i in range(4):
        cache.put(f"b{i}", bytes(9000), "application/json")
    assert cache.size_bytes <= 80_000 and len(cache) == 3
    assert cache.size_bytes == sum(sys.getsizeof(f"b{i}") + sys.getsizeof(bytes(9000)) for i in (1, 2, 3))
    with pytest.raises(ValueError, match=">= 0"):
        AnswerCache(max_entries=-1)


def test_large_answers_are_gzipped_small_ones_not(client):
    import gzip

    from rooflens.web.app import GZIP_MIN_BYTES

    body = {"model": "llama-3-8b", "batch": 3, "figures": True}
    # Read the raw bytes off the wire: httpx would otherwise decompress them out of sight.
    with client.stream("POST", "/api/analyze", json=body, headers={"Accept-Encoding": "gzip"}) as res:
        raw = b"".join(res.iter_raw())
        assert res.status_code == 200 and res.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in res.headers["vary"].lower()
    data = json.loads(gzip.decompress(raw))
    assert len(raw) < len(json.dumps(data)) / 4 and data["report"]["settings"]["batch"] == 3
    plain = client.post("/api/analyze", json=body, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == data
    small = client.post("/api/analyze", json={"hardware": "h1000"}, headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 400 and len(small.content) < GZIP_MIN_BYTES
    assert "content-encoding" not in small.headers
    js = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert js.headers["content-encoding"] == "gzip" and len(js.content) > 1_000_000


def test_a_repeated_answer_is_compressed_once(monkeypatch):
    """The cache keeps a large answer gzipped for clients that take gzip: asking again sends the
    same compressed bytes without compressing them again (the middleware passes them through)."""
    import gzip

    import rooflens.web.app as web_app

    calls = []
    real = gzip.compress

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(web_app.gzip, "compress", counting)
    client = TestClient(create_app())
    body = {"model": "llama-3-8b", "batch": 5, "figures": True}
    raws = []
    for _ in range(3):
        with client.stream("POST", "/api/analyze", json=body, headers={"Accept-Encoding": "gzip"}) as res:
            raws.append(b"".join(res.iter_raw()))
            assert res.headers["content-encoding"] == "gzip"
    assert len(calls) == 1 and raws[0] == raws[1] == raws[2]
    assert json.loads(gzip.decompress(raws[0]))["report"]["settings"]["batch"] == 5
    # A client that does not take gzip gets plain JSON, with the same content.
    plain = client.post("/api/analyze", json=body, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == gzip.decompress(raws[0])


def _accepted_nodelay(http) -> int:
    """TCP_NODELAY on a connection a uvicorn server accepted from a socket bound as uvicorn binds
    it for `--workers N` (protocol 0), with the given HTTP protocol."""
    import asyncio
    import socket

    import uvicorn

    async def hello(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    async def run() -> int:
        listener = socket.socket(socket.AF_INET)
        listener.bind(("127.0.0.1", 0))
        assert listener.proto == 0
        server = uvicorn.Server(uvicorn.Config(hello, http=http, lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        (conn,) = server.server_state.connections
        nodelay = conn.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.should_exit = True
        await task
        return nodelay

    return asyncio.run(run())


def test_worker_connections_send_answers_without_waiting_for_acks():
    from rooflens.web.serving import NoDelayHTTP

    # Nagle on would hold each answer's body ~40 ms for the client's delayed ACK of its headers.
    assert _accepted_nodelay(NoDelayHTTP) != 0


def test_docs_pages_load_their_assets_from_this_server(client):
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assert "http://" not in html and "https://" not in html, path
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        res = client.get("/docs-assets/" + name)
        assert res.status_code == 200 and len(res.content) > 10_000, name
    res = client.get("/docs-assets/../app.py")
    assert res.status_code == 404
    res = client.get("/docs-assets/nope.js")
    assert res.status_code == 404 and "swagger-ui.css" in res.json()["detail"]


def test_formats_endpoint_is_the_shared_table(client):
    from rooflens import formats

    data = client.get("/api/formats").json()
    assert [f["name"] for f in data["weights"]] == list(formats.FORMATS)
    assert [k["name"] for k in data["kv"]] == list(formats.KV_FORMATS)
    assert data["aliases"] == formats.ALIASES
    nvfp4 = next(f for f in data["weights"] if f["name"] == "nvfp4")
    assert nvfp4["bits_per_value"] == 4.5 and nvfp4["settings"]["group_size"] == 16  # 4 + 8/16
    # Every listed name is accepted by /api/analyze.
    for f in data["weights"]:
        assert client.post("/api/analyze", json={"model": "gpt2", "quant": f["name"]}).status_code == 200
    for k in data["kv"]:
        body = {"model": "gpt2", "settings": {"kv_format": k["name"]}}
        assert client.post("/api/analyze", json=body).status_code == 200, k


def test_fit_offers_ways_out(client):
    from rooflens.analysis import fits_with

    body = {"model": "deepseek-v3", "hardware": "h200", "w_bits": 16, "a_bits": 16}
    data = client.post("/api/fit", json=body).json()
    want = [o.to_dict() for o in fits_with("deepseek-v3", "h200", w_bits=16, a_bits=16)]
    assert data == {"fits": False, "options": json.loads(json.dumps(want))}
    assert data["options"][0]["change"] == {"quant": "fp8", "tp": 8}
    # Applying an option through /api/analyze (the format replaces the explicit bits) fits.
    applied = {"model": "deepseek-v3", "hardware": "h200", "quant": "fp8", "settings": {"tp": 8}}
    assert client.post("/api/analyze", json=applied).json()["report"]["memory"]["fits"]
    assert client.post("/api/fit", json={"model": "gpt2"}).json() == {"fits": True, "options": []}
    res = client.post("/api/fit", json={"model": "gpt2", "hardware": "nope"})
    assert res.status_code == 400 and "nope" in res.json()["detail"]


def test_block_graph_layer_group(client):
    body = {"model": "deepseek-v3", "hardware": "h200", "figures": True, "block_group": "mla"}
    fig = client.post("/api/analyze", json=body).json()["figures"]["block_decode"]
    assert "(mla layers)" in fig["layout"]["title"]["text"]
    res = client.post("/api/analyze", json={**body, "block_group": "nope"})
    assert res.status_code == 400 and "'mla, moe'" in res.json()["detail"]


def test_plan_endpoint_is_the_python_plan(client):
    from rooflens.plan import plan

    body = {"model": "llama-3-8b", "ttft": 0.5, "tpot": 0.05, "hardware": ["h100-sxm", "a100"], "top": 3}
    data = client.post("/api/plan", json={**body, "figure": True}).json()
    result = plan("llama-3-8b", prompt=1024, gen=256, ttft=0.5, tpot=0.05, hardware=["h100-sxm", "a100"])
    want = json.loads(rooflens.render.to_json(result.to_dict(), indent=None))
    assert (
        data["plan"]["entries"] == want["entries"][:3] and data["plan"]["explanation"] == want["explanation"]
    )
    # The figure: every candidate that fits, cost against TPOT, the TPOT target dashed.
    names = {t["name"] for t in data["figure"]["data"]}
    assert names >= {"h100-sxm", "a100-sxm-80gb"} and data["figure"]["layout"]["shapes"][0]["x0"] == 0.05
    assert "figure" not in client.post("/api/plan", json=body).json()
    # Bounds: 422 with the field, and a rooflens error as a 400 sentence.
    bad = [
        {**body, "hardware": ["h100-sxm"] * 17},
        {**body, "tp": [128]},
        {**body, "ttft": 0},
        {**body, "top": 1000},
        {**body, "prices": {"h100-sxm": -1}},
    ]
    for b in bad:
        assert client.post("/api/plan", json=b).status_code == 422, b
    res = client.post("/api/plan", json={**body, "quants": ["fp7"]})
    assert res.status_code == 400 and "fp7" in res.json()["detail"]


def test_plan_work_is_capped_before_the_search_runs(client, monkeypatch):
    """A plan's search is priced before it runs (configurations x (1 + gen / 4096)) and refused over
    MAX_PLAN_WORK = 180: every priced device (15) x 5 formats x 2 KV formats x 4 TP degrees at 256
    generated tokens is 600 x 1.0625 = 637.5; one format is 120 x 1.0625 = 127.5; one format at
    8,192 generated tokens is 120 x 3 = 360."""
    import rooflens.plan
    from rooflens.hardware.prices import bundled_prices
    from rooflens.plan import search_size

    priced = len(bundled_prices())
    assert search_size(gen=256) == (priced * 40, priced * 40 * (1 + 256 / 4096))
    assert search_size(gen=4096, quants=["fp8"], allow_offload=True) == (priced * 32, priced * 32 * 2)

    def never(*args, **kwargs):
        raise AssertionError("the search should have been refused before it ran")

    monkeypatch.setattr(rooflens.plan, "plan", never)
    body = {"model": "llama-3-8b", "ttft": 0.5, "tpot": 0.05}
    for extra, work in (({}, priced * 40 * 1.0625), ({"quants": ["fp8"], "gen": 8192}, priced * 8 * 3)):
        res = client.post("/api/plan", json={**body, **extra})
        detail = res.json()["detail"]
        assert (
            res.status_code == 400
            and f"{work:.0f} units of work" in detail
            and "over this server's 180" in detail
        )
    # A repeated name is one format (a repeat once ran the search again, past the cap: 20 s).
    assert search_size(gen=256, quants=["fp8"] * 8, kv_formats=["fp8", "FP8"], tp=[1, 1]) == (
        priced,
        priced * (1 + 256 / 4096),
    )
    monkeypatch.undo()
    assert client.post("/api/plan", json={**body, "quants": ["fp8"]}).status_code == 200


def test_simulate_endpoint_is_the_python_simulation(client):
    from rooflens.serving import simulate, sweep_concurrency

    body = {"model": "llama-3-8b", "hardware": "h100-sxm", "rate": 4, "requests": 100, "settings": {"tp": 2}}
    data = client.post("/api/simulate", json=body).json()
    want = simulate("llama-3-8b", "h100-sxm", rate=4, requests=100, tp=2).summary
    assert data["summary"] == json.loads(rooflens.render.to_json(want, indent=None))
    sweep = {"model": "llama-3-8b", "concurrencies": [1, 4], "requests": 40, "gen": 64}
    got = client.post("/api/simulate", json=sweep).json()["sweep"]
    want = sweep_concurrency("llama-3-8b", "h100-sxm", [1, 4], requests=40, gen=64)
    assert got == json.loads(rooflens.render.to_json(want, indent=None))
    # Arrivals at a rate with a cap on requests in flight (vllm bench serve --request-rate --max-concurrency).
    capped = {"model": "llama-3-8b", "rate": 8, "concurrency": 2, "requests": 30, "gen": 32}
    data = client.post("/api/simulate", json=capped).json()
    want = simulate("llama-3-8b", "h100-sxm", rate=8, concurrency=2, requests=30, gen=32).summary
    assert data["summary"] == json.loads(rooflens.render.to_json(want, indent=None))
    assert data["summary"]["mode"] == "capped"
    bad = [
        {"model": "llama-3-8b"},  # no load
        {"model": "llama-3-8b", "rate": 1, "concurrencies": [1, 2]},  # a sweep sets the load itself
        {"model": "llama-3-8b", "concurrency": 2, "concurrencies": [1, 2]},
        {"model": "llama-3-8b", "rate": 1, "requests": 5000},
        {"model": "llama-3-8b", "concurrencies": [1] * 17},
        {"model": "llama-3-8b", "concurrencies": [1, 2, 4, 8, 16], "requests": 2000},  # 10,000 in all
        {"model": "llama-3-8b", "concurrency": 5000},
        {"model": "llama-3-8b", "rate": 1, "settings": {"requests": 3}},
        # simulate's own arguments are top-level fields or not settable: never passed twice (a 500 once)
        {"model": "llama-3-8b", "rate": 1, "settings": {"random_range_ratio": 0.5}},
        {"model": "llama-3-8b", "rate": 1, "settings": {"max_work": 1e12}},
        {"model": "llama-3-8b", "concurrencies": [1, 2], "settings": {"max_work": 1e12}},
        {"model": "llama-3-8b", "rate": 1, "random_range_ratio": 1.0},  # the core takes [0, 1)
        # instances: at most 16 in all, as replicas (1,024 + 1,024 took 7 s to refuse)
        {"model": "llama-3-8b", "rate": 1, "settings": {"disaggregate": [1024, 1024]}},
        {"model": "llama-3-8b", "rate": 1, "settings": {"disaggregate": [8, 9]}},
        {"model": "llama-3-8b", "rate": 1, "settings": {"disaggregate": [0, 2]}},
        # 2,000 requests x 1,024 tokens = 2,048,000 generated tokens: past the 1,000,000 a request may take
        {"model": "llama-3-8b", "rate": 1, "requests": 2000, "gen": 1024},
    ]
    for b in bad:
        res = client.post("/api/simulate", json=b)
        assert res.status_code == 422 and res.json()["detail"], b
    assert "2,048,000 generated tokens" in res.json()["detail"]
    # Both replicas and disaggregate set the instances: refused, not one silently ignored.
    both = {"model": "llama-3-8b", "concurrency": 4, "requests": 50, "replicas": 4}
    res = client.post("/api/simulate", json={**both, "settings": {"disaggregate": [1, 1]}})
    assert res.status_code == 400 and "not both" in res.json()["detail"], res.text
    res = client.post("/api/simulate", json={"model": "./secret.json", "rate": 1})
    assert res.status_code == 400
    res = client.post("/api/simulate", json={"model": "llama-3-8b", "hardware": "nope", "rate": 1})
    assert res.status_code == 400 and "nope" in res.json()["detail"]


def test_simulate_work_is_capped_and_a_sweep_has_its_figure(client):
    """Inside every size cap, one user sending 2,000 requests of 500 tokens is a million engine steps
    (11 units each: 11,000,000 units, 7-8 s): refused at MAX_SIM_WORK = 1,000,000 units. From 256
    users, 2,000 requests of 300 tokens fit: about 2,350 steps of up to 256 sequences, 951,000 units."""
    from rooflens.web.schemas import MAX_SIM_WORK

    assert MAX_SIM_WORK == 1_000_000
    heavy = {"model": "llama-3-8b", "concurrency": 1, "requests": 2000, "gen": 500}
    res = client.post("/api/simulate", json=heavy)
    detail = res.json()["detail"]
    assert res.status_code == 400 and "more than the 1,000,000 units of work allowed per run" in detail
    assert "rooflens simulate` locally" in detail
    assert client.post("/api/simulate", json={**heavy, "concurrency": 256, "gen": 300}).status_code == 200
    # A sweep asked with its figure: throughput per device against per user, one point per users.
    body = {"model": "llama-3-8b", "concurrencies": [1, 2, 4, 8], "requests": 40, "gen": 64, "figure": True}
    data = client.post("/api/simulate", json=body).json()
    points = data["figure"]["data"][0]
    assert points["text"] == ["C=1", "C=2", "C=4", "C=8"]
    assert [s["concurrency"] for s in data["sweep"]] == [1, 2, 4, 8]
