"""Servers that attack a client, on 127.0.0.1, each in a thread of this process, counting
what they did: the attacks of issue 22's contract 5 as an attacker would run them.

- `LyingMirror("huge")`: a web mirror that answers every GET with a huge declared
  ``Content-Length`` and streams zeros until the client hangs up.
- `LyingMirror("drip")`: a web mirror that sends each file one byte a second.
- `EndlessListing("same")` / `EndlessListing("new")`: a fake S3 server whose
  ListObjectsV2 is always truncated, with the same continuation token each time or a
  new one; every object is missing (404 NoSuchKey).

``requests`` is every request as ``(method, path)``; ``sent`` the body bytes sent.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers import _Threaded

__all__ = ["LyingMirror", "EndlessListing", "HUGE"]

#: What the lying mirror declares: a terabyte.
HUGE = 1 << 40


class _Hostile(_Threaded):
    """The bookkeeping and serving of every server here."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        self.sent = 0
        self._lock = threading.Lock()

    def saw(self, method: str, target: str) -> None:
        with self._lock:
            self.requests.append((method, unquote(urlsplit(target).path)))

    def wrote(self, count: int) -> None:
        with self._lock:
            self.sent += count

    def count(self, method: str) -> int:
        with self._lock:
            return sum(1 for m, _ in self.requests if m == method)

    def start(self):
        handler = type("Handler", (self.handler,), {"owner": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.handle_error = lambda request, address: None  # a client that hangs up is the point
        self._serve(server)
        return self


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not a delayed ACK apart
    owner: _Hostile

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass


class _MirrorHandler(_Quiet):
    def do_GET(self) -> None:
        owner = self.owner
        owner.saw("GET", self.path)
        path = owner.root / unquote(urlsplit(self.path).path).lstrip("/")
        data = path.read_bytes() if path.is_file() else b""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(HUGE if owner.mode == "huge" else len(data)))
        self.end_headers()
        try:
            if owner.mode == "huge":
                block = bytes(64 << 10)
                while not owner.stopped:
                    self.wfile.write(block)
                    owner.wrote(len(block))
            else:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    owner.wrote(1)
                    time.sleep(1)
        except OSError:  # the client gave up
            pass
        self.close_connection = True


class LyingMirror(_Hostile):
    """A mirror of the files under ``root`` that lies (``huge``) or drip-feeds (``drip``)."""

    handler = _MirrorHandler

    def __init__(self, root: Path, mode: str) -> None:
        super().__init__(mode)
        self.root = Path(root)


_LISTING = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>
<IsTruncated>true</IsTruncated>{token}<NextContinuationToken>{next}</NextContinuationToken>
<Contents><Key>{prefix}9.9.{page}.csv</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>
<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"""
_NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
                b"<Message>The specified key does not exist.</Message></Error>")


class _ListingHandler(_Quiet):
    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        owner = self.owner
        owner.saw(self.command, self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if "list-type" not in query:
            return self._answer(404, _NO_SUCH_KEY)
        with owner._lock:
            owner.pages += 1
            page = owner.pages
        given = query.get("continuation-token", [""])[0]
        token = f"<ContinuationToken>{given}</ContinuationToken>" if given else ""
        body = _LISTING.format(bucket=parts.path.strip("/"), prefix=query.get("prefix", [""])[0], token=token,
                               next="again" if owner.mode == "same" else f"page-{page}", page=page)
        self._answer(200, body.encode())

    do_HEAD = do_GET


class EndlessListing(_Hostile):
    """A fake S3 server whose listings never end (``same`` token or ``new`` ones each
    page); ``pages`` counts the listing requests."""

    handler = _ListingHandler

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.pages = 0

