"""Answers to repeated identical requests, kept in a small least-recently-used cache.

The page asks again for what it asked a moment ago (a setting changed and changed back, a reload,
several people on the same defaults). An answer is a pure function of the validated request (the
catalogs are data bundled with the package), so the same request gets the same bytes back without
the analysis and figures being computed again.

The key is the endpoint plus the canonical JSON of the *validated* request: two bodies share an
answer only if they validate to the same request (the same fields, defaults filled in), never
otherwise. Only successful answers are stored: an error is raised again, in full, each time. The
cache is bounded both in entries and in bytes (key and answer together, as Python holds them), so a
burst of large answers cannot grow the server; an answer too large for an eighth of the budget is
not kept at all.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

from pydantic import BaseModel

MAX_ENTRIES = 128
MAX_BYTES = 64 * 1024 * 1024


def request_key(endpoint: str, request: BaseModel) -> str:
    """The endpoint and the validated request as canonical JSON (sorted keys, no spaces)."""
    body = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return f"{endpoint}\n{body}"


class AnswerCache:
    """Thread-safe LRU of ``key -> (body, media type)``, bounded in entries and in bytes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("cache bounds must be >= 0 (0 turns the cache off)")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, body: bytes, media_type: str) -> None:
        size = sys.getsizeof(key) + sys.getsizeof(body)
        if self.max_entries == 0 or size > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (body, media_type)
            self._sizes[key] = size
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def answer(self, key: str, compute: Callable[[], tuple[bytes, str]]) -> tuple[bytes, str]:
        """The stored answer for ``key``, else ``compute()``'s (stored unless it raised)."""
        found = self.get(key)
        if found is not None:
            return found
        body, media_type = compute()
        self.put(key, body, media_type)
        return body, media_type

    def _drop(self, key: str) -> None:
        del self._entries[key]
        self._bytes -= self._sizes.pop(key)
