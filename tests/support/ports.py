"""Ports for servers that a test starts in another process.

``bind(("127.0.0.1", 0))`` hands out a port from the kernel's ephemeral range, the same range
every outgoing connection on the machine takes its local port from. Between the test closing
its probe socket and the server process binding (seconds, while the process imports), any
connection (a PostgreSQL or Redis client of this or another test run) may take that port, and
the server cannot bind: ``tests/ops/test_worker_metrics.py`` once saw neither pool process
serve. Ports below the ephemeral range are never given to outgoing connections, so a port free
now stays free unless another server asks for that very number.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000  # above the registered ports that services commonly listen on


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listen_port(host: str = "0.0.0.0") -> int:
    """A port free on ``host`` (every address by default, as ``start_http_server`` binds) and
    outside the ephemeral range, for a server another process starts later."""
    high = _ephemeral_start() - 1
    if high <= _LOWEST:  # an unusual kernel setting: let the kernel pick
        with socket.socket() as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    rng = random.SystemRandom()  # independent of the tests' seeded ``random``
    for _ in range(200):
        port = rng.randint(_LOWEST, high)
        if _bindable(port, host):
            return port
    raise RuntimeError(f"no free port from {_LOWEST} to {high}")
