"""The one exception rooflens raises for bad input.

Every message is meant to be shown to a person as it is: it says what was wrong, what is accepted,
and, where it can, what to try instead. The CLI prints it on one line and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

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


def explain_validation(err: ValidationError, what: str) -> RooflensError:
    """Turn pydantic's multi-line report into one readable sentence per problem."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or what
        msg = e["msg"]
        if "input" in e and e["type"] not in ("missing",):
            parts.append(f"{loc}: {msg} (got {e['input']!r})")
        else:
            parts.append(f"{loc}: {msg}")
    return RooflensError(f"invalid {what}: " + "; ".join(parts))
