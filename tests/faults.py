"""A fault-injecting HTTP proxy between an S3 client and moto's server, for tests.

    proxy = FaultProxy(upstream_port).start()
    proxy.add(Rule("GET", r"/assets/foo", "close", times=2))   # the first two GETs cut
    ...                                                          # AWS_ENDPOINT_URL=proxy.endpoint
    proxy.stop()

Each `Rule` matches a method (or ``*``) and a regex searched in the request path, and
applies its fault to the first ``times`` matching requests (``None``: every one):

- ``close``: forward, send the headers and ``keep`` of the body, then reset the connection;
- ``truncate``: the same, ending with a clean close (the client still got the original
  Content-Length);
- ``status``: answer ``status`` (503 is S3's ``SlowDown``) without forwarding;
- ``flip``: forward, flipping one byte in every 64 KiB of the body (length unchanged,
  the response's own ``x-amz-checksum-*`` headers dropped so only the client's checks remain);
- ``delay``: wait ``seconds`` before forwarding (a client gone meanwhile is not
  forwarded), or, with ``after=True``, after the server has answered and before the
  client hears it; with ``gather=N``, hold requests until N have arrived (a barrier);
- ``slow``: forward, sleeping ``seconds`` after each 64 KiB of the body;
- ``lost``: forward, then close the connection without a reply (the server acted,
  the client never hears it).

Only loopback is used, every socket has a timeout, and `stop` ends it; the faults
injected are counted for the tests to assert on.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import S3Server

__all__ = ["Rule", "FaultProxy", "proxy", "SECRET", "assert_clean", "record"]

_BLOCK = 64 * 1024
_TIMEOUT = 30.0
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "expect", "te", "upgrade"}
_ERRORS = {500: ("InternalError", "We encountered an internal error. Please try again."),
           503: ("SlowDown", "Please reduce your request rate.")}
FAULTS = ("close", "truncate", "status", "flip", "delay", "slow", "lost")


@dataclass
class Rule:
    """One fault for the requests that match ``method`` and the ``path`` regex."""

    method: str
    path: str
    fault: str
    times: int | None = 1
    status: int = 503
    seconds: float = 0.0
    keep: float = 0.5
    after: bool = False
    gather: int = 0
    injected: int = 0
    hit: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}: one of {FAULTS}")
        self._pattern = re.compile(self.path)
        self._barrier = threading.Barrier(self.gather) if self.gather else None

    def wait(self) -> None:
        """A delay: ``seconds``, or, with ``gather``, until that many requests are held
        (at most ``seconds``), so that racing clients are released together."""
        if self._barrier is None:
            time.sleep(self.seconds)
            return
        try:
            self._barrier.wait(timeout=self.seconds)
        except threading.BrokenBarrierError:
            pass

    def claims(self, method: str, path: str) -> bool:
        """This request gets the fault (counted as injected)."""
        if self.method not in ("*", method) or not self._pattern.search(path):
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        self.injected += 1
        self.hit.set()
        return True


class FaultProxy:
    """The proxy: `start`, `add` rules, read `injected`, `stop`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- control ------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.port = self._server.server_address[1]
        return self

    # The same lifecycle as the S3 server's: shut down, close, join.
    stop = S3Server.stop
    endpoint = S3Server.endpoint

    def add(self, rule: Rule) -> Rule:
        """Apply a copy of ``rule`` (nothing injected yet) and return it: what a rule
        counts belongs to one proxy, so one `Rule` in a parametrize list serves every
        run."""
        rule = replace(rule, injected=0, hit=threading.Event())
        with self._lock:
            self.rules.append(rule)
        return rule

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(r.injected for r in self.rules)

    def _claim(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.claims(method, path):
                    return rule
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = _TIMEOUT

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        method, path = self.command, self.path
        body = self._read_body()
        rule = self.owner._claim(method, path)
        fault = rule.fault if rule else None
        if fault == "status":
            return self._error(rule.status)
        if fault == "delay" and not rule.after:
            rule.wait()
            if self._client_gone():  # a client killed meanwhile never reaches the server
                self.close_connection = True
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=_TIMEOUT)
        try:
            upstream.request(method, path, body=body, headers=headers)
            reply = upstream.getresponse()
            if fault == "lost":
                reply.read()
                self.close_connection = True
                return
            out = [(k, v) for k, v in reply.getheaders() if k.lower() not in _HOP]
            length = reply.getheader("Content-Length")
            prefetched = None
            if length is None and method != "HEAD":
                prefetched = reply.read()
                length = str(len(prefetched))
                out.append(("Content-Length", length))
            if fault == "flip":
                out = [(k, v) for k, v in out if not k.lower().startswith("x-amz-checksum")]
            if fault == "delay" and rule.after:
                rule.wait()
            self.send_response_only(reply.status, reply.reason)
            for key, value in out:
                self.send_header(key, value)
            self.end_headers()
            if method == "HEAD":
                return
            self._body(reply, prefetched, int(length), rule)
        finally:
            upstream.close()

    def _body(self, reply: http.client.HTTPResponse, prefetched: bytes | None, length: int, rule: Rule | None) -> None:
        fault = rule.fault if rule else None
        limit = int(length * rule.keep) if fault in ("close", "truncate") else length
        sent = 0
        while sent < limit:
            block = prefetched[sent:sent + _BLOCK] if prefetched is not None else reply.read(min(_BLOCK, limit - sent))
            if not block:
                break
            block = block[: limit - sent]
            if fault == "flip":
                block = bytes([block[0] ^ 0xFF]) + block[1:]
            self.wfile.write(block)
            sent += len(block)
            if fault == "slow":
                time.sleep(rule.seconds)
        self.wfile.flush()
        if fault in ("close", "truncate"):
            self.close_connection = True
            if fault == "close":  # reset, not a clean end
                linger = struct.pack("HH" if os.name == "nt" else "ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            else:
                self.connection.shutdown(socket.SHUT_WR)

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _error(self, status: int) -> None:
        code, message = _ERRORS.get(status, ("InternalError", "fault injected"))
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>fault</RequestId></Error>").encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


# --- fixtures and helpers shared by the fault, crash, concurrency and hostile tests ---

#: The secret key every test in these modules uses: it must never appear in any output.
SECRET = "pod-faults-SECRET-2f9c71d0e4b8a6"


@pytest.fixture
def proxy(s3, monkeypatch):
    """A `FaultProxy` in front of the ``s3`` server; this process's (and its children's)
    ``AWS_ENDPOINT_URL`` points at it. Always stopped."""
    server = FaultProxy(s3.port).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    try:
        yield server
    finally:
        server.stop()


def assert_clean(result: subprocess.CompletedProcess) -> None:
    """No traceback and no secret in what a command printed."""
    for stream in (result.stdout, result.stderr):
        assert SECRET not in stream
        assert "Traceback" not in stream, stream


def record(figure: str, count: int) -> None:
    """Add ``count`` to a reliability figure when ``POD_FIGURES`` names a file (one
    JSON line per call; README's figures are summed from a real run)."""
    target = os.environ.get("POD_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({figure: count}) + "\n")
