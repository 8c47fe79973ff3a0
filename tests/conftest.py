"""Fixtures: a real S3 endpoint on loopback, an isolated environment, temp projects,
and helpers that run Python and doit as a user would (in a subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pod_tasks.resolver import Project
from tests.servers import SERVERS, RcloneServer, S3Endpoint

REPO = Path(__file__).resolve().parent.parent
_ISOLATE = (
    "POD_CACHE_DIR", "POD_TIMEOUT", "POD_OFFLINE", "POD_ASSETS", "STATIC_CACHE_DIR",
    "STATIC_CACHE_TIMEOUT", "STATIC_CACHE_IMMUTABLE_BUCKETS", "AWS_PROFILE", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "POD_ANONYMOUS", "POD_MIRRORS",
    "POD_TRUSTED_ENDPOINTS", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real AWS config, no inherited POD_ settings, no user config.yaml (its folder
    `XDG_CONFIG_HOME`: platformdirs' on Linux), a private cache dir."""
    for var in _ISOLATE:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POD_CACHE_DIR", str(tmp_path / "cache"))
    Project.forget()
    sigpipe = signal.getsignal(signal.SIGPIPE) if hasattr(signal, "SIGPIPE") else None
    yield
    Project.forget()
    if sigpipe is not None:  # a test that loads doit's tasks as doit must not leave this worker killable
        signal.signal(signal.SIGPIPE, sigpipe)


class Servers:
    """The session's S3 servers: one per kind, started on first use, all stopped at the end."""

    def __init__(self) -> None:
        self._started: dict[str, S3Endpoint] = {}

    def get(self, kind: str) -> S3Endpoint:
        """The running server ``kind``: ``moto``, ``rclone``, or ``opaque`` (rclone with
        SHA-1 ETags)."""
        if kind not in self._started:
            self._started[kind] = RcloneServer(etag_hash="SHA1") if kind == "opaque" else SERVERS[kind]()
            self._started[kind].start()
        return self._started[kind]

    def stop(self) -> None:
        for server in self._started.values():
            server.stop()


@pytest.fixture(scope="session")
def _s3_servers():
    servers = Servers()
    yield servers
    servers.stop()


def point_at(server: S3Endpoint, monkeypatch) -> S3Endpoint:
    """``server`` emptied (no bucket, no counted request), with this process's
    environment (credentials, AWS_ENDPOINT_URL) pointed at it."""
    server.reset()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server


@pytest.fixture(params=list(SERVERS))
def s3_kind(request) -> str:
    """The S3 server this test runs against: each of `SERVERS` in turn (ids ``moto``,
    ``rclone``)."""
    return request.param


@pytest.fixture
def s3(s3_kind, _s3_servers, monkeypatch) -> S3Endpoint:
    """The session's S3 server of ``s3_kind``, emptied, with this process's environment
    pointed at it: every test using it runs on moto and on rclone."""
    return point_at(_s3_servers.get(s3_kind), monkeypatch)


@pytest.fixture
def own_s3(s3_kind, monkeypatch):
    """A server of ``s3_kind`` of this test's own, which the test may stop (to go offline);
    the environment points at it."""
    server = SERVERS[s3_kind]().start()
    try:
        yield point_at(server, monkeypatch)
    finally:
        server.stop()


@pytest.fixture
def opaque_s3(_s3_servers, monkeypatch) -> RcloneServer:
    """An rclone server whose ETags are SHA-1s, not the MD5 of the bytes (as AWS gives
    for SSE-KMS objects), emptied, the environment pointed at it like ``s3``."""
    return point_at(_s3_servers.get("opaque"), monkeypatch)


def serve(request, kind: str) -> S3Endpoint:
    """For a fixture parametrised over stores (``[*SERVERS, "dir"]``): the session's S3
    server ``kind``, emptied, with this process's environment pointed at it."""
    return point_at(request.getfixturevalue("_s3_servers").get(kind), request.getfixturevalue("monkeypatch"))


def s3_client(server: S3Endpoint):
    """A boto3 client of ``server`` (its loopback endpoint, explicitly; the credentials
    from the environment `point_at` set)."""
    import boto3

    return boto3.client("s3", endpoint_url=server.endpoint)


@pytest.fixture
def client(s3):
    """A boto3 client of the ``s3`` server."""
    return s3_client(s3)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def cache_folder(bucket: str) -> str:
    """The folder under the cache dir of ``bucket`` on the server the environment names
    now (``AWS_ENDPOINT_URL``: a test server, or a proxy in front of it)."""
    from pod_tasks.store import endpoint_folder

    return endpoint_folder(os.environ.get("AWS_ENDPOINT_URL")) + bucket


@pytest.fixture
def project(tmp_path) -> Path:
    """An empty project folder (where assets.yaml and dodo.py go)."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_python(code: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, as a user program would."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def run_doit(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``doit ARGS`` in ``cwd`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def doit_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``doit ARGS`` with stdout on a pseudo-terminal (POSIX only), as a person
    watching would: (exit code, what the terminal showed, stderr)."""
    leader, follower = os.openpty()
    run = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=cwd, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    code = run.wait(timeout=120)
    return code, seen.decode(), run.stderr.read().decode()
