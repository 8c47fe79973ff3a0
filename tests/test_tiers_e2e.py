"""Tiered caches: ``POD_CACHE_DIR=IMAGE<pathsep>RW`` with a read-only cache baked into
an image and an empty writable one, as a CI runner has them (doit and resolve() in a
subprocess, on moto, rclone and a folder store)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pod_tasks.config import split_tiers
from tests.conftest import run_python
from tests.doit_project import backend, doit, manifest, output  # noqa: F401  (fixtures)

BAKED, NEW = b"baked into the image\n", b"published after the image\n"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (records, notes and tag included): bytes and mtime."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_only(folder: Path, on: bool) -> None:
    """``chmod -R a-w`` (or back to u+w): read-only even for root, as pod-tasks reads it."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222 if on else mode | stat.S_IWUSR)


@pytest.fixture
def image(backend, tmp_path):
    """A project pinning two assets, the first fetched into ``image/`` (then made
    read-only) before the second was published; yields (image, rw, env)."""
    backend.put("foo/baked.1.0.0.csv", BAKED)
    manifest(backend, """
        assets:
          foo/baked.csv: 1.0.0
    """)
    folder, rw = tmp_path / "image", tmp_path / "rw"
    baked = doit(backend, "fetch", env={"POD_CACHE_DIR": str(folder)})
    assert baked.returncode == 0, output(baked)
    read_only(folder, True)
    backend.put("foo/new.1.0.0.csv", NEW)
    manifest(backend, """
        assets:
          foo/baked.csv: 1.0.0
          foo/new.csv: 1.0.0
    """)
    try:
        yield folder, rw, {"POD_CACHE_DIR": os.pathsep.join([str(folder), str(rw)])}
    finally:
        read_only(folder, False)


def test_a_runner_fetches_only_what_its_image_lacks_and_never_touches_the_image(backend, image):
    folder, rw, env = image
    before = snapshot(folder)
    result = doit(backend, "fetch", env=env)
    assert result.returncode == 0, output(result)
    assert "fetched 1 file" in result.stdout and "1 up to date" in result.stdout
    assert (rw / backend.cache_folder / "foo" / "new.1.0.0.csv").read_bytes() == NEW
    assert not (rw / backend.cache_folder / "foo" / "baked.1.0.0.csv").exists()
    if backend.s3:
        assert backend.gets("foo/new.1.0.0.csv") == 1 and backend.gets("foo/baked.1.0.0.csv") == 0
        backend.s3.clear()
    again = doit(backend, "fetch", "-v", env=env)
    assert again.returncode == 0 and "-- fetch:foo/baked.csv" in again.stdout.splitlines(), output(again)
    resolved = run_python("from pod_tasks import resolve\nprint(resolve('foo/baked.csv'))\nprint(resolve('foo/new.csv'))",
                          backend.project, env=env)
    assert resolved.stdout.splitlines() == [str(folder / backend.cache_folder / "foo" / "baked.1.0.0.csv"),
                                            str(rw / backend.cache_folder / "foo" / "new.1.0.0.csv")]
    if backend.s3:
        assert backend.s3.requests == []  # an immutable store: nothing to ask
    status = doit(backend, "status", env=env)
    assert any(line.split()[:3] == ["foo/baked.csv", "1.0.0", "read-only"] for line in status.stdout.splitlines())
    assert snapshot(folder) == before


def test_gc_and_cache_delete_act_on_the_writable_tier_and_say_so(backend, image):
    folder, rw, env = image
    assert doit(backend, "fetch", env=env).returncode == 0
    before = snapshot(folder)
    deleted = doit(backend, "cache", "--delete", backend.url("foo/new.1.0.0.csv"), env=env)
    assert f"deleted 1 cached file(s); read-only tiers left as they are: {folder}" in deleted.stdout, output(deleted)
    assert doit(backend, "fetch", env=env).returncode == 0
    manifest(backend, "assets: {}\n")  # nothing pinned: gc removes everything it may
    gc = doit(backend, "gc", env=env)
    assert gc.returncode == 0, output(gc)
    assert gc.stdout.splitlines()[-1] == (f"gc: removed 1 file(s), freed {len(NEW)} B; the cache holds 0 file(s), 0 B "
                                          f"({rw}); read-only tiers left as they are: {folder}")
    assert snapshot(folder) == before


def test_a_tier_file_whose_record_does_not_vouch_for_it_is_fetched_into_the_writable_tier(backend, image):
    folder, rw, env = image
    baked = folder / backend.cache_folder / "foo" / "baked.1.0.0.csv"
    read_only(folder, False)
    baked.write_bytes(b"changed in the image\n")  # its record no longer describes it
    read_only(folder, True)
    result = doit(backend, "fetch", env=env)
    assert result.returncode == 0, output(result)
    assert (rw / backend.cache_folder / "foo" / "baked.1.0.0.csv").read_bytes() == BAKED
    assert baked.read_bytes() == b"changed in the image\n"


def test_the_first_writable_folder_takes_the_downloads(tmp_path):
    ro, a, b = tmp_path / "ro", tmp_path / "a", tmp_path / "new" / "b"
    ro.mkdir()
    a.mkdir()
    read_only(ro, True)
    try:
        assert split_tiers(os.pathsep.join(map(str, [ro, a, b]))) == (a, (ro, b))
        assert split_tiers(os.pathsep.join(map(str, [b, ro]))) == (b, (ro,))  # created on first write
        assert split_tiers(os.pathsep.join(map(str, [ro, ro]))) == (ro, ())  # none writable: the first
        assert split_tiers(str(a) + os.pathsep) == (a, ())
    finally:
        read_only(ro, False)
    with pytest.raises(ValueError, match="names no folder"):
        split_tiers(os.pathsep)
