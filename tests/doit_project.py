"""A temp project for the end-to-end tests of the doit tasks and the shell commands:
the repo's ``dodo.py`` copied next to a generated ``assets.yaml``, over either store.

`Store` hides the difference between an S3 server (``s3://assets``, requests
counted at the server) and a directory store (``store/`` inside the project), so one
test body can be parametrised over both with the `backend` fixture.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, cache_folder, run_doit, s3_client, serve, write
from tests.servers import SERVERS

BUCKET = "assets"
#: Where a folder store keeps the metadata of its versions (`pod_tasks.store.DirStore`).
META = ".pod-meta/"


class Store:
    """The store of a test project, seen from outside pod-tasks."""

    def __init__(self, kind: str, project: Path, s3=None, client=None) -> None:
        self.kind = kind
        self.project = project
        self.s3 = s3
        self.client = client
        if client is not None:
            client.create_bucket(Bucket=BUCKET)
            s3.clear()
        else:
            (project / "store").mkdir()

    @property
    def spec(self) -> str:
        """The ``store:`` value of assets.yaml."""
        return f"s3://{BUCKET}" if self.kind == "s3" else "store"

    @property
    def cache_folder(self) -> str:
        """The folder under the cache dir that holds this store's objects."""
        if self.kind == "s3":
            return cache_folder(BUCKET)
        from pod_tasks.store import DirStore

        return DirStore(self.project / "store").name

    def put(self, key: str, data: bytes) -> None:
        if self.client is not None:
            self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        else:
            path = self.project / "store" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def get(self, key: str) -> bytes | None:
        if self.client is not None:
            try:
                return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None
        path = self.project / "store" / key
        return path.read_bytes() if path.is_file() else None

    def keys(self) -> list[str]:
        if self.client is not None:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
        root = self.project / "store"
        files = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.is_dir() else ()
        return sorted(f for f in files if not f.startswith(META))  # the metadata of versions is not a key

    def url(self, key: str) -> str:
        return f"s3://{BUCKET}/{key}" if self.kind == "s3" else (self.project / "store" / key).as_uri()

    def gets(self, key: str | None = None) -> int | None:
        """GET requests the server saw for ``key`` (all keys when None); None for a folder."""
        if self.s3 is None:
            return None
        return self.s3.count("GET", None if key is None else f"/{BUCKET}/{key}")


@pytest.fixture(params=[*SERVERS, "dir"])
def backend(request, project) -> Store:
    """The project's store: bucket ``assets`` on each S3 server in turn (ids ``moto``,
    ``rclone``, the environment pointed at it), or a folder (``dir``); the project has
    the repo's dodo.py."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    if request.param == "dir":
        return Store("dir", project)
    s3 = serve(request, request.param)
    return Store("s3", project, s3, s3_client(s3))


@pytest.fixture
def s3_backend(project, s3, client) -> Store:
    """The project's store on each S3 server in turn, never a folder (for request counts
    and `files:`)."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    return Store("s3", project, s3, client)


@pytest.fixture
def dir_backend(project) -> Store:
    """The project's store in a folder only (where the store makes no difference)."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    return Store("dir", project)


def manifest(store: Store, body: str) -> Path:
    """Write assets.yaml: ``store:`` then ``body`` (YAML text, dedented); the server's
    request count starts again from here (setting up the store is not counted)."""
    if store.s3 is not None:
        store.s3.clear()
    return write(store.project / "assets.yaml", f"store: {store.spec}\n" + textwrap.dedent(body).lstrip("\n"))


def closed_port() -> int:
    """A loopback port nothing listens on (an unreachable store)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def doit(store: Store, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``doit ARGS`` in the project, as a user would run it."""
    return run_doit(list(args), store.project, env)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def assert_clean_failure(result: subprocess.CompletedProcess, *needles: str) -> str:
    """A non-zero exit, no traceback, and one ERROR line holding every needle; returns it."""
    text = output(result)
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if "ERROR" in line or "error" in line.lower()]
    assert len(errors) == 1, text
    for needle in needles:
        assert needle in errors[0], text
    return errors[0]


def table_rows(result: subprocess.CompletedProcess, first: str) -> list[list[str]]:
    """The rows of the table a command printed whose header starts with ``first``,
    each split into its cells (columns are two or more spaces apart)."""
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith(f"{first} ")))
    return [re.split(r"  +", line) for line in lines[header + 1:] if line.strip()]
