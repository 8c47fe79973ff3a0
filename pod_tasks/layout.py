"""Every path and file name the cache keeps on disk, and which files are the cache's own.

::

    <cache_dir>/CACHEDIR.TAG                   marks a pod-tasks cache (the Cache Directory Tagging
                                               spec, which backup tools honour)
    <cache_dir>/<bucket>/<key>                 the bytes (``<bucket>`` is ``_endpoint-HOST-PORT/<bucket>``
                                               for an S3 server other than AWS, ``_dir-HASH`` for a folder)
    <cache_dir>/.pod/<bucket>/<key>.json       the record, when ``<name>.json`` fits the file system's
                                               limit on a name; its mtime is when the file was last used
    <cache_dir>/.pod/_long/<ID>.json           the record of a file whose name leaves no room for ``.json``
    <cache_dir>/.pod/_locks/<ID>.lock          the object's inter-process lock
    <cache_dir>/.pod/_tmp/<ID>.partial         the bytes of a download in flight, or of one kept to
                                               resume (then with ``<ID>.partial.json``: what they are)
    <cache_dir>/.pod/_tmp/<RANDOM>.tmp         a small file (a record, a note) on its way into place
    <cache_dir>/.pod/_notes/<topic>.json       what was learnt about servers, and the projects
    <cache_dir>/.pod/_unreachable/<hash>.json  stores that could not be reached lately
    <cache_dir>/.timestamps/<bucket>/<key>     the old tool's "last checked" marks (read only)
    <cache_dir>/missing_assets.yaml            URLs wanted while their store was out of reach

``ID`` is `object_id` of the file's cache-relative path: 32 hex digits, whatever the
name's length. Folders of ``.pod/`` that are not a bucket's start with ``_``, which no
bucket name does, and no S3 key lands under ``.pod/``: what is there is the cache's own.

Contracts:

- A folder is a pod-tasks cache when it holds ``.pod/`` (this tool's, old versions
  included), its ``CACHEDIR.TAG``, or ``.timestamps/`` (the old tool's). `Layout.claim`
  starts a cache only in such a folder (tagging an old one) or a new or empty one (but
  for an old ``missing_assets.yaml``), and raises `CacheError` for any other.
- A cached file is the cache's own (`Layout.owns`) when it has a record, or an old mark;
  nothing else in the cache dir is ever listed, deleted or overwritten by pod-tasks.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

from .errors import CacheError, shown

__all__ = ["Layout", "object_id", "META", "OLD_MARKS", "MISSING", "TAG", "NOTES", "UNREACHABLE"]

META = ".pod"
OLD_MARKS = ".timestamps"
MISSING = "missing_assets.yaml"
TAG = "CACHEDIR.TAG"
NOTES = "_notes"
UNREACHABLE = "_unreachable"
_LONG, _LOCKS, _TMP = "_long", "_locks", "_tmp"
PARTIAL, PARTIAL_META, TEMP = ".partial", ".partial.json", ".tmp"
#: The first line the Cache Directory Tagging spec requires (https://bford.info/cachedir/).
SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_TAG_TEXT = (f"{SIGNATURE}\n# This file is a cache directory tag created by pod-tasks.\n"
             "# For information about cache directory tags, see https://bford.info/cachedir/\n")
#: A small temporary file not written to for this long has lost its writer (they take milliseconds).
STALE_TEMP = 3600.0
#: The limit on a file name where the platform cannot say (Windows, NTFS: 255 UTF-16 units).
_NAME_MAX = 255


def object_id(rel: str) -> str:
    """The short, fixed-length name of the cache-relative path ``rel`` in ``.pod/``'s flat folders."""
    return hashlib.sha256(rel.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _is_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


class Layout:
    """The paths of one cache dir (``root``, a real path). Pure but for `name_max`, `claim`,
    `is_cache`, `owns` and the listings, which look at the disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta = root / META
        self.tmp = self.meta / _TMP

    # --- where each file goes -----------------------------------------------------------

    def data(self, rel: str) -> Path:
        """The cached bytes of the cache-relative ``rel``."""
        return Path(f"{self.root}/{rel}")  # one parse, not one per part: `doit fetch` asks this of every asset

    def record(self, rel: str) -> Path:
        """The record of ``rel``: beside its folder's other records, or in ``_long/`` when the
        name leaves no room for ``.json`` (records of the first kind stay where they were)."""
        name = rel.rpartition("/")[2]
        if len(name) <= 48 or self.name_length(name + ".json") <= self.name_max:
            return Path(f"{self.meta}/{rel}.json")
        return self.meta / _LONG / f"{object_id(rel)}.json"

    def lock(self, rel: str) -> Path:
        return self.meta / _LOCKS / f"{object_id(rel)}.lock"

    def partial(self, rel: str) -> Path:
        """Where ``rel``'s download writes (under its lock), and what it keeps to resume."""
        return self.tmp / f"{object_id(rel)}{PARTIAL}"

    def partial_meta(self, rel: str) -> Path:
        """What a kept `partial` holds (JSON: ``of``, ``url``, ``etag``, ``have``...)."""
        return self.tmp / f"{object_id(rel)}{PARTIAL_META}"

    def temp(self) -> Path:
        """A new name for a small file on its way into place (`pod_tasks.records.staged`)."""
        return self.tmp / f"{uuid.uuid4().hex[:16]}{TEMP}"

    def old_mark(self, rel: str) -> Path:
        return self.root / OLD_MARKS / rel

    def missing_list(self) -> Path:
        return self.root / MISSING

    def missing_lock(self) -> Path:
        return self.meta / NOTES / "missing.lock"

    # --- names the platform can hold --------------------------------------------------------

    @functools.cached_property
    def name_max(self) -> int:
        """The longest file name (`name_length`) the file system of the cache dir holds."""
        folder = self.root
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            return os.pathconf(folder, "PC_NAME_MAX")
        except (AttributeError, OSError, ValueError):
            return _NAME_MAX

    @staticmethod
    def name_length(name: str) -> int:
        """A file name's length as the file system counts it (bytes; UTF-16 units on Windows)."""
        if os.name == "nt":
            return len(name.encode("utf-16-le", "surrogatepass")) // 2
        return len(os.fsencode(name))

    def too_long(self, rel: str) -> str | None:
        """Why ``rel`` cannot be a file here (one of its names is over `name_max`), or None."""
        for name in rel.split("/"):
            length = self.name_length(name)
            if length > self.name_max:
                return (f"its file name {shown(name, 40)} is {length} bytes long, over the limit of this file "
                        f"system ({self.name_max} bytes a name)")
        return None

    # --- whose folder this is ---------------------------------------------------------------

    def is_cache(self) -> bool:
        """The cache dir is a pod-tasks cache (see the module's contracts)."""
        if self.meta.is_dir() or (self.root / OLD_MARKS).is_dir():
            return True
        try:
            with open(self.root / TAG, encoding="utf-8", errors="replace") as tag:
                return tag.readline().rstrip("\r\n") == SIGNATURE and "pod-tasks" in tag.read(4096)
        except OSError:
            return False

    def foreign(self) -> str | None:
        """Why the cache dir must not be used (it exists, holds other files than a
        ``missing_assets.yaml`` or a tag, and is not a pod-tasks cache), in one line; None
        when it may."""
        if self.is_cache():
            return None
        try:
            names = sorted(set(os.listdir(self.root)) - {MISSING, TAG})  # the old tool's list, someone's tag
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return f"cache dir {self.root} is not a folder: set cache_dir (assets.yaml) or POD_CACHE_DIR to a folder"
        if not names or self.is_cache():  # again: a racing claim may have made it one since
            return None
        return (f"cache dir {self.root} is not a pod-tasks cache: it holds other files ({shown(names[0], 40)}"
                f"{f' and {len(names) - 1} more' if len(names) > 1 else ''}) and no {META}/ or {TAG}; pod-tasks "
                f"starts a cache only in a new or empty folder: set cache_dir (assets.yaml) or POD_CACHE_DIR to one")

    def claim(self) -> None:
        """Make the cache dir a marked pod-tasks cache (``.pod/`` and ``CACHEDIR.TAG``),
        adopting an old one as it is. Raises `CacheError` when it is `foreign`; OSError
        when the disk refuses."""
        why = self.foreign()
        if why is not None:
            raise CacheError(why)
        # ``.pod`` first: a racing process sees a cache, not a stray tag. A link there is
        # left as it is (the caller refuses it), the tag's temporary file is not under it.
        self.meta.mkdir(parents=True, exist_ok=True)
        tag = self.root / TAG
        if not tag.exists():
            from .records import write_atomic

            write_atomic(tag, _TAG_TEXT.encode(), durable=False)

    def owns(self, rel: str) -> bool:
        """The file at ``rel`` is the cache's own: it has a record, or the old tool's mark."""
        return self.record(rel).is_file() or self.old_mark(rel).is_file()

    # --- what is there ------------------------------------------------------------------------

    def data_tops(self) -> list[Path]:
        """The top-level files and folders of cached bytes (no name starting with ``.``, nor
        ``missing_assets.yaml`` or ``CACHEDIR.TAG``), sorted; none in a folder that is not a cache."""
        if not self.root.is_dir() or not self.is_cache():
            return []
        return [top for top in sorted(self.root.iterdir()) if top.name not in (MISSING, TAG)
                and not top.name.startswith(".")]

    def own_files(self, under: str = "") -> Iterator[str]:
        """The cache-relative paths of the cache's own files at or below ``under`` (every one
        when empty), sorted; links are neither followed nor listed."""
        tops = self.data_tops()
        if under:
            first = under.split("/", 1)[0]
            tops = [top for top in tops if top.name == first]
        for top in tops:
            if top.is_symlink():
                continue
            if top.is_file():
                found = [top.name]
            else:
                found = []
                for folder, dirs, files in os.walk(top):
                    base = Path(folder).relative_to(self.root).as_posix()
                    found += [f"{base}/{name}" for name in files]
            for rel in sorted(found):
                inside = not under or rel == under or rel.startswith(under + "/")
                path = self.data(rel)
                if inside and not path.is_symlink() and path.is_file() and self.owns(rel):
                    yield rel

    def leftovers(self) -> Iterator[tuple[Path, str | None]]:
        """What interrupted writes left in ``_tmp/``, sorted: (path, the `object_id` whose lock
        guards it, None for a small temporary file, listed once it is `STALE_TEMP` old). A
        kept partial's JSON goes with its bytes and is listed only when they are gone."""
        try:
            names = set(os.listdir(self.tmp))
        except OSError:
            return
        now = time.time()
        for name in sorted(names):
            path = self.tmp / name
            stem = name.split(".", 1)[0]
            if name.endswith(PARTIAL) and _is_id(stem) or (
                    name.endswith(PARTIAL_META) and _is_id(stem) and stem + PARTIAL not in names):
                yield path, stem
            elif name.endswith(TEMP) and len(name) == 16 + len(TEMP):
                try:
                    if now - path.stat().st_mtime >= STALE_TEMP:
                        yield path, None
                except OSError:
                    continue

    def lock_of_leftover(self, path: Path) -> Path | None:
        """The lock guarding a `leftovers` path (None: a small temporary file, guarded by its age)."""
        stem = path.name.split(".", 1)[0]
        return self.meta / _LOCKS / f"{stem}.lock" if path.name.endswith((PARTIAL, PARTIAL_META)) else None
