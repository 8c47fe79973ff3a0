"""The temporary files of uploads to a folder store, and the removal of those a killed
upload left.

An upload to a folder store (`pod_tasks.store.DirStore.put_if_absent`) writes its bytes
and its metadata to ``<store>/.pod-uploads/<HEX>.part`` and ``<HEX>.meta.part`` before
they go into place, and holds ``<HEX>.lock`` (an OS lock) until it has finished. The
folder is hidden: never listed as a key, and no version's key has such a name (a
version's has its version in it). A killed writer (SIGKILL, a crash, a lost machine)
leaves its files behind; `sweep`, which every upload runs first, removes them.

Contracts:

- `sweep` removes only files of that folder named as above, and of one upload only when
  its lock is free (its writer is gone); where the file system has no locks (some
  network shares), when none of its files changed for `STALE_AFTER`. It never waits,
  never raises for a file it cannot remove (another user's, a share that refuses), and
  touches nothing else: a complete version is never in that folder.
- `upload` always removes its own files when it ends, however it ends (short of a kill).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["FOLDER", "STALE_AFTER", "Upload", "upload", "sweep"]

#: The folder of a folder store that holds the uploads under way (and those killed ones left).
FOLDER = ".pod-uploads"
#: Where locks do not work, an upload's files unchanged this long are a dead writer's.
STALE_AFTER = 86400.0
_NAME = re.compile(r"^([0-9a-f]{32})\.(part|meta\.part|lock)$")
_SUFFIXES = (".part", ".meta.part")


@dataclass(frozen=True)
class Upload:
    """The temporary files of one upload: its bytes (``data``) and its metadata (``meta``)."""

    data: Path
    meta: Path


@contextlib.contextmanager
def upload(root: Path) -> Iterator[Upload]:
    """The temporary files of a new upload to the folder store at ``root`` (created by the
    caller), held as this process's until the block ends, then removed; what killed uploads
    left is swept first."""
    from filelock import FileLock, Timeout

    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    sweep(folder)
    token = uuid.uuid4().hex
    lock = FileLock(str(folder / f"{token}.lock"))
    try:
        lock.acquire(timeout=0)
    except (Timeout, NotImplementedError, OSError):
        pass  # no locks here: a sweep tells this upload's files by their age
    try:
        yield Upload(*(folder / f"{token}{suffix}" for suffix in _SUFFIXES))
    finally:
        _remove(folder, token)
        lock.release()
        (folder / f"{token}.lock").unlink(missing_ok=True)


def sweep(folder: Path, now: float | None = None) -> list[Path]:
    """Remove from ``folder`` (a store's `FOLDER`) the files of uploads whose writer is gone
    (see the module's contracts); return those removed."""
    from filelock import FileLock, Timeout

    try:
        names = os.listdir(folder)
    except OSError:
        return []
    tokens = {m[1] for m in map(_NAME.match, names) if m}
    removed: list[Path] = []
    for token in sorted(tokens):
        lock = FileLock(str(folder / f"{token}.lock"))
        try:
            lock.acquire(timeout=0)
        except (Timeout, NotImplementedError, OSError):  # a writer at work, or no locks here
            if not _idle(folder, token, time.time() if now is None else now):
                continue
            removed += _remove(folder, token)
        else:
            try:
                removed += _remove(folder, token)
            finally:
                lock.release()
        with contextlib.suppress(OSError):
            (folder / f"{token}.lock").unlink()
    return removed


def _idle(folder: Path, token: str, now: float) -> bool:
    """No file of the upload ``token`` changed for `STALE_AFTER` (it has at least one)."""
    times = []
    for suffix in (*_SUFFIXES, ".lock"):
        with contextlib.suppress(OSError):
            times.append((folder / f"{token}{suffix}").stat().st_mtime)
    return bool(times) and now - max(times) >= STALE_AFTER


def _remove(folder: Path, token: str) -> list[Path]:
    """Remove the temporary files of the upload ``token``; return those that were there."""
    gone = []
    for suffix in _SUFFIXES:
        path = folder / f"{token}{suffix}"
        try:
            path.unlink()
        except OSError:  # gone already; or another user's, a share that refuses: left for another sweep
            continue
        gone.append(path)
    return gone
