"""Big objects as parallel ranged GETs, and resuming an interrupted download, in
process against each S3 server (the sizes shrunk: parts of 256 KiB from 1 MiB up)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from pod_tasks import cache as cache_module
from pod_tasks import parts
from pod_tasks.cache import DOWNLOADED, AssetCache, ObjectRef
from pod_tasks.config import Settings
from pod_tasks.engine import Cancelled
from pod_tasks.store import S3Store

BUCKET = "parts-bucket"
KIB = 1024


def rel_of(cache, target) -> str:
    """The cache-relative path of ``target`` (what names its kept bytes in ``.pod/_tmp/``)."""
    return cache.path_for(target).relative_to(cache.root).as_posix()


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(cache_module, "_PARTS_FROM", 1024 * KIB)
    monkeypatch.setattr(cache_module, "_KEEP_FROM", 256 * KIB)
    monkeypatch.setattr(parts, "PART", 256 * KIB)


@pytest.fixture
def calls(monkeypatch) -> list[tuple[int, int | None, str | None]]:
    """Every ``download_to`` of an S3 store: (first, last, etag)."""
    seen: list[tuple[int, int | None, str | None]] = []
    original = S3Store.download_to

    def spy(self, key, start, first=0, last=None, etag=None):
        seen.append((first, last, etag))
        return original(self, key, start, first, last, etag)

    monkeypatch.setattr(S3Store, "download_to", spy)
    return seen


def _setup(client, body: bytes, key: str = "big.bin"):
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=key, Body=body)
    cache = AssetCache(Settings(cache_dir=os.environ["POD_CACHE_DIR"], endpoint=os.environ.get("AWS_ENDPOINT_URL")))
    return cache, ObjectRef(S3Store(BUCKET), key, immutable=True, sha256=hashlib.sha256(body).hexdigest())


def _stop_after(limit: int):
    def progress(done: int, total: int) -> None:
        if done >= limit:
            raise Cancelled("interrupted")
    return progress


def test_a_big_object_comes_as_ranges_verified(s3, client, small_parts, calls):
    body = os.urandom(3 * 1024 * KIB + 1234)
    cache, target = _setup(client, body)
    s3.clear()
    fetched = cache.fetch(target)
    assert fetched.action == DOWNLOADED and fetched.path.read_bytes() == body
    assert cache.record(target).verified == "sha256"
    ranges = sorted((first, last) for first, last, _ in calls[1:])
    part = 256 * KIB
    assert calls[0] == (0, None, None)  # the first GET: the whole object, read for its first part
    assert ranges == [(a, min(a + part, len(body)) - 1) for a in range(part, len(body), part)]
    assert all(etag == hashlib.md5(body).hexdigest() for _, _, etag in calls[1:])  # If-Match: one version
    assert s3.count("GET") == len(calls)
    assert not list(fetched.path.parent.glob(".*.part"))


def test_an_interrupted_download_resumes_from_the_bytes_on_disk(s3, client, small_parts, calls):
    body = os.urandom(4 * 1024 * KIB)
    cache, target = _setup(client, body)
    with pytest.raises(Cancelled):
        cache.fetch(target, progress=_stop_after(2 * 1024 * KIB))
    path = cache.path_for(target)
    assert not path.exists()  # nothing at the final path
    kept = json.loads(cache.layout.partial_meta(rel_of(cache, target)).read_bytes())
    assert kept["etag"] == hashlib.md5(body).hexdigest() and kept["size"] == len(body)
    assert 256 * KIB <= kept["have"] < len(body)
    calls.clear()
    fetched = cache.fetch(target)
    assert fetched.path.read_bytes() == body and cache.record(target).verified == "sha256"
    assert calls[0] == (kept["have"], None, kept["etag"])  # on from there, only if still the same object
    assert all(first >= kept["have"] for first, _, _ in calls)
    assert not cache.layout.partial(rel_of(cache, target)).exists() and not cache.layout.partial_meta(rel_of(cache, target)).exists()


def test_a_changed_object_starts_over(s3, client, small_parts, calls):
    old = os.urandom(4 * 1024 * KIB)
    cache, _ = _setup(client, old, key="live.bin")
    target = ObjectRef(S3Store(BUCKET), "live.bin", immutable=False)
    with pytest.raises(Cancelled):
        cache.fetch(target, progress=_stop_after(2 * 1024 * KIB))
    assert cache.layout.partial(rel_of(cache, target)).exists()
    new = os.urandom(3 * 1024 * KIB)
    client.put_object(Bucket=BUCKET, Key="live.bin", Body=new)
    calls.clear()
    assert cache.fetch(target).path.read_bytes() == new
    assert calls[0][0] > 0 and calls[0][2] == hashlib.md5(old).hexdigest()  # tried to resume: refused
    assert (0, None, None) in calls  # then from the start
    assert not cache.layout.partial(rel_of(cache, target)).exists()
