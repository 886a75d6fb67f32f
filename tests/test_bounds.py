"""Inputs are bounded before any work: configs, device specs, files, simulation sizes, API bodies.

Each refusal names the field and the allowed range. The fuzz tests run a sample of
scripts/fuzz.py's generators (the script runs 5,000 bodies and 2,000 CLI runs)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import rooflens
from rooflens.errors import RooflensError
from rooflens.hardware import load_hardware
from rooflens.layers.moe import expert_probabilities, routed_load
from rooflens.model import bounds
from rooflens.model.catalog import _catalog_files, hf_config, load_model
from rooflens.model.families import spec_from_config
from rooflens.serving import simulate
from rooflens.userfiles import MAX_FILE_BYTES
from rooflens.web import create_app
from rooflens.web.schemas import ValidationErrorBody

ROOT = Path(__file__).resolve().parents[1]
LLAMA = hf_config("llama-3-8b")


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_catalog_config_is_inside_the_bounds():
    for name, doc in _catalog_files().items():
        bounds.check_config(doc, where=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": float("nan")}, r"'hidden_size' must be a finite number, got nan"),
        ({"hidden_size": float("inf")}, r"'hidden_size' must be a finite number, got inf"),
        ({"hidden_size": 1e308}, r"'hidden_size' is 1e\+308, beyond any real model"),
        ({"vocab_size": 10**400}, r"'vocab_size' is a 401-digit integer, beyond any real model"),
        ({"rope_theta": 10**400}, r"'rope_theta' is a 401-digit integer"),  # any number, read or not
        ({"num_hidden_layers": 10**9}, r"'num_hidden_layers' is 1000000000; allowed: 0 to 1024"),
        ({"num_hidden_layers": 1025}, r"'num_hidden_layers' is 1025; allowed: 0 to 1024"),
        ({"num_local_experts": 4097}, r"'num_local_experts' is 4097; allowed: 0 to 4096"),
        ({"partial_rotary_factor": 1.5}, r"'partial_rotary_factor' is 1.5; allowed: 0 to 1"),
        ({"partial_rotary_factor": 1e308}, r"'partial_rotary_factor' is 1e\+308"),
        ({"hidden_size": "4096"}, r"'hidden_size' must be a number, got '4096'"),
        ({"mlp_only_layers": "abc"}, r"'mlp_only_layers' must be a list of layer indices, got 'abc'"),
        ({"mlp_only_layers": [0, "1"]}, r"'mlp_only_layers\[1\]' must be a whole-number layer index"),
        ({"mlp_only_layers": [5000]}, r"'mlp_only_layers\[0\]' is 5000; layer indices run from 0 to 1023"),
        ({"layer_types": ["full_attention"] * 2000}, r"'layer_types' lists 2,000 layers \(at most 1024\)"),
        ({"layer_types": [1, 2]}, r"'layer_types\[0\]' must be a string"),
        ({"name": "\ud800"}, r"'name' has a value that is not valid Unicode"),
        ({"note": "x" * 20_000}, r"'note' has a value of 20,000 characters \(at most 10,000\)"),
        ({"text_config": {"num_hidden_layers": 5000}}, r"'text_config.num_hidden_layers' is 5000"),
    ],
)
def test_out_of_bounds_configs_are_refused_with_the_field_and_range(change, message):
    with pytest.raises(RooflensError, match=message):
        spec_from_config({**LLAMA, **change})


def test_the_bounds_run_before_the_parser(monkeypatch):
    """A 10**9-layer config never reaches the family parser (which would build per-layer tuples)."""
    from rooflens.model import families

    def parser(_):
        raise AssertionError("the parser ran on an out-of-bounds config")

    monkeypatch.setitem(families.FAMILIES, "llama", parser)
    with pytest.raises(RooflensError, match="num_hidden_layers"):
        spec_from_config({**LLAMA, "num_hidden_layers": 10**9})


def test_deep_and_huge_documents_are_refused():
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(RooflensError, match="nests deeper than 16 levels"):
        bounds.check_config({**LLAMA, "x": deep})
    with pytest.raises(RooflensError, match="more than 20,000 values"):
        bounds.check_config({**LLAMA, "x": [0] * 20_001})


def test_user_files_are_read_with_bounds(tmp_path):
    big = tmp_path / "config.json"
    with big.open("wb") as fh:  # sparse: MAX_FILE_BYTES + 1 bytes of zeros, no disk used
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(RooflensError, match="is over 8 MiB"):
        load_model(big)
    if Path("/dev/zero").exists():
        with pytest.raises(RooflensError, match="is over 8 MiB"):
            load_model("/dev/zero")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(RooflensError, match="is not UTF-8 text"):
        load_model(binary)
    with pytest.raises(RooflensError, match="does not exist"):
        load_model("x" * 300 + ".json")  # a name the system refuses is "not there", not a crash


def test_yaml_aliases_are_refused(tmp_path):
    """Nine levels of nine aliases would expand to 9**9 values; the alias is refused on sight."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = tmp_path / "gpu.yaml"
    bomb.write_text("\n".join(lines) + "\nname: x\nmemory_bandwidth: *a8\n")
    with pytest.raises(RooflensError, match=r"aliases \(\*name\) are not accepted"):
        load_hardware(str(bomb))


