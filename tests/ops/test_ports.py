"""The test servers' port picker (tests/support/ports.py): outside the ephemeral range, free."""

from __future__ import annotations

import socket

from tests.support.ports import _ephemeral_start, listen_port


def test_listen_port_is_free_and_never_an_outgoing_connections_port():
    for _ in range(20):
        port = listen_port()
        assert 20000 <= port < _ephemeral_start()
        with socket.socket() as server:
            server.bind(("0.0.0.0", port))  # free on every address, as metrics servers bind
