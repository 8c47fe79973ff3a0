"""A mirror on a web server: a store's keys read over HTTP(S) at ``<base>/<key>``.

`WebMirror` is one more `pod_tasks.store.Reader`, beside the stores: GET (with
``Range`` and ``If-Match``, as a store is asked for a resumed or parallel download)
and HEAD, on the process's one urllib3 pool (`pod_tasks.wire.pool_for`), following
redirects (a CDN, an S3 website bucket). Any static web server, S3 website bucket or
CDN serving a folder written by ``doit export`` is such a mirror.

It trusts nothing the server says: a `Head` it gives has no checksum and an ETag never
taken for an MD5 (``opaque``), used only to keep the ranges of one download on one
version. Proving the bytes is `pod_tasks.mirrors`' job. There are no retries (the next
source is the retry), and every failure is one `PodError` line: 404 or 410
`AssetNotFound`; another status, or a web page where a file was asked for,
`StoreError`; no connection or a timeout `OfflineError`; a cut body `TransferError`; a range answered
with the whole file, or an ETag that changed `IntegrityError`.
"""

from __future__ import annotations

from urllib.parse import quote

from .endpoints import redact
from .errors import AssetNotFound, IntegrityError, OfflineError, StoreError
from .store import Changed, Head, Opener, get_headers, pump
from .wire import Reply, pool_for

__all__ = ["WebMirror", "CONNECT_TIMEOUT", "READ_TIMEOUT"]

#: Seconds to wait for a mirror to accept a connection, and for each read: a mirror
#: that does not answer is given up for the next source well before a store would be.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
#: Redirects followed for one request (a CDN's, an S3 website's).
_REDIRECTS = 5
_PAGES = (".html", ".htm", ".xhtml")


class WebMirror:
    """The keys of a store as served under ``base`` (``https://host/path``, no trailing ``/``)."""

    remote = True

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def __repr__(self) -> str:
        return f"WebMirror({redact(self.base)!r})"

    def url(self, key: str) -> str:
        """``key``'s URL as messages show it: the base's userinfo redacted."""
        return redact(self._address(key))

    def _address(self, key: str) -> str:
        return f"{self.base}/{quote(key, safe='/~')}"

    def _request(self, method: str, key: str, headers: dict[str, str]):
        """The 2xx answer to ``method`` of ``key`` (its body unread), else the error."""
        import urllib3

        url, address = self.url(key), self._address(key)
        try:
            response = pool_for(address).request(
                method, address, headers=headers, preload_content=False, redirect=True,
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=_REDIRECTS),
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            )
        except urllib3.exceptions.HTTPError as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            raise OfflineError(f"cannot reach the mirror for {url} ({type(cause).__name__})") from None
        status = response.status
        page = str(response.headers.get("Content-Type", "")).startswith("text/html") and not key.endswith(_PAGES)
        if 200 <= status < 300 and not page:
            return response
        response.close()  # the body is not wanted (an error page may be long): drop the connection
        if status in (404, 410):
            raise AssetNotFound(f"{url} is not on the mirror (HTTP {status})")
        if page:
            raise StoreError(f"{url}: the mirror answered with a web page, not the file (a login or error page?)")
        if status == 412:
            raise Changed(f"{url} changed on the mirror during the download")
        raise StoreError(f"{url}: the mirror answered HTTP {status} {response.reason or ''}".rstrip())

    def _head_of(self, response, key: str) -> Head:
        headers = response.headers
        etag = headers.get("ETag")
        whole = str(headers.get("Content-Range", "")).rpartition("/")[2]
        length = str(headers.get("Content-Length", ""))
        whole, length = (text if text.isascii() else "" for text in (whole, length))
        if not whole.isdigit() and not length.isdigit():
            raise StoreError(f"{self.url(key)}: the mirror did not say the file's length (no Content-Length)")
        size = int(whole) if whole.isdigit() else int(length)
        # A weak ETag (W/"...") cannot be matched with If-Match: as good as none.
        strong = etag.strip('"') if etag and not etag.startswith("W/") else None
        return Head(strong or None, size, opaque=True)

    def head(self, key: str) -> Head:
        response = self._request("HEAD", key, {})
        try:
            return self._head_of(response, key)
        finally:
            response.release_conn()

    def part_size(self, key: str) -> int | None:
        return None  # a web server says nothing of how an object was uploaded

    def download_to(self, key: str, start: Opener, first: int = 0, last: int | None = None,
                    etag: str | None = None) -> Head:
        headers = get_headers(first, last, etag)
        response = self._request("GET", key, headers)
        reply = Reply({}, response)
        complete = False
        try:
            head = self._head_of(response, key)
            if etag and head.etag != etag:
                raise Changed(f"{self.url(key)} changed on the mirror during the download")
            if "Range" in headers and response.status != 206:
                raise IntegrityError(f"{self.url(key)}: the mirror sent the whole file when asked for a range")
            complete = pump(reply, start(head), self.url(key))
        finally:
            reply.close(reuse=complete)
        return head
