"""What the cache keeps beside each file, and how it writes files.

- `Record`: what the cache knows of one cached file (where it came from, its size,
  mtime and hashes, when it was last checked, how it was verified). A file whose size
  and ``mtime_ns`` match its record, and that was not written on another boot without
  an fsync (`boot_id`), is the file that was hashed: it is never hashed again.
- `staged` and `write_atomic`: a file appears at its final path whole or not at all
  (a temporary file in the same folder, or at a ``temp`` path on the same file system,
  renamed into place), never half-written.

No I/O beyond the files named; no knowledge of stores or of the cache's layout.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

__all__ = ["Record", "boot_id", "staged", "write_atomic"]


@dataclass(frozen=True)
class Record:
    """What the cache knows of one cached file. ``checked`` None = must be checked.

    ``etag`` is the store's ETag (the MD5 when the store has none); ``verified`` names
    the strongest check the bytes passed when they were fetched (one of
    `pod_tasks.digests.STRENGTH`; None for a file adopted from an old cache or a pack);
    ``checksum`` is the store's own checksum (``sha256:BASE64``), when it sent one;
    ``endpoint`` the S3-compatible server it came from (None: AWS's own, or a folder),
    so that a pack made from this cache puts it back under the same server.
    ``unsynced`` is the `boot_id` of the boot the file was written in, when it went into
    place without an fsync: after a crash of the machine the file may hold anything, so
    on another boot it is hashed again before use (None: it is known to be on disk).
    """

    url: str
    size: int
    mtime_ns: int
    md5: str
    etag: str | None = None
    sha256: str | None = None
    checked: float | None = None
    immutable: bool = False
    verified: str | None = None
    checksum: str | None = None
    endpoint: str | None = None
    unsynced: str | None = None

    def matches(self, st: os.stat_result) -> bool:
        """The file is the one that was hashed (no re-hash needed): same size and mtime,
        and, if it was renamed into place before the disk had it, not since a reboot."""
        return (st.st_size == self.size and st.st_mtime_ns == self.mtime_ns
                and (self.unsynced is None or self.unsynced == boot_id()))


@contextlib.contextmanager
def staged(
    path: Path, before_replace: Callable[[os.stat_result], None] | None = None, durable: bool = True,
    temp: Path | None = None, resume: bool = False, keep: Callable[[Path], bool] | None = None,
) -> Iterator[BinaryIO]:
    """A new temporary file at ``temp`` (default: a new name in ``path``'s folder; with
    ``resume``, the file already there, opened for writing over); when the block ends
    without an error it is fsynced (if ``durable``), ``before_replace`` is called with its
    stat, and it is renamed onto ``path``; otherwise it is removed, unless ``keep(temp)``
    says it kept it."""
    temp = temp or path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    done = False
    try:
        with open(temp, "r+b" if resume else "xb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
            st = os.fstat(out.fileno())
        if before_replace is not None:
            before_replace(st)
        os.replace(temp, path)
        done = True
    finally:
        if not done and not (keep is not None and temp.exists() and keep(temp)):
            temp.unlink(missing_ok=True)


@functools.cache
def boot_id() -> str:
    """Which boot of this machine this is: Linux's boot id; elsewhere the boot time to the
    minute, from the clocks (a sleeping Mac may look rebooted: that costs a re-hash)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return f"booted-{round((time.time() - time.monotonic()) / 60)}"


def write_atomic(path: Path, data: bytes, durable: bool = True, temp: Path | None = None) -> None:
    """Replace ``path`` with ``data``: a temporary file (``temp``, else one in the same
    folder), fsync (if ``durable``), rename."""
    with staged(path, durable=durable, temp=temp) as out:
        out.write(data)
