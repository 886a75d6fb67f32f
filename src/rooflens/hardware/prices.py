"""Device rental prices (US dollars per device-hour): the bundled list, with its source and date."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from ..errors import RooflensError
from ..userfiles import load_bundled_yaml
from .catalog import hardware_by_name


@cache
def _raw() -> dict[str, Any]:
    return load_bundled_yaml((resources.files("rooflens") / "hardware" / "prices.yaml").read_text())


def price_source(device: str | None = None) -> str:
    """Where the bundled prices (or one device's) come from, and when they were read."""
    raw = _raw()
    entry = raw["devices"].get(device, {}) if device else {}
    return f"{entry.get('source', raw['source'])}, retrieved {entry.get('retrieved', raw['retrieved'])}"


def bundled_prices() -> dict[str, float]:
    return {name: float(entry["usd_per_hour"]) for name, entry in _raw()["devices"].items()}


def parse_price_overrides(items: list[str] | None) -> dict[str, float]:
    """'H100=2.5' (a catalog name or alias) -> {'h100-sxm': 2.5}."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            usd = float(value)
        except ValueError:
            usd = -1.0
        if not sep or usd <= 0:
            raise RooflensError(
                f"--price takes DEVICE=USD_PER_HOUR with a positive price, e.g. H100=2.5; got {item!r}"
            )
        out[hardware_by_name(name).name] = usd
    return out
