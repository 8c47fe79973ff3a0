"""`pod_tasks.append` beyond one PUT (tests/test_store.py races it on every store):
claims left by a crashed publish, and multipart uploads, on moto and rclone."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from pod_tasks import append as append_module
from pod_tasks import store as store_module
from pod_tasks.append import CLAIMS, append
from pod_tasks.cache import AssetCache, ObjectRef
from pod_tasks.config import Settings
from pod_tasks.digests import Digester
from pod_tasks.errors import PublishConflict
from pod_tasks.store import S3Store
from tests.faults import Rule, proxy  # noqa: F401 - proxy is a fixture

BUCKET = "versions"
MIB = 1 << 20


@pytest.fixture
def bucket(s3, client):
    client.create_bucket(Bucket=BUCKET)
    s3.clear()
    return client


@pytest.fixture
def cache(cache_dir) -> AssetCache:
    return AssetCache(Settings(cache_dir=cache_dir))


def source(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path, Digester.of_file(path, sha256=True)


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture
def claimed(bucket, cache):
    """A store known to ignore conditional writes, where another publisher's claim on
    ``team/x.1.0.0.csv`` is already in place."""
    store = S3Store(BUCKET)
    cache.note("conditional-writes", store.identity, False)
    other = f"team/{CLAIMS}x.1.0.0.csv/deadbeef"
    bucket.put_object(Bucket=BUCKET, Key=other, Body=b"someone else's")
    return store, other


def test_a_live_claim_makes_a_publisher_wait_then_give_up(claimed, bucket, cache, tmp_path, monkeypatch):
    store, other = claimed
    monkeypatch.setattr(append_module, "_WAIT", 0.5)
    path, digest = source(tmp_path, "a", b"data\n")
    with pytest.raises(PublishConflict, match=rf"another publish of this version has been under way for over 0 s "
                                              rf"\(claims under s3://{BUCKET}/team/\.pod-claims/x\.1\.0\.0\.csv/\)"):
        append(store, "team/x.1.0.0.csv", path, digest, cache, prefix="team/")
    assert keys(bucket) == [other]  # never uploaded; our own claims removed, the other's kept


def test_a_claim_left_by_a_killed_publish_is_removed(claimed, bucket, cache, tmp_path, monkeypatch):
    store, other = claimed
    monkeypatch.setattr(append_module, "_STALE", 0.0)  # as if not rewritten for long
    path, digest = source(tmp_path, "a", b"data\n")
    append(store, "team/x.1.0.0.csv", path, digest, cache, prefix="team/")
    assert keys(bucket) == ["team/x.1.0.0.csv"]
    assert bucket.get_object(Bucket=BUCKET, Key="team/x.1.0.0.csv")["Body"].read() == b"data\n"


def test_a_long_upload_keeps_its_claim_alive(s3, bucket, cache, tmp_path, monkeypatch):
    store = S3Store(BUCKET)
    cache.note("conditional-writes", store.identity, False)
    monkeypatch.setattr(append_module, "_HEARTBEAT", 0.05)
    original = S3Store.put_if_absent

    def slow(self, *args, **kwargs):
        time.sleep(0.5)  # an upload that outlasts several heartbeats
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Store, "put_if_absent", slow)
    path, digest = source(tmp_path, "a", b"data\n")
    append(store, "x.1.0.0.csv", path, digest, cache)
    claim_puts = [p for m, p in s3.requests if m == "PUT" and CLAIMS in p]
    assert len(claim_puts) >= 4 and len(set(claim_puts)) == 1  # written, then rewritten while uploading
    assert keys(bucket) == ["x.1.0.0.csv"]


def test_files_over_the_single_put_limit_go_up_in_parts(s3, bucket, cache, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SINGLE_PUT_LIMIT", 6 * MIB)
    monkeypatch.setattr(store_module, "PART_SIZE", 5 * MIB)
    data = os.urandom(11 * MIB + 123)
    path, digest = source(tmp_path, "big", data)
    store = S3Store(BUCKET)
    append(store, "big.1.0.0.bin", path, digest, cache)
    assert s3.count("POST", f"/{BUCKET}/big.1.0.0.bin") == 2  # create, then the conditional complete
    assert s3.count("PUT", f"/{BUCKET}/big.1.0.0.bin") == 3   # three parts, no single PUT
    assert bucket.get_object(Bucket=BUCKET, Key="big.1.0.0.bin")["Body"].read() == data

    fetched = cache.fetch(ObjectRef(store, "big.1.0.0.bin", True)).path
    assert hashlib.sha256(fetched.read_bytes()).digest() == digest.sha256.digest()
    assert cache.record(ObjectRef(store, "big.1.0.0.bin", True)).verified in ("checksum-sha256", "etag-md5")

    other, other_digest = source(tmp_path, "other", os.urandom(7 * MIB))
    with pytest.raises(PublishConflict):
        append(store, "big.1.0.0.bin", other, other_digest, cache)
    assert bucket.get_object(Bucket=BUCKET, Key="big.1.0.0.bin")["Body"].read() == data
    assert keys(bucket) == ["big.1.0.0.bin"]


def test_a_refused_multipart_completion_is_aborted(s3, bucket, cache, tmp_path, monkeypatch):
    """The key is taken between the check and the completion: the upload is aborted,
    no part is left in the store (moto honours the condition on completion)."""
    if s3.kind != "moto":
        pytest.skip("rclone ignores the condition; claims guard it there (test above)")
    monkeypatch.setattr(store_module, "SINGLE_PUT_LIMIT", 6 * MIB)
    monkeypatch.setattr(store_module, "PART_SIZE", 5 * MIB)
    path = tmp_path / "big"
    path.write_bytes(os.urandom(7 * MIB))
    store = S3Store(BUCKET)
    bucket.put_object(Bucket=BUCKET, Key="big.1.0.0.bin", Body=b"someone else's")
    with pytest.raises(PublishConflict):
        store.put_if_absent("big.1.0.0.bin", path, b"", b"")
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert bucket.get_object(Bucket=BUCKET, Key="big.1.0.0.bin")["Body"].read() == b"someone else's"


@pytest.mark.parametrize("times", [1, None])
def test_a_multipart_completion_whose_reply_is_lost_is_this_publishs_success(s3, bucket, cache, proxy, tmp_path,
                                                                           monkeypatch, times):
    """The completion went through and its reply was lost (once: the client's retry
    meets the finished upload, which moto completes again and rclone no longer knows;
    always: publish asks the store): these bytes are there, never a conflict, and no
    part is left behind."""
    monkeypatch.setattr(store_module, "SINGLE_PUT_LIMIT", 6 * MIB)
    monkeypatch.setattr(store_module, "PART_SIZE", 5 * MIB)
    data = os.urandom(7 * MIB)
    path, digest = source(tmp_path, "big", data)
    lost = proxy.add(Rule("POST", rf"^/{BUCKET}/big\.1\.0\.0\.bin\?uploadId=", "lost", times=times))
    appended = append(S3Store(BUCKET), "big.1.0.0.bin", path, digest, cache)
    assert lost.injected == (6 if times is None else 1)  # botocore's 1 + 5 retries, or the one
    assert appended.recovered or times == 1  # every reply lost: the store was asked, and holds these bytes
    assert bucket.get_object(Bucket=BUCKET, Key="big.1.0.0.bin")["Body"].read() == data
    assert keys(bucket) == ["big.1.0.0.bin"]
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
