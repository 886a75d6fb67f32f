"""The one exception rooflens raises for bad input.

Every message is meant to be shown to a person as it is: it says what was wrong, what is accepted,
and, where it can, what to try instead. The CLI prints it on one line and exits with status 2.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


class RooflensError(ValueError):
    """Bad input: an unknown name, a malformed config, an impossible workload."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' Did you mean ...?' suffix with the closest choices, or '' when nothing is close."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    # Substring matches catch short queries such as "70b" that difflib scores low.
    if len(close) < n:
        close += [c for c in lowered if name.lower() in c and c not in close][: n - len(close)]
    if not close:
        return ""
    return " Did you mean " + ", ".join(repr(lowered[c]) for c in close) + "?"


def excerpt(value: Any, width: int = 40) -> str:
    """A short, printable rendering of an input value for an error message (never the whole of a
    huge input)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit integer"  # repr: slow, or refused
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def explain_validation(err: ValidationError, what: str) -> RooflensError:
    """Turn pydantic's multi-line report into one readable sentence per problem, each quoting at most a
    short excerpt of the value given, and only where the message does not already quote it."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or what
        msg = e["msg"].removeprefix("Value error, ")
        shown = excerpt(e.get("input"))
        if "input" in e and e["type"] != "missing" and shown not in msg:
            parts.append(f"{loc}: {msg} (got {shown})")
        else:
            parts.append(f"{loc}: {msg}")
    return RooflensError(f"invalid {what}: " + "; ".join(parts))
