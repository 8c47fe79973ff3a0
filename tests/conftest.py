"""Fixtures: a real S3 endpoint on loopback, an isolated environment, temp projects,
and helpers that run Python and doit as a user would (in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pod_tasks.resolver import Project
from tests.servers import S3Server

REPO = Path(__file__).resolve().parent.parent
_ISOLATE = (
    "POD_CACHE_DIR", "POD_TIMEOUT", "POD_OFFLINE", "POD_ASSETS", "STATIC_CACHE_DIR",
    "STATIC_CACHE_TIMEOUT", "STATIC_CACHE_IMMUTABLE_BUCKETS", "AWS_PROFILE", "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real AWS config, no inherited POD_ settings, a private cache dir."""
    for var in _ISOLATE:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POD_CACHE_DIR", str(tmp_path / "cache"))
    Project.forget()
    yield
    Project.forget()


@pytest.fixture(scope="session")
def _s3_session():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(_s3_session, monkeypatch):
    """The shared S3 server, emptied, with this process's environment pointed at it."""
    _s3_session.reset()
    for key, value in _s3_session.env().items():
        monkeypatch.setenv(key, value)
    return _s3_session


@pytest.fixture
def own_s3(monkeypatch):
    """A server of this test's own, which the test may stop (to go offline)."""
    server = S3Server().start()
    server.reset()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    yield server
    server.stop()


@pytest.fixture
def client(s3):
    import boto3

    return boto3.client("s3", endpoint_url=s3.endpoint)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


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
