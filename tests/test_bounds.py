"""The bounds of a download in process (`pod_tasks.bounds`): the size rule, a sink's byte
limit and deadline, the watchdog, the settings; then the cache with them: a range
answered with more than was asked, a mirror that fills the disk (the store then
serves), a pin's ``size:`` read and written; and the bounds of a pack's entries."""

from __future__ import annotations

import errno
import hashlib
import threading
import time
import zipfile

import pytest

from pod_tasks import mirrors as mirrors_module
from pod_tasks.bounds import GRACE, Bounded, Limits, SizeRefused, watch
from pod_tasks.cache import AssetCache, ObjectRef
from pod_tasks.config import Settings, parse_limits
from pod_tasks.errors import IntegrityError, PodError, TransferError
from pod_tasks.manifest import load_manifest, parse_manifest, set_pin
from pod_tasks.mirrors import Mirrors
from pod_tasks.packs import unpack
from pod_tasks.parts import Parted
from pod_tasks.store import DirStore, Head
from pod_tasks.versions import Version
from tests.conftest import write
from tests.test_packs import make_zip, proj, record_for  # noqa: F401  (proj: a fixture)

SHA = "a" * 64


# --- the rules ------------------------------------------------------------------------

def test_the_expected_size_is_the_pins_else_the_declared_one_never_over_the_cap():
    limits = Limits(max_size=100)
    assert limits.expected("u", 8, 8) == 8
    assert limits.expected("u", 50, None) == 50
    with pytest.raises(SizeRefused, match="^u is 9 bytes, the pin in assets.yaml says 8$"):
        limits.expected("u", 9, 8)
    with pytest.raises(SizeRefused, match=r"^u is 101 bytes, more than POD_MAX_SIZE \(100\): raise POD_MAX_SIZE"):
        limits.expected("u", 101, 101)  # a pinned size is bounded too: assets.yaml is a stranger's


def test_the_deadline_is_the_grace_and_the_size_at_the_minimum_rate():
    before = time.monotonic()
    deadline = Limits(min_rate=1000).deadline(5000)
    assert before + GRACE + 5 <= deadline <= time.monotonic() + GRACE + 5


def test_a_bounded_sink_takes_its_limit_and_nothing_after_its_deadline():
    got = bytearray()
    sink = Bounded(got.extend, 4, time.monotonic() + 60, "u")
    sink(b"abc")
    with pytest.raises(IntegrityError, match="^u sent more than the 4 bytes expected$"):
        sink(b"de")
    assert bytes(got) == b"abc"
    late = Bounded(got.extend, 4, time.monotonic(), "u")
    with pytest.raises(TransferError, match=r"^the download of u was given up after 0 s \(0 of 4 bytes\)"):
        late(b"x")
    assert bytes(got) == b"abc"


def test_the_watchdog_cuts_at_the_deadline_and_never_after_the_block():
    cut = threading.Event()
    with watch(time.monotonic() + 0.2, cut.set) as watched:
        assert cut.wait(10)
    assert watched.fired
    late = threading.Event()
    with watch(time.monotonic() + 0.3, late.set) as watched:
        pass
    time.sleep(0.5)
    assert not late.is_set() and not watched.fired
    with watch(None, late.set) as watched:
        assert not watched.fired


@pytest.mark.parametrize("env, limits", [
    ({}, Limits()),
    ({"POD_MAX_SIZE": "20GiB", "POD_MIN_RATE": "1MB"}, Limits(20 << 30, 1e6)),
    ({"POD_MAX_SIZE": " ", "POD_MIN_RATE": "512"}, Limits(min_rate=512.0)),
])
def test_the_limits_come_from_the_environment(env, limits):
    assert parse_limits(env) == limits


