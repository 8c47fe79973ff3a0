"""The doit tasks, run as a user runs them: ``doit`` in a subprocess in a temp project
(the repo's dodo.py next to a generated assets.yaml), against moto's S3 server on
127.0.0.1 (requests counted at the server) and against a directory store."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)

CSV = b"a,b\n1,2\n"
JSON = b'{"k": 1}\n'


def cached(backend, cache_dir: Path, key: str) -> Path:
    return cache_dir / backend.cache_folder / key


def two_assets(backend) -> None:
    backend.put("foo/bar.1.2.5.csv", CSV)
    backend.put("foo/bar.1.2.6.csv", b"newer\n")
    backend.put("cfg/params.2.0.0.json", JSON)
    manifest(backend, f"""
        assets:
          foo/bar.csv: 1.2.5
          cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
    """)


# --- listing and help ------------------------------------------------------------------


def test_list_shows_every_task_with_a_one_line_doc(backend):
    two_assets(backend)
    result = doit(backend, "list", "--all")
    assert result.returncode == 0, output(result)
    docs = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines())
    expected = {
        "cache", "fetch", "ls-remote", "publish", "status", "sync", "versions",
        "fetch:foo/bar.csv", "fetch:cfg/params.json",
        "publish:foo/bar.csv", "publish:cfg/params.json",
        "versions:foo/bar.csv", "versions:cfg/params.json",
    }
    assert expected <= set(docs), result.stdout
    for name in expected:
        assert docs[name].strip() and "\n" not in docs[name], name


def test_help_publish_documents_every_option(backend):
    two_assets(backend)
    result = doit(backend, "help", "publish")
    assert result.returncode == 0, output(result)
    for option in ("--major", "--minor", "--patch", "--version=", "--min-version=", "--file=", "--dry-run"):
        line = next((l for l in result.stdout.splitlines() if l.strip().startswith(option)), None)
        assert line is not None, (option, result.stdout)
        assert len(line.split(option, 1)[1].strip()) > 10, line  # a real description


# --- fetch ---------------------------------------------------------------------------------


def test_fetch_then_noop_fetch(backend, cache_dir):
    two_assets(backend)
    first = doit(backend, "fetch")
    assert first.returncode == 0, output(first)
    csv = cached(backend, cache_dir, "foo/bar.1.2.5.csv")
    params = cached(backend, cache_dir, "cfg/params.2.0.0.json")
    assert csv.read_bytes() == CSV and params.read_bytes() == JSON
    assert not cached(backend, cache_dir, "foo/bar.1.2.6.csv").exists()
    if backend.s3:
        assert backend.gets("foo/bar.1.2.5.csv") == 1 and backend.gets("cfg/params.2.0.0.json") == 1
        assert backend.gets() == 2
        backend.s3.clear()
    # one line per download: name, size, speed
    line = next(l for l in first.stdout.splitlines() if l.startswith("foo/bar.csv"))
    assert re.search(r"\b8 B\b.*\d+(\.\d+)? ?[KMG]?B/s", line), line
    mtimes = (csv.stat().st_mtime_ns, params.stat().st_mtime_ns)

    second = doit(backend, "fetch")
    assert second.returncode == 0, output(second)
    assert "-- fetch:foo/bar.csv" in second.stdout and "-- fetch:cfg/params.json" in second.stdout
    assert (csv.stat().st_mtime_ns, params.stat().st_mtime_ns) == mtimes
    if backend.s3:
        assert backend.s3.requests == []  # the store is immutable: not even a HEAD


def test_fetch_one_subtask(backend, cache_dir):
    two_assets(backend)
    result = doit(backend, "fetch:cfg/params.json")
    assert result.returncode == 0, output(result)
    assert cached(backend, cache_dir, "cfg/params.2.0.0.json").read_bytes() == JSON
    assert not cached(backend, cache_dir, "foo/bar.1.2.5.csv").exists()
    if backend.s3:
        assert backend.s3.counts() == {"GET": 1}


def test_default_task_is_fetch(backend, cache_dir):
    two_assets(backend)
    result = doit(backend)
    assert result.returncode == 0, output(result)
    assert cached(backend, cache_dir, "foo/bar.1.2.5.csv").read_bytes() == CSV


def test_files_entries_are_mutable(s3_backend, cache_dir):
    store = s3_backend
    store.client.create_bucket(Bucket="other")
    store.client.put_object(Bucket="other", Key="raw/data.json", Body=b"v1")
    manifest(store, """
        assets: {}
        files:
          - s3://other/raw/data.json
    """)
    path = cache_dir / "other" / "raw" / "data.json"
    store.s3.clear()
    first = doit(store, "fetch")
    assert first.returncode == 0, output(first)
    assert path.read_bytes() == b"v1"
    assert store.s3.count("GET", "/other/raw/data.json") == 1
    store.s3.clear()

    within = doit(store, "fetch")  # inside the timeout (one day): no request
    assert "-- fetch:s3://other/raw/data.json" in within.stdout, output(within)
    assert store.s3.requests == []

    always = doit(store, "fetch", env={"POD_TIMEOUT": "0"})  # unchanged: one HEAD, no GET
    assert always.returncode == 0, output(always)
    assert store.s3.counts() == {"HEAD": 1}
    assert path.read_bytes() == b"v1"
    store.s3.clear()

    store.client.put_object(Bucket="other", Key="raw/data.json", Body=b"version 2")
    store.s3.clear()
    changed = doit(store, "fetch", env={"POD_TIMEOUT": "0"})  # changed: HEAD, then GET
    assert changed.returncode == 0, output(changed)
    assert store.s3.counts() == {"HEAD": 1, "GET": 1}
    assert path.read_bytes() == b"version 2"


def test_overrides_are_reported_and_need_no_request(s3_backend, cache_dir):
    store = s3_backend
    write(store.project / "try" / "local.csv", "x,y\n")
    manifest(store, """
        assets:
          foo/bar.csv: try/local.csv
    """)
    result = doit(store, "fetch")
    assert result.returncode == 0, output(result)
    assert "foo/bar.csv: local override" in result.stdout and "try/local.csv" in result.stdout
    assert store.s3.requests == []
    assert not cache_dir.exists() or not any(p.is_file() for p in cache_dir.rglob("*"))


def test_clean_fetch_removes_exactly_the_pinned_files(backend, cache_dir):
    two_assets(backend)
    assert doit(backend, "fetch").returncode == 0
    other = cached(backend, cache_dir, "foo/bar.1.2.6.csv")  # cached by someone else
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"newer\n")
    unrelated = cache_dir / "elsewhere" / "x.bin"
    write(unrelated, "keep me")
    result = doit(backend, "clean", "fetch")
    assert result.returncode == 0, output(result)
    assert not cached(backend, cache_dir, "foo/bar.1.2.5.csv").exists()
    assert not cached(backend, cache_dir, "cfg/params.2.0.0.json").exists()
    assert other.read_bytes() == b"newer\n" and unrelated.read_text() == "keep me"
    again = doit(backend, "fetch")  # and the next fetch brings them back
    assert "-- fetch" not in again.stdout, output(again)
    assert cached(backend, cache_dir, "foo/bar.1.2.5.csv").read_bytes() == CSV


@pytest.mark.slow
def test_parallel_fetch_of_100_assets(s3_backend, cache_dir):
    store = s3_backend
    bodies = {f"set/item{i:03d}.txt": f"item {i}\n".encode() * (i + 1) for i in range(100)}
    for name, data in bodies.items():
        store.put(name.replace(".txt", ".1.0.0.txt"), data)
    manifest(store, "assets:\n" + "".join(f"  {name}: 1.0.0\n" for name in bodies))
    store.s3.clear()
    first = doit(store, "-n", "8", "-P", "thread", "fetch")
    assert first.returncode == 0, output(first)
    for name, data in bodies.items():
        assert cached(store, cache_dir, name.replace(".txt", ".1.0.0.txt")).read_bytes() == data, name
    assert store.s3.counts() == {"GET": 100}
    assert sum(1 for l in first.stdout.splitlines() if re.match(r"set/item\d{3}\.txt@1\.0\.0: ", l)) == 100
    store.s3.clear()
    second = doit(store, "-n", "8", "-P", "thread", "fetch")
    assert second.returncode == 0, output(second)
    assert store.s3.requests == []
    assert sum(1 for l in second.stdout.splitlines() if l.startswith("-- fetch:set/")) == 100, second.stdout


def test_tampered_bytes_are_caught_by_the_sha256_pin(backend, cache_dir):
    backend.put("cfg/params.2.0.0.json", b'{"k": 2}\n')  # not the bytes the pin hashes
    manifest(backend, f"""
        assets:
          cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
    """)
    result = doit(backend, "fetch")
    assert_clean_failure(result, "cfg/params.json", "sha256")
    target = cached(backend, cache_dir, "cfg/params.2.0.0.json")
    assert not target.exists()
    assert not list(target.parent.glob("*")) if target.parent.exists() else True
