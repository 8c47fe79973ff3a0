"""packs.py: the split plan, the zip names, and what unpacking accepts and refuses (in
process, no network: a pack never needs the store)."""

from __future__ import annotations

import hashlib
import json
import random
import stat
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from pod_tasks.records import Record
from pod_tasks.errors import IntegrityError, PodError, UnsafePathError
from pod_tasks.packs import PackFile, compresses, part_paths, plan, unpack, write_packs
from pod_tasks.resolver import Project
from tests.conftest import write


def pf(rel: str, size: int) -> PackFile:
    return PackFile(rel, Path(rel), size, Record(url=f"s3://{rel}", size=size, mtime_ns=0, md5="0" * 32))


@pytest.mark.parametrize("sizes, limit, expected", [
    ({"a": 600, "b": 500, "c": 400, "d": 300, "e": 200}, 1000, [["a", "c"], ["b", "d", "e"]]),
    ({"a": 600, "b": 500, "c": 400, "d": 300, "e": 200}, None, [["a", "b", "c", "d", "e"]]),
    ({"a": 10, "b": 10, "c": 10}, 10, [["a"], ["b"], ["c"]]),               # exactly full
    ({"x": 7, "y": 7, "z": 2}, 9, [["x", "z"], ["y"]]),                     # the first zip with room
    ({"small": 1, "big": 9, "mid": 5}, 10, [["big", "small"], ["mid"]]),   # largest first
    ({}, 5, []),
])
def test_plan(sizes, limit, expected):
    zips = plan([pf(name, size) for name, size in sizes.items()], limit)
    assert [[f.rel for f in z] for z in zips] == expected
    if limit is not None:
        assert all(sum(f.size for f in z) <= limit for z in zips)


def test_plan_refuses_a_file_larger_than_the_limit():
    with pytest.raises(PodError, match=r"b/huge.bin is 3145728 bytes, more than --max-size .*at least 3 MB"):
        plan([pf("a/small", 10), pf("b/huge.bin", 3 << 20)], 2 << 20)


@pytest.mark.parametrize("out, count, split, expected", [
    ("assets.zip", 1, False, ["assets.zip"]),
    ("assets.zip", 3, True, ["assets-1.zip", "assets-2.zip", "assets-3.zip"]),
    ("packs/p.ZIP", 1, True, ["packs/p-1.zip"]),
    ("bundle", 2, True, ["bundle-1.zip", "bundle-2.zip"]),
])
def test_part_paths(out, count, split, expected):
    assert [p.as_posix() for p in part_paths(Path(out), count, split)] == expected


@pytest.mark.parametrize("sample, expected", [
    (b"a,b,c\n1,2,3\n" * 5000, True),                         # text
    (bytes(65536), True),                                        # zeros
    (random.Random(1).randbytes(65536), False),                  # noise: a model, a zip, a JPEG
    (zlib.compress(random.Random(5).randbytes(50000).hex().encode()), False),  # already deflated
    (random.Random(2).randbytes(60000) + bytes(6000), False),    # saves under a tenth
    (random.Random(3).randbytes(40000) + bytes(40000), True),    # saves about half
    (b"", False),
])
def test_compresses(sample, expected):
    assert compresses(sample) is expected


def test_a_file_that_does_not_compress_is_stored_and_the_others_deflated(tmp_path):
    noise = random.Random(4).randbytes(300_000)
    text = b"name,value\n" + b"x,1\n" * 100_000
    files = []
    for rel, data in (("b/noise.bin", noise), ("b/table.csv", text)):
        path = write(tmp_path / "cache" / rel, "")
        path.write_bytes(data)
        files.append(PackFile(rel, path, len(data), Record(url=f"s3://{rel}", size=len(data),
                                                         mtime_ns=path.stat().st_mtime_ns, md5=hashlib.md5(data).hexdigest())))
    seen = []
    [(zip_path, group)] = write_packs(files, tmp_path / "a.zip", None, seen.append)
    assert [f.rel for f in seen] == [f.rel for f in group] == ["b/table.csv", "b/noise.bin"]  # largest first
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.getinfo("b/noise.bin").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("b/table.csv").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("b/table.csv").compress_size < len(text) / 10
        assert zf.read("b/noise.bin") == noise and zf.read("b/table.csv") == text


