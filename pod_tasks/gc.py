"""What the cache may drop: the plan behind ``doit gc``, and the totals ``doit cache`` and
``doit status`` show.

Every project that uses a cache dir is remembered in it, by the real path of its
assets.yaml, with what it pins there as cache-relative paths (`AssetCache.record_pins`,
written at most once per process, by the process that used it: in its environment, its
endpoint, the path it reached the project by). A cached file is *pinned* while the
current assets.yaml names it (a version under ``assets:``, an ``s3://`` override, a
``files:`` URL, worked out in this process's environment), or a remembered project whose
assets.yaml still exists recorded it. gc never works out another project's pins in its own
environment, except for a project remembered before pins were recorded (an older cache),
whose assets.yaml is then read. A file's *last use* is its last fetch or resolve (its
record's mtime; a file with no record, its own mtime).

Contracts:

- `choose` alone decides what goes, a pure function of the files, the time and the limits:

  1. files pinned by no project (with ``older_than``: only those unused for that long);
  2. leftovers of interrupted downloads (kept ``.partial`` bytes, dead writers' ``.part``
     files): those of unpinned objects, or (with ``older_than``) any older than that;
  3. with ``max_size``, then the least recently used files (oldest last use first) until
     what is left fits, never one the current project pins (here, or as recorded by its
     runs in other environments); if those alone are over the size, `Choice.over` says by
     how much.

- `collect` removes only what `choose` chose, through `AssetCache.drop`: each file under
  its object's lock, skipping one whose lock a fetch holds or that was used after gc
  looked. Local overrides, anything outside the cache dir, and links are never touched.
  Projects whose assets.yaml is gone are forgotten.
- ``dry_run`` writes nothing at all (not even a lock file): it says what would go.
- A remembered assets.yaml that exists but cannot be read when it has to be (no pins
  recorded), or whose existence cannot be told (a folder this user may not enter), stops
  gc before anything is removed (its pins are unknown), naming the file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .config import NEVER, parse_size, parse_timeout
from .errors import CacheError, PodError, UnsafePathError
from .meter import human_size
from .resolver import Project

__all__ = [
    "parse_size", "parse_age", "Cached", "Drop", "Choice", "choose", "UNPINNED", "LEFTOVER", "LRU",
    "Survey", "origin", "survey", "Collected", "collect", "totals",
]

#: Why a file goes (`Drop.why`).
UNPINNED, LEFTOVER, LRU = "pinned by no project", "left by an interrupted download", "least recently used"


def parse_age(text: str) -> float:
    """Seconds from ``30d``, ``2w``, ``12h``, ``15m``, ``90s`` or plain seconds. Raises
    ValueError for anything else (``never`` included: nothing is older than never)."""
    try:
        seconds = parse_timeout(text)
    except ValueError:
        seconds = NEVER
    if seconds == NEVER:
        raise ValueError(f"{text!r} is not an age: write e.g. 30d, 2w, 12h or 3600 (seconds)")
    return seconds


@dataclass(frozen=True)
class Cached:
    """One file in the cache, as gc sees it: its cache-relative path, size, last use
    (epoch seconds), whether any project pins it (``pinned``) and whether the current
    project does (``current``, which implies ``pinned``). ``of`` is set for a leftover:
    the cache-relative path of the object it was a download of (whose pins count).
    ``origin`` says where it came from: the server (or folder store) and cache folder."""

    rel: str
    size: int
    used: float
    pinned: bool = False
    current: bool = False
    of: str | None = None
    label: str = field(default="", compare=False)
    origin: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.label or self.rel


@dataclass(frozen=True)
class Drop:
    """One file `choose` lets go, and why (`UNPINNED`, `LEFTOVER` or `LRU`)."""

    file: Cached
    why: str


@dataclass(frozen=True)
class Choice:
    """What `choose` decided: the files to drop, in order; the bytes kept; and, with a
    ``max_size``, how many bytes the kept files still exceed it by (0: they fit)."""

    drops: tuple[Drop, ...]
    kept: int
    over: int = 0


def choose(files: Sequence[Cached], now: float, max_size: int | None = None,
           older_than: float | None = None) -> Choice:
    """What gc removes from ``files`` at time ``now`` (see the module's contracts)."""

    def idle(f: Cached) -> bool:
        return older_than is None or now - f.used >= older_than

    drops: list[Drop] = []
    for f in sorted(files, key=lambda f: f.rel):
        if f.of is not None and (not f.pinned or older_than is not None) and idle(f):
            drops.append(Drop(f, LEFTOVER))
        elif f.of is None and not f.pinned and idle(f):
            drops.append(Drop(f, UNPINNED))
    gone = {d.file for d in drops}
    kept = [f for f in files if f not in gone]
    total = sum(f.size for f in kept)
    if max_size is None:
        return Choice(tuple(drops), total)
    for f in sorted(kept, key=lambda f: (f.used, f.rel)):
        if total <= max_size:
            break
        if not (f.current and f.of is None):
            drops.append(Drop(f, LRU))
            total -= f.size
    return Choice(tuple(drops), total, max(0, total - max_size))


@dataclass(frozen=True)
class Survey:
    """The cache as gc found it: every file and leftover (`Cached`), and the remembered
    projects whose assets.yaml is ``gone``."""

    files: tuple[Cached, ...]
    gone: tuple[str, ...]


def _current(project: Project) -> set[str]:
    """What the current project pins: worked out here, and as its runs in other contexts
    (another endpoint, another path to it) recorded."""
    if project.manifest is None:
        return set()
    cache = project.cache
    recorded = cache.recorded_pins(os.path.realpath(project.manifest.path), besides=cache.pins_context())
    return project.pinned_files() | (recorded or set())


def _remembered_pins(project: Project, path: str) -> set[str]:
    """What the remembered project at ``path`` (an existing assets.yaml) pins: as recorded;
    for a project remembered before pins were recorded, its assets.yaml worked out here."""
    recorded = project.cache.recorded_pins(path)
    if recorded is not None:
        return recorded
    return Project.load(path, cache_dir=project.cache.root).pinned_files()


def origin(rel: str, endpoint: str | None = None) -> str:
    """Where the file at the cache-relative ``rel`` came from, for messages: the server
    (``endpoint``, as its record names it), AWS S3, or a folder store; and its cache folder."""
    top = rel.split("/", 1)[0]
    if top.startswith("_endpoint-"):
        server = endpoint or "an S3 server (no record names it)"
    else:
        server = "a folder store" if top.startswith("_dir-") else "AWS S3"
    return f"{server}, cache folder {top}/"


def survey(project: Project) -> Survey:
    """Look at ``project``'s cache dir: its files, their last use and pins. Raises
    `PodError` when a remembered project's pins cannot be known (see the module's contracts)."""
    cache = project.cache
    entries = [e for e in cache.entries() if not e.path.is_symlink()]
    leftovers = list(cache.leftovers())
    # Read after the files: a project is remembered, with its pins, before its first file exists.
    remembered = cache.projects()
    current = _current(project)
    pinned = set(current)
    here = os.path.realpath(project.manifest.path) if project.manifest else None
    gone: list[str] = []
    for path in remembered:
        try:
            if not Path(path).is_file():  # a folder this user may not enter raises: not "gone"
                gone.append(path)
            elif path != here:
                pinned |= _remembered_pins(project, path)
        except (PodError, OSError) as exc:
            raise PodError(f"gc: {path} (a project that uses this cache) cannot be read: {exc}: fix it, or "
                           f"delete it if that project is gone, then run gc again; nothing was removed") from None
    files = [Cached(rel, e.size, e.used, rel in pinned, rel in current, label=e.url or rel,
                    origin=origin(rel, e.endpoint))
             for e in entries for rel in [e.path.relative_to(cache.root).as_posix()]]
    files += [Cached(left.path.relative_to(cache.root).as_posix(), left.size, left.mtime, left.of in pinned,
                     left.of in current, of=left.of, label=f"{left.path.name} (of {left.of})", origin=origin(left.of))
              for left in leftovers]
    return Survey(tuple(files), tuple(gone))


@dataclass(frozen=True)
class Collected:
    """What `collect` did (or, with ``dry_run``, would do): the files ``removed``; those
    ``spared`` although chosen (with why: in use, or the disk refused); the projects
    ``forgotten``; what the cache holds after (``files``, leftovers included, and their
    ``size``); and how far that still is over ``max_size``."""

    removed: tuple[Drop, ...]
    spared: tuple[tuple[Drop, str], ...]
    forgotten: tuple[str, ...]
    files: int
    size: int
    over: int
    dry_run: bool

    @property
    def freed(self) -> int:
        return sum(d.file.size for d in self.removed)


def collect(project: Project, max_size: int | None = None, older_than: float | None = None,
            dry_run: bool = False) -> Collected:
    """Remove from ``project``'s cache dir what `choose` picks, and forget the projects
    whose assets.yaml is gone (see the module's contracts). Raises `CacheError` when the
    cache dir holds files and is not a pod-tasks cache (`pod_tasks.layout`): none is its own."""
    foreign = project.cache.layout.foreign()
    if foreign is not None:
        raise CacheError(f"gc: {foreign}; nothing was removed")
    found = survey(project)
    choice = choose(found.files, time.time(), max_size, older_than)
    removed: list[Drop] = []
    spared: list[tuple[Drop, str]] = []
    for drop in choice.drops:
        f = drop.file
        try:
            done = dry_run or (project.cache.drop(f.rel, f.used) if f.of is None else project.cache.drop_leftover(f.rel))
        except (OSError, UnsafePathError) as exc:
            spared.append((drop, str(exc)))
            continue
        if done:
            removed.append(drop)
        else:
            spared.append((drop, "in use: a fetch holds it, or used it since gc looked"))
    if not dry_run:
        project.cache.forget_projects(found.gone)
    gone = {d.file for d in removed}
    left = [f for f in found.files if f not in gone]
    size = sum(f.size for f in left)
    over = max(0, size - max_size) if max_size is not None else 0
    return Collected(tuple(removed), tuple(spared), found.gone, len(left), size, over, dry_run)


def totals(project: Project) -> str:
    """One line: the files and bytes in the cache dir, and what a plain ``doit gc`` would free."""
    cache = project.cache
    try:
        found = survey(project)
    except PodError as exc:
        files = [e.size for e in cache.entries()]
        return f"cache {cache.root}: {len(files)} file(s), {human_size(sum(files))}; unpinned: unknown ({exc})"
    files = found.files
    drops = choose(files, time.time()).drops
    return (f"cache {cache.root}: {len(files)} file(s), {human_size(sum(f.size for f in files))}; "
            f"unpinned: {len(drops)} file(s), {human_size(sum(d.file.size for d in drops))} (doit gc removes them)")
