"""What `rooflens serve --workers N` adds to uvicorn: TCP_NODELAY on every worker's connections.

With N > 1 uvicorn binds the listening socket itself and hands it to the workers, and that socket
says protocol 0 rather than TCP; asyncio only turns Nagle's algorithm off on sockets that say TCP,
so every worker's connections keep it on (uvicorn issue #3149, open as of uvicorn 0.54). An answer
goes out as headers then body in two writes; with Nagle on, the body waits for the client's
delayed ACK of the headers, about 40 ms on Linux, on every keep-alive request after the first
(measured with benchmarks/bench_serve.py: one client, report only, 20 requests/s with two workers
against 170 with one). This protocol sets TCP_NODELAY itself when a connection opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol  # what uvicorn's http="auto" picks


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once on a TCP connection (no-op for anything else)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # a socket closed under us: the protocol will see it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's own HTTP/1.1 protocol, with TCP_NODELAY set on each new connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
