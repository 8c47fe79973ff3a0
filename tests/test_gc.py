"""gc in process: the pure choice of what goes (tables), the size and age options, how
use is noted (once per file per process, never on a warm resolve), the projects a cache
remembers, and what `collect` removes and keeps, on folder stores."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pod_tasks import cache as cache_module
from pod_tasks.cache import AssetCache, ObjectRef
from pod_tasks.errors import PodError
from pod_tasks.gc import LEFTOVER, LRU, UNPINNED, Cached, choose, collect, parse_age, parse_size, survey, totals
from pod_tasks.resolver import Project
from tests.conftest import write

DAY = 86400.0
NOW = 1_000 * DAY


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1000", 1000),
    ("0", 0),
    ("512B", 512),
    ("1KB", 1000),
    ("1kb", 1000),
    ("2 MB", 2_000_000),
    ("3GB", 3_000_000_000),
    ("1TB", 10**12),
    ("1KiB", 1024),
    ("1.5MiB", 1536 * 1024),
    ("20GiB", 20 * 2**30),
    ("20gib", 20 * 2**30),
    ("1TiB", 2**40),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "20GX", "20 G", "1e9", "twenty"])
def test_bad_sizes_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="is not a size: write e.g. 20GiB"):
        parse_size(text)


@pytest.mark.parametrize("text, expected", [("30d", 30 * DAY), ("2w", 14 * DAY), ("12h", 43200), ("15m", 900),
                                            ("90s", 90), ("3600", 3600), ("0", 0)])
def test_ages(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["never", "30x", "-1d", "soon"])
def test_bad_ages(text):
    with pytest.raises(ValueError):
        parse_age(text)


# --- the choice -------------------------------------------------------------------------------


def f(rel: str, size: int = 100, idle_days: float = 0, pinned: bool = False, current: bool = False,
      of: str | None = None) -> Cached:
    """A file used ``idle_days`` before NOW (``current`` implies ``pinned``)."""
    return Cached(rel, size, NOW - idle_days * DAY, pinned or current, current, of)


PLAIN = [f("a/old.1.0.0.csv", idle_days=1), f("a/new.1.1.0.csv", current=True), f("b/theirs.2.0.0.csv", pinned=True)]


@pytest.mark.parametrize("files, max_size, older_than, dropped, kept, over", [
    # nothing unpinned: nothing goes
    ([f("x", current=True), f("y", pinned=True)], None, None, [], 200, 0),
    # an old version after an upgrade goes; what any project pins stays
    (PLAIN, None, None, [("a/old.1.0.0.csv", UNPINNED)], 200, 0),
    # --older-than: only unpinned files unused that long go
    ([f("u1", idle_days=40), f("u2", idle_days=5), f("p", pinned=True, idle_days=99)], None, 30 * DAY,
     [("u1", UNPINNED)], 200, 0),
    # leftovers: of an unpinned object they go; of a pinned one they stay (a resume) unless older than the age
    ([f(".pod/x.partial", of="x"), f(".pod/y.partial", of="y", pinned=True)], None, None,
     [(".pod/x.partial", LEFTOVER)], 100, 0),
    ([f(".pod/y.partial", of="y", pinned=True, idle_days=40), f(".pod/z.partial", of="z", current=True, idle_days=1)],
     None, 30 * DAY, [(".pod/y.partial", LEFTOVER)], 100, 0),
    ([f(".pod/x.partial", of="x", idle_days=1)], None, 30 * DAY, [], 100, 0),
    # --max-size: least recently used first, until it fits; other projects' pins can go
    ([f("p1", pinned=True, idle_days=3), f("p2", pinned=True, idle_days=2), f("p3", pinned=True, idle_days=1)],
     150, None, [("p1", LRU), ("p2", LRU)], 100, 0),
    # ... but never a file the current assets.yaml pins, however old
    ([f("c", current=True, idle_days=9, size=300), f("p", pinned=True, idle_days=1)], 350, None,
     [("p", LRU)], 300, 0),
    # what cannot fit says by how much
    ([f("c1", current=True, size=300), f("c2", current=True, size=200), f("p", pinned=True)], 250, None,
     [("p", LRU)], 500, 250),
    # unpinned files go first; then LRU over what is left; it already fits: nothing more
    ([f("u", size=500), f("p", pinned=True, size=100)], 100, None, [("u", UNPINNED)], 100, 0),
    # a tie in last use: by path
    ([f("b", pinned=True), f("a", pinned=True)], 100, None, [("a", LRU)], 100, 0),
    # a current pin's leftover is not a pin: it may go for room
    ([f("c", current=True), f(".pod/c.partial", of="c", current=True, idle_days=5)], 100, None,
     [(".pod/c.partial", LRU)], 100, 0),
    # max size 0: everything but the current pins
    ([f("c", current=True), f("p", pinned=True), f("u")], 0, None, [("u", UNPINNED), ("p", LRU)], 100, 100),
    # an empty cache
    ([], 10, 30 * DAY, [], 0, 0),
], ids=[
    "all-pinned", "upgrade", "older-than", "leftovers", "leftovers-older-than", "young-leftover",
    "lru", "never-current", "cannot-fit", "unpinned-first", "tie-by-path", "current-leftover", "zero", "empty",
])
def test_choose(files, max_size, older_than, dropped, kept, over):
    choice = choose(files, NOW, max_size, older_than)
    assert [(d.file.rel, d.why) for d in choice.drops] == dropped
    assert (choice.kept, choice.over) == (kept, over)


def test_choose_is_pure():
    files = list(PLAIN)
    assert choose(files, NOW, 0) == choose(files, NOW, 0)
    assert files == PLAIN


# --- use and projects, on a folder store -------------------------------------------------------


def make_project(root: Path, name: str, pins: dict[str, str], store: Path) -> Path:
    """A project folder ``root/name`` whose assets.yaml pins ``pins`` from the folder store ``store``."""
    body = "".join(f"  {asset}: {version}\n" for asset, version in pins.items())
    return write(root / name / "assets.yaml", f"store: {store}\nassets:\n{body}")


def publish_file(store: Path, key: str, data: bytes) -> None:
    path = store / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def store(tmp_path) -> Path:
    folder = tmp_path / "store"
    publish_file(folder, "a.1.0.0.csv", b"a1" * 10)
    publish_file(folder, "a.1.1.0.csv", b"a2" * 20)
    publish_file(folder, "s.1.0.0.csv", b"s" * 30)
    publish_file(folder, "b.1.0.0.csv", b"b" * 40)
    return folder


def record_of(project: Project, name: str) -> Path:
    target = project.ref(name)
    assert isinstance(target, ObjectRef)
    return project.cache.root / ".pod" / target.store.name / (target.key + ".json")


@pytest.fixture
def utimes(monkeypatch) -> list[str]:
    """Every os.utime call (what noting a use writes)."""
    seen: list[str] = []
    real = os.utime

    def counting(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "utime", counting)
    monkeypatch.setattr(cache_module, "_USED", set())
    return seen


def test_use_is_noted_once_per_file_per_process_and_never_on_a_warm_resolve(tmp_path, store, utimes):
    manifest = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    project = Project.load(manifest)
    path = project.resolve("a.csv")
    record = record_of(project, "a.csv")
    assert utimes == [str(record)]
    for _ in range(50):
        assert project.resolve("a.csv") == path
    Project.load(manifest).resolve("a.csv")  # another project object, same process, cold
    assert utimes == [str(record)]


def test_a_use_moves_the_records_mtime_not_the_files(tmp_path, store, utimes):
    manifest = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    path = Path(Project.load(manifest).resolve("a.csv"))
    record = record_of(Project.load(manifest), "a.csv")
    os.utime(record, (1000, 1000))
    before = path.stat().st_mtime_ns
    cache_module._USED.clear()  # a new process
    Project.load(manifest).resolve("a.csv")
    assert record.stat().st_mtime > 1000 and path.stat().st_mtime_ns == before
    assert json.loads(record.read_bytes())["mtime_ns"] == before  # still trusted without a re-hash


def test_invalidating_is_not_a_use(tmp_path, store):
    manifest = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    project = Project.load(manifest)
    project.resolve("a.csv")
    record = record_of(project, "a.csv")
    os.utime(record, (1000, 1000))
    assert project.cache.invalidate(None) == 1
    assert json.loads(record.read_bytes())["checked"] is None and record.stat().st_mtime == 1000


def test_projects_are_remembered_once_and_forgotten(tmp_path, store):
    a = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    b = make_project(tmp_path, "b", {"b.csv": "1.0.0"}, store)
    project = Project.load(a)
    assert project.cache.projects() == []  # loading is not using
    project.resolve("a.csv")
    notes = project.cache.root / ".pod" / "_notes" / "projects.json"
    written = notes.stat().st_mtime_ns
    Project.load(a).resolve("a.csv")
    assert notes.stat().st_mtime_ns == written  # known already: no write
    Project.load(b).resolve("b.csv")
    assert project.cache.projects() == sorted([str(a.resolve()), str(b.resolve())])
    project.cache.forget_projects([str(b.resolve())])
    assert project.cache.projects() == [str(a.resolve())]


def test_a_cache_dir_that_cannot_be_written_still_serves(tmp_path, store, monkeypatch):
    manifest = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    path = Project.load(manifest).resolve("a.csv")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(AssetCache, "note", refuse)
    monkeypatch.setattr(os, "utime", refuse)
    monkeypatch.setattr(cache_module, "_USED", set())
    (tmp_path / "cache" / ".pod" / "_notes" / "projects.json").unlink()
    assert Project.load(manifest).resolve("a.csv") == path


# --- collect ------------------------------------------------------------------------------------


def upgraded(tmp_path: Path, store: Path) -> tuple[Path, Path]:
    """Projects a (a.csv, s.csv) and b (s.csv, b.csv) on one cache, both fetched; then a
    upgrades a.csv to 1.1.0 and fetches it."""
    a = make_project(tmp_path, "a", {"a.csv": "1.0.0", "s.csv": "1.0.0"}, store)
    b = make_project(tmp_path, "b", {"s.csv": "1.0.0", "b.csv": "1.0.0"}, store)
    for manifest, names in ((a, ["a.csv", "s.csv"]), (b, ["s.csv", "b.csv"])):
        project = Project.load(manifest)
        for name in names:
            project.resolve(name)
    make_project(tmp_path, "a", {"a.csv": "1.1.0", "s.csv": "1.0.0"}, store)
    Project.load(a).resolve("a.csv")
    return a, b


def cached_files(cache_root: Path) -> dict[str, int]:
    """Every file under the cache dir but the locks, notes and tag, with its size."""
    return {p.relative_to(cache_root).as_posix(): p.stat().st_size for p in cache_root.rglob("*")
            if p.is_file() and not p.name.endswith(".lock") and "_notes" not in p.parts and p.name != "CACHEDIR.TAG"}


def test_collect_removes_the_old_version_with_its_record(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    folder = project.ref("a.csv").store.name
    before = cached_files(project.cache.root)
    done = collect(project)
    assert [(d.file.rel, d.file.size, d.why) for d in done.removed] == [(f"{folder}/a.1.0.0.csv", 20, UNPINNED)]
    assert (done.freed, done.files, done.size, done.spared, done.forgotten) == (20, 3, 110, (), ())
    assert cached_files(project.cache.root) == {
        k: v for k, v in before.items() if k not in (f"{folder}/a.1.0.0.csv", f".pod/{folder}/a.1.0.0.csv.json")}


def test_dry_run_writes_nothing(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    root = project.cache.root
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}
    b.unlink()
    done = collect(project, max_size=0, older_than=0, dry_run=True)
    assert len(done.removed) == 2 and done.forgotten == (str(b.resolve()),) and done.dry_run
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()} == before


def test_a_gone_project_is_forgotten_and_its_files_go(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    folder = project.ref("a.csv").store.name
    b.unlink()
    done = collect(project)
    assert sorted(d.file.rel for d in done.removed) == [f"{folder}/a.1.0.0.csv", f"{folder}/b.1.0.0.csv"]
    assert done.forgotten == (str(b.resolve()),) and project.cache.projects() == [str(a.resolve())]
    assert sorted(cached_files(project.cache.root)) == sorted(
        [f"{folder}/a.1.1.0.csv", f"{folder}/s.1.0.0.csv", f".pod/{folder}/a.1.1.0.csv.json",
         f".pod/{folder}/s.1.0.0.csv.json"])


def test_a_file_whose_lock_is_held_is_kept(tmp_path, store):
    a, _ = upgraded(tmp_path, store)
    project = Project.load(a)
    rel = f"{project.ref('a.csv').store.name}/a.1.0.0.csv"
    with AssetCache(project.settings)._lock_at(rel):  # another fetch holds it
        done = collect(project)
    assert done.removed == () and [(d.file.rel, why.split(":")[0]) for d, why in done.spared] == [(rel, "in use")]
    assert (project.cache.root / rel).is_file()


def test_a_file_used_after_gc_looked_is_kept(tmp_path, store):
    a, _ = upgraded(tmp_path, store)
    project = Project.load(a)
    rel = f"{project.ref('a.csv').store.name}/a.1.0.0.csv"
    assert not project.cache.drop(rel, seen=0.0)  # last used after 1970
    assert (project.cache.root / rel).is_file()


def test_leftovers_of_unpinned_objects_go(tmp_path, store):
    a, _ = upgraded(tmp_path, store)
    project = Project.load(a)
    layout, folder = project.cache.layout, project.ref("a.csv").store.name
    unpinned, pinned = f"{folder}/a.1.0.0.csv", f"{folder}/b.1.0.0.csv"
    killed = layout.partial(f"{folder}/never.1.0.0.csv")  # a download killed in flight: no JSON says whose
    old_temp, new_temp = layout.temp(), layout.temp()
    planted = {
        layout.partial(unpinned): b"x" * 7,  # kept bytes of an unpinned object: go, with their JSON
        layout.partial_meta(unpinned): json.dumps({"of": unpinned}).encode(),
        layout.partial(pinned): b"y" * 5,  # of a pinned object: stay, to resume
        layout.partial_meta(pinned): json.dumps({"of": pinned}).encode(),
        killed: b"k" * 4,
        old_temp: b"{}", new_temp: b"{}",  # a record's temporary file: goes once it is old
        project.cache.root / folder / ".old.9.0.0.csv.0123abcd.part": b"z" * 3,  # no record: not the cache's own
    }
    for path, data in planted.items():
        path.write_bytes(data)
    os.utime(old_temp, (time.time() - 7200,) * 2)
    done = collect(project)
    gone = {layout.partial(unpinned), killed, old_temp}
    assert sorted((d.file.rel, d.why) for d in done.removed) == sorted(
        [(p.relative_to(layout.root).as_posix(), LEFTOVER) for p in gone] + [(unpinned, UNPINNED)])
    assert [p for p in planted if p.exists()] == [p for p in planted if p not in gone | {layout.partial_meta(unpinned)}]
    assert (layout.root / folder / ".old.9.0.0.csv.0123abcd.part").read_bytes() == b"z" * 3


def test_local_overrides_and_links_are_never_touched(tmp_path, store):
    a, _ = upgraded(tmp_path, store)
    project = Project.load(a)
    root = project.cache.root
    inside = write(root / "mine" / "local.bin", "my own file")  # an override that lives in the cache dir
    outside = write(tmp_path / "outside.txt", "precious")
    (root / "mine" / "link.txt").symlink_to(outside)
    make_project(tmp_path, "a", {"a.csv": "1.1.0", "s.csv": "1.0.0", "dev.bin": str(inside)}, store)
    done = collect(Project.load(a))
    assert "mine/local.bin" not in [d.file.rel for d in done.removed]
    assert inside.read_text() == "my own file" and outside.read_text() == "precious"
    assert (root / "mine" / "link.txt").is_symlink()


def pins_notes(cache_root: Path) -> list[Path]:
    """The notes of what each project pins (`AssetCache.record_pins`)."""
    return sorted((cache_root / ".pod" / "_notes").glob("pins-*.json"))


def test_pins_are_recorded_once_per_process_with_no_write_when_unchanged(tmp_path, store, monkeypatch):
    a = make_project(tmp_path, "a", {"a.csv": "1.0.0", "s.csv": "1.0.0"}, store)
    project = Project.load(a)
    assert pins_notes(project.cache.root) == []  # loading is not using
    writes: list[str] = []
    real = AssetCache.note
    monkeypatch.setattr(AssetCache, "note", lambda self, topic, key, value: (writes.append(topic),
                                                                             real(self, topic, key, value)))
    project.resolve("a.csv")
    project.resolve("s.csv")
    for _ in range(20):
        project.resolve("a.csv")
    folder = project.ref("a.csv").store.name
    [note] = pins_notes(project.cache.root)
    assert json.loads(note.read_bytes()) == {f"{a} on AWS": [f"{folder}/a.1.0.0.csv", f"{folder}/s.1.0.0.csv"]}
    assert writes == ["projects", note.stem]  # one batch, not one write per file
    Project.load(a).resolve("s.csv")  # another process, same pins: a read, no write
    assert writes == ["projects", note.stem]
    make_project(tmp_path, "a", {"a.csv": "1.1.0", "s.csv": "1.0.0"}, store)
    Project.load(a).resolve("s.csv")  # the pins changed: the record follows
    assert json.loads(note.read_bytes()) == {f"{a} on AWS": [f"{folder}/a.1.1.0.csv", f"{folder}/s.1.0.0.csv"]}


def test_gc_keeps_what_a_project_recorded_without_reading_its_assets_yaml(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    b.write_text("store: [oops\n")  # its pins were recorded when it ran: this file is not read
    project = Project.load(a)
    folder = project.ref("a.csv").store.name
    done = collect(project)
    assert [d.file.rel for d in done.removed] == [f"{folder}/a.1.0.0.csv"]
    assert (project.cache.root / folder / "b.1.0.0.csv").read_bytes() == b"b" * 40


def test_gc_keeps_the_pins_of_a_project_reached_through_a_symlink(tmp_path, store):
    """A project whose folder store is relative (``store: ../store``) names another cache
    folder when reached through a link: what it used there is its pins, whoever runs gc."""
    real = make_project(tmp_path / "real", "b", {"b.csv": "1.0.0"}, Path("../../store"))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    linked = Project.load(tmp_path / "link" / "b" / "assets.yaml")
    path = Path(linked.resolve("b.csv"))
    assert path.read_bytes() == b"b" * 40 and linked.ref("b.csv").store.name != Project.load(real).ref("b.csv").store.name
    a = make_project(tmp_path, "a", {"a.csv": "1.0.0"}, store)
    Project.load(a).resolve("a.csv")
    done = collect(Project.load(a))
    assert done.removed == () and path.read_bytes() == b"b" * 40
    assert Project.load(a).cache.projects() == sorted([str(a.resolve()), str(real.resolve())])  # one project


def test_a_project_remembered_before_pins_were_recorded_is_read(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    folder = project.ref("a.csv").store.name
    for note in pins_notes(project.cache.root):  # an older cache: the projects alone
        note.unlink()
    done = collect(project)
    assert [d.file.rel for d in done.removed] == [f"{folder}/a.1.0.0.csv"]  # b's pins worked out from its file
    assert (project.cache.root / folder / "b.1.0.0.csv").is_file()


def test_a_gone_project_is_forgotten_with_its_pins(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    assert len(pins_notes(project.cache.root)) == 2
    b.unlink()
    collect(project)
    assert project.cache.recorded_pins(str(b.resolve())) is None
    assert [json.loads(n.read_bytes()) for n in pins_notes(project.cache.root)] == [
        {f"{a} on AWS": sorted(project.pinned_files())}]


def test_an_unreadable_remembered_project_stops_gc_before_anything_goes(tmp_path, store):
    a, b = upgraded(tmp_path, store)
    b.write_text("store: [oops\n")
    project = Project.load(a)
    for note in pins_notes(project.cache.root):  # remembered before pins were: its file must be read
        note.unlink()
    before = cached_files(project.cache.root)
    with pytest.raises(PodError, match=rf"gc: {b.resolve()} \(a project that uses this cache\) cannot be read: "):
        collect(project)
    assert cached_files(project.cache.root) == before
    assert "unpinned: unknown" in totals(project)


def test_a_project_in_a_folder_this_user_may_not_enter_is_not_gone(tmp_path, store, monkeypatch):
    a, b = upgraded(tmp_path, store)
    project = Project.load(a)
    real = Path.is_file

    def is_file(path):
        if path == Path(str(b.resolve())):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "is_file", is_file)
    with pytest.raises(PodError, match="cannot be read: .*Permission denied.*nothing was removed"):
        collect(project)
    assert project.cache.projects() == sorted([str(a.resolve()), str(b.resolve())])


def test_totals(tmp_path, store):
    a, _ = upgraded(tmp_path, store)
    project = Project.load(a)
    assert totals(project) == (f"cache {project.cache.root}: 4 file(s), 130 B; "
                               f"unpinned: 1 file(s), 20 B (doit gc removes them)")
    assert len(survey(project).files) == 4
