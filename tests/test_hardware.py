"""Hardware catalog: coverage, a source for every number, user-supplied specs and their errors."""

from __future__ import annotations

import json
import re

import pytest

from rooflens import RooflensError, load_hardware
from rooflens.hardware import list_hardware
from rooflens.units import parse_quantity

REQUIRED = [
    "v100-sxm2-32gb",
    "t4",
    "a10",
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "rtx-a6000",
    "l4",
    "l40s",
    "rtx-3090",
    "rtx-4090",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "gh200",
    "b200",
    "mi250x",
    "mi300x",
    "m2-ultra",
    "m3-max",
    "m4-max",
    "epyc-9654",
    "tpu-v5e",
]

MY_GPU = {
    "name": "my-gpu",
    "memory_bytes": "24 GiB",
    "memory_bandwidth": "1 TB/s",
    "peak_flops": {"fp16": "100 TFLOPS", "int8": "200 TOPS"},
}


def test_catalog_has_the_required_devices():
    names = {h.name for h in list_hardware()}
    assert len(names) >= 20
    assert set(REQUIRED) <= names


@pytest.mark.parametrize("hw", list_hardware(), ids=lambda h: h.name)
def test_every_catalog_number_has_a_source(hw):
    sourced = set(hw.sources)
    fields = (
        "memory_bytes",
        "memory_bandwidth",
        "on_chip_memory_bytes",
        "interconnect",
        "scale_up_domain",
        "network",
        "host_link",
        "host_memory_bytes",
        "host_memory_bandwidth",
        "tdp_watts",
        "runtime_overhead_bytes",
    )
    for field in fields:
        if getattr(hw, field) is not None:
            assert field in sourced, f"{hw.name}.{field} has no source"
    for dtype in hw.peak_flops:
        assert "peak_flops" in sourced or f"peak_flops.{dtype}" in sourced
    assert all(text.strip() for text in hw.sources.values())


# What a device of each kind can plausibly have: a misplaced unit (GB/s for TB/s, sparse for dense,
# a total across eight GPUs for one) lands outside these.
PLAUSIBLE = {  # bandwidth B/s, fp16-class ridge FLOP/B, bytes of bandwidth per byte of memory per second
    "gpu": ((2e11, 1e13), (20, 1000), (2.0, 60.0)),  # LPDDR SoCs (Jetson Thor) reach a ridge near 950
    "accelerator": ((2e11, 1e13), (20, 700), (2.0, 60.0)),
    "tpu": ((2e11, 1e13), (20, 700), (2.0, 60.0)),
    "apple": ((5e10, 1.5e12), (1, 100), (0.5, 10.0)),
    "cpu": ((5e10, 1.5e12), (1, 1000), (0.05, 10.0)),  # AMX tiles put a Xeon's ridge near 370
}


def test_catalog_figures_are_plausible():
    for hw in list_hardware():
        (bw_lo, bw_hi), (ridge_lo, ridge_hi), (turn_lo, turn_hi) = PLAUSIBLE[hw.kind]
        assert bw_lo < hw.memory_bandwidth < bw_hi, hw.name
        assert ridge_lo < hw.ridge_point("fp16") < ridge_hi, hw.name
        # Reading all of memory takes 1/60 to 1/2 s on accelerators (HBM/GDDR), longer on CPUs.
        assert turn_lo < hw.memory_bandwidth / hw.memory_bytes < turn_hi, hw.name
        peaks = hw.peak_flops
        for narrow, wide in (
            ("fp8", "fp16"),
            ("int8", "fp16"),
            ("fp4", "fp8"),
            ("int4", "int8"),
            ("fp16", "fp32"),
        ):
            # Blackwell Ultra cut its INT8 tensor rate far below FP16 (sourced in the catalog entries).
            if (hw.name, narrow) in {("b300", "int8"), ("gb300", "int8")}:
                continue
            if narrow in peaks and wide in peaks:
                assert peaks[narrow] >= peaks[wide], (hw.name, narrow, wide)
        # A GPU with tensor-core peaks for the narrow formats has a 16-bit one too: without it a BF16
        # matmul (and every device's attention) falls back to the fp32 roof, 4-8x too slow. The few
        # entries whose 16-bit peak has no source say so in their notes ("... peaks not sourced").
        if hw.kind == "gpu" and {"fp8", "fp4"} & set(peaks) and not {"fp16", "bf16"} & set(peaks):
            assert re.search(r"peaks?\b[^.;]{0,40}not sourced", hw.notes or "", re.I), hw.name
        if hw.interconnect is not None:
            assert 1e9 <= hw.interconnect.bandwidth <= 2e12, hw.name
            # Every link carries the catalog's per-step collective latency (2 us on NVLink, Infinity
            # Fabric, ICI and NeuronLink; 5 us over PCIe and Ethernet), with its source: a device
            # without one priced its small all-reduces at bandwidth alone.
            slow = any(word in hw.interconnect.name for word in ("PCIe", "RoCE"))
            assert hw.interconnect.latency_s == pytest.approx(5e-6 if slow else 2e-6), hw.name
            assert "interconnect.latency_s" in hw.sources, hw.name
    h100 = load_hardware("h100")
    assert h100.peak_flops["fp16"] == pytest.approx(989.4e12)
    assert h100.memory_bandwidth == pytest.approx(3.35e12)
    assert h100.interconnect.bandwidth == pytest.approx(450e9)


