"""The web API and page: FastAPI over the Python API. It parses, calls, serialises; it computes nothing.

    rooflens serve            # http://127.0.0.1:8000/ (page), /docs (OpenAPI)

Endpoints: GET /api/models, GET /api/hardware, GET /api/engines, GET /api/formats, POST /api/analyze,
POST /api/fit, POST /api/compare, POST /api/plan, POST /api/simulate. Bad input is a
400 (a rooflens error, one readable sentence) or a 422 (the request's shape), never a 5xx; bodies
over ``MAX_BODY_BYTES`` get a 413. A request identical to a recent one is answered from a small
cache (``cache.py``). Answers of ``GZIP_MIN_BYTES`` or more go gzip-compressed to clients that
accept it (a report with figures: 90 kB -> 12 kB), compressed once and kept so in the cache.
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..analysis import analyze as run_analysis
from ..analysis import fits_with
from ..compare import compare as line_up
from ..errors import RooflensError, excerpt
from ..hardware import list_hardware
from ..hardware.catalog import hardware_by_name, hardware_from_dict
from ..model import list_models
from ..model.catalog import catalog_model
from ..model.spec import ModelSpec
from ..render import report_csv, to_json
from ..report import Report
from .cache import MAX_BYTES, MAX_ENTRIES, AnswerCache, request_key
from .limits import BodySizeLimit
from .schemas import (
    MAX_BODY_BYTES,
    MAX_PLAN_WORK,
    MAX_SIM_WORK,
    AnalyzeRequest,
    CompareRequest,
    ErrorBody,
    ErrorItem,
    PlanRequest,
    SimulateRequest,
    ValidationErrorBody,
)

# The error bodies every POST endpoint may answer with, as they really are (FastAPI's default 422
# schema describes a body this app never sends).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a rooflens error, one readable sentence"},
    413: {"model": ErrorBody, "description": "the body is over the size cap"},
    422: {"model": ValidationErrorBody, "description": "the request's shape: one sentence, and each problem"},
}
STATIC = Path(str(resources.files("rooflens") / "web" / "static"))
# Below 1 KB gzip saves less than a packet and costs a header; level 4 (not Starlette's 9) because
# the gain past it is a few percent for 2-6x the CPU: measured on a report with figures (90 kB ->
# 12 kB in 0.6 ms), the heaviest answer within the caps (3.4 MB -> 1.1 MB in 50 ms, where level 9
# takes 340 ms) and plotly.min.js (4.8 MB -> 1.5 MB in 70 ms).
# The files the offline /docs and /redoc pages load (from the fastapi-offline package).
DOCS_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"})
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 4
GZIP_MAGIC = b"\x1f\x8b"


def _model(req: AnalyzeRequest | PlanRequest | SimulateRequest) -> ModelSpec:
    """The catalog model a request names, or the config.json it carries."""
    if req.config is None:
        return catalog_model(req.model or "")
    from ..model.families import spec_from_config

    return spec_from_config(req.config)  # bounded before it is built (model.bounds)


def _report(req: AnalyzeRequest) -> Report:
    spec, hw, kwargs = _inputs(req)
    return run_analysis(spec, hw, **kwargs)


def _device(req: AnalyzeRequest | SimulateRequest) -> Any:
    """The catalog device a request names, or the device spec it carries."""
    if req.custom_hardware is not None:
        return hardware_from_dict(req.custom_hardware, origin="custom_hardware")
    return hardware_by_name(req.hardware or "")


def _check_draft(settings: dict[str, Any]) -> None:
    """A draft model is a catalog name: the server never reads one from a path."""
    draft = settings.get("draft_model")
    if draft is not None:
        if not isinstance(draft, str):
            raise RooflensError("settings.draft_model must be a catalog model name")
        catalog_model(draft)


def _inputs(req: AnalyzeRequest) -> tuple[ModelSpec, Any, dict[str, Any]]:
    """The model, the device and the analysis arguments a request names."""
    spec, hw = _model(req), _device(req)
    settings = dict(req.settings)
    _check_draft(settings)
    given = {k: getattr(req, k) for k in ("w_bits", "a_bits", "kv_bits") if getattr(req, k) is not None}
    kwargs = {
        "quant": req.quant,
        "batch": req.batch,
        "prompt": req.prompt,
        "gen": req.gen,
        "flash_attention": req.flash_attention,
        "kv_cache": req.kv_cache,
        **settings,
        **given,
    }
    return spec, hw, kwargs


def _fit(req: AnalyzeRequest) -> tuple[bytes, str]:
    """POST /api/fit's answer: `{fits, options}`."""
    spec, hw, kwargs = _inputs(req)
    report = run_analysis(spec, hw, **kwargs)
    options = fits_with(spec, hw, report=report, **kwargs)
    return _json(
        {
            "fits": json.dumps(report.memory.fits),
            "options": to_json([o.to_dict() for o in options], indent=None),
        }
    )


