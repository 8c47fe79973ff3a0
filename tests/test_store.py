"""One behaviour table run against both stores: S3 (each server over HTTP) and a folder."""

from __future__ import annotations

import hashlib
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pod_tasks.append import append
from pod_tasks.cache import AssetCache
from pod_tasks.config import Settings
from pod_tasks.digests import Digester
from pod_tasks.errors import AssetNotFound, OfflineError, PublishConflict, StoreError, UnsafePathError
from pod_tasks.store import DirStore, Head, S3Store, open_store, parse_s3_url
from tests.conftest import s3_client, serve
from tests.servers import SERVERS


class _Dir:
    def __init__(self, root: Path) -> None:
        self.store = DirStore(root)
        root.mkdir()

    def put(self, key: str, data: bytes) -> None:
        path = self.store.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def etag(self, data: bytes) -> str | None:
        return None

    def unreachable(self) -> DirStore:
        return DirStore(self.store.root / "not-mounted")


class _S3:
    def __init__(self, client) -> None:
        client.create_bucket(Bucket="store-bucket")
        self.client = client
        self.store = S3Store("store-bucket")

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket="store-bucket", Key=key, Body=data)

    def etag(self, data: bytes) -> str | None:
        return hashlib.md5(data).hexdigest()

    def unreachable(self) -> S3Store:
        return S3Store("store-bucket")


def digests(data: bytes) -> tuple[bytes, bytes]:
    """The MD5 and sha256 that `Store.put_if_absent` takes."""
    return hashlib.md5(data).digest(), hashlib.sha256(data).digest()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=[*SERVERS, "dir"])
def kind(request, tmp_path):
    """The store under test: a bucket on each S3 server in turn, or a folder."""
    if request.param == "dir":
        return _Dir(tmp_path / "store")
    return _S3(s3_client(serve(request, request.param)))


def _download(store, key: str) -> tuple[Head, list[Head], bytes]:
    starts: list[Head] = []
    chunks: list[bytes] = []

    def start(head: Head):
        starts.append(head)
        return chunks.append

    head = store.download_to(key, start)
    return head, starts, b"".join(chunks)


def test_head_and_download(kind):
    data = b"a,b\n1,2\n" * 100
    kind.put("foo/bar.1.2.5.csv", data)
    head = kind.store.head("foo/bar.1.2.5.csv")
    assert (head.etag, head.size, head.opaque) == (kind.etag(data), len(data), False)
    got, starts, body = _download(kind.store, "foo/bar.1.2.5.csv")
    assert (got, starts, body) == (head, [head], data)


def test_empty_object(kind):
    kind.put("empty.1.0.0", b"")
    assert _download(kind.store, "empty.1.0.0")[2] == b""
    assert kind.store.head("empty.1.0.0").size == 0


@pytest.mark.parametrize("op", ["head", "download_to"])
def test_missing_object_is_asset_not_found(kind, op):
    kind.put("other.txt", b"x")
    with pytest.raises(AssetNotFound, match="missing/key.1.0.0.csv does not exist in the store"):
        if op == "head":
            kind.store.head("missing/key.1.0.0.csv")
        else:
            _download(kind.store, "missing/key.1.0.0.csv")


def _append(kind, key: str, path: Path, cache_dir: Path) -> None:
    """`pod_tasks.append` (what publish uploads with), learning about the server in ``cache_dir``."""
    append(kind.store, key, path, Digester.of_file(path, sha256=True), AssetCache(Settings(cache_dir=cache_dir)))


def test_appending_twice_conflicts_and_keeps_the_first(kind, tmp_path, cache_dir):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first bytes")
    second.write_bytes(b"second bytes!")
    _append(kind, "a/b.1.0.0.bin", first, cache_dir)
    assert kind.store.head("a/b.1.0.0.bin").etag == kind.etag(b"first bytes")
    with pytest.raises(PublishConflict, match="a/b.1.0.0.bin already exists"):
        _append(kind, "a/b.1.0.0.bin", second, cache_dir)
    assert _download(kind.store, "a/b.1.0.0.bin")[2] == b"first bytes"
    assert list(kind.store.list_keys("")) == ["a/b.1.0.0.bin"]  # no temp file, no claim left behind


def test_racing_publishers_make_one_winner(kind, tmp_path, cache_dir):
    """Six threads append one key at once: one wins, on a server that honours
    conditional writes (moto), on one that ignores them (rclone: claims decide), and
    in a folder (a hard link decides)."""
    sources = []
    for i in range(6):
        sources.append(tmp_path / f"src{i}")
        sources[-1].write_bytes(f"publisher {i}".encode())

    def publish(path: Path) -> str:
        try:
            _append(kind, "race.1.0.0.txt", path, cache_dir)
            return path.read_text()
        except PublishConflict:
            return "conflict"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(publish, sources))
    winners = [r for r in results if r != "conflict"]
    assert len(winners) == 1, results
    assert _download(kind.store, "race.1.0.0.txt")[2] == winners[0].encode()
    assert list(kind.store.list_keys("")) == ["race.1.0.0.txt"]