def test_aliases_and_suggestions():
    assert load_hardware("H100").name == "h100-sxm"
    assert load_hardware("4090").name == "rtx-4090"
    with pytest.raises(RooflensError, match=r"unknown hardware 'h10'.*Did you mean"):
        load_hardware("h10")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("80 GiB", "bytes", 80 * 2**30),
        ("3.35 TB/s", "bandwidth", 3.35e12),
        ("989.4 TFLOPS", "flops", 989.4e12),
        ("1978.9 TOPS", "flops", 1978.9e12),
        ("700 W", "watts", 700.0),
        ("5 us", "seconds", 5e-6),
        (42, "bytes", 42.0),
    ],
)
def test_quantities_with_units(text, kind, value):
    assert parse_quantity(text, kind) == pytest.approx(value)


def test_user_yaml_and_json_files(tmp_path):
    yaml_file = tmp_path / "my_gpu.yaml"
    yaml_file.write_text(
        "name: my-gpu\nmemory_bytes: 24 GiB\nmemory_bandwidth: 1 TB/s\n"
        "peak_flops: {fp16: 100 TFLOPS, int8: 200 TOPS}\ntdp_watts: 300 W\n"
    )
    hw = load_hardware(str(yaml_file))
    assert hw.memory_bandwidth == 1e12 and hw.peak_flops["int8"] == 200e12 and hw.tdp_watts == 300
    catalog_form = tmp_path / "catalog_form.yml"
    catalog_form.write_text(
        "lab-gpu:\n  memory_bytes: 16 GiB\n  memory_bandwidth: 500 GB/s\n  peak_flops: {fp16: 50e12}\n"
    )
    assert load_hardware(str(catalog_form)).name == "lab-gpu"
    json_file = tmp_path / "gpu.json"
    json_file.write_text(json.dumps(MY_GPU))
    assert load_hardware(str(json_file)).peak_flops["fp16"] == 100e12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"memory_bandwidth": None}, r"memory_bandwidth: Field required"),
        ({"peak_flops": {"fp12": 1e12}}, r"unknown dtype\(s\) \['fp12'\]"),
        ({"peak_flops": {"fp16": -5}}, r"must be between 1e6 and 1e19 FLOP/s"),
        ({"peak_flops": {"fp16": 1e25}}, r"must be between 1e6 and 1e19 FLOP/s"),
        ({"peak_flops": {}}, r"peak_flops"),
        ({"memory_bytes": "24 parsecs"}, r"unit 'parsecs' does not fit a bytes quantity"),
        ({"memory_bytes": 0}, r"memory_bytes: Input should be greater than or equal to 1000"),
        # the bounds: no NaN or infinity, no denormal bandwidth, no petabyte-per-second typo
        ({"memory_bandwidth": "1e400 B/s"}, r"memory_bandwidth: Input should be a finite number"),
        ({"memory_bandwidth": 5e-324}, r"memory_bandwidth: Input should be greater than or equal to 1000000"),
        (
            {"memory_bandwidth": "3350 PB/s"},
            r"memory_bandwidth: Input should be less than or equal to 1000000000000000 \(got 3.35e\+18\)",
        ),
        ({"memory_bytes": 10**400}, r"bytes quantity is too large"),
        ({"turbo": True}, r"turbo: Extra inputs are not permitted"),
    ],
)
def test_bad_hardware_specs_give_clear_errors(tmp_path, change, message):
    spec = {**MY_GPU, **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(spec))  # JSON is valid YAML
    with pytest.raises(RooflensError, match=message):
        load_hardware(str(path))


def test_unreadable_hardware_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("memory_bytes: [unclosed")
    with pytest.raises(RooflensError, match="is not valid YAML"):
        load_hardware(str(bad))
    with pytest.raises(RooflensError, match="does not exist"):
        load_hardware(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    ("device", "wanted", "used"),
    [
        ("v100", "int8", "fp16"),  # Volta: no int8 tensor cores
        ("v100", "fp8", "fp16"),
        ("t4", "bf16", "fp16"),  # Turing: no bf16
        ("a100", "fp8", "fp16"),
        ("a100", "int4", "int4"),
        ("a100", "fp4", "fp16"),  # float math never runs on the int8 tensor cores (it once did: 2x)
        ("h100", "fp4", "fp8"),
        ("h100", "int4", "int8"),
        ("tpu-v5e", "vector", "bf16"),  # no published fp32 peak
        ("tpu-v5e", "fp32", "bf16"),
        ("m2-ultra", "int8", "fp16"),
    ],
)
def test_missing_peaks_fall_back_instead_of_crashing(device, wanted, used):
    peak, dtype = load_hardware(device).peak(wanted)
    assert dtype == used and peak > 0


def test_a_device_with_one_exotic_peak_still_answers():
    hw = load_hardware({**MY_GPU, "peak_flops": {"int8": "10 TOPS"}})
    assert hw.peak("fp16") == (10e12, "int8")
