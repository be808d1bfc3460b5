"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that checks each Standard
Webhooks signature with its own code (written from the specification, not ours)."""

from __future__ import annotations

import base64
import hashlib
import hmac
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
