"""Mirrors in process: the pure rules (what proves a mirror's bytes, when a mirror is
given up), `WebMirror` against a folder served by ``http.server`` on 127.0.0.1 (and a
fault proxy in front of it), and the cache's fall-through from mirror to mirror to the
store, counting the requests that reach each."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from pod_tasks.cache import DOWNLOADED, AssetCache, ObjectRef
from pod_tasks.config import Settings
from pod_tasks.digests import Checksum
from pod_tasks.errors import AssetNotFound, IntegrityError, OfflineError, StoreError
from pod_tasks.engine import Cancelled
from pod_tasks.mirrors import FAILED, GIVE_UP, MISSING, SERVED, Mirrors, next_streak, open_mirror, proof_of
from pod_tasks.store import Changed, DirStore, Enough, Head, S3Store
from pod_tasks.web import WebMirror
from tests.doit_project import closed_port
from tests.servers import FaultProxy, Rule
from tests.test_parts import _stop_after, small_parts  # noqa: F401  (a fixture: parts of 256 KiB from 1 MiB up)
from tests.web import WebServer

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
KIB = 1024


def rel_of(cache, target) -> str:
    """The cache-relative path of ``target`` (what names its kept bytes in ``.pod/_tmp/``)."""
    return cache.path_for(target).relative_to(cache.root).as_posix()


# --- the pure rules -----------------------------------------------------------------

@pytest.mark.parametrize("head, proof", [
    (Head(MD5, 10), Head(MD5, 10)),                                            # an MD5 ETag
    (Head(MD5 + "-3", 10), Head(MD5 + "-3", 10)),                              # a multipart one
    (Head("a" * 40, 10, Checksum("sha256", "x")), Head(None, 10, Checksum("sha256", "x"))),  # SHA1 ETag, sha256 sum
    (Head(MD5, 10, Checksum("sha1", "y")), Head(MD5, 10, Checksum("sha1", "y"))),
    (Head(MD5, 10, Checksum("crc32", "z")), Head(MD5, 10)),                    # the CRC is not kept as proof
    (Head(MD5, 10, opaque=True), None),                                        # SSE-KMS: not an MD5
    (Head("a" * 40, 10, Checksum("crc32", "z")), None),                        # a CRC alone proves nothing
    (Head(None, 10), None),                                                    # a folder store
])
def test_what_proves_a_mirrors_bytes(head, proof):
    assert proof_of(head) == proof

@pytest.mark.parametrize("streak, served, outcome, after", [
    (0, 0, SERVED, 0),
    (2, 5, SERVED, 0),
    (0, 0, FAILED, 1),
    (2, 9, FAILED, 3),          # a mirror that served before and now fails, fails
    (0, 0, MISSING, 1),         # found nothing yet: likely the wrong URL
    (1, 0, MISSING, 2),
    (1, 4, MISSING, 1),         # it works, it lacks this one file: not a failure
    (0, 4, MISSING, 0),
])
def test_failures_in_a_row(streak, served, outcome, after):
    assert next_streak(streak, served, outcome) == after

def test_a_mirror_is_given_up_after_three_failures_in_a_row():
    streak = 0
    for _ in range(GIVE_UP):
        streak = next_streak(streak, 0, FAILED)
    assert streak == GIVE_UP == 3

def test_file_mirrors_are_folders_and_the_rest_web(tmp_path):
    folder = open_mirror((tmp_path / "m").as_uri())
    assert isinstance(folder, DirStore) and folder.root == tmp_path / "m"
    with pytest.raises(OfflineError, match=r"the mirrors folder .*: it is not there: mount it or fix `mirrors:`"):
        folder.head("a.1.0.0.csv")
    web = open_mirror("https://cdn.example.com/assets")
    assert isinstance(web, WebMirror) and web.url("a b/c.1.0.0.csv") == "https://cdn.example.com/assets/a%20b/c.1.0.0.csv"

# --- WebMirror ---------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    return folder

@pytest.fixture
def web(folder):
    server = WebServer(folder).start()
    yield server
    server.stop()

@pytest.fixture
def plain(folder):
    server = WebServer(folder, plain=True).start()
    yield server
    server.stop()

def put(folder: Path, key: str, data: bytes) -> None:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

def read(mirror, key: str, **kwargs) -> tuple[Head, bytes]:
    got = bytearray()
    head = mirror.download_to(key, lambda head: got.extend, **kwargs)
    return head, bytes(got)

def test_web_mirror_reads_whole_files_and_ranges(web, folder):
    body = os.urandom(100_000)
    put(folder, "foo/bar.1.2.5.csv", body)
    mirror = WebMirror(web.endpoint + "/")
    head = mirror.head("foo/bar.1.2.5.csv")
    assert head.size == len(body) and head.etag and head.opaque and head.checksum is None
    assert not head.md5_etag  # a web server's ETag is never taken for an MD5
    assert read(mirror, "foo/bar.1.2.5.csv") == (head, body)
    ranged, part = read(mirror, "foo/bar.1.2.5.csv", first=10, last=19, etag=head.etag)
    assert part == body[10:20] and ranged.size == len(body)
    assert read(mirror, "foo/bar.1.2.5.csv", first=99_990)[1] == body[99_990:]
    assert web.requests == [("HEAD", "/foo/bar.1.2.5.csv")] + [("GET", "/foo/bar.1.2.5.csv")] * 3
    assert web.ranges == [None, "bytes=10-19", "bytes=99990-"]

def test_web_mirror_stops_when_the_sink_has_enough(web, folder):
    put(folder, "big.1.0.0.bin", os.urandom(3 << 20))
    got = bytearray()

    def sink(chunk: bytes) -> None:
        got.extend(chunk)
        raise Enough

    WebMirror(web.endpoint).download_to("big.1.0.0.bin", lambda head: sink)
    assert 0 < len(got) < 3 << 20

def test_web_mirror_failures_are_one_line_each(web, folder, plain):
    put(folder, "a.1.0.0.csv", b"abc")
    mirror = WebMirror(web.endpoint)
    with pytest.raises(AssetNotFound, match=r"/nope\.1\.0\.0\.csv is not on the mirror \(HTTP 404\)$"):
        read(mirror, "nope.1.0.0.csv")
    with pytest.raises(AssetNotFound):
        mirror.head("nope.1.0.0.csv")
    with pytest.raises(Changed):
        read(mirror, "a.1.0.0.csv", first=1, etag="not-the-etag")
    with pytest.raises(IntegrityError, match="the mirror sent the whole file when asked for a range"):
        read(WebMirror(plain.endpoint), "a.1.0.0.csv", first=1)
    assert read(WebMirror(plain.endpoint), "a.1.0.0.csv") == (Head(None, 3, opaque=True), b"abc")
    web.stop()
    with pytest.raises(OfflineError, match=r"^cannot reach the mirror for http://127\.0\.0\.1:\d+/a\.1\.0\.0\.csv"):
        read(mirror, "a.1.0.0.csv")

@pytest.mark.parametrize("rule, error, message", [
    (Rule("GET", "", "status", status=500), StoreError, "the mirror answered HTTP 500"),
    (Rule("GET", "", "status", status=404), AssetNotFound, "is not on the mirror (HTTP 404)"),
    (Rule("GET", "", "page", status=200), StoreError, "the mirror answered with a web page, not the file"),
    (Rule("GET", "", "page", status=502), StoreError, "the mirror answered with a web page"),
    (Rule("GET", "", "truncate", keep=0.5), IntegrityError, "was cut short"),
    (Rule("GET", "", "close", keep=0.5), IntegrityError, "was cut short"),
], ids=["500", "404", "portal page", "proxy page", "truncated", "reset"])
def test_web_mirror_faults(web, folder, rule, error, message):
    put(folder, "a.1.0.0.bin", os.urandom(200_000))
    proxy = FaultProxy(web.port).start()
    try:
        proxy.add(rule)
        with pytest.raises(error) as info:
            read(WebMirror(proxy.endpoint), "a.1.0.0.bin")
        assert message in str(info.value) and "\n" not in str(info.value)
        assert proxy.injected == 1
    finally:
        proxy.stop()


# --- the cache's fall-through: mirrors in order, then the store ----------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirrored(tmp_path, store, bases, prefix: str = "") -> AssetCache:
    settings = Settings(cache_dir=tmp_path / "cache", endpoint=os.environ.get("AWS_ENDPOINT_URL"))
    return AssetCache(settings, Mirrors(bases, store, prefix))


@pytest.fixture
def dir_store(tmp_path) -> DirStore:
    (tmp_path / "store").mkdir()
    return DirStore(tmp_path / "store")


def no_credentials(monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def test_a_sha256_pin_comes_from_the_mirror_with_no_store_request(s3, client, web, folder, tmp_path, monkeypatch):
    body = b"a,b\n1,2\n"
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="team/foo/bar.1.2.5.csv", Body=body)
    put(folder, "foo/bar.1.2.5.csv", body)
    no_credentials(monkeypatch)  # the store could not even be read
    s3.clear()
    store = S3Store("assets")
    cache = mirrored(tmp_path, store, [web.endpoint], prefix="team/")
    target = ObjectRef(store, "team/foo/bar.1.2.5.csv", True, sha(body), label="foo/bar.csv@1.2.5")
    fetched = cache.fetch(target)
    assert fetched.action == DOWNLOADED and fetched.path.read_bytes() == body
    assert fetched.path == tmp_path / "cache" / store.name / "team/foo/bar.1.2.5.csv"  # where the store's copy goes
    record = cache.record(target)
    assert record.verified == "sha256" and record.url == "s3://assets/team/foo/bar.1.2.5.csv"
    assert s3.requests == [] and web.requests == [("GET", "/foo/bar.1.2.5.csv")]


def test_a_short_pin_is_proved_by_one_head_to_the_store(s3, client, web, folder, tmp_path, caplog):
    bodies = {f"n{i}.1.0.0.csv": os.urandom(1000 + i) for i in range(2)}
    client.create_bucket(Bucket="assets")
    for key, body in bodies.items():
        client.put_object(Bucket="assets", Key=key, Body=body)
        put(folder, key, body)
    s3.clear()
    store = S3Store("assets")
    cache = mirrored(tmp_path, store, [web.endpoint])
    with caplog.at_level(logging.WARNING, logger="pod_tasks"):
        for key, body in bodies.items():
            target = ObjectRef(store, key, True, label=key)
            assert cache.fetch(target).path.read_bytes() == body
            assert cache.record(target).verified in ("etag-md5", "checksum-sha256")
    assert s3.counts() == {"HEAD": 2}  # one HEAD each, no GET
    assert web.count("GET") == 2
    hints = [r.getMessage() for r in caplog.records if "doit lock" in r.getMessage()]
    assert len(hints) == 1 and "pinned without a sha256" in hints[0], hints  # said once per run


def test_a_short_pin_with_nothing_to_prove_it_comes_from_the_store(dir_store, web, folder, tmp_path, caplog):
    put(tmp_path / "store", "a.1.0.0.csv", b"from the store")
    put(folder, "a.1.0.0.csv", b"from the mirror")
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    with caplog.at_level(logging.WARNING, logger="pod_tasks"):
        assert cache.fetch(ObjectRef(dir_store, "a.1.0.0.csv", True)).path.read_bytes() == b"from the store"
    assert web.requests == []
    assert "the store gives no sha256, sha1 or MD5 to check a mirror's bytes against" in caplog.text
    assert "doit lock" in caplog.text


def test_objects_that_are_not_versions_in_the_store_are_never_mirrored(dir_store, web, folder, tmp_path):
    other = DirStore(tmp_path / "other")
    for root in (tmp_path / "other", tmp_path / "store", folder):
        put(root, "x.1.0.0.json", b"{}")
        put(root, "x.json", b"{}")
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    assert cache.fetch(ObjectRef(other, "x.1.0.0.json", True, sha(b"{}"))).path.read_bytes() == b"{}"  # another store
    assert cache.fetch(ObjectRef(dir_store, "x.json", True, sha(b"{}"))).path.read_bytes() == b"{}"  # not a version
    assert web.requests == []


FAULTS = [
    Rule("GET", "", "status", status=404),
    Rule("GET", "", "status", status=500),
    Rule("GET", "", "status", status=503),
    Rule("GET", "", "page", status=200),
    Rule("GET", "", "truncate", keep=0.5),
    Rule("GET", "", "close", keep=0.3),
    Rule("GET", "", "flip"),
]
FAULT_IDS = ["404", "500", "503", "html page", "truncated", "reset", "wrong bytes"]


@pytest.mark.parametrize("rule", FAULTS, ids=FAULT_IDS)
def test_a_failing_mirror_falls_through_to_the_next(rule, dir_store, web, folder, tmp_path, caplog):
    body = os.urandom(300_000)
    put(folder, "a.1.0.0.bin", body)
    shutil.rmtree(tmp_path / "store")  # the store is out of reach: only the mirrors can serve
    proxy = FaultProxy(web.port).start()
    try:
        proxy.add(rule)
        cache = mirrored(tmp_path, dir_store, [proxy.endpoint, web.endpoint])
        target = ObjectRef(dir_store, "a.1.0.0.bin", True, sha(body), label="a.bin@1.0.0")
        with caplog.at_level(logging.WARNING, logger="pod_tasks"):
            fetched = cache.fetch(target)
        assert fetched.path.read_bytes() == body and cache.record(target).verified == "sha256"
        assert proxy.injected == 1
        assert web.count("GET") == (2 if rule.fault in ("truncate", "close", "flip") else 1)  # via the proxy, then direct
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and warnings[0].startswith(f"mirror {proxy.endpoint}: a.bin@1.0.0: ")
        assert not list(fetched.path.parent.glob(".*.part"))
    finally:
        proxy.stop()


@pytest.mark.parametrize("rule", FAULTS, ids=FAULT_IDS)
def test_a_failing_mirror_falls_through_to_the_store(rule, s3, client, web, folder, tmp_path):
    body = os.urandom(300_000)
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="a.1.0.0.bin", Body=body)
    put(folder, "a.1.0.0.bin", body)
    s3.clear()
    proxy = FaultProxy(web.port).start()
    try:
        proxy.add(rule)
        store = S3Store("assets")
        cache = mirrored(tmp_path, store, [proxy.endpoint])
        target = ObjectRef(store, "a.1.0.0.bin", True, label="a.bin@1.0.0")  # a short pin: one HEAD proves it
        assert cache.fetch(target).path.read_bytes() == body
        assert s3.counts() == {"HEAD": 1, "GET": 1}
    finally:
        proxy.stop()


def test_wrong_bytes_everywhere_but_the_store(dir_store, tmp_path, caplog):
    body = b"the pinned bytes"
    put(tmp_path / "store", "a.1.0.0.csv", body)
    servers = []
    for name, data in (("m1", b"stale bytes"), ("m2", b"the pinned bytez")):
        put(tmp_path / name, "a.1.0.0.csv", data)
        servers.append(WebServer(tmp_path / name).start())
    try:
        cache = mirrored(tmp_path, dir_store, [s.endpoint for s in servers])
        target = ObjectRef(dir_store, "a.1.0.0.csv", True, sha(body), label="a.csv@1.0.0")
        with caplog.at_level(logging.WARNING, logger="pod_tasks"):
            assert cache.fetch(target).path.read_bytes() == body
        assert [s.count("GET") for s in servers] == [1, 1]
        assert [r.getMessage().count("does not match the pin") for r in caplog.records] == [1, 1]
    finally:
        for server in servers:
            server.stop()


def test_no_source_can_serve_is_the_stores_error_and_nothing_is_kept(dir_store, web, folder, tmp_path):
    put(folder, "a.1.0.0.csv", b"stale")
    shutil.rmtree(tmp_path / "store")
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    target = ObjectRef(dir_store, "a.1.0.0.csv", True, sha(b"pinned"), label="a.csv@1.0.0")
    with pytest.raises(OfflineError, match="the store folder .* is not there"):
        cache.fetch(target)
    path = cache.path_for(target)
    assert not path.exists() and not list(path.parent.glob(".*.part"))


def test_a_mirror_that_keeps_failing_is_given_up_for_the_run(dir_store, web, folder, tmp_path, caplog):
    proxy = FaultProxy(web.port).start()
    try:
        proxy.add(Rule("*", "", "status", status=500, times=None))
        cache = mirrored(tmp_path, dir_store, [proxy.endpoint])
        with caplog.at_level(logging.WARNING, logger="pod_tasks"):
            for i in range(6):
                put(tmp_path / "store", f"a{i}.1.0.0.csv", b"%d" % i)
                target = ObjectRef(dir_store, f"a{i}.1.0.0.csv", True, sha(b"%d" % i))
                assert cache.fetch(target).path.read_bytes() == b"%d" % i
        assert proxy.injected == GIVE_UP  # then skipped: no request at all
        assert len([r for r in caplog.records if "mirror" in r.getMessage()]) == 1
    finally:
        proxy.stop()


def test_a_mirror_lacking_some_files_is_not_given_up(dir_store, web, folder, tmp_path):
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    for i in range(6):
        data = b"%d" % i
        put(tmp_path / "store", f"a{i}.1.0.0.csv", data)
        if i == 0:
            put(folder, f"a{i}.1.0.0.csv", data)
        cache.fetch(ObjectRef(dir_store, f"a{i}.1.0.0.csv", True, sha(data)))
    assert web.count("GET") == 6  # one served, five 404s: still asked every time


# --- ranges and resume against a mirror ------------------------------------------------


def test_a_big_object_comes_from_the_mirror_as_ranges(dir_store, web, folder, tmp_path, small_parts):
    body = os.urandom(3 * 1024 * KIB + 1234)
    put(folder, "big.1.0.0.bin", body)
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    target = ObjectRef(dir_store, "big.1.0.0.bin", True, sha(body))
    assert cache.fetch(target).path.read_bytes() == body
    part = 256 * KIB
    assert web.ranges[0] is None  # the first GET: the whole object, read for its first part
    assert sorted(web.ranges[1:]) == sorted(f"bytes={a}-{min(a + part, len(body)) - 1}" for a in range(part, len(body), part))


def test_an_interrupted_mirror_download_resumes_from_the_bytes_on_disk(dir_store, web, folder, tmp_path, small_parts):
    body = os.urandom(4 * 1024 * KIB)
    put(folder, "big.1.0.0.bin", body)
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    target = ObjectRef(dir_store, "big.1.0.0.bin", True, sha(body))
    with pytest.raises(Cancelled):
        cache.fetch(target, progress=_stop_after(2 * 1024 * KIB))
    assert not cache.path_for(target).exists()
    kept = json.loads(cache.layout.partial_meta(rel_of(cache, target)).read_bytes())
    assert kept["source"] == f"{web.endpoint}/big.1.0.0.bin" and 256 * KIB <= kept["have"] < len(body)
    web.clear()
    assert cache.fetch(target).path.read_bytes() == body and cache.record(target).verified == "sha256"
    assert web.ranges[0] == f"bytes={kept['have']}-"  # on from there
    assert not cache.layout.partial(rel_of(cache, target)).exists()


def test_bytes_kept_from_a_mirror_are_resumed_by_the_store(dir_store, web, folder, tmp_path, small_parts, monkeypatch):
    body = os.urandom(4 * 1024 * KIB)
    put(folder, "big.1.0.0.bin", body)
    put(tmp_path / "store", "big.1.0.0.bin", body)
    cache = mirrored(tmp_path, dir_store, [web.endpoint])
    target = ObjectRef(dir_store, "big.1.0.0.bin", True, sha(body))
    with pytest.raises(Cancelled):
        cache.fetch(target, progress=_stop_after(2 * 1024 * KIB))
    have = json.loads(cache.layout.partial_meta(rel_of(cache, target)).read_bytes())["have"]
    # The next run's mirror fails before its first byte: what the first one gave is kept for the store.
    cache = mirrored(tmp_path, dir_store, [f"http://127.0.0.1:{closed_port()}"])
    reads: list[int] = []
    original = DirStore.download_to

    def spy(self, key, start, first=0, last=None, etag=None):
        reads.append(first)
        return original(self, key, start, first, last, etag)

    monkeypatch.setattr(DirStore, "download_to", spy)
    assert cache.fetch(target).path.read_bytes() == body and cache.record(target).verified == "sha256"
    assert reads[0] == have and min(reads) == have  # on from the mirror's bytes, checked whole
    assert not cache.layout.partial(rel_of(cache, target)).exists()


def test_export_drops_the_stores_prefix_and_a_file_mirror_serves_it(s3, client, tmp_path, monkeypatch):
    from pod_tasks.export import export
    from pod_tasks.resolver import Project

    body = b"a,b\n1,2\n"
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="team/foo/bar.1.2.5.csv", Body=body)
    client.put_object(Bucket="assets", Key="team/foo/bar.1.0.0.csv", Body=b"old")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "assets.yaml").write_text(
        f"store: s3://assets/team\nassets:\n  foo/bar.csv: {{version: 1.2.5, sha256: {sha(body)}}}\n")
    site = tmp_path / "site"
    done = export(Project.load(tmp_path / "project"), site, all_versions=True)
    assert sorted(done.copied) == [("foo/bar.1.0.0.csv", 3), ("foo/bar.1.2.5.csv", len(body))] and done.present == 0
    assert (site / "foo/bar.1.2.5.csv").read_bytes() == body

    monkeypatch.setenv("POD_MIRRORS", site.as_uri())
    monkeypatch.setenv("POD_CACHE_DIR", str(tmp_path / "elsewhere"))
    no_credentials(monkeypatch)
    s3.clear()
    project = Project.load(tmp_path / "project")
    assert Path(project.resolve("foo/bar.csv")).read_bytes() == body
    assert s3.requests == []
    again = export(project, site, all_versions=False)
    assert again.copied == [] and again.present == 1  # nothing new: not even a listing of the store
    assert s3.requests == []
