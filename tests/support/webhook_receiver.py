"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that checks each Standard
Webhooks signature with its own code (written from the specification, not ours)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP server that records each POST, checks its signature with ``secret`` (its own code,
    written from the Standard Webhooks text), and answers 500 to the first ``failures`` tries of
    each webhook-id (``None``: always)."""

    def __init__(self, failures: int | None = 0):
        self.secret = ""
        self.failures = failures
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                msg_id = self.headers["webhook-id"]
                with receiver.lock:
                    tries = sum(r["id"] == msg_id for r in receiver.received) + 1
                    receiver.received.append({"id": msg_id, "body": body, "try": tries,
                                              "verified": receiver.verify(self.headers, body)})
                fail = receiver.failures is None or tries <= receiver.failures
                self.send_response(500 if fail else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?x=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers, body: bytes) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 60
        return fresh and f"v1,{expected}" in headers["webhook-signature"].split()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Trickler:
    """A receiver that never finishes answering in time: it reads the request, sends a status
    line, then one header line every ``every`` seconds for ``lines`` lines (a slowloris answer
    that beats any per-read timeout). Records when each connection came and went."""

    def __init__(self, every: float = 1.0, lines: int = 60, host: str = "127.0.0.1"):
        self.every, self.lines = every, lines
        self.accepted: list[float] = []  # monotonic times
        self.connections: list[tuple[float, float]] = []  # (accepted, closed) monotonic times
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/slow"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        accepted = time.monotonic()
        self.accepted.append(accepted)
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for i in range(self.lines):
                if self.stopped.wait(self.every):
                    break
                conn.sendall(b"X-Slow-%d: 1\r\n" % i)
            conn.sendall(b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass  # the sender cut us off
        finally:
            self.connections.append((accepted, time.monotonic()))
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
