"""A real S3 endpoint for tests and benchmarks: moto's server on 127.0.0.1, a free port.

Requests are counted at the server (method, path), so tests can assert that a warm
fetch made none and that N racing processes caused exactly one GET.
"""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter

from werkzeug.serving import make_server

__all__ = ["S3Server", "CREDENTIALS"]

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto's S3 server in a thread, counting requests. Use `start` / `stop`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def _app(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ, start_response):
            if not environ.get("PATH_INFO", "").startswith("/moto-api"):
                with self._lock:
                    self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            return app(environ, start_response)

        return counting

    def start(self, port: int = 0) -> "S3Server":
        import logging

        from moto.moto_server.werkzeug_app import MotoRequestHandler

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self._server = make_server("127.0.0.1", port, self._app(), threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for a client (in a subprocess or this process) of this server."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def reset(self) -> None:
        """Forget every bucket and every counted request."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, method: str, path: str | None = None) -> int:
        """Requests with ``method`` (and exactly ``path``, e.g. ``/bucket/key``) so far."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and (path is None or p == path))

    def counts(self) -> Counter:
        with self._lock:
            return Counter(m for m, _ in self.requests)
