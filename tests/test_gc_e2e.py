"""``doit gc`` run as a user runs it: two projects sharing one cache dir (``POD_CACHE_DIR``),
each fetching from the same store with ``doit fetch`` in a subprocess, on each S3 server
(moto, ``rclone serve s3``) and on a folder store. Asserts on the exact files and bytes
left in the cache, the sizes printed, and the requests made (none: gc is local)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pod_tasks.layout import Layout
from pod_tasks.meter import human_size
from pod_tasks.store import DirStore
from tests.conftest import REPO, run_doit, run_python, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    Store,
    assert_clean_failure,
    backend,
    dir_backend,
    doit,
    manifest,
    output,
    s3_backend,
)

A1, A2, S, B1, B2 = b"a" * 1000, b"A" * 2000, b"s" * 3000, b"b" * 4000, b"B" * 2500
DAY = 86400


def other_project(backend: Store, tmp_path: Path, body: str) -> Path:
    """A second project on the same store and cache dir (its own folder and dodo.py)."""
    folder = tmp_path / "other"
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "dodo.py", folder / "dodo.py")
    spec = backend.spec if backend.kind == "s3" else str(backend.project / "store")
    write(folder / "assets.yaml", f"store: {spec}\n" + textwrap.dedent(body).lstrip("\n"))
    return folder


def fetched(folder: Path) -> None:
    result = run_doit(["fetch"], folder)
    assert result.returncode == 0, result.stdout + result.stderr


def contents(backend: Store, cache_dir: Path, folder: str | None = None) -> dict[str, bytes]:
    """The store's files in the cache (by key) with their bytes, and their records (``KEY.json``);
    ``folder``: the store's cache folder (default: as the environment names it now)."""
    folder = folder or backend.cache_folder
    data, meta = cache_dir / folder, cache_dir / ".pod" / folder
    files = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    records = {p.relative_to(meta).as_posix(): b"" for p in meta.rglob("*.json")}
    return {**files, **records}


