"""The asset cache, in process, against each S3 server over HTTP (requests counted there)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pod_tasks.cache import DOWNLOADED, FRESH, UNCHECKED, AssetCache, Fetched, ObjectRef
from pod_tasks.digests import Digester
from pod_tasks.config import NEVER, Settings
from pod_tasks.errors import AssetNotFound, CacheError, IntegrityError, OfflineError, UnsafePathError
from pod_tasks.store import S3Store
from tests.conftest import cache_folder, write

BUCKET = "cache-bucket"
DAY = 86400.0


def make_cache(cache_dir: Path, timeout: float = DAY, offline: bool = False, immutable=()) -> AssetCache:
    """A cache as a new process would open it."""
    return AssetCache(Settings(cache_dir=cache_dir, timeout=timeout, offline=offline, immutable=frozenset(immutable),
                               endpoint=os.environ.get("AWS_ENDPOINT_URL")))


def ref(key: str, immutable: bool = False, sha256: str | None = None, bucket: str = BUCKET) -> ObjectRef:
    return ObjectRef(S3Store(bucket), key, immutable, sha256)


def age(cache: AssetCache, target: ObjectRef, seconds: float) -> None:
    """Pretend the last check of ``target`` happened ``seconds`` earlier."""
    path = cache.root / ".pod" / target.store.name / (target.key + ".json")
    data = json.loads(path.read_bytes())
    data["checked"] -= seconds
    path.write_text(json.dumps(data))


def no_parts(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def bucket(s3, client):
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def hashes(monkeypatch) -> list[Path]:
    """Every file `Digester.of_file` re-hashes."""
    seen: list[Path] = []
    original = Digester.of_file.__func__

    def spy(cls, path, *args, **kwargs):
        seen.append(Path(path))
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(Digester, "of_file", classmethod(spy))
    return seen


def test_miss_downloads_once_then_hits_without_requests(s3, bucket, cache_dir, hashes):
    data = b"x,y\n" * 1000
    bucket.put_object(Bucket=BUCKET, Key="a/data.csv", Body=data)
    s3.clear()
    first = make_cache(cache_dir).fetch(ref("a/data.csv"))
    assert (first.action, first.size) == (DOWNLOADED, len(data))
    path = first.path
    assert path == cache_dir.resolve() / cache_folder(BUCKET) / "a" / "data.csv"
    assert path.read_bytes() == data
    assert s3.counts() == {"GET": 1}
    s3.clear()
    again = make_cache(cache_dir)
    assert again.fetch(ref("a/data.csv")) == Fetched(path, FRESH)
    assert again.is_fresh(ref("a/data.csv"))
    assert s3.requests == [] and hashes == []
    record = again.record(ref("a/data.csv"))
    assert (record.url, record.size, record.md5, record.etag) == (
        f"s3://{BUCKET}/a/data.csv", len(data), hashlib.md5(data).hexdigest(), hashlib.md5(data).hexdigest())


def test_after_timeout_same_etag_is_one_head_and_no_rehash(s3, bucket, cache_dir, hashes):
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"same")
    cache = make_cache(cache_dir)
    path = cache.fetch(ref("k.txt")).path
    age(cache, ref("k.txt"), DAY + 1)
    s3.clear()
    assert make_cache(cache_dir).fetch(ref("k.txt")).path == path
    assert s3.counts() == {"HEAD": 1}
    assert hashes == []
    s3.clear()
    make_cache(cache_dir).fetch(ref("k.txt")).path  # checked again just now
    assert s3.requests == []


def test_changed_etag_downloads_the_new_bytes(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"version one")
    cache = make_cache(cache_dir)
    path = cache.fetch(ref("k.txt")).path
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"version two")
    s3.clear()
    assert cache.fetch(ref("k.txt")).path == path  # inside the timeout: not noticed, by design
    assert path.read_bytes() == b"version one" and s3.requests == []
    age(cache, ref("k.txt"), DAY + 1)
    assert cache.fetch(ref("k.txt")).path == path
    assert path.read_bytes() == b"version two"
    assert s3.counts() == {"HEAD": 1, "GET": 1}
    assert cache.record(ref("k.txt")).etag == hashlib.md5(b"version two").hexdigest()


def test_timeout_zero_checks_every_time(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"abc")
    cache = make_cache(cache_dir, timeout=0)
    for _ in range(3):
        cache.fetch(ref("k.txt")).path
    assert s3.count("GET", f"/{BUCKET}/k.txt") == 1
    assert s3.count("HEAD", f"/{BUCKET}/k.txt") == 2


@pytest.mark.parametrize("timeout, immutable, bucket_immutable", [
    (NEVER, False, False),   # timeout: never
    (DAY, True, False),      # an immutable reference (the store)
    (DAY, False, True),      # a bucket listed as immutable
])
def test_never_revalidated(s3, bucket, cache_dir, timeout, immutable, bucket_immutable):
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"abc")
    cache = make_cache(cache_dir, timeout=timeout, immutable=[BUCKET] if bucket_immutable else [])
    target = ref("k.txt", immutable=immutable or bucket_immutable)
    cache.fetch(target).path
    age(cache, target, 1000 * DAY)
    s3.clear()
    cache.fetch(target).path
    assert cache.is_fresh(target)
    assert s3.requests == []
    cache.invalidate(f"s3://{BUCKET}/k.txt")  # a forced check still happens
    cache.fetch(target).path
    assert s3.counts() == {"HEAD": 1}


MIB = 1 << 20


def _upload_multipart(client, key: str, data: bytes, part: int = 5 * MIB) -> str:
    import io

    from boto3.s3.transfer import TransferConfig

    client.upload_fileobj(io.BytesIO(data), BUCKET, key,
                          Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=part))
    return client.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')


@pytest.mark.slow
def test_multipart_object_is_verified_and_revalidated(s3, bucket, cache_dir, hashes):
    data = os.urandom(1024) * (12 * 1024)  # 12 MiB: parts of 5, 5 and 2 MiB
    etag = _upload_multipart(bucket, "big.bin", data)
    assert etag == s3.etag(data, part=5 * MIB)  # moto: md5-of-md5s-3; rclone: the MD5 of the whole
    cache = make_cache(cache_dir)
    s3.clear()
    path = cache.fetch(ref("big.bin")).path
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert s3.counts() == {"GET": 1}
    assert cache.record(ref("big.bin")).etag == etag
    age(cache, ref("big.bin"), DAY + 1)
    s3.clear()
    cache.fetch(ref("big.bin")).path
    assert s3.counts() == {"HEAD": 1} and hashes == []

    # A damaged local copy (same size) no longer has the recorded MD5: fetched again, no HEAD.
    with open(path, "r+b") as handle:
        handle.seek(7 * MIB)
        handle.write(b"\0" * 16)
    age(cache, ref("big.bin"), DAY + 1)
    s3.clear()
    cache.fetch(ref("big.bin")).path
    assert s3.counts() == {"GET": 1}
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()

    # An old cache's copy, with no record: one HEAD, compared by the multipart ETag, no GET.
    (cache_dir / ".pod").rename(cache_dir / "records-gone")
    s3.clear()
    assert make_cache(cache_dir).fetch(ref("big.bin")).path == path
    assert s3.counts() == {"HEAD": 1}


@pytest.mark.slow
def test_multipart_object_with_an_unguessed_part_size(s3, bucket, cache_dir, hashes):
    if not s3.multipart_etags:
        pytest.skip("this server keeps no multipart ETag (HEAD gives the MD5 of the whole): no part size to guess")
    data = os.urandom(1024) * (12 * 1024)
    etag = _upload_multipart(bucket, "odd.bin", data, part=5 * MIB + 1)  # 3 parts no guess fits
    assert etag == s3.etag(data, part=5 * MIB + 1) and etag.endswith("-3")
    cache = make_cache(cache_dir)
    s3.clear()
    path = cache.fetch(ref("odd.bin")).path
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert s3.counts() == {"GET": 1, "HEAD": 1}  # the HEAD asks for the size of part 1
    assert cache.record(ref("odd.bin")).etag == etag
    age(cache, ref("odd.bin"), DAY + 1)
    s3.clear()
    cache.fetch(ref("odd.bin")).path
    assert s3.counts() == {"HEAD": 1}

    # Changed remotely, same size: the part size the store reports shows the difference.
    other = os.urandom(1024) * (12 * 1024)
    new_etag = _upload_multipart(bucket, "odd.bin", other, part=5 * MIB + 1)
    (cache_dir / ".pod").rename(cache_dir / "records-gone")  # no recorded ETag to compare
    s3.clear()
    assert make_cache(cache_dir).fetch(ref("odd.bin")).path.read_bytes() == other
    assert s3.counts() == {"HEAD": 3, "GET": 1}  # check, part size, part size again after the GET
    assert make_cache(cache_dir).record(ref("odd.bin")).etag == new_etag


def test_sha256_mismatch_keeps_nothing(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="pinned.1.0.0.csv", Body=b"replaced bytes")
    target = ref("pinned.1.0.0.csv", immutable=True, sha256=hashlib.sha256(b"original bytes").hexdigest())
    cache = make_cache(cache_dir)
    s3.clear()
    with pytest.raises(IntegrityError) as info:
        cache.fetch(target).path
    assert s3.counts() == {"GET": 1}  # the store's own bytes: no point asking again
    message = str(info.value)
    assert hashlib.sha256(b"replaced bytes").hexdigest() in message and target.sha256 in message
    assert "nothing was kept at" in message and "\n" not in message
    assert message.endswith("the store's own ETag or checksum shows these are its bytes: if assets.yaml pins the "
                            "right sha256, the stored copy is damaged: tell the store's owner; if the pin is wrong, "
                            "fix it in assets.yaml")
    assert not cache.path_for(target).exists()
    assert no_parts(cache_dir)
    assert cache.record(target) is None


def test_sha256_pin_accepts_the_right_bytes(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="pinned.1.0.0.csv", Body=b"original bytes")
    target = ref("pinned.1.0.0.csv", immutable=True, sha256=hashlib.sha256(b"original bytes").hexdigest())
    cache = make_cache(cache_dir)
    assert cache.fetch(target).path.read_bytes() == b"original bytes"
    assert cache.record(target).sha256 == target.sha256


@pytest.mark.parametrize("label, expected", [
    ("", f"^s3://{BUCKET}/nope.txt does not exist in the store: check the name, version or URL asked for$"),
    ("nope.txt@1.0.0", f"^nope.txt@1.0.0: s3://{BUCKET}/nope.txt does not exist in the store: check"),
])
def test_missing_object_is_asset_not_found(s3, bucket, cache_dir, label, expected):
    cache = make_cache(cache_dir)
    with pytest.raises(AssetNotFound, match=expected):
        cache.fetch(ObjectRef(S3Store(BUCKET), "nope.txt", True, label=label)).path
    assert not (cache_dir / cache_folder(BUCKET) / "nope.txt").exists()


def test_offline_serves_cached_and_reports_missing(own_s3, cache_dir, caplog):
    import boto3

    client = boto3.client("s3", endpoint_url=own_s3.endpoint)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="have.txt", Body=b"cached")
    cache = make_cache(cache_dir)
    path = cache.fetch(ref("have.txt")).path
    age(cache, ref("have.txt"), DAY + 1)
    own_s3.stop()

    with caplog.at_level(logging.WARNING, logger="pod_tasks"):
        assert cache.fetch(ref("have.txt")).path == path
    assert path.read_bytes() == b"cached"
    assert "serving the cached copy" in caplog.text

    for key in ("want/b.txt", "want/a.txt", "want/b.txt"):
        target = ObjectRef(S3Store(BUCKET), key, False, label=f"asset {key}")
        with pytest.raises(OfflineError) as info:
            cache.fetch(target).path
        message = str(info.value)
        assert f"asset {key}" in message and f"s3://{BUCKET}/{key}" in message
        assert str(cache.root / cache_folder(BUCKET) / key) in message and "\n" not in message
    listed = yaml.safe_load((cache_dir / "missing_assets.yaml").read_text())
    assert listed == [f"s3://{BUCKET}/want/a.txt", f"s3://{BUCKET}/want/b.txt"]
    assert not (cache_dir / cache_folder(BUCKET) / "want").exists() or not list((cache_dir / cache_folder(BUCKET) / "want").iterdir())


def test_offline_mode_never_touches_the_network(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="have.txt", Body=b"cached")
    online = make_cache(cache_dir)
    online.fetch(ref("have.txt"))
    age(online, ref("have.txt"), DAY + 1)
    s3.clear()
    offline = AssetCache(Settings.load(cache_dir=cache_dir, environ={"POD_OFFLINE": "1"}))
    for force in (False, True):
        fetched = offline.fetch(ref("have.txt"), force=force)
        assert (fetched.path.read_bytes(), fetched.action) == (b"cached", UNCHECKED)
    with pytest.raises(OfflineError, match="offline mode is on"):
        offline.fetch(ref("missing.txt"))
    assert s3.requests == []
    assert yaml.safe_load((cache_dir / "missing_assets.yaml").read_text()) == [f"s3://{BUCKET}/missing.txt"]


@pytest.mark.parametrize("target, checked", [
    (f"s3://{BUCKET}/tree/a.txt", {"tree/a.txt"}),
    (f"s3://{BUCKET}/tree", {"tree/a.txt", "tree/sub/b.txt"}),
    (f"s3://{BUCKET}/tree/", {"tree/a.txt", "tree/sub/b.txt"}),
    ("PATH:tree/sub", {"tree/sub/b.txt"}),
    (None, {"tree/a.txt", "tree/sub/b.txt", "other.txt"}),
])
def test_invalidate(s3, bucket, cache_dir, target, checked):
    keys = ["tree/a.txt", "tree/sub/b.txt", "other.txt"]
    cache = make_cache(cache_dir)
    for key in keys:
        bucket.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
        cache.fetch(ref(key, immutable=True)).path
    if target and target.startswith("PATH:"):
        target = cache.root / cache_folder(BUCKET) / target[5:]
    assert cache.invalidate(target) == len(checked)
    s3.clear()
    for key in keys:
        cache.fetch(ref(key, immutable=True)).path
    assert {path.split("/", 2)[2] for method, path in s3.requests if method == "HEAD"} == checked
    assert s3.count("GET") == 0


def test_delete(s3, bucket, cache_dir):
    cache = make_cache(cache_dir)
    for key in ("tree/a.txt", "tree/b.txt", "keep.txt"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"1")
        cache.fetch(ref(key)).path
    assert cache.delete(f"s3://{BUCKET}/tree/a.txt") == 1
    assert not (cache.root / cache_folder(BUCKET) / "tree" / "a.txt").exists() and cache.record(ref("tree/a.txt")) is None
    assert cache.delete(cache.root / cache_folder(BUCKET) / "tree") == 1
    assert sorted(p.name for p in (cache.root / cache_folder(BUCKET)).rglob("*") if p.is_file()) == ["keep.txt"]
    with pytest.raises(UnsafePathError, match="refusing to delete the whole cache"):
        cache.delete(cache.root)
    s3.clear()
    cache.fetch(ref("tree/a.txt")).path
    assert s3.counts() == {"GET": 1}


def test_entries(s3, bucket, cache_dir):
    cache = make_cache(cache_dir, timeout=3600)
    bucket.put_object(Bucket=BUCKET, Key="fresh.txt", Body=b"12345")
    bucket.put_object(Bucket=BUCKET, Key="old.txt", Body=b"123")
    cache.fetch(ref("fresh.txt")).path
    cache.fetch(ref("old.txt")).path
    age(cache, ref("old.txt"), 7200)
    (cache.root / "legacy-bucket").mkdir()
    (cache.root / "legacy-bucket" / "x.bin").write_bytes(b"1234567")
    (cache.root / ".timestamps" / "legacy-bucket").mkdir(parents=True)
    (cache.root / ".timestamps" / "legacy-bucket" / "x.bin").touch()  # the old tool's: listed
    os.utime(cache.root / ".timestamps" / "legacy-bucket" / "x.bin", (time.time() - 7200,) * 2)
    (cache.root / "legacy-bucket" / "mine.txt").write_bytes(b"not the cache's")  # no record, no mark: never listed
    rows = [(e.path.relative_to(cache.root).as_posix(), e.url, e.size, e.due) for e in cache.entries()]
    assert rows == [
        (f"{cache_folder(BUCKET)}/fresh.txt", f"s3://{BUCKET}/fresh.txt", 5, False),
        (f"{cache_folder(BUCKET)}/old.txt", f"s3://{BUCKET}/old.txt", 3, True),
        ("legacy-bucket/x.bin", "s3://legacy-bucket/x.bin", 7, True),
    ]
    ages = {e.path.name: time.time() - e.checked for e in cache.entries() if e.checked}
    assert ages["old.txt"] >= 7200 > ages["fresh.txt"]


@pytest.mark.parametrize("mark_age, expected", [
    (None, {"HEAD": 1}),          # no mark for it (the old tool's .timestamps/ is there): checked once, by its MD5
    (3600, {}),                   # checked an hour ago by the old tool: used as is
    (2 * DAY, {"HEAD": 1}),       # checked long ago: one HEAD, still no GET
])
def test_old_layout_cache_is_reused(s3, bucket, cache_dir, mark_age, expected):
    data = b"downloaded by the old tool"
    bucket.put_object(Bucket=BUCKET, Key="legacy/file.csv", Body=data)
    (cache_dir / cache_folder(BUCKET) / "legacy").mkdir(parents=True)
    (cache_dir / cache_folder(BUCKET) / "legacy" / "file.csv").write_bytes(data)
    (cache_dir / ".timestamps").mkdir()
    if mark_age is not None:
        mark = cache_dir / ".timestamps" / cache_folder(BUCKET) / "legacy" / "file.csv"
        mark.parent.mkdir(parents=True)
        mark.touch()
        os.utime(mark, (time.time() - mark_age,) * 2)
    s3.clear()
    path = make_cache(cache_dir).fetch(ref("legacy/file.csv")).path
    assert path.read_bytes() == data
    assert s3.counts() == expected
    s3.clear()
    make_cache(cache_dir).fetch(ref("legacy/file.csv")).path
    assert s3.requests == []


def test_locally_damaged_file_is_fetched_again(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="k.1.0.0.txt", Body=b"good bytes")
    cache = make_cache(cache_dir)
    target = ref("k.1.0.0.txt", immutable=True)
    path = cache.fetch(target).path
    path.write_bytes(b"bad bytes!")
    s3.clear()
    assert cache.fetch(target).path.read_bytes() == b"good bytes"
    assert s3.counts() == {"GET": 1}  # not the recorded MD5: no need to ask the store first


def test_a_file_damaged_by_a_machine_crash_is_caught_on_the_next_boot(s3, bucket, cache_dir, hashes, monkeypatch):
    """Downloads are not fsynced: the record names the boot. Bytes lost in a crash (same
    size and mtime, other content) are trusted only within the boot that wrote them."""
    from pod_tasks import cache as cache_module, records

    bucket.put_object(Bucket=BUCKET, Key="k.1.0.0.txt", Body=b"good bytes")
    cache = make_cache(cache_dir)
    target = ref("k.1.0.0.txt", immutable=True)
    path = cache.fetch(target).path
    assert cache.record(target).unsynced == cache_module.boot_id()
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)  # what a crash can leave: the size, not the bytes
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.is_fresh(target, network=False) and hashes == []  # same boot: the record is trusted
    for module in (cache_module, records):  # where records are written, and where they are trusted
        monkeypatch.setattr(module, "boot_id", lambda: "another-boot")
    s3.clear()
    assert cache.fetch(target).path.read_bytes() == b"good bytes"  # re-hashed, found damaged, fetched
    assert set(hashes) == {path} and s3.counts() == {"GET": 1}  # (hashed before and after taking the lock)
    assert cache.fetch(target).action == FRESH and cache.record(target).unsynced == "another-boot"


def test_an_unsynced_file_intact_after_a_reboot_is_hashed_once(s3, bucket, cache_dir, hashes, monkeypatch):
    from pod_tasks import cache as cache_module, records

    bucket.put_object(Bucket=BUCKET, Key="k.1.0.0.txt", Body=b"good bytes")
    cache = make_cache(cache_dir)
    target = ref("k.1.0.0.txt", immutable=True)
    path = cache.fetch(target).path
    for module in (cache_module, records):  # where records are written, and where they are trusted
        monkeypatch.setattr(module, "boot_id", lambda: "another-boot")
    s3.clear()
    assert cache.fetch(target).action == FRESH and cache.fetch(target).action == FRESH
    assert hashes == [path] and s3.counts() == {} and cache.record(target).unsynced is None


def test_threads_asking_for_one_missing_object_cause_one_get(s3, bucket, cache_dir):
    bucket.put_object(Bucket=BUCKET, Key="shared.bin", Body=b"s" * 100_000)
    s3.clear()
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: make_cache(cache_dir).fetch(ref("shared.bin")).path, range(8)))
    assert len(paths) == 1 and paths.pop().read_bytes() == b"s" * 100_000
    assert s3.count("GET") == 1


@pytest.mark.parametrize("timeout", [0.0, DAY], ids=["timeout 0", "timeout 1d"])
def test_threads_on_one_missing_mutable_object_cause_one_get_whatever_the_timeout(s3, bucket, cache_dir, timeout):
    """Those that waited for the lock use the download that happened meanwhile (even
    with `timeout: 0`, a fetch made while they waited counts as their check)."""
    bucket.put_object(Bucket=BUCKET, Key="mutable.bin", Body=b"m" * 100_000)
    s3.clear()
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: make_cache(cache_dir, timeout=timeout).fetch(ref("mutable.bin")).path, range(8)))
    assert len(paths) == 1 and paths.pop().read_bytes() == b"m" * 100_000
    assert s3.count("GET") == 1


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_inside_the_cache_is_refused_for_writes(s3, bucket, cache_dir, tmp_path):
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "precious.txt").write_bytes(b"precious")
    make_cache(cache_dir).layout.claim()  # a cache, in which a link then appears
    (cache_dir / cache_folder(BUCKET)).parent.mkdir(parents=True, exist_ok=True)
    (cache_dir / cache_folder(BUCKET)).symlink_to(outside, target_is_directory=True)
    bucket.put_object(Bucket=BUCKET, Key="dir/new.txt", Body=b"new")
    cache = make_cache(cache_dir)
    with pytest.raises(UnsafePathError, match="is a symlink inside the cache dir"):
        cache.fetch(ref("dir/new.txt")).path
    assert sorted(p.name for p in outside.rglob("*")) == ["dir", "precious.txt"]
    for target in (f"s3://{BUCKET}/dir", f"s3://{BUCKET}/dir/precious.txt", f"s3://{BUCKET}"):
        with pytest.raises(UnsafePathError, match="is a symlink inside the cache dir"):
            cache.delete(target)
    assert (outside / "dir" / "precious.txt").read_bytes() == b"precious"

    # Records are never rewritten through a link either.
    (outside / "rec.json").write_text('{"checked": 1}')
    (cache.root / ".pod" / cache_folder("other")).parent.mkdir(parents=True, exist_ok=True)
    (cache.root / ".pod" / cache_folder("other")).symlink_to(outside, target_is_directory=True)
    write(cache.root / cache_folder("other") / "rec", "bytes whose record is behind the link")
    for target in ("s3://other/rec", None):
        with pytest.raises(UnsafePathError, match="is a symlink inside the cache dir"):
            cache.invalidate(target)
    assert (outside / "rec.json").read_text() == '{"checked": 1}'


def test_what_a_killed_download_left_is_removed_and_a_key_named_like_a_temp_is_not(s3, bucket, cache_dir):
    key = "odd [1] *name?.csv"
    lookalike = f".{key}.0123abcdef0123abcdef0123abcdef01.part"  # the temporary names of older versions
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"odd")
    bucket.put_object(Bucket=BUCKET, Key=lookalike, Body=b"a key of its own")
    cache = make_cache(cache_dir)
    assert cache.fetch(ref(lookalike)).path.read_bytes() == b"a key of its own"
    killed = cache.layout.partial(f"{cache_folder(BUCKET)}/{key}")
    killed.write_bytes(b"left by a download killed in flight (no JSON: not kept to resume)")
    assert cache.fetch(ref(key)).path.read_bytes() == b"odd"
    assert sorted(p.name for p in (cache.root / cache_folder(BUCKET)).iterdir()) == [lookalike, key]
    assert list(cache.layout.tmp.iterdir()) == []
    assert [e.path.name for e in cache.entries()] == [lookalike, key] and list(cache.leftovers()) == []


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../escape.txt", "/abs.txt"])
def test_keys_that_leave_the_cache_are_refused(cache_dir, key):
    cache = make_cache(cache_dir)
    with pytest.raises(UnsafePathError):
        cache.fetch(ref(key)).path
    assert not (cache_dir.parent / "escape.txt").exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(s3, bucket, cache_dir, monkeypatch):
    import io

    from pod_tasks import records  # where cached files are written

    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"data")
    cache = make_cache(cache_dir)
    cache.layout.claim()

    class Full(io.FileIO):
        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(records, "open", lambda path, mode: Full(path, mode.replace("b", "")), raising=False)
    s3.clear()
    with pytest.raises(CacheError) as info:
        cache.fetch(ObjectRef(S3Store(BUCKET), "k.txt", False, label="my/asset.txt")).path
    message = str(info.value)
    assert message.startswith(f"my/asset.txt: cannot use the cache dir {cache.root}: No space left on device")
    assert "set POD_CACHE_DIR" in message and "\n" not in message
    assert s3.counts() == {"GET": 1}  # a local failure is not retried
    assert not (cache.root / cache_folder(BUCKET) / "k.txt").exists() and no_parts(cache_dir)


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "not-a-folder").write_bytes(b"")
    cache = make_cache(tmp_path / "not-a-folder")
    with pytest.raises(CacheError, match="cache dir .*not-a-folder is not a folder: set cache_dir .* or POD_CACHE_DIR"):
        cache.fetch(ref("k.txt")).path


def test_a_folder_stores_file_urls_as_listed_are_accepted_back(cache_dir, tmp_path):
    """`doit cache` lists a folder store's objects by file:// URL: --invalidate and
    --delete take those URLs back, for one file and for a folder of them."""
    from pod_tasks.store import DirStore

    root = tmp_path / "store dir"
    for key in ("foo/bar.1.0.0.csv", "foo/baz.1.0.0.csv", "other.1.0.0.txt"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(key.encode())
    store = DirStore(root)
    cache = make_cache(cache_dir)
    paths = {key: cache.fetch(ObjectRef(store, key, True)).path for key in ("foo/bar.1.0.0.csv", "foo/baz.1.0.0.csv",
                                                                              "other.1.0.0.txt")}
    listed = {entry.url: entry.path for entry in cache.entries()}
    assert set(listed) == {store.url(key) for key in paths} and store.url("foo/bar.1.0.0.csv").startswith("file://")
    assert cache.invalidate(store.url("foo/bar.1.0.0.csv")) == 1
    assert cache.record(ObjectRef(store, "foo/bar.1.0.0.csv", True)).checked is None
    assert cache.delete(store.url("foo")) == 2
    assert not paths["foo/bar.1.0.0.csv"].exists() and not paths["foo/baz.1.0.0.csv"].exists()
    assert paths["other.1.0.0.txt"].read_bytes() == b"other.1.0.0.txt"
    with pytest.raises(UnsafePathError, match="is not in the cache dir .*give a URL or path that `doit cache` lists"):
        cache.delete(store.url("nothing/here.csv"))


@pytest.mark.parametrize("changed", [False, True], ids=["unchanged", "changed after it was hashed"])
def test_a_published_file_is_cached_without_a_rehash_only_if_unchanged(tmp_path, cache_dir, hashes, changed):
    """`adopt_upload` trusts its copy by the size and mtime the file had when it was
    hashed (as the cache trusts its own files): a file changed since is not cached."""
    from pod_tasks.store import Head

    source = tmp_path / "model.bin"
    source.write_bytes(b"weights v1")
    hashed = source.stat()
    digester = Digester.of_file(source, sha256=True)
    target = ref("model.1.0.0.bin", immutable=True, sha256=digester.sha256.hexdigest())
    if changed:  # edited in place between the hashing and the copy
        source.write_bytes(b"weights v2")
        os.utime(source, ns=(hashed.st_atime_ns, hashed.st_mtime_ns + 1_000_000))
    cache = make_cache(cache_dir)
    hashes.clear()
    if changed:
        with pytest.raises(IntegrityError, match="changed while it was published"):
            cache.adopt_upload(target, source, Head(digester.md5.hexdigest(), 10), digester, hashed)
        assert not cache.path_for(target).exists() and cache.record(target) is None
    else:
        path = cache.adopt_upload(target, source, Head(digester.md5.hexdigest(), 10), digester, hashed)
        assert path.read_bytes() == b"weights v1" and hashes == []  # copied, not hashed again
        assert cache.fetch(target).action == FRESH and cache.record(target).verified == "sha256"


def test_a_fetch_that_found_the_file_absent_uses_the_download_made_while_it_waited(s3, bucket, cache_dir):
    """The race behind a rare second GET with ``timeout: 0``: a fetch finds no file, and
    before it takes the lock another one downloads it whole (its record saved, as always,
    just before the rename, so before this fetch began). Under the lock the file is there
    and was absent: it was fetched meanwhile, and is used as it is."""
    bucket.put_object(Bucket=BUCKET, Key="mutable.bin", Body=b"m" * 1000)
    target = ref("mutable.bin")
    first, late = make_cache(cache_dir, timeout=0), make_cache(cache_dir, timeout=0)
    path = first.fetch(target).path
    s3.clear()
    fetched = late._fetch_locked(target, path, False, None, since=time.time() + 1, absent=True)
    assert fetched.action == FRESH and s3.counts() == {}
