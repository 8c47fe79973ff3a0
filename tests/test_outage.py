"""A store that cannot be reached is remembered: the rule, the notes, and the cache using
them (in process, against a folder store taken away; requests counted by a spy); and
what it leaves in ``missing_assets.yaml`` goes once fetched."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pod_tasks.cache import CHECKED, DOWNLOADED, UNCHECKED, AssetCache, ObjectRef
from pod_tasks.config import Settings
from pod_tasks.errors import OfflineError
from pod_tasks.outage import QUIET, Outage, Outages, quiet_until
from pod_tasks.store import DirStore

NOW = 1_000_000.0


@pytest.mark.parametrize("failed_at, now, until", [
    (NOW, NOW, NOW + QUIET),                 # just failed: left alone
    (NOW, NOW + QUIET - 1, NOW + QUIET),     # still inside the quiet period
    (NOW, NOW + QUIET, None),                # over: try again
    (NOW, NOW + 10 * QUIET, None),
    (NOW + 5, NOW, None),                    # failed "in the future": the clock was set back
])
def test_quiet_until(failed_at, now, until):
    assert quiet_until(failed_at, now) == until


def test_quiet_is_ten_minutes():
    assert QUIET == 600.0
    assert Outage(NOW, "x").until == NOW + 600.0


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_a_failure_is_noted_for_other_processes_and_an_answer_clears_it(tmp_path):
    folder = tmp_path / "unreachable"
    first = Outages(folder, write)
    assert first.quiet("aws assets") is None
    outage = first.failed("aws assets", "cannot reach the store")
    assert first.quiet("aws assets") == outage
    [note] = folder.iterdir()
    assert json.loads(note.read_bytes()) == {"store": "aws assets", "failed": outage.failed_at,
                                             "reason": "cannot reach the store"}

    later = Outages(folder, write)  # another process
    assert later.quiet("aws assets") == outage
    assert later.quiet("aws other") is None  # one note per store
    later.reached("aws assets")
    assert later.quiet("aws assets") is None and not list(folder.iterdir())
    assert Outages(folder, write).quiet("aws assets") is None


@pytest.mark.parametrize("text", [b"not json", b"[]", b'{"store": "aws assets"}', b'{"store": "x", "failed": 1, "reason": ""}'])
def test_a_damaged_or_foreign_note_is_ignored(tmp_path, text):
    outages = Outages(tmp_path, write)
    outages.failed("aws assets", "down")
    [note] = tmp_path.iterdir()
    note.write_bytes(text)
    assert Outages(tmp_path, write).quiet("aws assets") is None


def test_an_old_note_lets_the_store_be_tried(tmp_path):
    Outages(tmp_path, write).failed("aws assets", "down")
    [note] = tmp_path.iterdir()
    data = json.loads(note.read_bytes())
    note.write_text(json.dumps({**data, "failed": time.time() - QUIET - 1}))
    assert Outages(tmp_path, write).quiet("aws assets") is None


def test_forget_and_first_warning(tmp_path):
    outages = Outages(tmp_path, write)
    outages.failed("a", "down")
    outages.failed("b", "down")
    outages.forget()
    assert outages.quiet("a") is None and outages.quiet("b") is None and not list(tmp_path.iterdir())
    assert [outages.first_warning("a"), outages.first_warning("a"), outages.first_warning("b")] == [True, False, True]


def test_checks_wait_for_the_first_until_the_store_answered(tmp_path):
    outages = Outages(tmp_path, write)
    tries = []

    def check() -> None:
        with outages.contact("s") as outage:
            if outage is None:
                tries.append(1)
                time.sleep(0.01)
                outages.failed("s", "down")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: check(), range(16)))
    assert len(tries) == 1

    outages.reached("s")  # the store is back: no more waiting, every check goes
    inside = threading.Barrier(4, timeout=5)

    def concurrent() -> None:
        with outages.contact("s") as outage:
            assert outage is None
            inside.wait()  # all four at once: would time out if they were serialised

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: concurrent(), range(4)))


def test_checks_that_waited_for_a_first_answer_then_go_at_once(tmp_path):
    outages = Outages(tmp_path, write)
    first_inside, others_inside = threading.Event(), threading.Barrier(3, timeout=5)

    def first() -> None:
        with outages.contact("s") as outage:
            assert outage is None
            first_inside.set()
            time.sleep(0.05)  # the others queue meanwhile
            outages.reached("s")

    def other() -> None:
        first_inside.wait(5)
        with outages.contact("s") as outage:
            assert outage is None
            others_inside.wait()  # all three at once: would time out if they went one by one

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(first)] + [pool.submit(other) for _ in range(3)]:
            future.result()


# --- the cache ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> DirStore:
    folder = tmp_path / "share"
    folder.mkdir()
    for index in range(6):
        (folder / f"f{index}.txt").write_bytes(b"bytes %d" % index)
    return DirStore(folder)


@pytest.fixture
def heads(monkeypatch) -> list[str]:
    """Every key a folder store is asked the head of."""
    seen: list[str] = []
    original = DirStore.head

    def spy(self, key):
        seen.append(key)
        return original(self, key)

    monkeypatch.setattr(DirStore, "head", spy)
    return seen


def cache_of(cache_dir: Path, **settings) -> AssetCache:
    """A cache as a new process opens it, every file due for a check."""
    return AssetCache(Settings(cache_dir=cache_dir, timeout=0, **settings))


def refs(store: DirStore) -> list[ObjectRef]:
    return [ObjectRef(store, f"f{index}.txt", False) for index in range(6)]


def unmount(store: DirStore) -> None:
    store.root.rename(store.root.with_name("elsewhere"))


def mount(store: DirStore) -> None:
    store.root.with_name("elsewhere").rename(store.root)


def test_an_unreachable_store_is_asked_once_and_warned_of_once(store, heads, cache_dir, caplog):
    for target in refs(store):
        assert cache_of(cache_dir).fetch(target).action == DOWNLOADED
    unmount(store)
    heads.clear()
    cache = cache_of(cache_dir)
    with caplog.at_level(logging.WARNING, logger="pod_tasks"), ThreadPoolExecutor(8) as pool:
        fetched = list(pool.map(cache.fetch, refs(store) * 3))
    assert [f.action for f in fetched] == [UNCHECKED] * 18
    assert [f.path.read_bytes() for f in fetched[:6]] == [b"bytes %d" % i for i in range(6)]
    assert len(heads) == 1
    [warning] = caplog.records
    assert "serving the cached copy unchecked: cannot reach" in warning.getMessage()
    assert "it is tried again after" in warning.getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pod_tasks"):  # the next process: no attempt at all
        cache = cache_of(cache_dir)
        assert [cache.fetch(t).action for t in refs(store)] == [UNCHECKED] * 6
    assert len(heads) == 1 and len(caplog.records) == 1

    mount(store)  # back, but not asked before the quiet period is over...
    assert cache_of(cache_dir).fetch(refs(store)[0]).action == UNCHECKED and len(heads) == 1
    assert cache_of(cache_dir).fetch(refs(store)[0], force=True).action == CHECKED  # ...unless forced
    assert not (cache_dir / ".pod" / "_unreachable").exists() or not list((cache_dir / ".pod" / "_unreachable").iterdir())
    assert [cache_of(cache_dir).fetch(t).action for t in refs(store)] == [CHECKED] * 6


def test_invalidate_tries_an_unreachable_store_again(store, heads, cache_dir):
    target = refs(store)[0]
    cache_of(cache_dir).fetch(target)
    unmount(store)
    cache_of(cache_dir).fetch(target)
    mount(store)
    cache = cache_of(cache_dir)
    assert cache.fetch(target).action == UNCHECKED
    assert len(heads) == 1
    cache.invalidate()
    assert cache.fetch(target).action == CHECKED
    assert len(heads) == 2


def test_a_missing_file_is_still_asked_for(store, heads, cache_dir):
    cache_of(cache_dir).fetch(refs(store)[0])
    unmount(store)
    assert cache_of(cache_dir).fetch(refs(store)[0]).action == UNCHECKED  # remembered
    for _ in range(2):
        with pytest.raises(OfflineError, match="not in the cache and cannot reach"):
            cache_of(cache_dir).fetch(refs(store)[1])
    mount(store)
    assert cache_of(cache_dir).fetch(refs(store)[1]).action == DOWNLOADED  # and reaching it clears the note
    assert cache_of(cache_dir).fetch(refs(store)[0]).action == CHECKED


def test_offline_mode_warns_once_per_store(store, heads, cache_dir, caplog):
    for target in refs(store):
        cache_of(cache_dir).fetch(target)
    cache = cache_of(cache_dir, offline=True)
    assert not cache.is_fresh(refs(store)[0], network=False)  # a check is due (what `doit status` shows)
    with caplog.at_level(logging.WARNING, logger="pod_tasks"):
        assert [cache.fetch(t).action for t in refs(store)] == [UNCHECKED] * 6
    assert [r.getMessage() for r in caplog.records] == [
        f"{refs(store)[0].url}: serving the cached copy unchecked: offline mode is on (POD_OFFLINE=1); other files "
        f"of {store.url('')} due for a check are served unchecked too, with no further warning"
    ]
    assert heads == []


def test_missing_assets_lists_only_what_is_still_missing(store, cache_dir):
    listed = cache_dir / "missing_assets.yaml"
    unmount(store)
    for target in refs(store)[:3]:
        with pytest.raises(OfflineError):
            cache_of(cache_dir).fetch(target)
    assert yaml.safe_load(listed.read_text()) == [t.url for t in refs(store)[:3]]
    mount(store)
    cache_of(cache_dir).fetch(refs(store)[1])
    assert yaml.safe_load(listed.read_text()) == [refs(store)[0].url, refs(store)[2].url]
    with open(store.root / "f0.txt", "rb") as source:  # installed (as `doit unpack` does)
        cache_of(cache_dir).install(refs(store)[0], source, None)
    assert yaml.safe_load(listed.read_text()) == [refs(store)[2].url]
    cache_of(cache_dir).fetch(refs(store)[2])
    assert not listed.exists()  # nothing missing: no list


@pytest.mark.parametrize("text", ["", "just text\n", "{a: 1}\n", "- s3://x/y\n- 3\n", "[unclosed\n"])
def test_a_damaged_missing_list_does_not_stop_a_fetch(store, cache_dir, text):
    listed = cache_dir / "missing_assets.yaml"
    listed.parent.mkdir(parents=True)
    listed.write_text(text)
    cache_of(cache_dir).fetch(refs(store)[0])
    kept = {"- s3://x/y\n- 3\n": ["s3://x/y", 3]}.get(text)  # nothing to take out: left as it was
    assert (yaml.safe_load(listed.read_text()) if listed.exists() else None) == kept
