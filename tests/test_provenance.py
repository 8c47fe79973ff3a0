"""`pod_tasks.provenance`: who published a version and with what message, kept as store
metadata (on S3 and in a folder store's sidecar), and `proves`, which tells from hashes
alone whether a stored object holds a file's bytes."""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest

from pod_tasks import provenance as provenance_module
from pod_tasks.digests import Checksum, Digester
from pod_tasks.errors import PodError, PublishConflict
from pod_tasks.provenance import Provenance, proves, provenance, publisher, stamp
from pod_tasks.store import DirStore, Head, S3Store

DATA = b"id,value\n1,2\n"
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def test_publisher_is_user_at_host(monkeypatch):
    monkeypatch.setattr(provenance_module.getpass, "getuser", lambda: "ann")
    assert publisher() == f"ann@{socket.gethostname()}"


@pytest.mark.parametrize("user_error, host_error, expected", [
    (OSError("no login name"), None, "unknown@box"),
    (KeyError("uid not found"), None, "unknown@box"),
    (None, OSError("no host"), "ann@unknown"),
])
def test_publisher_never_fails(monkeypatch, user_error, host_error, expected):
    def fail(error):
        def call():
            raise error
        return call

    monkeypatch.setattr(provenance_module.getpass, "getuser", fail(user_error) if user_error else lambda: "ann")
    monkeypatch.setattr(provenance_module.socket, "gethostname", fail(host_error) if host_error else lambda: "box")
    assert publisher() == expected


@pytest.mark.parametrize("message", [
    None, "fix the units", "café, naïve ✓ 数据", "two\nlines\tand a tab", "100% of the rows", "  spaced  ",
])
def test_stamp_is_ascii_and_reads_back(message):
    metadata = stamp(SHA, "ånn@höst", message)
    assert all(value.isascii() and value.isprintable() for value in metadata.values())
    assert provenance(metadata) == Provenance(SHA, "ånn@höst", message)


def test_a_message_too_long_for_the_store_is_refused():
    assert provenance(stamp(SHA, "a@b", "x" * 1800)).message == "x" * 1800
    with pytest.raises(PodError, match=r"^--message is too long: the store keeps at most 2048 bytes"):
        stamp(SHA, "a@b", "é" * 400)  # 2400 bytes once encoded


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(DATA)
    return path, Digester.of_file(path, sha256=True)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


OTHER = b"id,value\n1,3\n"  # same size, other bytes
PROOFS = [
    ("other size", Head(MD5, len(DATA) + 1), False),
    ("sha256 checksum", Head(None, len(DATA), Checksum("sha256", b64(hashlib.sha256(DATA).digest()))), True),
    ("other sha256 checksum", Head(None, len(DATA), Checksum("sha256", b64(hashlib.sha256(OTHER).digest()))), False),
    ("md5 etag", Head(MD5, len(DATA)), True),
    ("other md5 etag", Head(hashlib.md5(OTHER).hexdigest(), len(DATA)), False),
    ("checksum and etag disagree", Head(hashlib.md5(OTHER).hexdigest(), len(DATA),
                                        Checksum("sha256", b64(hashlib.sha256(DATA).digest()))), None),
    ("opaque etag, sha256 metadata", Head("a" * 40, len(DATA), metadata={"pod-sha256": SHA}), True),
    ("opaque etag, other sha256 metadata", Head("a" * 40, len(DATA),
                                                metadata={"pod-sha256": hashlib.sha256(OTHER).hexdigest()}), False),
    ("kms etag, metadata", Head(MD5, len(DATA), opaque=True, metadata={"pod-sha256": SHA}), True),
    ("opaque etag, nothing else", Head("a" * 40, len(DATA)), None),
    ("a folder: size only", Head(None, len(DATA)), None),
]


@pytest.mark.parametrize("head, verdict", [p[1:] for p in PROOFS], ids=[p[0] for p in PROOFS])
def test_proves(source, head, verdict):
    path, hashed = source
    assert proves(head, hashed, path) is verdict


def test_a_multipart_etag_is_worked_out_from_the_file(tmp_path):
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB: parts of 8 MiB
    path = tmp_path / "big"
    path.write_bytes(data)
    parts = [hashlib.md5(data[i:i + (8 << 20)]).digest() for i in range(0, len(data), 8 << 20)]
    etag = f"{hashlib.md5(b''.join(parts)).hexdigest()}-2"
    assert proves(Head(etag, len(data)), Digester.of_file(path, sha256=True), path) is True


# --- the stores keep it ----------------------------------------------------------------------


def test_a_folder_store_keeps_metadata_in_a_sidecar_it_never_lists(tmp_path, source):
    path, hashed = source
    store = DirStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    metadata = stamp(SHA, "ann@box", "first")
    store.put_if_absent("foo/bar.1.0.0.csv", path, metadata=metadata)
    assert store.head("foo/bar.1.0.0.csv").metadata == metadata
    assert (tmp_path / "store" / ".pod-meta" / "foo" / "bar.1.0.0.csv.json").is_file()
    assert list(store.list_keys("")) == ["foo/bar.1.0.0.csv"]
    assert list(store.list_keys("foo/bar.")) == ["foo/bar.1.0.0.csv"]

    with pytest.raises(PublishConflict):  # a loser never overwrites the winner's metadata
        store.put_if_absent("foo/bar.1.0.0.csv", path, metadata=stamp(SHA, "bob@box", "second"))
    assert provenance(store.head("foo/bar.1.0.0.csv").metadata) == Provenance(SHA, "ann@box", "first")
    leftovers = [p.name for p in (tmp_path / "store").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_a_folder_store_version_without_metadata_has_none(tmp_path):
    (tmp_path / "store" / "foo").mkdir(parents=True)
    (tmp_path / "store" / "foo" / "bar.1.0.0.csv").write_bytes(DATA)
    assert DirStore(tmp_path / "store").head("foo/bar.1.0.0.csv").metadata == {}


def test_an_s3_store_keeps_metadata_on_the_object(s3, client, source):
    path, hashed = source
    client.create_bucket(Bucket="meta")
    store = S3Store("meta")
    metadata = stamp(SHA, "ånn@box", "café ✓\nsecond line")
    store.put_if_absent("foo/bar.1.0.0.csv", path, hashed.md5.digest(), hashed.sha256.digest(), metadata)
    head = store.head("foo/bar.1.0.0.csv")  # on the fast path (urllib3), not boto3
    assert provenance(head.metadata) == Provenance(SHA, "ånn@box", "café ✓\nsecond line")
    assert proves(head, hashed, path) is True
