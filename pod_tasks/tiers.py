"""Read-only cache tiers: folders of cached files that pod-tasks reads and never changes.

``POD_CACHE_DIR`` (or ``cache_dir:``) may name several folders separated by
``os.pathsep`` (``:``; ``;`` on Windows): a cache baked into a CI image, a team's
shared cache on a read-only mount, then a writable one. New downloads go to the first
folder this process may write (`pod_tasks.config.split_tiers`); every other folder is
a `ReadOnlyTier`, looked up (in order) when the writable one has no fresh copy.

Contract: a read-only tier is never written, locked, claimed or cleaned; a file in it
is used only when its own record there vouches for it as the writable cache's record
would (same URL, size and mtime, the pin's sha256, and no check due by the one
freshness rule, `AssetCache._in_time`); a record written on another boot is trusted
only after the file hashes to its MD5 (once per process). Anything else is not used,
and the object is fetched into the writable tier as if the tier were not there.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable

from .digests import Digester
from .layout import Layout
from .records import Record, boot_id

__all__ = ["ReadOnlyTier"]


class ReadOnlyTier:
    """One read-only folder of cached files (see the module's contract)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.layout = Layout(self.root)
        self._hashed: set[tuple[str, int, int]] = set()  # files whose bytes matched their record's MD5
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReadOnlyTier({str(self.root)!r})"

    def lookup(self, rel: str, url: str, sha256: str | None, in_time: Callable[[Record], bool]) -> Path | None:
        """The tier's file of the cache-relative ``rel`` when its record vouches for it
        (see the module's contract), else None. Never writes."""
        path = self.layout.data(rel)
        try:
            st = path.stat()
            record = Record(**json.loads(self.layout.record(rel).read_bytes()))
        except (OSError, ValueError, TypeError):
            return None
        if record.url != url or st.st_size != record.size or st.st_mtime_ns != record.mtime_ns:
            return None
        if sha256 and record.sha256 != sha256:
            return None
        if not in_time(record) or not self._synced(path, st, record):
            return None
        return path

    def _synced(self, path: Path, st: os.stat_result, record: Record) -> bool:
        """The bytes are the recorded ones: written on this boot, or hashed to its MD5."""
        if record.unsynced is None or record.unsynced == boot_id():
            return True
        seen = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if seen in self._hashed:
                return True
        if Digester.of_file(path).md5.hexdigest() != record.md5:
            return False
        with self._lock:
            self._hashed.add(seen)
        return True