# --- unpacking ------------------------------------------------------------------------


@pytest.fixture
def proj(tmp_path) -> Project:
    return Project.load(write(tmp_path / "project" / "assets.yaml", "store: s3://assets\nassets:\n"))


def record_for(rel: str, data: bytes, **changes) -> bytes:
    md5 = hashlib.md5(data).hexdigest()
    fields = dict(url=f"s3://{rel}", size=len(data), mtime_ns=1, md5=md5, etag=md5,
                  sha256=hashlib.sha256(data).hexdigest(), checked=time.time(), immutable=True)
    fields.update(changes)
    return json.dumps(fields).encode()


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # a repeated name is one of the cases
        for name, data in entries:
            zf.writestr(name, data)
    return path


def good(rel: str, data: bytes) -> list[tuple[str, bytes]]:
    return [(rel, data), (f".pod/{rel}.json", record_for(rel, data))]


def link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def cache_files(proj: Project) -> list[str]:
    """Every file in the cache dir but the locks and the cache's tag."""
    root = proj.cache.root
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix != ".lock" and p.name != "CACHEDIR.TAG") if root.exists() else []


@pytest.mark.parametrize("bad, why", [
    (("../evil", b"x"), "would land outside the cache dir"),
    (("assets/../../evil", b"x"), "would land outside the cache dir"),
    (("/etc/evil", b"x"), "would land outside the cache dir"),
    (("C:/evil", b"x"), "would land outside the cache dir"),
    (("assets\\..\\..\\evil", b"x"), "would land outside the cache dir"),
    (link("assets/link", "/etc/passwd"), "is a link or a special file"),
    (link(".pod/assets/link.json", "../../x"), "is a link or a special file"),
    ((".timestamps/assets/ok.txt", b""), "is not a cached file"),
    (("missing_assets.yaml", b"- s3://x/y\n"), "is not a cached file"),
    ((".pod/assets/orphan.txt.json", record_for("assets/orphan.txt", b"o")), "is a record without its file"),
    (("assets/ok.txt", b"again"), "appears twice"),
    (("assets/elsewhere.txt", b"e"), None),  # fine alone; its record below lies about its place
])
def test_unsafe_entries_refuse_the_whole_zip(proj, tmp_path, bad, why):
    entries = good("assets/ok.txt", b"fine") + [bad]
    if why is None:
        entries.append((".pod/assets/elsewhere.txt.json", record_for("assets/other.txt", b"e")))
        why = "does not match its record"
    pack = make_zip(tmp_path / "bad.zip", entries)
    with pytest.raises(UnsafePathError, match=why) as caught:
        unpack(proj, [make_zip(tmp_path / "first.zip", good("assets/first.txt", b"1")), pack])
    assert "bad.zip" in str(caught.value) and "nothing was unpacked" in str(caught.value)
    assert cache_files(proj) == []  # not even the good first zip
    assert not (tmp_path / "evil").exists()


def test_damaged_bytes_leave_nothing_at_the_final_path(proj, tmp_path):
    entries = good("assets/a-ok.txt", b"fine") + [  # files go in by path: a-ok first, then z-bad
        ("assets/z-bad.txt", b"tampered"), (".pod/assets/z-bad.txt.json", record_for("assets/z-bad.txt", b"original")),
    ]
    with pytest.raises(IntegrityError, match="z-bad.txt: the bytes do not match the record's MD5"):
        unpack(proj, [make_zip(tmp_path / "p.zip", entries)])
    # the verified file went in with its record; the damaged one left no file, no temp file
    assert cache_files(proj) == [".pod/assets/a-ok.txt.json", "assets/a-ok.txt"]