def test_list_keys(kind):
    keys = ["foo/bar.1.0.0.csv", "foo/bar.1.2.5.csv", "foo/bar.1.2.5.json", "foo/barn.1.0.0.csv",
            "foo/sub/bar.2.0.0.csv", "top.1.0.0", "zzz/x.1.0.0.bin"]
    for key in keys:
        kind.put(key, key.encode())
    assert sorted(kind.store.list_keys("")) == keys
    assert sorted(kind.store.list_keys("foo/bar.")) == ["foo/bar.1.0.0.csv", "foo/bar.1.2.5.csv", "foo/bar.1.2.5.json"]
    assert sorted(kind.store.list_keys("foo/")) == keys[:5]
    assert list(kind.store.list_keys("nothing/here.")) == []


def test_unreachable_store_is_offline(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    store = kind.unreachable()
    src = tmp_path / "src"
    src.write_bytes(b"x")
    calls = [
        lambda: store.head("k.1.0.0"),
        lambda: _download(store, "k.1.0.0"),
        lambda: store.put_if_absent("k.1.0.0", src, *digests(b"x")),
        lambda: list(store.list_keys("k.")),
    ]
    for call in calls:  # a folder store names its folder; an S3 store the key (or the listing's prefix*)
        with pytest.raises(OfflineError, match=r"not-mounted: it is not there|store at http://127\.0\.0\.1:\d+ for s3://store-bucket/k\.(1\.0\.0|\*)"):
            call()


def test_s3_without_credentials_is_offline_and_says_so(s3, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint + "/")  # a new client, without credentials
    s3.clear()
    with pytest.raises(OfflineError, match=r"no AWS credentials to read s3://bkt/k \(an unsigned read was refused\): "
                                           "configure credentials") as info:
        S3Store("bkt").head("k")
    assert info.value.no_credentials is True
    assert set(s3.counts()) <= {"HEAD", "GET"}  # reads tried unsigned, nothing written


def test_s3_missing_bucket_is_named(s3):
    with pytest.raises(StoreError, match=f"s3://no-such-bucket/k: there is no bucket 'no-such-bucket' at {s3.endpoint}"):
        S3Store("no-such-bucket").head("k")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a\\b"])
def test_dir_store_refuses_keys_outside_its_folder(tmp_path, key):
    store = DirStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    (tmp_path / "escape").write_bytes(b"secret")
    with pytest.raises(UnsafePathError):
        store.head(key)


def test_urls(tmp_path):
    assert S3Store("b").url("foo/bar.csv") == "s3://b/foo/bar.csv"
    assert DirStore(tmp_path).url("foo/bar.csv") == (tmp_path / "foo" / "bar.csv").as_uri()


@pytest.mark.parametrize("spec, kind, prefix", [
    ("s3://bucket", S3Store, ""),
    ("s3://bucket/", S3Store, ""),
    ("s3://bucket/team/assets/", S3Store, "team/assets/"),
    ("folder/store", DirStore, ""),
])
def test_open_store(tmp_path, spec, kind, prefix):
    store, got_prefix = open_store(spec, tmp_path)
    assert isinstance(store, kind) and got_prefix == prefix
    if kind is DirStore:
        assert store.root == tmp_path / "folder" / "store"
    else:
        assert store.name == "bucket"


def test_open_store_file_url(tmp_path):
    store, prefix = open_store((tmp_path / "shared").as_uri(), Path("/elsewhere"))
    assert isinstance(store, DirStore) and store.root == tmp_path / "shared" and prefix == ""
    assert store.name != DirStore(tmp_path / "other").name and store.name.startswith("_dir-")


@pytest.mark.parametrize("url, parsed", [
    ("s3://bkt/k", ("bkt", "k")), ("s3://bkt/a/b/c.txt", ("bkt", "a/b/c.txt")), ("s3://bkt", ("bkt", "")),
])
def test_parse_s3_url(url, parsed):
    assert parse_s3_url(url) == parsed


@pytest.mark.parametrize("url", ["http://b/k", "s3:///k", "b/k", ""])
def test_parse_s3_url_invalid(url):
    with pytest.raises(ValueError, match="is not an s3://bucket/key URL"):
        parse_s3_url(url)


def test_a_failing_sink_is_not_reported_as_a_network_error(kind):
    kind.put("k.1.0.0", b"data")

    def start(head: Head):
        def sink(chunk: bytes) -> None:
            raise OSError(28, "No space left on device")
        return sink

    with pytest.raises(OSError, match="No space left"):
        kind.store.download_to("k.1.0.0", start)


def test_small_objects_are_written_once_and_deleted(tmp_path):
    """A folder's `put_bytes` (publish's claims) creates once, like a version; `delete` removes."""
    store = DirStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    store.put_bytes("a/claim", b"first")
    with pytest.raises(PublishConflict):
        store.put_bytes("a/claim", b"second")
    assert (tmp_path / "store" / "a" / "claim").read_bytes() == b"first"
    store.delete("a/claim")
    assert list(store.list_keys("")) == [] and not list(tmp_path.rglob("*.part"))