def _figure_json(fig: Any) -> str:
    import plotly.io as pio

    return pio.to_json(fig, validate=False)


def _figures_json(figures: dict[str, Any]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{_figure_json(f)}" for k, f in figures.items()) + "}"


def _json(parts: dict[str, str]) -> tuple[bytes, str]:
    """A JSON object from already-serialised members (figures are serialised by plotly, fast)."""
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in parts.items()) + "}"
    return body.encode(), "application/json"


def _analysis(req: AnalyzeRequest) -> tuple[bytes, str]:
    """POST /api/analyze's answer: `{report, figures?}` or the CSV table."""
    report = _report(req)
    if req.format == "csv":
        return report_csv(report).encode(), "text/csv"
    parts = {"report": to_json(report.to_dict(timeline=req.timeline), indent=None)}
    if req.figures:
        from .. import plots

        figures = {
            "roofline": plots.roofline(report),
            "breakdown": plots.breakdown(report),
            "memory": plots.memory(report),
            "timeline": plots.timeline(report),
            "block_prefill": plots.block_graph(report, "prefill", req.block_group),
        }
        if report.decode.steps:
            figures["block_decode"] = plots.block_graph(report, "decode", req.block_group)
        parts["figures"] = _figures_json(figures)
    return _json(parts)


def _comparison(req: CompareRequest) -> tuple[bytes, str]:
    """POST /api/compare's answer: `{comparison, figure?}`."""
    cmp = line_up([_report(a) for a in req.analyses])
    parts = {"comparison": to_json(cmp.to_dict(), indent=None)}
    if req.figures:
        from .. import plots

        parts["figure"] = _figure_json(plots.comparison(cmp))
    return _json(parts)


def _plan(req: PlanRequest) -> tuple[bytes, str]:
    """POST /api/plan's answer: the plan's `--format json` (entries cut to `top`), and `figure`
    (cost against TPOT of every candidate that fits) when asked. A search over ``MAX_PLAN_WORK`` is
    refused before it runs."""
    from ..plan import plan as make_plan
    from ..plan import search_size

    # What the request names; the rest are the plan's own defaults (rooflens.plan).
    given = dict(
        hardware=req.hardware, prices=req.prices, quants=req.quants, tp=req.tp, kv_formats=req.kv_formats
    )
    search = {k: v for k, v in given.items() if v}
    search["allow_offload"] = req.allow_offload
    configurations, work = search_size(gen=req.gen, **search)
    if work > MAX_PLAN_WORK:
        raise RooflensError(
            f"this plan searches {configurations} configurations (devices x formats x KV formats x TP "
            f"degrees{' x offload shares' if req.allow_offload else ''}) at {req.gen} generated tokens: "
            f"{work:.0f} units of work, over this server's {MAX_PLAN_WORK} per request; name fewer "
            "`quants` (one format per request fits on every priced device up to 2,048 generated "
            "tokens), `hardware`, `kv_formats` or `tp`, or run `rooflens plan` locally"
        )
    result = make_plan(
        _model(req), prompt=req.prompt, gen=req.gen, ttft=req.ttft, tpot=req.tpot, rate=req.rate, **search
    )
    data = result.to_dict()
    data["entries"] = data["entries"][: req.top]
    parts = {"plan": to_json(data, indent=None)}
    if req.figure:
        from .. import plots

        parts["figure"] = _figure_json(plots.cost_latency(result.candidates, req.tpot))
    return _json(parts)


def _simulation(req: SimulateRequest) -> tuple[bytes, str]:
    """POST /api/simulate's answer: `{summary}`, or `{sweep: [summary, ...], figure?}` for
    concurrencies; a run past ``MAX_SIM_WORK`` units of work is refused."""
    from ..serving import simulate, sweep_concurrency

    _check_draft(req.settings)
    spec, hw = _model(req), _device(req)
    common = dict(
        prompt=req.prompt,
        gen=req.gen,
        random_range_ratio=req.random_range_ratio,
        requests=req.requests,
        seed=req.seed,
        replicas=req.replicas,
        engine=req.engine,
        basis=req.basis,
        quant=req.quant,
        **req.settings,
    )
    if req.concurrencies is not None:
        sweep = sweep_concurrency(spec, hw, req.concurrencies, max_work=MAX_SIM_WORK, **common)
        parts = {"sweep": to_json(sweep, indent=None)}
        if req.figure:
            from .. import plots

            parts["figure"] = _figure_json(plots.serving_sweep(sweep))
        return _json(parts)
    run = simulate(
        spec, hw, rate=req.rate, concurrency=req.concurrency, arrival=req.arrival, max_work=MAX_SIM_WORK,
        **common,
    )  # fmt: skip
    return _json({"summary": to_json(run.summary, indent=None)})