@pytest.mark.parametrize("record, message", [
    (b"{not json", "the record of 'assets/r.txt' is damaged"),
    (json.dumps({"url": "s3://assets/r.txt", "size": 1}).encode(), "the record of 'assets/r.txt' is damaged"),
    (record_for("assets/r.txt", b"r", md5="xyz"), "the record of 'assets/r.txt' is damaged"),
    (record_for("assets/r.txt", b"r", size=99), "is 1 bytes but its record says 99"),
    (record_for("assets/r.txt", b"r", endpoint="minio:9000"), "the record of 'assets/r.txt' is damaged"),  # no server
])
def test_bad_records_refuse_the_zip(proj, tmp_path, record, message):
    pack = make_zip(tmp_path / "p.zip", [("assets/r.txt", b"r"), (".pod/assets/r.txt.json", record)])
    with pytest.raises(IntegrityError, match=message):
        unpack(proj, [pack])
    assert cache_files(proj) == []


def test_unpacked_record_keeps_hashes_and_check_mark_with_the_new_mtime(proj, tmp_path):
    checked = time.time() - 3600
    pack = make_zip(tmp_path / "p.zip", [
        ("assets/foo/a.1.0.0.csv", b"a,b\n"),
        (".pod/assets/foo/a.1.0.0.csv.json", record_for("assets/foo/a.1.0.0.csv", b"a,b\n", checked=checked)),
    ])
    [entry] = unpack(proj, [pack])
    path = proj.cache.root / "assets/foo/a.1.0.0.csv"
    record = proj.cache.record(entry.ref)
    assert path.read_bytes() == b"a,b\n"
    assert (record.checked, record.md5, record.sha256) == (
        checked, hashlib.md5(b"a,b\n").hexdigest(), hashlib.sha256(b"a,b\n").hexdigest())
    assert (record.size, record.mtime_ns) == (4, path.stat().st_mtime_ns)
    assert proj.cache.is_fresh(entry.ref, network=False)


def test_old_pack_without_records_is_adopted_like_an_old_cache(proj, tmp_path):
    proj.cache.root.mkdir(parents=True)
    pack = make_zip(tmp_path / "old.zip", [("assets/foo/old.1.0.0.csv", b"old bytes")])
    [entry] = unpack(proj, [pack])
    assert entry.record is None and entry.ref.url == "s3://assets/foo/old.1.0.0.csv"
    assert cache_files(proj) == [".pod/assets/foo/old.1.0.0.csv.json", "assets/foo/old.1.0.0.csv"]
    record = proj.cache.record(entry.ref)
    assert (record.md5, record.checked) == (hashlib.md5(b"old bytes").hexdigest(), None)  # checked on first use


def test_not_a_zip_is_one_clear_error(proj, tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match=r"x.zip is not a readable zip"):
        unpack(proj, [tmp_path / "x.zip"])
    with pytest.raises(PodError, match=r"nope.zip does not exist"):
        unpack(proj, [tmp_path / "nope.zip"])


def test_a_pack_puts_each_file_back_under_the_server_it_came_from(proj, tmp_path):
    """Records carry the endpoint of an S3-compatible server: unpacked on a machine whose
    project names no endpoint, the file still lands in that server's folder (and only a
    project of that server uses it)."""
    endpoint = "http://minio.example:9000"
    rel = "_endpoint-minio.example-9000/assets/foo/a.1.0.0.csv"
    data = b"from minio\n"
    record = record_for(rel, data, url="s3://assets/foo/a.1.0.0.csv", endpoint=endpoint)
    pack = make_zip(tmp_path / "p.zip", [(rel, data), (f".pod/{rel}.json", record)])
    assert proj.settings.endpoint is None
    entries = unpack(proj, [pack])
    assert [(e.ref.url, e.ref.store.name) for e in entries] == [
        ("s3://assets/foo/a.1.0.0.csv", "_endpoint-minio.example-9000/assets")]
    assert (proj.cache.root / rel).read_bytes() == data
    assert cache_files(proj) == sorted([rel, f".pod/{rel}.json"])


def test_a_record_that_puts_a_file_under_another_server_is_refused(proj, tmp_path):
    rel = "_endpoint-minio.example-9000/assets/foo/a.1.0.0.csv"
    record = record_for(rel, b"x", url="s3://assets/foo/a.1.0.0.csv", endpoint="http://other.example:9000")
    pack = make_zip(tmp_path / "p.zip", [(rel, b"x"), (f".pod/{rel}.json", record)])
    with pytest.raises(UnsafePathError, match="does not match its record"):
        unpack(proj, [pack])
    assert cache_files(proj) == []