def test_device_and_profile_numbers_are_bounded():
    good = {"name": "g", "memory_bytes": 80e9, "memory_bandwidth": 3.35e12, "peak_flops": {"fp16": 1e15}}
    for change, message in [
        ({"memory_bandwidth": float("inf")}, "finite number"),
        ({"memory_bandwidth": 5e-324}, "greater than or equal to 1000000"),
        ({"memory_bytes": 10**400}, "too large"),
        ({"peak_flops": {"fp16": float("nan")}}, "between 1e6 and 1e19"),
    ]:
        with pytest.raises(RooflensError, match=message):
            load_hardware({**good, **change})
    negative = {"engine": "e", "source": "s", "matmul": [0.5], "frameworks": {"llama": {"layer_s": -1}}}
    with pytest.raises(RooflensError, match=r"frameworks.llama costs must be in \[0, 10\]"):
        load_hardware({**good, "efficiency": [negative]})


def test_moe_routed_load_never_builds_an_experts_by_steps_matrix():
    """The slices give the same sums as the direct experts x steps formula, for uniform and skewed
    routing, and a 4,096-expert load over 65,536 distinct token counts stays in bounded slices."""
    for experts, k, ep, skew in [(8, 2, 1, 0.0), (256, 8, 8, 0.0), (128, 4, 2, 1.2)]:
        tokens = np.arange(1, 2049, dtype=float).reshape(-1, 8)
        local = expert_probabilities(experts, k, skew)[::ep]
        direct = np.sum(1 - (1 - local[:, None]) ** tokens.reshape(1, -1), axis=0).reshape(tokens.shape)
        touched, routed = routed_load(experts, k, tokens, ep, skew)
        assert np.allclose(touched, direct, rtol=1e-12) and np.allclose(routed, tokens * local.sum())
    touched, _ = routed_load(4096, 8, np.arange(1, 65537, dtype=float), 1, 0.5)
    assert touched.shape == (65536,) and touched[0] == pytest.approx(8, rel=1e-9)  # 1 token: its k experts


def test_the_heaviest_request_inside_the_caps_answers():
    """4,096 experts, batch 65,536, a 1M-token prompt, 65,536 generated tokens, no KV cache: inside
    every cap, it returns (benchmarks/bench_serve.py times it; it once built a 2 GB matrix)."""
    cfg = {**hf_config("mixtral-8x7b"), "num_local_experts": 4096, "num_experts_per_tok": 8}
    report = rooflens.analyze(cfg, "h100", batch=65_536, prompt=1_048_576, gen=65_536, kv_cache=False)
    assert report.decode.time_s > 0


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), raise_server_exceptions=False)


def test_settings_cannot_collide_with_the_request(client):
    res = client.post("/api/analyze", json={"model": "gpt2", "settings": {"hardware": "a100"}})
    assert res.status_code == 422 and "give hardware as top-level fields" in res.json()["detail"]


def test_hostile_bodies_get_4xx_with_printable_errors(client):
    body = b'{"model": "gpt2", "prompt": -Infinity, "kv_bits": "\\ud800"}'
    res = client.post("/api/analyze", content=body, headers={"content-type": "application/json"})
    assert res.status_code == 422
    parsed = ValidationErrorBody.model_validate(res.json())  # the body is the declared schema
    assert "not valid Unicode" in parsed.detail
    res = client.post("/api/analyze", content=b'{"model": "gpt2", "prompt": -Infinity}',
                      headers={"content-type": "application/json"})  # fmt: skip
    parsed = ValidationErrorBody.model_validate(res.json())
    assert res.status_code == 422 and parsed.errors[0].loc == ["body", "prompt"]
    assert parsed.errors[0].input == "-inf"
    res = client.post("/api/analyze", json={"config": {**LLAMA, "num_hidden_layers": 10**9}})
    assert res.status_code == 400 and "'num_hidden_layers' is 1000000000" in res.json()["detail"]


def test_openapi_declares_the_real_error_bodies(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/analyze", "/api/compare"):
        responses = spec["paths"][path]["post"]["responses"]
        assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "ValidationErrorBody"
        )
        assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})


