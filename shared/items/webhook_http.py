"""One webhook POST, to the address that was checked, within one total deadline.

The host is resolved once (``resolve``); every address it resolved to must be public unless
private ones are allowed; the connection then goes to those addresses (the first that accepts),
never to a second lookup, so a DNS answer that changes between the check and the connection (rebinding)
cannot reach the local network. TLS still checks the certificate against the host name (SNI and
verification use the name, the socket the checked address), and ``Host`` is the name.

The deadline covers everything (connect, TLS, sending, the answer's status line and headers,
the first bytes of its body): a timer shuts the socket down when it passes, so a receiver that
trickles a byte every few seconds is cut off at the deadline like one that never answers, and
the attempt counts as failed (``DeadlineExceeded``), never as delivered.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit


class DestinationError(ValueError):
    """A host that cannot be resolved, or that resolves to an address we must not reach."""


class DeadlineExceeded(OSError):
    """The receiver did not answer completely within the delivery's deadline."""


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The host's addresses (one lookup); DestinationError when it has none, or when one is
    loopback, private, link-local ... and ``allow_private`` is off."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationError(f"cannot resolve {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise DestinationError(f"cannot resolve {host!r}")
    if not allow_private and any(is_private(a) for a in addresses):
        raise DestinationError(f"{host!r} resolves to a private or loopback address")
    return addresses


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of the checked ``addresses`` that accepts one."""
    error: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("no address to connect to")


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _cut(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, headers: dict[str, str], body: bytes, deadline: float,
         allow_private: bool) -> int:
    """POST ``body`` to ``url`` at the address checked by ``resolve``; the HTTP status.
    Raises DestinationError (never worth retrying), DeadlineExceeded or another OSError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    addresses = resolve(host, port, allow_private)
    left = max(0.05, deadline - (time.monotonic() - started))
    kind = _PinnedTLS if parts.scheme == "https" else _Pinned
    conn = kind(host, port, addresses, left)
    fired = threading.Event()
    timer = threading.Timer(left, _cut, args=(conn, fired))
    timer.daemon = True
    timer.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(1024)
        if fired.is_set():
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        if fired.is_set() or isinstance(exc, TimeoutError):
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s") from None
        if isinstance(exc, OSError):
            raise
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
        conn.close()
