"""Asset packs: cached files and their records in zips, for machines with no store access.

A pack holds paths relative to the cache dir, like the old tool's packs, plus the
cache's record of each file, which is what lets the receiving cache trust the bytes
without hashing them again or asking the store::

    <bucket>/<key>              the bytes
    .pod/<bucket>/<key>.json    the record: url, size, MD5, ETag, sha256, last checked

`unpack` checks every entry of every zip before writing anything (no absolute path,
``..``, backslash, drive letter, link or special file; each record matches its file's
place and size; no entry over ``POD_MAX_SIZE`` or expanding more than `MAX_RATIO` times,
a zip bomb's mark; all of them together fit in the cache dir's free space), then
installs each file through `AssetCache.install`, which verifies the bytes against the
record on the way in, reading no more than the entry declares. A pack is data from
elsewhere: a record's ``checked`` time in the future counts as never checked (the
file is checked with its store on first use). Packs of the old tool (no records) load
too: their files are then treated like an old cache's.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence
from urllib.parse import urlparse
from urllib.request import url2pathname

from .cache import ObjectRef
from .endpoints import server_of
from .errors import IntegrityError, PodError, UnsafePathError
from .layout import META, MISSING
from .names import check_relative_key
from .prefill import FAILED, LOCAL, MISSING as MISSING_ITEM, Outcome, manifest_items, prefill
from .records import Record, staged
from .resolver import Project
from .store import DirStore

__all__ = ["MB", "PackFile", "plan", "part_paths", "collect", "compresses", "write_packs", "PackEntry", "read_pack", "unpack"]

MB = 1 << 20
_MD5 = re.compile(r"^[0-9a-f]{32}$")
#: An entry that expands more than this many times its compressed size is refused (a zip
#: bomb's mark; Apache POI's default bound), once it is bigger than `_RATIO_FROM`.
MAX_RATIO = 100
_RATIO_FROM = MB
#: A record is a few hundred bytes: one much bigger is not one (and is read into memory).
_RECORD_MAX = 64 << 10


@dataclass(frozen=True)
class PackFile:
    """One cached file to pack: its cache-relative path, local path, size and record."""

    rel: str
    path: Path
    size: int
    record: Record


def plan(files: Sequence[PackFile], max_bytes: int | None) -> list[list[PackFile]]:
    """Split ``files`` into zips of at most ``max_bytes`` of file data each.

    Largest first (then by path), each into the first zip with room. No limit: one
    zip. A file larger than the limit raises `PodError` naming it.
    """
    ordered = sorted(files, key=lambda f: (-f.size, f.rel))
    if max_bytes is None:
        return [ordered] if ordered else []
    too_big = [f for f in ordered if f.size > max_bytes]
    if too_big:
        f = too_big[0]
        raise PodError(
            f"{f.rel} is {f.size} bytes, more than --max-size ({max_bytes} bytes): raise --max-size to at least "
            f"{-(-f.size // MB)} MB"
        )
    zips: list[list[PackFile]] = []
    room: list[int] = []
    for f in ordered:
        for i, left in enumerate(room):
            if f.size <= left:
                zips[i].append(f)
                room[i] -= f.size
                break
        else:
            zips.append([f])
            room.append(max_bytes - f.size)
    return zips


def part_paths(out: Path, count: int, split: bool) -> list[Path]:
    """``out`` itself, or ``out-1.zip``, ``out-2.zip``, ... when splitting by size."""
    if not split:
        return [out]
    stem = out.name[: -len(".zip")] if out.name.lower().endswith(".zip") else out.name
    return [out.with_name(f"{stem}-{i}.zip") for i in range(1, count + 1)]


def collect(
    project: Project,
    items: Iterable[str] | None,
    jobs: int | None = None,
    report: Callable[[Outcome], None] | None = None,
) -> list[PackFile]:
    """The cached files of ``items`` (default: everything assets.yaml pins), fetched
    first when needed. Local overrides are skipped (they are not in the cache); a
    missing or failed item raises `PodError` listing them."""
    items = manifest_items(project) if items is None else list(items)
    summary = prefill(project, items, jobs, report)
    bad = [o for o in summary.outcomes if o.status in (MISSING_ITEM, FAILED)]
    if bad:
        shown = "; ".join(o.message or o.item for o in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise PodError(f"cannot pack: {len(bad)} of {len(items)} item(s) missing or failed: {shown}{more}")
    files: dict[str, PackFile] = {}
    for outcome in summary.outcomes:
        if outcome.status == LOCAL or outcome.ref is None:
            continue
        path = project.cache.path_for(outcome.ref)
        record = project.cache.record(outcome.ref)
        if record is None or not record.matches(path.stat()):
            raise PodError(f"{outcome.item}: {path} changed while packing: run the pack again")
        rel = path.relative_to(project.cache.root).as_posix()
        files[rel] = PackFile(rel, path, record.size, record)
    return list(files.values())


def _record_name(rel: str) -> str:
    return f"{META}/{rel}.json"


#: Bytes read from the start and from the middle of a file to decide how to store it.
_SAMPLE = 64 * 1024


def compresses(sample: bytes) -> bool:
    """Whether deflate (at the fast level packs use) saves at least a tenth of ``sample``.
    Models, images and archives do not compress: deflating them costs time for nothing."""
    return len(zlib.compress(sample, 1)) <= 0.9 * len(sample)


def _sample(f: PackFile) -> bytes:
    with f.path.open("rb") as src:
        head = src.read(_SAMPLE)
        if f.size <= 2 * _SAMPLE:
            return head + src.read()
        src.seek(f.size // 2)
        return head + src.read(_SAMPLE)


def write_packs(
    files: Sequence[PackFile], out: Path, max_mb: float | None, packed: Callable[[PackFile], None] | None = None,
) -> list[tuple[Path, list[PackFile]]]:
    """Write ``files`` into one zip at ``out`` or, with ``max_mb``, into numbered zips
    of at most that many MB of file data each. A file whose sample does not compress
    (`compresses`) is stored as it is, others deflated. Each zip is written to a
    temporary file and renamed into place. ``packed`` is called after each file.
    Returns each zip with its files."""
    if max_mb is not None and max_mb <= 0:
        raise PodError(f"--max-size must be a positive number of MB, not {max_mb}")
    groups = plan(files, int(max_mb * MB) if max_mb else None) or [[]]
    paths = part_paths(out, len(groups), max_mb is not None)
    written = []
    for path, group in zip(paths, groups):
        path.parent.mkdir(parents=True, exist_ok=True)
        with staged(path) as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for f in group:
                how = zipfile.ZIP_DEFLATED if compresses(_sample(f)) else zipfile.ZIP_STORED
                zf.write(f.path, f.rel, compress_type=how)
                zf.writestr(_record_name(f.rel), json.dumps(asdict(f.record), sort_keys=True))
                if not f.record.matches(f.path.stat()):
                    raise PodError(f"{f.path} changed while packing: run the pack again")
                if packed is not None:
                    packed(f)
        written.append((path, group))
    return written


# --- loading ------------------------------------------------------------------------


@dataclass(frozen=True)
class PackEntry:
    """One file of a pack, checked and ready to install: where it goes and its record
    (None for the old tool's packs)."""

    info: zipfile.ZipInfo
    ref: ObjectRef
    record: Record | None


def _refuse(zip_path: Path, entry: str, why: str) -> UnsafePathError:
    return UnsafePathError(f"{zip_path}: entry {entry!r} {why}; nothing was unpacked from this zip")


def _dir_store(url: str, key: str) -> DirStore:
    """The directory store whose ``url(key)`` is ``url``."""
    root = Path(url2pathname(urlparse(url).path))
    for _ in key.split("/"):
        root = root.parent
    return DirStore(root)


def _ref_for(project: Project, rel: str, url: str, record: Record | None) -> ObjectRef | None:
    """The cache reference a record's URL names, if it lives at ``rel``."""
    top, _, key = rel.partition("/")
    if url.startswith("s3://"):
        ref = project.url_ref(url, endpoint=record.endpoint if record else None)
    elif url.startswith("file:") and key:
        store = project.store if project.store is not None and project.store.name == top else _dir_store(url, key)
        ref = ObjectRef(store, key, True)
    else:
        return None
    return ref if f"{ref.store.name}/{ref.key}" == rel and ref.url == url else None


def _parse_record(data: bytes) -> Record | None:
    """The record in a pack's ``data``, None when it is not one; a ``checked`` time in the
    future is dropped (never checked: a pack cannot spare a file its checks)."""
    try:
        record = Record(**json.loads(data))
    except (ValueError, TypeError):
        return None
    ok = (
        isinstance(record.url, str) and isinstance(record.size, int) and record.size >= 0
        and isinstance(record.md5, str) and _MD5.match(record.md5) is not None
        and isinstance(record.mtime_ns, int)
        and (record.checked is None or isinstance(record.checked, (int, float)))
        and (record.endpoint is None or isinstance(record.endpoint, str) and _names_server(record.endpoint))
    )
    if ok and record.checked is not None and not record.checked <= time.time():
        record = replace(record, checked=None)
    return record if ok else None


def _check_size(zip_path: Path, info: zipfile.ZipInfo, max_size: int) -> None:
    """Refuse an entry bigger than ``max_size``, or one that expands like a zip bomb."""
    if info.file_size > max_size:
        raise _refuse(zip_path, info.filename, f"is {info.file_size} bytes, more than POD_MAX_SIZE ({max_size})")
    if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _refuse(zip_path, info.filename, f"would expand {info.file_size // max(info.compress_size, 1)} times "
                                               f"(to {info.file_size} bytes): a zip bomb, not a pack")


class _Capped:
    """A zip entry's stream that fails once it gives more than the entry declares."""

    def __init__(self, source: BinaryIO, info: zipfile.ZipInfo, zip_path: Path) -> None:
        self.source, self.info, self.zip_path, self.left = source, info, zip_path, info.file_size

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(size)
        self.left -= len(chunk)
        if self.left < 0:
            raise IntegrityError(f"{self.zip_path}: {self.info.filename!r} holds more than the {self.info.file_size} "
                                 f"bytes it declares; it was not unpacked")
        return chunk


def _names_server(url: str) -> bool:
    """A record's endpoint is a server URL (a pack from elsewhere may say anything)."""
    try:
        server_of(url)
    except ValueError:
        return False
    return True


def read_pack(project: Project, zip_path: Path) -> list[PackEntry]:
    """Check every entry of the zip at ``zip_path`` and return its files.

    Raises `UnsafePathError` for an entry that could land outside the cache dir (or is
    a link, a special file, a repeat, no cached file at all, too big, or a zip bomb's)
    and `IntegrityError` for a record that does not match its file; both name the zip
    and the entry.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise PodError(f"{zip_path} does not exist: give the path of a pack made by `doit pack`") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntegrityError(f"{zip_path} is not a readable zip ({exc}): make the pack again") from None
    with zf:
        data: dict[str, zipfile.ZipInfo] = {}
        records: dict[str, zipfile.ZipInfo] = {}
        seen: set[str] = set()
        for info in zf.infolist():
            name = info.filename
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _refuse(zip_path, name, "is a link or a special file")
            try:
                check_relative_key(name.rstrip("/") if info.is_dir() else name, "zip entry")
            except UnsafePathError as exc:
                raise _refuse(zip_path, name, f"would land outside the cache dir ({exc})") from None
            if name in seen:
                raise _refuse(zip_path, name, "appears twice")
            seen.add(name)
            if info.is_dir():
                continue
            top = name.split("/", 1)[0]
            if top == META and name.endswith(".json") and name.count("/") >= 2:
                if info.file_size > _RECORD_MAX:
                    raise _refuse(zip_path, name, f"is {info.file_size} bytes: too big for a record")
                records[name[len(META) + 1 : -len(".json")]] = info
            elif top.startswith(".") or name == MISSING:
                raise _refuse(zip_path, name, "is not a cached file")
            else:
                _check_size(zip_path, info, project.settings.limits.max_size)
                data[name] = info
        orphans = sorted(set(records) - set(data))
        if orphans:
            raise _refuse(zip_path, _record_name(orphans[0]), "is a record without its file")
        entries = []
        for rel, info in sorted(data.items()):
            record = None
            if rel in records:
                record = _parse_record(zf.read(records[rel]))
                if record is None:
                    raise IntegrityError(f"{zip_path}: the record of {rel!r} is damaged; nothing was unpacked")
                if record.size != info.file_size:
                    raise IntegrityError(
                        f"{zip_path}: {rel!r} is {info.file_size} bytes but its record says {record.size}; "
                        "nothing was unpacked"
                    )
            ref = _ref_for(project, rel, record.url if record else f"s3://{rel}", record)
            if ref is None:
                raise _refuse(zip_path, rel, f"does not match its record ({record.url if record else 'none'})")
            entries.append(PackEntry(info, ref, record))
        return entries


def unpack(
    project: Project,
    zip_paths: Sequence[Path],
    report: Callable[[Path, PackEntry], None] | None = None,
) -> list[PackEntry]:
    """Install the files of every zip into the cache; return them.

    Every zip is checked (`read_pack`), and their files' total against the cache dir's
    free space (else `PodError`), before any file is written. Each file is then
    verified against its record while it streams to a temporary file and renamed into
    place, so a damaged entry raises `IntegrityError` and leaves nothing at its path.
    """
    checked = [(path, read_pack(project, path)) for path in zip_paths]
    _check_room(project, [entry for _, entries in checked for entry in entries])
    done: list[PackEntry] = []
    for path, entries in checked:
        with zipfile.ZipFile(path) as zf:
            for entry in entries:
                try:
                    with zf.open(entry.info) as source:
                        project.cache.install(entry.ref, _Capped(source, entry.info, path), entry.record)
                except (zipfile.BadZipFile, OSError, EOFError) as exc:
                    raise IntegrityError(
                        f"{path}: {entry.info.filename!r} is damaged ({exc}); it was not unpacked"
                    ) from None
                done.append(entry)
                if report is not None:
                    report(path, entry)
    return done


def _check_room(project: Project, entries: Sequence[PackEntry]) -> None:
    """Refuse packs whose files, all together, do not fit in the cache dir's free space."""
    need = sum(entry.info.file_size for entry in entries)
    folder = project.cache.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the cache dir may not exist yet: its disk is its nearest folder's
    free = shutil.disk_usage(folder).free
    if need > free:
        raise PodError(f"unpacking needs {need} bytes and the cache dir {project.cache.root} has {free} free: "
                       f"free some space (doit gc), or unpack fewer packs at a time; nothing was unpacked")
