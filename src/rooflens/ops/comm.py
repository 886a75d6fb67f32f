"""Communication operators of multi-device execution.

A collective's cost per device is ``link_bytes / link bandwidth + messages * link latency``, with the
bytes and message count of the standard algorithms (NCCL's ring and all-to-all):

- all-reduce of S bytes over n devices: each sends 2 (n-1)/n S, in 2 (n-1) steps;
- all-gather (or reduce-scatter) of S bytes in total: (n-1)/n S, in n-1 steps;
- all-to-all of S bytes per device: (n-1)/n S, in n-1 steps;
- point-to-point (pipeline stages): S bytes, one message.

Which link: ``intra`` (NVLink, Infinity Fabric, PCIe within a node) when the group fits in a node,
``inter`` (the network) otherwise. Collectives move no device-memory bytes in this model and do not
overlap with computation (both are simplifications, stated in the report's notes).
"""

from __future__ import annotations

from .base import Array, Op


def _comm(name: str, block: str, link_bytes: Array, messages: float, count: float, link: str) -> Op:
    return Op(
        name, block, "comm", "link", count, flops=0.0, link_bytes=link_bytes, messages=messages, link=link
    )


def all_reduce(name: str, block: str, size: Array, n: int, count: float, link: str) -> Op:
    return _comm(name, block, 2 * (n - 1) / n * size, 2 * (n - 1), count, link)


def all_gather(name: str, block: str, size: Array, n: int, count: float, link: str) -> Op:
    return _comm(name, block, (n - 1) / n * size, n - 1, count, link)


def all_to_all(name: str, block: str, size: Array, n: int, count: float, link: str) -> Op:
    return _comm(name, block, (n - 1) / n * size, n - 1, count, link)


def send(name: str, block: str, size: Array, count: float, link: str) -> Op:
    return _comm(name, block, size, 1, count, link)
