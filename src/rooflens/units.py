"""Reading quantities with units ("80 GiB", "3.35 TB/s", "989.4 TFLOPS") and writing them for people.

Internally everything is SI base units: bytes, bytes/s, FLOP/s, seconds. Decimal prefixes are powers
of 1000 (as in spec sheets: "3.35 TB/s" is 3.35e12 B/s); binary prefixes (KiB, MiB, GiB) powers of 1024.
"""

from __future__ import annotations

import math
import re

_DECIMAL = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([nuµmkKMGTP]i?)?\s*([A-Za-z/]*)\s*$")

# Unit words accepted for each kind of quantity (case-insensitive).
UNITS = {
    "bytes": {"b", "byte", "bytes"},
    "bandwidth": {"b/s", "bytes/s"},
    "flops": {"flops", "flop/s", "ops", "op/s", "tops", "tflops"},
    "watts": {"w", "watt", "watts"},
    "seconds": {"s", "sec", "seconds"},
}


def parse_quantity(value: object, kind: str) -> float:
    """A number, or a string such as '80 GiB', in SI base units; ValueError if it cannot be read."""
    if isinstance(value, bool):
        raise ValueError(f"expected a {kind} quantity, got {value!r}")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float: no real quantity
            raise ValueError(f"{kind} quantity is too large ({value.bit_length()} bits)") from None
    if not isinstance(value, str):
        raise ValueError(f"expected a number or a string with units, got {value!r}")
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(f"cannot read {value!r} as a {kind} quantity (example: {_EXAMPLE[kind]})")
    number, prefix, unit = match.groups()
    prefix = prefix or ""
    unit_l = unit.lower()
    # "TFLOPS"/"TOPS" are often written as one word: peel the prefix off the unit.
    if not prefix and unit_l in ("tflops", "tops"):
        prefix, unit_l = "T", unit_l[1:]
    if unit_l and unit_l not in UNITS[kind]:
        raise ValueError(f"unit {unit!r} does not fit a {kind} quantity (example: {_EXAMPLE[kind]})")
    scale = _BINARY.get(prefix) or _DECIMAL.get(prefix)
    if scale is None:
        raise ValueError(f"unknown prefix {prefix!r} in {value!r}")
    return float(number) * scale


_EXAMPLE = {
    "bytes": "'80 GiB'",
    "bandwidth": "'3.35 TB/s'",
    "flops": "'989.4 TFLOPS'",
    "watts": "'700 W'",
    "seconds": "'5 us'",
}


def _scaled(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    prefixes = ["", "k", "M", "G", "T", "P", "E"]
    mag, i = abs(value), 0
    while mag >= 1000 and i < len(prefixes) - 1:
        mag /= 1000
        i += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{mag:.3g} {prefixes[i]}{unit}"


def fmt_si(value: float | None) -> str:
    """A compact number with an SI prefix and no unit ("1.07 G"), for columns whose header names the unit."""
    return _scaled(value, "").rstrip()


def fmt_plain(value: float) -> str:
    """Three significant digits written out, never in exponent form: 2,290 (not 2.29e+03), 0.125."""
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 100:
        return f"{float(f'{value:.3g}'):,.0f}"
    return f"{value:.3g}"


def fmt_bytes(value: float) -> str:
    """Bytes with decimal prefixes (GB = 1e9 B), as spec sheets and the JSON contract use."""
    return _scaled(value, "B")


def fmt_flops(value: float) -> str:
    return _scaled(value, "FLOP")


def fmt_rate(value: float, unit: str) -> str:
    return _scaled(value, unit)


def fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{seconds} s"