@pytest.mark.parametrize("env, var", [
    ({"POD_MAX_SIZE": "lots"}, "POD_MAX_SIZE"), ({"POD_MIN_RATE": "0"}, "POD_MIN_RATE"),
    ({"POD_MIN_RATE": "-5KiB"}, "POD_MIN_RATE"),
])
def test_a_bad_limit_names_its_variable(env, var, tmp_path):
    with pytest.raises(ValueError, match=rf"^\${var}: .* is not a size: write e.g. 64KiB"):
        Settings.load(cache_dir=tmp_path, environ=env)


# --- the cache with them ----------------------------------------------------------------

class _Generous(DirStore):
    """A folder store that answers every range with the whole rest of the file (more than asked)."""

    remote = True

    def download_to(self, key, start, first=0, last=None, etag=None):
        return super().download_to(key, start, first, None, etag)


def test_a_range_answered_with_more_than_asked_fails_before_writing_past_it(tmp_path):
    body = bytes(range(256)) * 64
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "k.bin").write_bytes(body)
    store = _Generous(tmp_path / "store")
    (tmp_path / "out").write_bytes(b"")
    hashed = bytearray()
    with pytest.raises(IntegrityError, match="sent more than the 4096 bytes expected"):
        with Parted(store, "k.bin", Head("e", len(body)), tmp_path / "out", 0, hashed.extend, lambda n: None,
                    streams=1, part=4096, deadline=time.monotonic() + 60) as parted:
            store.download_to("k.bin", lambda head: parted.first_sink, first=0)
    assert (tmp_path / "out").stat().st_size <= 4096  # the first part alone: no range wrote past its end


class _FullDisk:
    """A mirror whose every download fills the disk after its first chunk."""

    remote = False

    def url(self, key):
        return f"full://{key}"

    def download_to(self, key, start, first=0, last=None, etag=None):
        sink = start(Head(None, 8))
        sink(b"1234")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_mirror_that_fills_the_disk_falls_through_to_the_store_with_its_temp_file_gone(tmp_path, monkeypatch):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.1.0.0.bin").write_bytes(b"12345678")
    store = DirStore(tmp_path / "store")
    monkeypatch.setattr(mirrors_module, "open_mirror", lambda base: _FullDisk())
    cache = AssetCache(Settings(cache_dir=tmp_path / "cache"), Mirrors(["https://full.example"], store))
    ref = ObjectRef(store, "a.1.0.0.bin", True, hashlib.sha256(b"12345678").hexdigest(), size=8)
    assert cache.fetch(ref).path.read_bytes() == b"12345678"
    assert [p.name for p in cache.path_for(ref).parent.iterdir()] == ["a.1.0.0.bin"]  # no temporary file left
    assert not cache.layout.partial(f"{store.name}/a.1.0.0.bin").exists()
    assert list(cache.layout.tmp.iterdir()) == []