def snapshot(cache_dir: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under the cache dir, with its mtime and bytes."""
    return {p.relative_to(cache_dir).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in cache_dir.rglob("*") if p.is_file()}


def pinned_in_turn(backend: Store, *versions: str) -> None:
    """Pin a.csv at each of ``versions`` in turn and fetch it (a.1.0.0.csv is A1, 1.1.0 A2, 1.2.0 S)."""
    for key, data in (("a.1.0.0.csv", A1), ("a.1.1.0.csv", A2), ("a.1.2.0.csv", S)):
        backend.put(key, data)
    for version in versions:
        manifest(backend, f"assets:\n  a.csv: {version}\n")
        fetched(backend.project)


def origin(backend: Store) -> str:
    """Where gc says a file of ``backend`` came from: its server (or a folder store) and cache folder."""
    top = backend.cache_folder.split("/")[0]
    server = "a folder store" if backend.kind == "dir" else backend.s3.endpoint
    return f"{server}, cache folder {top}/"


def used_at(backend: Store, cache_dir: Path, key: str, when: float) -> None:
    """Pretend ``key`` was last used at ``when`` (its record's mtime)."""
    record = cache_dir / ".pod" / backend.cache_folder / (key + ".json")
    os.utime(record, (when, when))


def test_gc_removes_the_old_version_after_an_upgrade_and_keeps_every_pin(backend, tmp_path, cache_dir):
    for key, data in (("a.1.0.0.csv", A1), ("a.1.1.0.csv", A2), ("s.1.0.0.csv", S), ("b.1.0.0.csv", B1)):
        backend.put(key, data)
    manifest(backend, "assets:\n  a.csv: 1.0.0\n  s.csv: 1.0.0\n")
    other = other_project(backend, tmp_path, "assets:\n  s.csv: 1.0.0\n  b.csv: 1.0.0\n")
    fetched(backend.project)
    fetched(other)
    manifest(backend, "assets:\n  a.csv: 1.1.0\n  s.csv: 1.0.0\n")  # the upgrade
    fetched(backend.project)
    assert contents(backend, cache_dir) == {
        "a.1.0.0.csv": A1, "a.1.1.0.csv": A2, "s.1.0.0.csv": S, "b.1.0.0.csv": B1,
        "a.1.0.0.csv.json": b"", "a.1.1.0.csv.json": b"", "s.1.0.0.csv.json": b"", "b.1.0.0.csv.json": b""}

    before = snapshot(cache_dir)
    if backend.s3 is not None:
        backend.s3.clear()
    dry = doit(backend, "gc", "--dry-run")
    assert dry.returncode == 0, output(dry)
    assert f"would remove {backend.url('a.1.0.0.csv')} (1000 B): pinned by no project; from {origin(backend)}" \
        in dry.stdout.splitlines(), dry.stdout
    assert (f"gc --dry-run: would remove 1 file(s), would free 1000 B; the cache would hold 3 file(s), "
            f"{human_size(9000)}") in dry.stdout
    assert snapshot(cache_dir) == before  # nothing changed, not even a time

    result = doit(backend, "gc")
    assert result.returncode == 0, output(result)
    lines = result.stdout.splitlines()
    assert f"removed {backend.url('a.1.0.0.csv')} (1000 B): pinned by no project; from {origin(backend)}" in lines
    assert (f"gc: removed 1 file(s), freed 1000 B; the cache holds 3 file(s), {human_size(9000)} ({cache_dir})"
            in lines), result.stdout
    assert contents(backend, cache_dir) == {
        "a.1.1.0.csv": A2, "s.1.0.0.csv": S, "b.1.0.0.csv": B1,
        "a.1.1.0.csv.json": b"", "s.1.0.0.csv.json": b"", "b.1.0.0.csv.json": b""}
    if backend.s3 is not None:
        assert backend.s3.counts() == {}  # gc asks the store nothing

    again = doit(backend, "gc")  # nothing left to remove
    assert "gc: removed 0 file(s), freed 0 B" in again.stdout, output(again)

    (other / "assets.yaml").unlink()  # the other project is gone: its pins with it
    gone = doit(backend, "gc")
    assert gone.returncode == 0, output(gone)
    assert f"forgot the project {(other / 'assets.yaml').resolve()}: its assets.yaml is gone" in gone.stdout
    assert f"removed {backend.url('b.1.0.0.csv')} (3.9 KiB): pinned by no project" in gone.stdout
    assert f"gc: removed 1 file(s), freed {human_size(4000)}; the cache holds 2 file(s), {human_size(5000)}" \
        in gone.stdout
    assert contents(backend, cache_dir) == {"a.1.1.0.csv": A2, "s.1.0.0.csv": S,
                                            "a.1.1.0.csv.json": b"", "s.1.0.0.csv.json": b""}
    fetched(backend.project)  # what the project pins is still there: no request
    if backend.s3 is not None:
        assert backend.s3.counts() == {}


def test_gc_without_the_endpoint_the_files_were_fetched_from_removes_nothing_pinned(s3_backend, cache_dir,
                                                                                     monkeypatch):
    """``AWS_ENDPOINT_URL=... doit fetch``, then ``doit gc`` in a shell without it: what
    the project pins was fetched from that server and stays, bytes and records; only
    what no project pins goes, and gc says which server each file came from."""
    s3_backend.put("raw/x.json", b'{"x": 1}')
    pinned_in_turn(s3_backend, "1.0.0", "1.1.0")
    manifest(s3_backend, "assets:\n  a.csv: 1.1.0\nfiles:\n  - s3://assets/raw/x.json\n")
    fetched(s3_backend.project)
    kept = {"a.1.1.0.csv": A2, "raw/x.json": b'{"x": 1}', "a.1.1.0.csv.json": b"", "raw/x.json.json": b""}
    assert contents(s3_backend, cache_dir) == {**kept, "a.1.0.0.csv": A1, "a.1.0.0.csv.json": b""}
    folder = s3_backend.cache_folder
    assert folder.startswith("_endpoint-127.0.0.1-")
    s3_backend.s3.clear()
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # a new shell: AWS's own endpoint, as far as gc can tell

    dry = doit(s3_backend, "gc", "--dry-run")
    assert dry.returncode == 0, output(dry)
    assert [line for line in dry.stdout.splitlines() if line.startswith("would ")] == [
        f"would remove {s3_backend.url('a.1.0.0.csv')} (1000 B): pinned by no project; "
        f"from {s3_backend.s3.endpoint}, cache folder {folder.split('/')[0]}/"], dry.stdout
    result = doit(s3_backend, "gc")
    assert result.returncode == 0, output(result)
    assert f"gc: removed 1 file(s), freed 1000 B; the cache holds 2 file(s), {human_size(2008)}" in result.stdout
    assert contents(s3_backend, cache_dir, folder) == kept
    tight = doit(s3_backend, "gc", "--max-size", "0")  # this project's pins, wherever fetched: never
    assert tight.returncode == 0, output(tight)
    assert "gc: removed 0 file(s), freed 0 B" in tight.stdout and "still 2.0 KiB over --max-size 0" in tight.stdout
    assert contents(s3_backend, cache_dir, folder) == kept
    assert s3_backend.s3.counts() == {}  # gc asks no server anything

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_backend.s3.endpoint)
    fetched(s3_backend.project)  # everything still there: no download
    assert s3_backend.s3.count("GET") == 0


def test_a_project_reached_through_a_symlink_keeps_its_files_when_another_runs_gc(dir_backend, tmp_path, cache_dir):
    """A program resolves through a linked folder (its folder store, ``store: store``, is then
    named by that path); ``doit gc`` from another project on the cache keeps its files."""
    real = tmp_path / "real"
    write(real / "store" / "b.1.0.0.csv", "").write_bytes(B1)
    write(real / "assets.yaml", "store: store\nassets:\n  b.csv: 1.0.0\n")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    program = run_python("from pod_tasks import resolve\n"
                         f"print(resolve('b.csv', manifest={str(tmp_path / 'link' / 'assets.yaml')!r}))", tmp_path)
    assert program.returncode == 0, program.stderr
    theirs = Path(program.stdout.strip())
    assert theirs.read_bytes() == B1 and theirs.parent.name != DirStore(real / "store").name  # the link's
    pinned_in_turn(dir_backend, "1.0.0", "1.1.0")

    result = doit(dir_backend, "gc")
    assert result.returncode == 0, output(result)
    assert "gc: removed 1 file(s), freed 1000 B; the cache holds 2 file(s)" in result.stdout
    assert theirs.read_bytes() == B1
    listed = run_python("from pod_tasks.resolver import Project; print('\\n'.join(Project.get().cache.projects()))",
                        dir_backend.project)
    assert listed.stdout.split() == sorted([str(dir_backend.project.resolve() / "assets.yaml"),
                                            str(real.resolve() / "assets.yaml")]), listed.stderr  # one project each


def test_max_size_evicts_the_least_recently_used_but_never_the_current_pins(backend, tmp_path, cache_dir):
    for key, data in (("a.1.0.0.csv", A1), ("b.1.0.0.csv", B1), ("c.1.0.0.csv", B2)):
        backend.put(key, data)
    manifest(backend, "assets:\n  a.csv: 1.0.0\n")
    other = other_project(backend, tmp_path, "assets:\n  b.csv: 1.0.0\n  c.csv: 1.0.0\n")
    fetched(backend.project)
    fetched(other)
    now = time.time()
    used_at(backend, cache_dir, "a.1.0.0.csv", now - 10 * DAY)  # the oldest, but this project pins it
    used_at(backend, cache_dir, "b.1.0.0.csv", now - 3 * DAY)
    used_at(backend, cache_dir, "c.1.0.0.csv", now - 2 * DAY)

    before = snapshot(cache_dir)
    dry = doit(backend, "gc", "--max-size", "4KB", "--dry-run")
    assert f"would remove {backend.url('b.1.0.0.csv')} ({human_size(4000)}): least recently used" in dry.stdout
    assert snapshot(cache_dir) == before

    result = doit(backend, "gc", "--max-size", "4KB")  # 7500 bytes: b goes (3 days), then 3500 fit
    assert result.returncode == 0, output(result)
    assert f"removed {backend.url('b.1.0.0.csv')} ({human_size(4000)}): least recently used" in result.stdout
    assert f"gc: removed 1 file(s), freed {human_size(4000)}; the cache holds 2 file(s), {human_size(3500)}" \
        in result.stdout
    assert contents(backend, cache_dir) == {"a.1.0.0.csv": A1, "c.1.0.0.csv": B2,
                                            "a.1.0.0.csv.json": b"", "c.1.0.0.csv.json": b""}

    tight = doit(backend, "gc", "--max-size", "500")
    assert tight.returncode == 0, output(tight)
    assert f"removed {backend.url('c.1.0.0.csv')} ({human_size(2500)}): least recently used" in tight.stdout
    assert (f"gc: the cache is still 500 B over --max-size 500: what is left is pinned by "
            f"{backend.project / 'assets.yaml'} or in use") in tight.stdout
    assert contents(backend, cache_dir) == {"a.1.0.0.csv": A1, "a.1.0.0.csv.json": b""}


def test_older_than_keeps_unpinned_files_used_lately(dir_backend, cache_dir):
    pinned_in_turn(dir_backend, "1.0.0", "1.1.0", "1.2.0")
    used_at(dir_backend, cache_dir, "a.1.0.0.csv", time.time() - 40 * DAY)
    result = doit(dir_backend, "gc", "--older-than", "30d")
    assert result.returncode == 0, output(result)
    assert "gc: removed 1 file(s), freed 1000 B; the cache holds 2 file(s)" in result.stdout
    assert sorted(contents(dir_backend, cache_dir)) == ["a.1.1.0.csv", "a.1.1.0.csv.json", "a.1.2.0.csv",
                                                        "a.1.2.0.csv.json"]


def test_a_files_entry_no_longer_listed_goes(s3_backend, cache_dir):
    s3_backend.put("raw/x.json", b'{"x": 1}')
    s3_backend.put("a.1.0.0.csv", A1)
    manifest(s3_backend, "assets:\n  a.csv: 1.0.0\nfiles:\n  - s3://assets/raw/x.json\n")
    fetched(s3_backend.project)
    manifest(s3_backend, "assets:\n  a.csv: 1.0.0\n")
    result = doit(s3_backend, "gc")
    assert result.returncode == 0, output(result)
    assert "removed s3://assets/raw/x.json (8 B): pinned by no project" in result.stdout
    assert contents(s3_backend, cache_dir) == {"a.1.0.0.csv": A1, "a.1.0.0.csv.json": b""}


def test_a_file_a_fetch_holds_is_kept(dir_backend, cache_dir):
    pinned_in_turn(dir_backend, "1.0.0", "1.1.0")
    lock = Layout(cache_dir).lock(f"{dir_backend.cache_folder}/a.1.0.0.csv")
    holder = subprocess.Popen(  # another process in the middle of a fetch of that object
        [sys.executable, "-c", f"from filelock import FileLock\nwith FileLock({str(lock)!r}):\n"
                               f"    print('held', flush=True)\n    input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = doit(dir_backend, "gc")
    finally:
        holder.communicate("\n", timeout=60)
    assert result.returncode == 0, output(result)
    assert f"kept {dir_backend.url('a.1.0.0.csv')}: in use" in result.stdout
    assert "gc: removed 0 file(s), freed 0 B; the cache holds 2 file(s)" in result.stdout
    assert contents(dir_backend, cache_dir)["a.1.0.0.csv"] == A1
    released = doit(dir_backend, "gc")
    assert "gc: removed 1 file(s), freed 1000 B" in released.stdout, output(released)


def test_many_processes_remember_their_projects_in_one_cache(dir_backend, tmp_path, cache_dir):
    """Six programs of six projects resolve at once: all six are remembered, and each one's
    file counts as pinned."""
    folders = []
    for i in range(6):
        dir_backend.put(f"f{i}.1.0.0.csv", b"%d" % i * 100)
        folder = tmp_path / f"p{i}"
        write(folder / "assets.yaml", f"store: {dir_backend.project / 'store'}\nassets:\n  f{i}.csv: 1.0.0\n")
        folders.append(folder)
    runs = [subprocess.Popen([sys.executable, "-c", f"from pod_tasks import resolve; resolve('f{i}.csv')"],
                             cwd=folder, stderr=subprocess.PIPE, text=True) for i, folder in enumerate(folders)]
    assert [run.wait(timeout=120) for run in runs] == [0] * 6, [run.stderr.read() for run in runs]
    listed = run_python("from pod_tasks.resolver import Project; print('\\n'.join(Project.get().cache.projects()))",
                        folders[0])
    assert listed.stdout.split() == sorted(str((f / "assets.yaml").resolve()) for f in folders), listed.stderr
    manifest(dir_backend, "assets: {}\n")
    result = doit(dir_backend, "gc", "--dry-run")
    assert "gc --dry-run: would remove 0 file(s)" in result.stdout, output(result)


def test_cache_and_status_show_the_totals(backend, cache_dir):
    pinned_in_turn(backend, "1.0.0", "1.1.0")
    line = (f"cache {cache_dir}: 2 file(s), {human_size(3000)}; unpinned: 1 file(s), 1000 B "
            f"(doit gc removes them)")
    for task in ("cache", "status"):
        result = doit(backend, task)
        assert result.returncode == 0, output(result)
        assert result.stdout.splitlines()[-1] == line, result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--max-size", "20GX"], "gc: --max-size: '20GX' is not a size: write e.g. 20GiB, 500MB or 1000000 (bytes)"),
    (["--older-than", "soon"], "gc: --older-than: 'soon' is not an age: write e.g. 30d"),
    (["--max-sise", "1"], "gc: unknown option --max-sise: did you mean --max-size?"),
])
def test_bad_options_are_one_line(dir_backend, args, needle):
    dir_backend.put("a.1.0.0.csv", A1)
    manifest(dir_backend, "assets:\n  a.csv: 1.0.0\n")
    assert_clean_failure(doit(dir_backend, "gc", *args), needle)
