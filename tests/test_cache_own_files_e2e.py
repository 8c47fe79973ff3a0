"""Only the cache's own files are ever deleted or overwritten, only in a pod-tasks cache
(issue 22, contract 1), and every name the platform can hold caches (issue 21, item 7):
``doit`` in a subprocess, as a user runs it, on moto, ``rclone serve s3`` and a folder store.
Asserts on the bytes of the user's files, the cache's files, and the requests made."""

from __future__ import annotations

from pathlib import Path

import pytest

from pod_tasks.layout import SIGNATURE, Layout
from tests.conftest import run_python, s3_client, serve, write
from tests.doit_project import Store, assert_clean_failure, backend, doit, manifest, output  # noqa: F401 (fixtures)


def user_files(folder: Path) -> dict[str, bytes]:
    """The user's files in ``folder`` (not doit's state, nor the cache's), with their bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".doit.db") and ".pod" not in p.parts}


@pytest.mark.parametrize("where", ["cache_dir: .", "POD_CACHE_DIR"])
def test_a_folder_of_user_files_is_refused_as_a_cache_and_gc_deletes_none_of_them(backend, tmp_path, monkeypatch,
                                                                                   where):
    backend.put("a.1.0.0.csv", b"a,b\n")
    if where == "POD_CACHE_DIR":
        folder = tmp_path / "my files"
        write(folder / "thesis.tex", "\\chapter{One}\n")
        write(folder / "a.1.0.0.csv", "mine, not the store's\n")
        monkeypatch.setenv("POD_CACHE_DIR", str(folder))
        manifest(backend, "assets:\n  a.csv: 1.0.0\n")
    else:
        folder = backend.project
        monkeypatch.delenv("POD_CACHE_DIR")
        write(folder / "src" / "main.py", "print('hello')\n")
        write(folder / "a.1.0.0.csv", "mine, not the store's\n")
        manifest(backend, "cache_dir: .\nassets:\n  a.csv: 1.0.0\n")
    before = user_files(folder)
    fetched = doit(backend, "fetch")
    assert_clean_failure(fetched, f"cache dir {folder.resolve()} is not a pod-tasks cache", "POD_CACHE_DIR")
    for args in (["gc"], ["gc", "--max-size", "0"]):
        assert_clean_failure(doit(backend, *args), "is not a pod-tasks cache", "nothing was removed")
    deleted = doit(backend, "cache", "--delete", str(folder / "a.1.0.0.csv"))
    assert deleted.returncode == 0 and "deleted 0 cached file(s)" in deleted.stdout, output(deleted)
    assert user_files(folder) == before
    assert not (folder / "CACHEDIR.TAG").exists() and not (folder / ".pod").exists()
    assert backend.gets() in (0, None)


def test_a_new_cache_is_tagged_and_a_pinned_key_named_like_a_temporary_file_survives_gc(backend, cache_dir):
    old, pinned = "reports/report.v2.0.9.0.part", "reports/report.v2.1.0.0.part"
    backend.put(old, b"old report")
    backend.put(pinned, b"the pinned report")
    manifest(backend, "assets:\n  reports/report.v2.part: 0.9.0\n")
    assert doit(backend, "fetch").returncode == 0
    assert (cache_dir / "CACHEDIR.TAG").read_text().splitlines()[0] == SIGNATURE  # backup tools skip it
    manifest(backend, "assets:\n  reports/report.v2.part: 1.0.0\n")
    assert doit(backend, "fetch").returncode == 0
    folder = cache_dir / backend.cache_folder / "reports"
    stray = folder / ".report.v2.1.0.0.part.0123abcd.part"  # not the cache's (no record): never touched
    stray.write_bytes(b"someone's")
    gc = doit(backend, "gc")
    assert gc.returncode == 0, output(gc)
    assert "gc: removed 1 file(s)" in gc.stdout and f"{old}" in gc.stdout, gc.stdout
    assert sorted(p.name for p in folder.iterdir()) == [stray.name, "report.v2.1.0.0.part"]
    assert stray.read_bytes() == b"someone's"
    if backend.s3 is not None:
        backend.s3.clear()
    served = run_python("from pod_tasks import resolve\nprint(open(resolve('reports/report.v2.part'), 'rb').read())",
                        backend.project)
    assert served.stdout.strip() == "b'the pinned report'", served.stderr
    assert backend.gets() in (0, None)  # served from the cache


@pytest.mark.parametrize("length", [240, 252])
def test_a_long_file_name_fetches_resolves_and_is_collected(backend, cache_dir, length):
    """240 bytes: the temporary file of older versions (the name plus 39) did not fit;
    252: nor does the record beside it (``NAME.json``), which goes to ``.pod/_long/``."""
    stem = "n" * (length - len(".1.0.0.csv"))
    key = f"long/{stem}.1.0.0.csv"
    assert len(key.rsplit("/", 1)[1]) == length
    data = b"x,y\n" * 1000
    backend.put(key, data)
    manifest(backend, f"assets:\n  long/{stem}.csv: 1.0.0\n")
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    cached = cache_dir / backend.cache_folder / key
    assert cached.read_bytes() == data
    rel = cached.relative_to(cache_dir).as_posix()
    assert Layout(cache_dir).record(rel).is_file()
    assert (Layout(cache_dir).record(rel).parent.name == "_long") == (length + len(".json") > 255)
    resolved = run_python(f"from pod_tasks import resolve\nprint(resolve('long/{stem}.csv'))", backend.project)
    assert resolved.stdout.strip() == str(cached), resolved.stderr
    if backend.s3 is not None:
        backend.s3.clear()
    assert doit(backend, "fetch").returncode == 0 and backend.gets() in (0, None)  # its record was read back
    manifest(backend, "assets: {}\n")
    gc = doit(backend, "gc")
    assert "gc: removed 1 file(s)" in gc.stdout, output(gc)
    assert not cached.exists() and not Layout(cache_dir).record(rel).exists()


def test_a_name_over_the_platform_limit_gets_one_line(request, project, cache_dir):
    """moto keeps objects in memory, so it holds a key whose file name no file system here does."""
    import shutil

    from tests.conftest import REPO

    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    s3 = serve(request, "moto")
    store = Store("s3", project, s3, s3_client(s3))
    name_max = Layout(cache_dir).name_max
    stem = "z" * (name_max + 45 - len(".1.0.0.csv"))
    store.put(f"{stem}.1.0.0.csv", b"too long to hold")
    manifest(store, f"assets:\n  {stem}.csv: 1.0.0\n")
    result = doit(store, "fetch")
    assert_clean_failure(result, f"{name_max + 45} bytes long, over the limit of this file system ({name_max} bytes a name)")
    assert not (cache_dir / store.cache_folder).exists() or list((cache_dir / store.cache_folder).iterdir()) == []
    assert store.gets() == 0 and list(Layout(cache_dir).tmp.glob("*")) == []
