"""Mirrors in process: the pure rules (what proves a mirror's bytes, when a mirror is
given up), `WebMirror` against a folder served by ``http.server`` on 127.0.0.1 (and a
fault proxy in front of it), and the cache's fall-through from mirror to mirror to the
store, counting the requests that reach each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pod_tasks.digests import Checksum
from pod_tasks.errors import AssetNotFound, IntegrityError, OfflineError, StoreError
from pod_tasks.mirrors import FAILED, GIVE_UP, MISSING, SERVED, next_streak, open_mirror, proof_of
from pod_tasks.store import Changed, DirStore, Enough, Head
from pod_tasks.web import WebMirror
from tests.servers import FaultProxy, Rule
from tests.web import WebServer

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
KIB = 1024


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
    with pytest.raises(OfflineError, match=r"the mirrors folder .* is not there: mount it or fix `mirrors:`"):
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