def create_app(*, cache_entries: int = MAX_ENTRIES, cache_bytes: int = MAX_BYTES) -> FastAPI:
    """The app; ``cache_entries`` and ``cache_bytes`` bound the cache of answers (0: no cache)."""
    app = FastAPI(
        title="rooflens",
        version=__version__,
        description="Operator-level roofline analysis of LLM inference: memory, TTFT, TPOT, throughput. "
        "All quantities are SI base units (s, bytes, FLOPs); the report is the `--format json` contract.",
        docs_url=None,  # FastAPI's own pages load Swagger UI and ReDoc from a CDN: blank offline
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    # What the heavier answers use, loaded with the app rather than inside the first request that
    # needs it (plotly's import alone takes a third of a second).
    for module in ("plots", "plan", "serving"):
        importlib.import_module(f"rooflens.{module}")
    answers = AnswerCache(cache_entries, cache_bytes)
    app.state.answers = answers

    def answer(endpoint: str, req: Any, compute: Any, request: Request) -> Response:
        """The answer to ``req``, from the cache when it was asked recently. A client that takes
        gzip gets (and the cache keeps) the compressed bytes of a large answer, compressed once:
        the middleware passes an encoded response through untouched."""
        zipped = "gzip" in request.headers.get("accept-encoding", "")
        key = request_key(endpoint, req) + ("\ngzip" if zipped else "")

        def make() -> tuple[bytes, str]:
            body, media_type = compute(req)
            if zipped and len(body) >= GZIP_MIN_BYTES:
                body = gzip.compress(body, GZIP_LEVEL, mtime=0)
            return body, media_type

        body, media_type = answers.answer(key, make)
        if body[:2] == GZIP_MAGIC:  # JSON and CSV never start with these bytes
            return Response(
                body, media_type=media_type, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            )
        return Response(body, media_type=media_type)

    @app.exception_handler(RooflensError)
    async def _bad_input(request: Request, err: RooflensError) -> JSONResponse:
        return JSONResponse({"detail": api_wording(_printable(str(err)), request.url.path)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _bad_shape(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(shape_errors(err.errors()).model_dump(), 422)

    @app.get("/api/models", summary="The model catalog")
    def models() -> list[dict[str, Any]]:
        """Every bundled model with its key figures (parameters, layers, heads, source)."""
        return [m.summary() for m in list_models()]

    @app.get("/api/hardware", summary="The hardware catalog")
    def hardware() -> list[dict[str, Any]]:
        """Every bundled device: peaks per dtype, bandwidth, memory, interconnect, TDP, sources."""
        return [h.summary() for h in list_hardware()]

    @app.get("/api/engines", summary="The inference engines")
    def engines() -> list[dict[str, Any]]:
        """Every engine an estimate can assume, with its scheduler defaults and their sources."""
        from ..engine import engines as all_engines

        return [e.model_dump() for e in all_engines().values()]

    @app.get("/api/formats", summary="The number formats")
    def formats() -> dict[str, Any]:
        """The one format table every command shares: weight formats (for `quant`) with their settings
        and stored bits per weight, their aliases, the KV-cache formats (for `settings.kv_format`),
        and the formats a plan tries by default (`plan`)."""
        from .. import formats as table
        from ..plan import QUANTS

        return {
            "weights": table.weight_rows(),
            "aliases": table.ALIASES,
            "kv": table.kv_rows(),
            "plan": list(QUANTS),
        }

    @app.post(
        "/api/analyze",
        summary="Analyse one model on one device",
        responses={
            200: {
                "description": "`{report, figures?}` (report: the `--format json` contract), or CSV",
                "content": {"application/json": {}, "text/csv": {}},
            },
            **ERRORS,
            400: {"model": ErrorBody, "description": "a rooflens error: unknown name, impossible setting"},
        },
    )
    def analyze(req: AnalyzeRequest, request: Request) -> Response:
        return answer("analyze", req, _analysis, request)

    @app.post(
        "/api/fit",
        summary="Ways to make an analysis fit in memory",
        responses={
            200: {
                "description": "`{fits, options}`: each option `{kind, change, total_bytes, "
                "capacity_bytes}`, kind tp, quant or offload; `change` holds the arguments to set "
                "(tp, quant, offload_weights, offload_experts), each verified by analysing with it"
            },
            **ERRORS,
        },
    )
    def fit(req: AnalyzeRequest, request: Request) -> Response:
        """The smallest TP within the device's scale-up domain, a narrower format, or a weight offload
        that would make this analysis fit (`rooflens.analysis.fits_with`); none when it fits already."""
        return answer("fit", req, _fit, request)

    @app.post(
        "/api/plan",
        summary="The cheapest set-ups that meet latency targets",
        responses={
            200: {"description": "`{plan, figure?}`; plan: `{entries, explanation, excluded, ...}`"},
            **ERRORS,
        },
    )
    def plan(req: PlanRequest, request: Request) -> Response:
        """`rooflens.plan.plan`: hardware x TP x format x batch that fit and meet `ttft` and `tpot`,
        cheapest first (USD per million generated tokens)."""
        return answer("plan", req, _plan, request)

    @app.post(
        "/api/simulate",
        summary="A serving simulation: requests over time on an engine's scheduler",
        responses={
            200: {"description": "`{summary}` or, for `concurrencies`, `{sweep: [summary...], figure?}`"},
            **ERRORS,
        },
    )
    def simulate(req: SimulateRequest, request: Request) -> Response:
        """`rooflens.serving.simulate` (or `sweep_concurrency` for a list of concurrencies): TTFT, TPOT,
        ITL and end-to-end percentiles, throughput, KV use and preemptions."""
        return answer("simulate", req, _simulation, request)

    @app.post(
        "/api/compare",
        summary="Several analyses side by side",
        responses={200: {"description": "`{comparison, figure?}`"}, **ERRORS},
    )
    def compare(req: CompareRequest, request: Request) -> Response:
        return answer("compare", req, _comparison, request)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        # The copy bundled with the installed plotly package: the page needs no CDN.
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="rooflens API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        from fastapi.openapi.docs import get_redoc_html

        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="rooflens API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        # Swagger UI and ReDoc as bundled by the fastapi-offline package (the `web` extra).
        if name not in DOCS_ASSETS:
            return JSONResponse({"detail": f"no docs asset {name!r}; there are {sorted(DOCS_ASSETS)}"}, 404)
        import fastapi_offline

        return FileResponse(Path(fastapi_offline.__file__).parent / "static" / name)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# Command-line options the core's messages name, as each endpoint spells them: the request's own
# field, else a setting inside `settings` (where the endpoint takes settings), else as below.
_API_SPELLING = {"--ideal": 'basis "ideal"', "--price": "prices", "--hf": "config (the config.json as data)"}
_BODIES: dict[str, type] = {
    "/api/analyze": AnalyzeRequest, "/api/fit": AnalyzeRequest, "/api/compare": AnalyzeRequest,
    "/api/plan": PlanRequest, "/api/simulate": SimulateRequest,
}  # fmt: skip


def api_wording(text: str, path: str) -> str:
    """A core message as a client of ``path`` reads it: ``--tp`` becomes ``settings.tp`` for an
    analysis and ``tp`` for a plan, ``--requests`` ``requests``, ``--price NAME=USD`` ``prices`` (the
    core speaks the command line's language). An option the endpoint has no field for stays."""
    from ..settings import Settings

    body = _BODIES.get(path)
    if body is None:
        return text
    own = set(body.model_fields) - {"settings"}
    settings = set(Settings.model_fields) | {"kv_format"} if "settings" in body.model_fields else set()

    def field(match: re.Match[str]) -> str:
        flag = match.group(0)
        name = flag[2:].replace("-", "_")
        if name in own:
            return name
        if name in settings:
            return f"settings.{name}"
        return _API_SPELLING.get(flag, flag)

    return re.sub(r"(?<![\w-])--[a-z][a-z0-9-]*", field, text)


def _printable(text: str) -> str:
    """Text that encodes as UTF-8 whatever a client sent (a lone surrogate becomes an escape)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shape_errors(errors: Sequence[Any]) -> ValidationErrorBody:
    """The 422 body: one readable sentence, and per problem its place, message, kind and a short
    printable excerpt of the input (never the input itself: it may be huge, non-finite or not UTF-8)."""
    items = [
        ErrorItem(
            loc=[_printable(str(p)) for p in e["loc"]],
            msg=_printable(str(e["msg"])),
            type=str(e["type"]),
            input=_printable(excerpt(e.get("input"))),
        )
        for e in errors
    ]
    detail = "; ".join(
        f"{'.'.join(i.loc[1:] if i.loc[:1] == ['body'] else i.loc) or 'body'}: {i.msg}" for i in items
    )
    return ValidationErrorBody(detail=detail, errors=items)