def test_a_store_declaring_a_size_other_than_the_pins_is_asked_once_and_refused(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.1.0.0.bin").write_bytes(b"123456789")
    store = DirStore(tmp_path / "store")
    cache = AssetCache(Settings(cache_dir=tmp_path / "cache"))
    ref = ObjectRef(store, "a.1.0.0.bin", True, SHA, label="a.bin@1.0.0", size=8)
    with pytest.raises(IntegrityError) as caught:
        cache.fetch(ref)
    assert str(caught.value) == (
        f"a.bin@1.0.0: {store.url('a.1.0.0.bin')} is 9 bytes, the pin in assets.yaml says 8; nothing was kept at "
        f"{cache.path_for(ref)}: its declared size alone refuses it: if the pin's `size:` is wrong, fix it in "
        f"assets.yaml (doit lock writes it), else the store holds another object: tell its owner"
    )
    assert not cache.path_for(ref).exists()


# --- size: in assets.yaml ---------------------------------------------------------------------

def test_a_pin_carries_its_size_and_set_pin_writes_it(tmp_path):
    path = write(tmp_path / "assets.yaml", f"store: s3://bkt\nassets:\n  a.csv: {{version: 1.0.0, sha256: {SHA}, size: 12}}\n"
                                           "  b.csv: 1.0.0\n")
    assert load_manifest(path).assets["a.csv"].size == 12 and load_manifest(path).assets["b.csv"].size is None
    manifest = set_pin(path, "b.csv", Version(1, 0, 1), SHA, 7)
    assert manifest.assets["b.csv"].size == 7
    assert path.read_text().endswith(f"  b.csv: {{version: 1.0.1, sha256: {SHA}, size: 7}}\n")
    set_pin(path, "a.csv", Version(1, 0, 1), SHA)  # no size known: none written, the old one dropped
    assert f"  a.csv: {{version: 1.0.1, sha256: {SHA}}}\n" in path.read_text()


@pytest.mark.parametrize("pin", ["{version: 1.0.0, size: -1}", "{version: 1.0.0, size: 1e3}", "{version: 1.0.0, size: ²}",
                                 "{source: a.csv, size: 3}", "{version: 1.0.0, size: " + "9" * 30 + "}"])
def test_a_bad_size_is_one_located_line(pin, tmp_path):
    with pytest.raises(PodError, match=r"^assets.yaml:3: a.csv: size is the version's bytes: a whole number, with a `version:`$"):
        parse_manifest(f"store: s3://bkt\nassets:\n  a.csv: {pin}\n", tmp_path / "assets.yaml")


# --- a pack's entries ---------------------------------------------------------------------------

def test_a_pack_entry_over_pod_max_size_is_refused(proj, tmp_path, monkeypatch):
    monkeypatch.setenv("POD_MAX_SIZE", "10")
    from pod_tasks.resolver import Project

    small = Project.load(proj.manifest.path)
    pack = make_zip(tmp_path / "p.zip", [("assets/big.txt", b"x" * 11)])
    with pytest.raises(PodError, match=r"entry 'assets/big.txt' is 11 bytes, more than POD_MAX_SIZE \(10\); nothing"):
        unpack(small, [pack])


def test_packs_bigger_than_the_free_space_are_refused_before_anything_is_written(proj, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 95, 5))
    first = make_zip(tmp_path / "a.zip", [("assets/a.txt", b"abc")])
    second = make_zip(tmp_path / "b.zip", [("assets/b.txt", b"def")])
    with pytest.raises(PodError, match=r"^unpacking needs 6 bytes and the cache dir .* has 5 free: free some space"):
        unpack(proj, [first, second])
    assert not proj.cache.root.exists() or not list(proj.cache.root.rglob("*.txt"))


def test_a_pack_record_too_big_to_be_one_is_refused(proj, tmp_path):
    pack = make_zip(tmp_path / "p.zip", [("assets/a.txt", b"a"), (".pod/assets/a.txt.json", b" " * (65 << 10))])
    with pytest.raises(PodError, match=r"'.pod/assets/a.txt.json' is 66560 bytes: too big for a record"):
        unpack(proj, [pack])


def test_a_pack_record_checked_in_the_future_is_never_checked(proj, tmp_path):
    pack = make_zip(tmp_path / "p.zip", [("assets/a.txt", b"a"), (".pod/assets/a.txt.json",
                                                                  record_for("assets/a.txt", b"a", checked=1e11))])
    [entry] = unpack(proj, [pack])
    assert entry.record.checked is None and proj.cache.record(entry.ref).checked is None


def test_an_entry_giving_more_than_it_declares_is_not_unpacked(proj, tmp_path, monkeypatch):
    pack = make_zip(tmp_path / "p.zip", [("assets/a.txt", b"abc")])
    original = zipfile.ZipFile.open

    def lying(self, *args, **kwargs):  # an entry whose stream goes on past its declared size
        stream = original(self, *args, **kwargs)
        stream.read = lambda size=-1, real=stream.read: real(size) or b"more"
        return stream

    monkeypatch.setattr(zipfile.ZipFile, "open", lying)
    with pytest.raises(IntegrityError, match="'assets/a.txt' holds more than the 3 bytes it declares; it was not unpacked"):
        unpack(proj, [pack])
    assert not proj.cache.path_for(proj.url_ref("s3://assets/a.txt")).exists()
