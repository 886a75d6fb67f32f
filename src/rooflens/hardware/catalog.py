"""The bundled hardware catalog and the one entry point that turns "a device" into a HardwareSpec.

Hardware can be given as a catalog name or alias (``h100``), a path to a YAML/JSON file describing one
device (the same fields as a catalog entry), a dict, or a HardwareSpec.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RooflensError, did_you_mean, explain_validation
from ..userfiles import exists, is_file, load_bundled_yaml, load_yaml_text, read_user_text
from .spec import HardwareSpec

HardwareLike = HardwareSpec | dict[str, Any] | str | Path


@cache
def _raw_catalog() -> dict[str, dict[str, Any]]:
    text = (resources.files("rooflens.hardware") / "catalog.yaml").read_text()
    return load_bundled_yaml(text)


@cache
def _aliases() -> dict[str, str]:
    index = {}
    for name, entry in _raw_catalog().items():
        for key in (name, *entry.get("aliases", [])):
            index[str(key).lower()] = name
    return index


def hardware_names() -> list[str]:
    return list(_raw_catalog())


@cache
def catalog_hardware(name: str) -> HardwareSpec:
    entry = dict(_raw_catalog()[name])
    entry.pop("aliases", None)
    return HardwareSpec(name=name, **entry)


def hardware_by_name(name: str) -> HardwareSpec:
    """A catalog device by name or alias only: never a file path (the web API takes names from clients)."""
    found = _aliases().get(name.strip().lower())
    if found is None:
        hint = did_you_mean(name, list(_aliases()))
        raise RooflensError(
            f"unknown hardware '{name}'.{hint} `rooflens hardware` (GET /api/hardware) lists the catalog."
        )
    return catalog_hardware(found)


def list_hardware() -> list[HardwareSpec]:
    return [catalog_hardware(n) for n in hardware_names()]


def hardware_from_dict(data: dict[str, Any], origin: str = "hardware spec") -> HardwareSpec:
    if not isinstance(data, dict):
        raise RooflensError(f"{origin} must be a mapping of fields (name, memory_bytes, ...)")
    data = dict(data)
    data.pop("aliases", None)
    data.setdefault("name", origin)
    # What the catalog's own listing adds (HardwareSpec.summary) may come back with a spec taken from
    # it: checked against the spec, then dropped, as it is derived, not an input.
    ridge = data.pop("ridge_point_fp16", None)
    try:
        spec = HardwareSpec(**data)
    except ValidationError as err:
        raise explain_validation(err, origin) from None
    if ridge is not None:
        derived = spec.ridge_point("fp16")
        if (
            isinstance(ridge, bool)
            or not isinstance(ridge, int | float)
            or not math.isclose(ridge, derived, rel_tol=1e-6)
        ):
            raise RooflensError(
                f"{origin}: ridge_point_fp16 is derived (peak fp16 FLOP/s / memory_bandwidth = "
                f"{derived:.4g} FLOP/B here), not an input; got {str(ridge)[:40]}: drop it, or fix "
                "peak_flops or memory_bandwidth"
            )
    return spec


def load_hardware_file(path: Path) -> HardwareSpec:
    text = read_user_text(path, "hardware file")
    try:
        data = json.loads(text) if path.suffix == ".json" else load_yaml_text(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise RooflensError(
            f"'{path}' is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}"
        ) from None
    if isinstance(data, dict) and "memory_bandwidth" not in data and len(data) == 1:
        # A file in catalog form: {my-gpu: {...fields...}}.
        ((name, fields),) = data.items()
        if isinstance(fields, dict):
            data = {"name": name, **fields}
    return hardware_from_dict(data, origin=f"hardware file '{path.name}'")


def load_hardware(hardware: HardwareLike) -> HardwareSpec:
    """Resolve any accepted hardware reference; raise RooflensError with advice if it cannot."""
    if isinstance(hardware, HardwareSpec):
        return hardware
    if isinstance(hardware, dict):
        return hardware_from_dict(hardware)
    if isinstance(hardware, Path):
        return load_hardware_file(hardware)
    if not isinstance(hardware, str) or not hardware.strip():
        raise RooflensError("hardware must be a catalog name, a YAML/JSON file path or a dict")
    name = _aliases().get(hardware.strip().lower())
    if name is not None:
        return catalog_hardware(name)
    path = Path(hardware).expanduser()
    if path.suffix in (".yaml", ".yml", ".json") or exists(path):
        if not is_file(path):
            raise RooflensError(f"hardware file '{hardware}' does not exist")
        return load_hardware_file(path)
    hint = did_you_mean(hardware, list(_aliases()))
    raise RooflensError(
        f"unknown hardware '{hardware}'.{hint} Run `rooflens hardware` for the catalog, or pass a YAML "
        "file describing your device."
    )
