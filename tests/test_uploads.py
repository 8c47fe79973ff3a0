"""The temporary files of uploads to a folder store: a sweep removes what a killed upload
left, never what a live one (in another process) is writing, and nothing else; where the
file system has no locks, only what has been idle for `STALE_AFTER`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest

from pod_tasks.uploads import FOLDER, STALE_AFTER, sweep, upload
from tests.conftest import write

HOLD = """
    import sys
    from pathlib import Path
    from pod_tasks.uploads import upload

    with upload(Path(sys.argv[1])) as files:
        files.data.write_bytes(b"half an upload")
        files.meta.write_text("{}")
        print(files.data.name, flush=True)
        input()
"""


def holder(root: Path) -> tuple[subprocess.Popen, str]:
    """Another process in the middle of an upload to ``root``; the name of its data file."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def everything(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_sweep_removes_what_a_killed_upload_left_and_nothing_else(tmp_path):
    root = tmp_path / "store"
    keep = {
        "foo/bar.1.0.0.csv": b"a version",
        ".pod-meta/foo/bar.1.0.0.csv.json": b"{}",
        f"{FOLDER}/bar.1.0.0.part": b"named like no upload",  # a version's key, were one ever put here
        f"{FOLDER}/{'0' * 31}.part": b"31 hex digits: not an upload's",
    }
    for rel, data in keep.items():
        write(root / rel, "").write_bytes(data)
    proc, name = holder(root)
    try:
        assert name.endswith(".part") and len(name) == 37
        assert sweep(root / FOLDER) == []  # its writer is alive: kept
        assert (root / FOLDER / name).read_bytes() == b"half an upload"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    token = name[:-len(".part")]
    assert sorted(p.name for p in (root / FOLDER).iterdir() if p.name.startswith(token)) == [
        f"{token}.lock", f"{token}.meta.part", f"{token}.part"]
    assert sorted(p.name for p in sweep(root / FOLDER)) == [f"{token}.meta.part", f"{token}.part"]
    assert everything(root) == keep  # the lock went too; every other file is as it was


def test_an_upload_removes_its_own_files_however_it_ends(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    with pytest.raises(RuntimeError), upload(root) as files:
        files.data.write_bytes(b"x")
        files.meta.write_bytes(b"{}")
        raise RuntimeError("the copy failed")
    assert list((root / FOLDER).iterdir()) == []


def test_without_locks_only_an_upload_idle_for_a_day_is_swept(tmp_path, monkeypatch):
    folder = tmp_path / FOLDER
    old, young = "a" * 32, "b" * 32
    for token in (old, young):
        write(folder / f"{token}.part", "bytes")
    now = (folder / f"{young}.part").stat().st_mtime
    os.utime(folder / f"{old}.part", (now - STALE_AFTER, now - STALE_AFTER))

    def no_locks(self, *args, **kwargs):
        raise NotImplementedError("FileSystem does not appear to support flock")

    monkeypatch.setattr(filelock.FileLock, "acquire", no_locks)
    assert sweep(folder, now=now) == [folder / f"{old}.part"]
    assert sorted(p.name for p in folder.iterdir()) == [f"{young}.part"]
