"""A private redis-server process on a free loopback port, for tests and benchmarks.

The machine's shared Redis (6379) belongs to whoever runs the service here: the suite never
flushes or deletes anything there. Each pytest session (and each benchmark run) starts its own
server instead, with persistence off unless asked for (the fault suite restarts from an AOF).
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import listen_port


def free_port() -> int:
    """A loopback port nothing listens on, which no connection takes meanwhile (``ports``)."""
    return listen_port("127.0.0.1")


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port>; ``url(db)`` names one of its databases."""

    def __init__(self, port: int | None = None, appendonly: bool = False, workdir: str | None = None):
        self.port = port or free_port()
        self.appendonly = appendonly
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="anycost-redis-"))
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--databases", "32", "--protected-mode", "no",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


_session_server: RedisServer | None = None


def session_server() -> RedisServer:
    """One private server per process (a pytest session), started on first use and stopped when
    the session ends or, whatever happens, when the process exits."""
    global _session_server
    if _session_server is None:
        _session_server = RedisServer().start()
        atexit.register(close_session_server)
    return _session_server


def close_session_server() -> None:
    global _session_server
    if _session_server is not None:
        _session_server.close()
        _session_server = None
