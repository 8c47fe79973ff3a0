"""Web servers for the mirror tests: a folder served over HTTP on 127.0.0.1 by Python's
``http.server`` in a thread, counting the requests that reach it.

- `WebServer(root)`: as a static web server, CDN or S3 website bucket serves it: a
  strong ``ETag`` per file, ``Range`` (206 with ``Content-Range``) and ``If-Match``
  (412), 404 for anything that is not a file under ``root``.
- `WebServer(root, plain=True)`: ``http.server``'s own `SimpleHTTPRequestHandler`, which
  knows neither ``Range`` nor ``ETag`` (a range is answered with the whole file).

Faults (404, 500, truncation, flipped bytes, an HTML page) come from a `FaultProxy`
(`tests.servers`) put in front of one: ``FaultProxy(server.port).start()``.

    server = WebServer(folder).start()
    ...                                    # mirrors: [server.endpoint]
    server.count("GET", "/foo/bar.1.2.5.csv"), server.ranges
    server.stop()
"""

from __future__ import annotations

import functools
import re
import threading
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.servers import _Threaded

__all__ = ["WebServer"]

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class WebServer(_Threaded):
    """A folder served over HTTP on 127.0.0.1 (see the module doc); `requests` is every
    request that reached it, as ``(method, path)``, and `ranges` the ``Range`` headers
    of its GETs, in order."""

    def __init__(self, root: Path, plain: bool = False) -> None:
        self.root = Path(root)
        self.plain = plain
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[str | None] = []
        self._log_lock = threading.Lock()

    def record(self, method: str, target: str, range_header: str | None) -> None:
        with self._log_lock:
            self.requests.append((method, unquote(urlsplit(target).path)))
            if method == "GET":
                self.ranges.append(range_header)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests with ``method`` (any when None) and exactly ``path`` (any when None)."""
        with self._log_lock:
            return sum(1 for m, p in self.requests if method in (None, m) and path in (None, p))

    def clear(self) -> None:
        with self._log_lock:
            self.requests.clear()
            self.ranges.clear()

    def start(self) -> "WebServer":
        owner = self
        base = _Plain if self.plain else _Files
        handler = functools.partial(type("Handler", (base,), {"owner": owner}), directory=str(self.root))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.handle_error = lambda request, address: None  # a client that hangs up (a cut download) is no news
        self._serve(server)
        return self


class _Plain(SimpleHTTPRequestHandler):
    """http.server's own file handler (no Range, no ETag), counting, quiet."""

    owner: WebServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def send_head(self):
        self.owner.record(self.command, self.path, self.headers.get("Range"))
        return super().send_head()


class _Files(BaseHTTPRequestHandler):
    """Files under the folder with an ETag, Range and If-Match, as a static server."""

    owner: WebServer
    protocol_version = "HTTP/1.1"

    def __init__(self, *args, directory: str, **kwargs) -> None:
        self.directory = Path(directory).resolve()
        super().__init__(*args, **kwargs)

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
        pass

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self) -> None:
        self.owner.record(self.command, self.path, self.headers.get("Range"))
        path = (self.directory / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
        if self.directory not in path.parents or not path.is_file():
            return self._answer(404, {"Content-Type": "text/html"}, b"<html><body>404 Not Found</body></html>")
        data = path.read_bytes()
        st = path.stat()
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        headers = {"Content-Type": "application/octet-stream", "ETag": etag, "Accept-Ranges": "bytes"}
        wanted = self.headers.get("If-Match")
        if wanted is not None and wanted != etag:
            return self._answer(412, {"Content-Type": "text/plain"}, b"precondition failed")
        asked = _RANGE.match(self.headers.get("Range", ""))
        if asked is None:
            return self._answer(200, headers, data)
        first = int(asked[1])
        last = min(int(asked[2]) if asked[2] else len(data) - 1, len(data) - 1)
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        self._answer(206, headers, data[first:last + 1])

    do_GET = do_HEAD = _serve
