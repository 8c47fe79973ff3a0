"""Fixtures and helpers shared by the fault, crash, concurrency and hostile tests: the
``proxy`` fixture (a `FaultProxy`, see `tests.servers`, in front of the ``s3`` server),
the secret that must never be printed, and the figures they record.

    def test_x(proxy):
        proxy.add(Rule("GET", r"/assets/foo", "close", times=2))   # the first two GETs cut
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.servers import CREDENTIALS, FaultProxy, Rule

__all__ = ["Rule", "FaultProxy", "proxy", "SECRET", "assert_clean", "record"]

#: The secret key of every test (every server accepts it): it must never appear in any output.
SECRET = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]


@pytest.fixture
def proxy(s3, monkeypatch):
    """A `FaultProxy` in front of the ``s3`` server (each of them in turn); this
    process's (and its children's) ``AWS_ENDPOINT_URL`` points at it, and the server
    still counts what reaches it. Always stopped."""
    server = FaultProxy(s3.port).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
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
