"""The web page in a real browser: Playwright driving Debian's Chromium against `rooflens serve`.

scripts/test.sh installs Chromium and sets ROOFLENS_REQUIRE_BROWSER=1, so in CI a missing browser
fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time

import httpx
import pytest

CHROMIUM = os.environ.get("ROOFLENS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("ROOFLENS_REQUIRE_BROWSER"):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: scripts/test.sh installs Debian's chromium package")
    pytest.skip("no Chromium here (scripts/test.sh installs it)", allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from rooflens.web import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/api/hardware", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 1600})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert not errors, errors


WIDTHS = {"desktop": 1280, "phone": 360}


@pytest.fixture(params=list(WIDTHS))
def sized(browser, request):
    """A page at a desktop's width (1280 px) and at a phone's (360 px)."""
    pg = browser.new_page(viewport={"width": WIDTHS[request.param], "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert not errors, errors


def wait_render(page, n: int) -> None:
    """At least ``n`` renders, the last one of the state the URL now holds."""
    page.wait_for_function(
        f"Number(document.body.dataset.renders || 0) >= {n}"
        " && document.body.dataset.rendered === location.search",
        timeout=20_000,
    )


def shown(page) -> dict[str, float]:
    return {
        key: float(page.get_attribute(f"#{key}", "data-value"))
        for key in ("ttft", "tpot", "memory", "throughput")
    }


def api(server, **body) -> dict[str, float]:
    r = httpx.post(server + "/api/analyze", json=body, timeout=30).json()["report"]
    return {
        "ttft": r["ttft_s"],
        "tpot": r["decode"]["tpot_s"],
        "memory": r["memory"]["total_bytes"],
        "throughput": r["throughput_tokens_per_s"],
    }


def plot_title(page, name: str) -> str:
    return page.evaluate(f"document.getElementById('plot-{name}').layout.title.text")


def test_controls_drive_numbers_and_plots(server, page):
    page.goto(server + "/")
    wait_render(page, 1)
    assert shown(page) == api(server, model="llama-3-8b", hardware="h100-sxm", batch=1, w_bits=16)

    page.fill("#model", "qwen2.5-7b")
    page.dispatch_event("#model", "change")
    wait_render(page, 2)
    assert shown(page) == api(server, model="qwen2.5-7b", batch=1)
    assert "qwen2.5-7b" in plot_title(page, "roofline")

    page.fill("#batch", "16")
    page.dispatch_event("#batch", "change")
    wait_render(page, 3)
    assert shown(page) == api(server, model="qwen2.5-7b", batch=16)
    assert page.input_value("#batch-range") == "4"  # the slider follows: 2**4

    page.select_option("#w-bits", "4")
    wait_render(page, 4)
    want = api(server, model="qwen2.5-7b", batch=16, w_bits=4)
    assert shown(page) == want
    report = httpx.post(
        server + "/api/analyze", json={"model": "qwen2.5-7b", "batch": 16, "w_bits": 4}, timeout=30
    ).json()["report"]
    # The memory plot was redrawn with the 4-bit weights.
    weights_gb = page.evaluate("document.getElementById('plot-memory').data[0].x[0]")
    assert weights_gb == pytest.approx(report["memory"]["weights_bytes"] / 1e9)

    # The URL carries the state.
    assert "model=qwen2.5-7b" in page.url and "batch=16" in page.url and "w=4" in page.url

    # Clicking an operator in the block graph shows its figures.
    page.locator("#plot-block .scatterlayer .trace").nth(1).locator("path.point").first.click(force=True)
    page.wait_for_function("document.getElementById('op-detail').dataset.op !== undefined", timeout=5000)
    assert page.get_attribute("#op-detail", "data-op") == "attn_norm"
    assert "memory-bound" in page.inner_text("#op-detail")

    # Sorting the operator table by FLOPs puts the largest first.
    page.click("#op-table th[data-key=flops]")
    first = page.inner_text("#op-table tbody tr:first-child td:first-child")
    assert first == max(report["ops"], key=lambda o: o["flops"])["name"]


def test_engine_choice_and_estimate_ranges(server, page):
    page.goto(server + "/?model=llama-3-8b&hardware=h100-sxm&batch=8")
    wait_render(page, 1)
    assert "vllm" in page.inner_text("#estimate-info")  # NVIDIA's default engine
    page.select_option("#engine", "sglang")
    wait_render(page, 2)
    body = {"model": "llama-3-8b", "hardware": "h100-sxm", "batch": 8, "settings": {"engine": "sglang"}}
    r = httpx.post(server + "/api/analyze", json=body, timeout=30).json()["report"]
    assert float(page.get_attribute("#tpot-est", "data-value")) == r["decode"]["tpot_estimate_s"]
    lo, hi = r["tpot_estimate_range_s"]
    text = page.inner_text("#tpot-est")
    # The page shows three significant digits, trailing zeros kept ("4.60 ms").
    shown_range = re.search(r"p10–p90 ([\d.]+) ms – ([\d.]+) ms", text)
    assert shown_range, text
    assert [float(v) for v in shown_range.groups()] == [float(f"{v * 1e3:.3g}") for v in (lo, hi)]
    info = page.inner_text("#estimate-info")
    assert "sglang" in info and r["estimate"]["scope"] in info
    assert "engine=sglang" in page.url
    engines = httpx.get(server + "/api/engines", timeout=30).json()
    assert {e["name"] for e in engines} >= {"vllm", "sglang", "tensorrt-llm", "llama.cpp"}


def test_a_shared_url_brings_the_same_view_back(server, page, browser):
    page.goto(server + "/")
    wait_render(page, 1)
    page.fill("#model", "mixtral-8x7b")
    page.dispatch_event("#model", "change")
    wait_render(page, 2)
    page.select_option("#kv-bits", "8")
    wait_render(page, 3)
    page.fill("#prompt", "4096")
    page.dispatch_event("#prompt", "change")
    wait_render(page, 4)
    page.select_option("#block-phase", "prefill")
    url, numbers = page.url, shown(page)

    other = browser.new_page()
    other.goto(url)
    wait_render(other, 1)
    assert other.input_value("#model") == "mixtral-8x7b"
    assert other.input_value("#kv-bits") == "8" and other.input_value("#prompt") == "4096"
    assert other.input_value("#block-phase") == "prefill"
    assert shown(other) == numbers == api(server, model="mixtral-8x7b", prompt=4096, kv_bits=8)
    assert "prefill" in plot_title(other, "block")
    other.close()


def test_pasted_config_and_custom_device(server, page, browser):
    config = (
        '{"model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 12,'
        ' "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 32000}'
    )
    page.goto(server + "/")
    wait_render(page, 1)
    page.click("#config-box summary")
    page.fill("#config-text", config)
    page.click("#config-apply")
    wait_render(page, 2)
    page.click("#custom-box summary")
    page.fill("#hw-bw", "1.5")
    page.check("#hw-custom")
    wait_render(page, 3)
    device = {
        "name": "my-device",
        "memory_bytes": 80e9,
        "memory_bandwidth": 1.5e12,
        "peak_flops": {"fp16": 300e12},
    }
    assert shown(page) == api(server, config=json.loads(config), custom_hardware=device)
    # ...and a link to it reproduces it.
    other = browser.new_page()
    other.goto(page.url)
    wait_render(other, 1)
    assert shown(other) == shown(page)
    other.close()
    # Serve runs the pasted model on the described device (the simulation's own API answer).
    page.get_by_role("tab", name="Serve").click()
    page.fill("#serve-requests", "40")
    page.click("#serve-run")
    page.wait_for_function("document.body.dataset.served === '1'", timeout=60_000)
    sim = json.loads(page.get_attribute("body", "data-serve-request"))
    assert sim["config"] == json.loads(config) and sim["custom_hardware"] == device and "model" not in sim
    summary = httpx.post(server + "/api/simulate", json=sim, timeout=60).json()["summary"]
    assert float(page.get_attribute("#serve-throughput", "data-value")) == summary["output_tokens_per_s"]
    # A cap on requests in flight beside the rate: the capped load (vllm bench serve --max-concurrency).
    page.fill("#serve-cap", "2")
    page.click("#serve-run")
    page.wait_for_function("document.body.dataset.served === '2'", timeout=60_000)
    sim = json.loads(page.get_attribute("body", "data-serve-request"))
    assert (sim["rate"], sim["concurrency"]) == (4, 2)
    summary = httpx.post(server + "/api/simulate", json=sim, timeout=60).json()["summary"]
    assert summary["mode"] == "capped"
    assert float(page.get_attribute("#serve-throughput", "data-value")) == summary["output_tokens_per_s"]
    page.get_by_role("tab", name="Analyze").click()
    # A bad value is a readable message on the page, not a broken page.
    page.fill("#hw-bw", "-1")
    page.dispatch_event("#hw-bw", "input")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "memory_bandwidth" in page.inner_text("#error")


def offline(page) -> list[str]:
    """Block every request to another host; the list fills with what was blocked."""
    blocked: list[str] = []

    def route(r):
        host = r.request.url.split("/")[2].split(":")[0]
        if host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


def test_docs_and_redoc_work_offline(server, page):
    blocked = offline(page)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    ops = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/api/analyze", "/api/compare", "/api/models"} <= {o.strip() for o in ops}
    page.goto(server + "/redoc")
    page.wait_for_selector("text=Analyse one model on one device", timeout=20_000)
    # ReDoc's bundle asks for its branding logo from its CDN and drops the <img> when that fails
    # (onError in redoc.standalone.js): cosmetic, and the one request to another host.
    assert [u for u in blocked if u != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
    page.wait_for_selector("img[alt='redocly logo']", state="detached", timeout=10_000)


def test_deployment_controls(server, sized, browser):
    page = sized
    page.goto(server + "/?model=llama-3-70b&hardware=h100-sxm&batch=8")
    wait_render(page, 1)
    formats = httpx.get(server + "/api/formats", timeout=30).json()
    options = page.locator("#quant option").evaluate_all("os => os.map(o => o.value)")
    assert options == [""] + [f["name"] for f in formats["weights"]]
    kv_options = page.locator("#kv-format option").evaluate_all("os => os.map(o => o.value)")
    assert kv_options == [""] + [k["name"] for k in formats["kv"]]
    # Every control has an accessible name.
    for label in ("TP", "PP", "EP", "weight format", "KV format", "engine", "speculative decoding"):
        assert page.get_by_label(label, exact=True).count() == 1, label

    page.get_by_label("TP", exact=True).fill("2")
    page.dispatch_event("#tp", "change")
    wait_render(page, 2)
    page.get_by_label("weight format", exact=True).select_option("fp8")
    wait_render(page, 3)
    assert page.is_disabled("#w-bits")  # the format sets the widths
    page.get_by_label("engine", exact=True).select_option("sglang")
    wait_render(page, 4)
    body = {
        "model": "llama-3-70b", "hardware": "h100-sxm", "batch": 8, "quant": "fp8",
        "settings": {"tp": 2, "engine": "sglang"},
    }  # fmt: skip
    want = api(server, **body)
    assert shown(page) == want
    assert want != api(server, **{**body, "settings": {"engine": "sglang"}})  # TP changed the numbers
    assert json.loads(page.get_attribute("body", "data-request"))["settings"] == body["settings"]
    for part in ("tp=2", "quant=fp8", "engine=sglang"):
        assert part in page.url

    page.get_by_label("KV format", exact=True).select_option("fp8")
    wait_render(page, 5)
    page.get_by_label("speculative decoding", exact=True).select_option("draft:llama-3.2-1b")
    wait_render(page, 6)
    body["settings"] |= {"kv_format": "fp8", "draft_model": "llama-3.2-1b"}
    assert shown(page) == api(server, **body)

    # The link brings the deployment back.
    other = browser.new_page()
    other.goto(page.url)
    wait_render(other, 1)
    assert other.input_value("#tp") == "2" and other.input_value("#quant") == "fp8"
    assert other.input_value("#spec") == "draft:llama-3.2-1b" and other.input_value("#kv-format") == "fp8"
    assert shown(other) == shown(page)
    other.close()


def test_does_not_fit_offers_a_way_out(server, sized):
    page = sized
    page.goto(server + "/?model=deepseek-v3&hardware=h200")
    wait_render(page, 1)
    assert page.get_attribute("#fits", "data-value") == "false"
    body = {"model": "deepseek-v3", "hardware": "h200", "w_bits": 16, "a_bits": 16}
    options = httpx.post(server + "/api/fit", json=body, timeout=30).json()["options"]
    buttons = page.locator("#fit-options button")
    assert buttons.count() == len(options) == 2
    assert "TP 8 + fp8" in buttons.nth(0).inner_text()
    buttons.nth(0).click()
    wait_render(page, 2)
    assert page.get_attribute("#fits", "data-value") == "true"
    assert page.is_hidden("#fit-options")
    assert page.input_value("#tp") == "8" and page.input_value("#quant") == "fp8"
    want = api(server, model="deepseek-v3", hardware="h200", quant="fp8", settings={"tp": 8})
    assert shown(page) == want and want["memory"] == options[0]["total_bytes"]

    # The offload button, from the state that does not fit.
    page.goto(server + "/?model=deepseek-v3&hardware=h200")
    wait_render(page, 1)
    page.locator("#fit-options button[data-kind=offload]").click()
    wait_render(page, 2)
    assert page.get_attribute("#fits", "data-value") == "true"
    assert page.input_value("#offw") == "0.9" and page.input_value("#offe") == "0.9"
    settings = {"offload_weights": 0.9, "offload_experts": 0.9}
    assert shown(page) == api(server, **body, settings=settings)


def test_readable_at_phone_and_desktop_widths(server, sized):
    page = sized
    width = page.viewport_size["width"]
    page.goto(server + "/?model=llama-3-8b&hardware=h100-sxm&batch=8")
    wait_render(page, 1)
    # The four headline numbers are shown whole: inside the viewport, and not clipped.
    for key in ("ttft", "tpot", "throughput", "memory"):
        box = page.locator(f"#{key}").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (key, box)
        assert page.evaluate(f"(e => e.scrollWidth <= e.clientWidth)(document.getElementById('{key}'))"), key
        card = page.locator(f"#{key}").locator("xpath=..").bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"], key
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
    # Times in ms / µs, intensities written out.
    assert page.inner_text("#tpot").endswith(" ms")
    report = httpx.post(server + "/api/analyze", json={"model": "llama-3-8b", "batch": 8}, timeout=30).json()
    big = max((o for o in report["report"]["ops"] if o["intensity"]), key=lambda o: o["intensity"])
    page.click("#op-table th[data-key=intensity]")
    cell = page.inner_text("#op-table tbody tr:first-child td:nth-child(8)")
    want = float(f"{big['intensity']:.3g}")
    assert "e+" not in cell and cell == f"{want:,.0f}"
    ticks = page.locator("#plot-timeline .ytick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert ticks and all(t == "0s" or t.endswith(("ms", "µs")) for t in ticks), ticks
    # Plotly's mode bar, shown on hover, does not cover a chart's title.
    for name in ("roofline", "breakdown", "memory", "timeline", "block"):
        page.hover(f"#plot-{name} .nsewdrag")
        bar = page.locator(f"#plot-{name} .modebar").bounding_box()
        title = page.locator(f"#plot-{name} .gtitle").bounding_box()
        apart = title["y"] >= bar["y"] + bar["height"] or title["x"] + title["width"] <= bar["x"]
        assert apart, (name, bar, title)
        # ...and the title is whole: wrapped to the chart's width, not cut at its edge.
        chart = page.locator(f"#plot-{name}").bounding_box()
        assert title["x"] + title["width"] <= chart["x"] + chart["width"], (name, title, chart)
    # On a phone a legend goes under its chart, which keeps most of the width to plot in.
    if width < 500:
        for name in ("roofline", "breakdown", "memory", "timeline"):
            orientation, plotted, chart = page.evaluate(
                "(d => [d._fullLayout.legend && d._fullLayout.legend.orientation, "
                f"d._fullLayout.xaxis._length, d.clientWidth])(document.getElementById('plot-{name}'))"
            )
            assert plotted >= 0.45 * chart, (name, plotted, chart)  # a legend at the side left ~30%
            assert orientation in (None, "h"), (name, orientation)
    # The longest title (a model that does not fit) wraps on a phone and keeps every word.
    page.goto(server + "/?model=deepseek-v3&hardware=h200")
    wait_render(page, 1)
    body = {"model": "deepseek-v3", "hardware": "h200", "figures": True}
    fig = httpx.post(server + "/api/analyze", json=body, timeout=30).json()["figures"]["memory"]
    want = fig["layout"]["title"]["text"]
    shown_title = page.locator("#plot-memory .gtitle").text_content()  # lines joined, breaks dropped
    assert shown_title.replace(" ", "") == want.replace(" ", "") and len(want) > 60
    title = page.locator("#plot-memory .gtitle").bounding_box()
    chart = page.locator("#plot-memory").bounding_box()
    assert title["x"] + title["width"] <= chart["x"] + chart["width"]


def test_stale_numbers_are_dimmed(server, sized):
    page = sized
    page.goto(server + "/?model=llama-3-8b")
    wait_render(page, 1)
    assert "stale" not in (page.get_attribute("#headline", "class") or "")
    before = shown(page)
    page.fill("#model", "no-such-model")
    page.dispatch_event("#model", "change")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "no-such-model" in page.inner_text("#error")
    for el in ("#headline", "#plots", "#op-table"):
        assert "stale" in page.get_attribute(el, "class"), el
    assert shown(page) == before  # the old numbers stay, dimmed
    page.fill("#model", "llama-3-8b")
    page.dispatch_event("#model", "change")
    wait_render(page, 2)
    assert "stale" not in (page.get_attribute("#headline", "class") or "")


def test_operator_graph_search_and_layer_groups(server, sized):
    page = sized
    page.goto(server + "/?model=deepseek-v3&hardware=h200&quant=fp8&tp=8")
    wait_render(page, 1)
    body = {"model": "deepseek-v3", "hardware": "h200", "quant": "fp8", "settings": {"tp": 8}}
    report = httpx.post(server + "/api/analyze", json=body, timeout=30).json()["report"]
    decode = [o for o in report["ops"] if o["phase"] == "decode"]
    # Nodes carry FLOPs, bytes and time in their hover text, and a click shows the op's figures.
    nodes = page.evaluate("document.getElementById('plot-block').data.find(t => t.customdata)")
    first = decode[nodes["customdata"][0]]
    assert all(w in nodes["hovertext"][0] for w in ("FLOPs", "bytes", "time", first["name"]))
    assert "(mla, moe layers)" in plot_title(page, "block")  # the group most layers share
    page.locator("#plot-block .scatterlayer .trace").nth(1).locator("path.point").first.click(force=True)
    page.wait_for_function("document.getElementById('op-detail').dataset.op !== undefined", timeout=5000)
    assert page.get_attribute("#op-detail", "data-op") == first["name"]
    detail = page.inner_text("#op-detail")
    assert "FLOP" in detail and "ideal" in detail and first["bound"] in detail

    # The layer-group selector lists the report's groups and redraws the block for the one chosen.
    groups = page.locator("#block-group option").evaluate_all("os => os.map(o => o.value)")
    assert groups == ["", "mla", "mla, moe"]
    page.get_by_label("layer group", exact=True).select_option("mla")
    wait_render(page, 2)
    assert "(mla layers)" in plot_title(page, "block") and "group=mla" in page.url
    names = page.evaluate("document.getElementById('plot-block').data.find(t => t.customdata).text")
    assert set(names) == {
        o["name"] for o in decode if o["group"] == "mla" and o["block"] in ("attention", "mlp")
    }

    # The search box keeps the matching operator rows and dims the other nodes.
    page.get_by_label("find operator", exact=True).fill("norm")
    page.wait_for_function("document.getElementById('plot-block').dataset.found", timeout=5000)
    rows = page.locator("#op-table tbody tr:not([hidden]) td:first-child").all_inner_texts()
    assert rows and all("norm" in r for r in rows)
    assert len(rows) == sum("norm" in o["name"] for o in report["ops"])
    assert int(page.get_attribute("#plot-block", "data-found")) == sum("norm" in n for n in names)


def test_compare_plan_and_serve_modes(server, sized, browser):
    page = sized
    page.goto(server + "/?model=llama-3-8b&hardware=h100-sxm&batch=4&gen=64")
    wait_render(page, 1)
    base = {"model": "llama-3-8b", "hardware": "h100-sxm", "batch": 4, "gen": 64}

    # Compare: pin two set-ups; the table shows /api/compare's numbers.
    page.get_by_role("tab", name="Compare").click()
    assert page.is_hidden("#analysis") and page.is_visible("#mode-compare") and "mode=compare" in page.url
    page.click("#compare-add")
    page.get_by_label("weight format", exact=True).select_option("fp8")
    wait_render(page, 2)
    page.click("#compare-add")
    page.wait_for_function("document.body.dataset.compared === '1'", timeout=20_000)
    pins = [{**base, "w_bits": 16, "a_bits": 16, "kv_bits": 16}, {**base, "quant": "fp8", "kv_bits": 16}]
    want = httpx.post(server + "/api/compare", json={"analyses": pins}, timeout=30).json()["comparison"]
    cells = page.locator("#compare-table tbody tr td[data-value]").evaluate_all(
        "ts => ts.map(t => Number(t.dataset.value))"
    )
    figures = [(r["ttft_s"], r["decode"]["tpot_s"], r["throughput_tokens_per_s"]) for r in want["analyses"]]
    memory = [r["memory"]["total_bytes"] for r in want["analyses"]]
    assert cells == [v for f, m in zip(figures, memory, strict=True) for v in (*f, m)]
    assert page.evaluate("document.getElementById('plot-compare').data.length") > 0
    # The pins travel in the link.
    other = browser.new_page()
    other.goto(page.url)
    other.wait_for_function("document.body.dataset.compared === '1'", timeout=20_000)
    assert other.locator("#compare-pins li").count() == 2
    other.close()

    # Plan: one request per format; the table is their entries, cheapest first, and the plot their
    # candidates.
    page.get_by_role("tab", name="Plan").click()
    page.fill("#plan-ttft", "500")
    page.fill("#plan-tpot", "50")
    page.get_by_label("devices to plan on", exact=True).fill("h100-sxm, a100")
    page.click("#plan-run")
    page.wait_for_function("document.body.dataset.planned === '1'", timeout=60_000)
    body = {"model": "llama-3-8b", "prompt": 1024, "gen": 64, "ttft": 0.5, "tpot": 0.05, "top": 20,
            "hardware": ["h100-sxm", "a100"]}  # fmt: skip
    assert json.loads(page.get_attribute("body", "data-plan-request")) == body
    formats = json.loads(page.get_attribute("body", "data-plan-formats"))
    assert formats == httpx.get(server + "/api/formats").json()["plan"] and len(formats) == 5
    answers = [
        httpx.post(server + "/api/plan", json={**body, "quants": [q], "figure": True}, timeout=60).json()
        for q in formats
    ]
    entries = sorted((e for a in answers for e in a["plan"]["entries"]),
                     key=lambda e: (e["usd_per_million_tokens"], e["ttft_s"]))[:20]  # fmt: skip
    rows = page.locator("#plan-table tbody tr")
    assert rows.count() == len(entries)
    for i in (0, len(entries) - 1):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert (cells[0], cells[3], cells[4], int(cells[5])) == (
            entries[i]["hardware"],
            entries[i]["quant"],
            entries[i]["kv_format"],
            entries[i]["batch"],
        )
    best = min((a["plan"] for a in answers if a["plan"]["entries"]),
               key=lambda p: p["entries"][0]["usd_per_million_tokens"])  # fmt: skip
    assert page.inner_text("#plan-explain") == " ".join(best["explanation"])
    traces = [t["name"] for a in answers for t in a["figure"]["data"]]
    assert traces and page.evaluate("document.getElementById('plot-plan').data.map((t) => t.name)") == traces
    legend = page.evaluate(
        "document.getElementById('plot-plan').data.filter((t) => t.showlegend).map((t) => t.name)"
    )
    assert sorted(legend) == sorted(set(traces))  # one legend entry per device across the formats

    # Serve: the summary is /api/simulate's, with the deployment on the left (fp8).
    page.get_by_role("tab", name="Serve").click()
    page.fill("#serve-value", "4")
    page.fill("#serve-requests", "100")
    page.click("#serve-run")
    page.wait_for_function("document.body.dataset.served === '1'", timeout=60_000)
    sim = {"model": "llama-3-8b", "hardware": "h100-sxm", "prompt": 1024, "gen": 64, "requests": 100,
           "rate": 4, "quant": "fp8", "settings": {"kv_bits": 16, "flash_attention": True}}  # fmt: skip
    assert json.loads(page.get_attribute("body", "data-serve-request")) == sim
    summary = httpx.post(server + "/api/simulate", json=sim, timeout=60).json()["summary"]
    assert float(page.get_attribute("#serve-throughput", "data-value")) == summary["output_tokens_per_s"]
    assert float(page.get_attribute("#serve-ttft-p99", "data-value")) == summary["ttft"]["p99"]
    assert float(page.get_attribute("#serve-tpot-p50", "data-value")) == summary["tpot"]["p50"]
    # A sweep of users: its table and throughput-against-interactivity plot are /api/simulate's.
    page.select_option("#serve-load", "sweep")
    page.fill("#serve-value", "8")
    page.fill("#serve-requests", "40")
    page.click("#serve-run")
    page.wait_for_function("document.body.dataset.served === '2'", timeout=60_000)
    swept = json.loads(page.get_attribute("body", "data-serve-request"))
    assert swept["concurrencies"] == [1, 2, 4, 8] and swept["figure"] is True and "rate" not in swept
    data = httpx.post(server + "/api/simulate", json=swept, timeout=60).json()
    rows = page.locator("#serve-table tbody tr")
    assert rows.count() == 4 and page.is_hidden("#serve-summary") and page.is_visible("#plot-serve")
    for i, point in enumerate(data["sweep"]):
        cells = rows.nth(i).locator("td")
        assert int(cells.nth(0).inner_text()) == point["concurrency"]
        assert float(cells.nth(1).get_attribute("data-value")) == point["output_tokens_per_s_per_device"]
        assert float(cells.nth(3).get_attribute("data-value")) == point["ttft"]["p50"]
    drawn = page.evaluate("document.getElementById('plot-serve').data[0].text")
    assert drawn == ["C=1", "C=2", "C=4", "C=8"]
    # Bad input is a readable message.
    page.select_option("#serve-load", "rate")
    page.fill("#serve-requests", "99999")
    page.click("#serve-run")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "requests" in page.inner_text("#error")

    # Back to Analyze: the plots are drawn at the page's width.
    page.get_by_role("tab", name="Analyze").click()
    assert page.is_visible("#headline")
    width = page.locator("#plot-roofline .main-svg").first.bounding_box()["width"]
    assert width > 200
