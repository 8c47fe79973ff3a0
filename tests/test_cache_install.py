"""AssetCache.install: bytes from elsewhere (an asset pack) adopted with their record,
verified on the way in, never a partial file at the final path."""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pod_tasks.cache import AssetCache, ObjectRef
from pod_tasks.records import Record
from pod_tasks.config import Settings
from pod_tasks.errors import IntegrityError
from pod_tasks.store import S3Store

DATA = b"a,b\n1,2\n"
MD5 = hashlib.md5(DATA).hexdigest()
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cache(cache_dir) -> AssetCache:
    made = AssetCache(Settings.load(cache_dir=cache_dir))
    made.layout.claim()
    return made


def ref(sha256: str | None = None) -> ObjectRef:
    return ObjectRef(S3Store("assets"), "foo/a.1.0.0.csv", True, sha256)


def record(**changes) -> Record:
    fields = dict(url="s3://assets/foo/a.1.0.0.csv", size=len(DATA), mtime_ns=1, md5=MD5, etag=MD5, sha256=SHA,
                  checked=time.time() - 60, immutable=True)
    fields.update(changes)
    return Record(**fields)


def test_install_keeps_the_record_with_the_new_mtime(cache):
    packed = record()
    path = cache.install(ref(SHA), io.BytesIO(DATA), packed)
    assert path.read_bytes() == DATA
    assert cache.record(ref()) == replace(packed, mtime_ns=path.stat().st_mtime_ns)
    assert cache.is_fresh(ref(SHA), network=False)


@pytest.mark.parametrize("rec, pin, message", [
    (record(size=5), None, "got 8 bytes, the record says 5"),
    (record(md5="0" * 32), None, "do not match the record's MD5/ETag"),
    (record(etag="0" * 32), None, "do not match the record's MD5/ETag"),
    (record(sha256="0" * 64), None, "do not match the record's sha256"),
    (record(sha256=None), "1" * 64, "does not match the pin"),
    (record(url="s3://assets/other.csv"), None, "the record is for s3://assets/other.csv"),
])
def test_install_refuses_bytes_that_do_not_match(cache, rec, pin, message):
    with pytest.raises(IntegrityError, match=message):
        cache.install(ref(pin), io.BytesIO(DATA), rec)
    files = [p.name for p in Path(cache.root).rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert files == ["CACHEDIR.TAG"]  # no data, no record, no temp file


def test_install_without_a_record_replaces_the_old_one(cache):
    cache.install(ref(), io.BytesIO(b"old"), record(size=3, md5=hashlib.md5(b"old").hexdigest(),
                                                      etag=None, sha256=None))
    path = cache.install(ref(), io.BytesIO(DATA), None)
    assert path.read_bytes() == DATA
    assert cache.record(ref()) == Record(url="s3://assets/foo/a.1.0.0.csv", size=len(DATA),
                                         mtime_ns=path.stat().st_mtime_ns, md5=MD5, immutable=True)  # never checked