def test_fuzzed_bodies_never_get_a_5xx():
    problems = _fuzz().fuzz_web(400, seed=11, slow_s=None)
    assert not problems, "\n".join(problems[:10])


def test_fuzzed_cli_runs_never_end_in_a_traceback():
    problems = _fuzz().fuzz_cli(120, seed=5, slow_s=None)
    assert not problems, "\n".join(problems[:10])


def test_simulation_sizes_are_bounded():
    with pytest.raises(RooflensError, match="seed takes a whole number from 0"):
        simulate("gpt2", "h100", rate=1.0, requests=2, seed=-1)
    with pytest.raises(RooflensError, match="requests takes a whole number from 1 to 20,000"):
        simulate("gpt2", "h100", rate=1.0, requests=10**30)


def test_json_config_file_with_non_finite_numbers_is_refused_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from rooflens.cli import app

    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, "hidden_size": float("nan")}))  # json writes NaN
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2 and "'hidden_size' must be a finite number" in result.output


# --- property-based: schemathesis over the declared API, hypothesis over the free-form bodies --------

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

API = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@API.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_openapi_schema(case):
    """No 5xx; every answer's status and body are among those the schema declares; bodies the schema
    refuses are refused. Left out: that every schema-valid body is accepted (an unknown model or
    device name is schema-valid and answered 400, as declared)."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, -1, 5e-324, 1e308, 2**63, 10**9]),
)
HOSTILE = st.one_of(
    HOSTILE_NUMBERS,
    st.none(),
    st.booleans(),
    st.text(max_size=40),
    st.lists(HOSTILE_NUMBERS, max_size=8),
    st.dictionaries(st.text(max_size=8), HOSTILE_NUMBERS, max_size=4),
)
CONFIG_FIELDS = st.sampled_from(
    sorted({*bounds.LIMITS, *bounds.INDEX_LISTS, *bounds.STRING_LISTS, "model_type"})
)
PROFILE = {"engine": "e", "source": "s", "tokens": [1, 4096], "matmul": [0.5, 0.8]}
DEVICE = {"name": "d", "memory_bytes": 80e9, "memory_bandwidth": 3.35e12, "peak_flops": {"fp16": 1e15},
          "efficiency": [PROFILE]}  # fmt: skip
DEVICE_FIELDS = st.sampled_from(
    ["memory_bytes", "memory_bandwidth", "peak_flops", "interconnect", "tdp_watts"]
)
PROFILE_FIELDS = st.sampled_from(
    ["tokens", "matmul", "op_overhead_s", "frameworks", "low_precision", "intervals"]
)
SETTINGS_FIELDS = st.sampled_from(
    ["tp", "pp", "ep", "kv_budget", "sparsity", "draft_model", "engine", "offload_kv"]
)


def _post(client, body) -> int:
    content = json.dumps(body, allow_nan=True).encode()
    return client.post(
        "/api/analyze", content=content, headers={"content-type": "application/json"}
    ).status_code


@given(changes=st.dictionaries(CONFIG_FIELDS, HOSTILE, min_size=1, max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_config_bodies_never_get_a_5xx(client, changes):
    assert _post(client, {"config": {**LLAMA, **changes}, "prompt": 64, "gen": 4}) in (200, 400, 422)


@given(device=st.dictionaries(DEVICE_FIELDS, HOSTILE, max_size=3),
       profile=st.dictionaries(PROFILE_FIELDS, HOSTILE, max_size=3))  # fmt: skip
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_device_bodies_never_get_a_5xx(client, device, profile):
    spec = {**DEVICE, **device, "efficiency": [{**DEVICE["efficiency"][0], **profile}]}
    assert _post(client, {"model": "gpt2", "custom_hardware": spec, "prompt": 64, "gen": 4}) in (
        200,
        400,
        422,
    )


@given(changes=st.dictionaries(SETTINGS_FIELDS, HOSTILE, min_size=1, max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_settings_never_get_a_5xx(client, changes):
    assert _post(client, {"model": "mixtral-8x7b", "settings": changes, "prompt": 64, "gen": 4}) in (
        200,
        400,
        422,
    )


def test_validation_errors_quote_a_short_excerpt_once():
    """The sparsity check's own message quotes the value, so no second '(got ...)'; a huge value is
    shown as an excerpt, not in full."""
    with pytest.raises(RooflensError) as err:
        rooflens.analyze("gpt2", "h100", sparsity="3:2")
    assert str(err.value).count("'3:2'") == 1 and "Value error" not in str(err.value)
    with pytest.raises(RooflensError) as err:
        load_hardware({"name": "g", "memory_bytes": 80e9, "memory_bandwidth": 3.35e12,
                       "peak_flops": {"fp16": 1e15}, "notes": ["x"] * 10_000})  # fmt: skip
    assert len(str(err.value)) < 300
