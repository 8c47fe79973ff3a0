"""The local cache: the only module that writes into the cache dir.

The layout on disk (the old tool's ``<cache_dir>/<bucket>/<key>``, so old caches stay
usable, with records, locks and temporary files under ``.pod/``) is `pod_tasks.layout`'s.

Contracts:

- A file at a final path is always complete and verified, by the strongest check the
  store allows (`pod_tasks.verify.check`: the pinned sha256, else the store's own checksum
  and MD5 ETag, else the length; the record says which): downloads stream to a
  temporary file in ``.pod/_tmp/`` (a short name, where no S3 key lands), hashing as
  they go, and are renamed into place.
  They are not fsynced: their record names the boot they were written in, and a file
  used on a later boot (after a crash, the disk may not hold what was renamed) is hashed
  and checked against its record first.
- "Fresh" is decided by `AssetCache.is_fresh` alone; ``resolve()`` and doit's
  ``uptodate`` both call it. Immutable objects are fresh while the file matches its
  record; mutable ones while ``timeout`` has not passed since the last check, after
  which one HEAD decides. A file unchanged since it was hashed (same size and
  ``mtime_ns``) is never hashed again. A store that could not be reached is not asked
  again for a while (`pod_tasks.outage`): its due files are served unchecked, with one
  warning per store per process, as they are in offline mode.
- One download per object across threads and processes (a file lock per object).
- A version of the store is read from its mirrors first, when there are any and their
  bytes can be proved (`pod_tasks.mirrors`); what reaches a final path is checked
  against the same proof either way.
- No write ever lands outside the cache dir: keys are checked and symlinks inside the
  cache are refused on the way to a write. The first write claims the cache dir
  (`Layout.claim`): a non-empty folder that is not a pod-tasks cache is refused.
- Only the cache's own files (`Layout.owns`: a record, or an old mark) are listed,
  deleted or overwritten, and files leave the cache only when asked: `delete` (``doit
  cache --delete``, ``doit clean``) or `drop` and `drop_leftover`, which `pod_tasks.gc`
  calls for what it chose, under each object's lock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from .bounds import Bounded, SizeRefused
from .config import Settings
from .digests import Digester
from .errors import AssetNotFound, CacheError, IntegrityError, OfflineError, TransferError, UnsafePathError
from .mirrors import Mirrors, Source
from .layout import META, NOTES, PARTIAL_META, UNREACHABLE, Layout, object_id
from .names import check_relative_key
from .outage import Outage, Outages
from .pipeline import Pipeline
from .records import Record, boot_id, staged, write_atomic
from .parts import Parted
from .store import CHUNK, Changed, Head, Store, endpoint_folder
from .tiers import ReadOnlyTier
from .verify import PinMismatch, blame, check, etag_verdict, mismatch

__all__ = [
    "ObjectRef", "Entry", "Leftover", "Fetched", "AssetCache", "Progress",
    "DOWNLOADED", "CHECKED", "FRESH", "UNCHECKED",
]

log = logging.getLogger("pod_tasks")

_ATTEMPTS = 3
_PIPELINE_FROM = 16 << 20
#: From this size an object comes as several ranged GETs at once (`pod_tasks.parts`).
_PARTS_FROM = 64 << 20
#: A failed download keeps (for the next to resume) at least this many bytes.
_KEEP_FROM = 8 << 20
#: The `note` topic of the projects that use this cache dir.
PROJECTS = "projects"
#: Records whose file's use this process has noted (`AssetCache.used`): one write per file per process.
_USED: set[str] = set()
#: ``os.utime`` of a link itself where the platform can (elsewhere links in the cache are refused on creation).
_NO_FOLLOW = {"follow_symlinks": False} if os.utime in os.supports_follow_symlinks else {}

#: Called during a download with (bytes so far, total bytes).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ObjectRef:
    """One remote object as the cache sees it.

    ``label`` names it in messages (the asset name, or the URL); ``sha256`` is the pin
    the bytes must match, if any, and ``size`` the pin's size (`pod_tasks.bounds`).
    """

    store: Store
    key: str
    immutable: bool
    sha256: str | None = None
    label: str = ""
    size: int | None = None

    @property
    def url(self) -> str:
        return self.store.url(self.key)

    def __str__(self) -> str:
        return self.label or self.url


#: What `AssetCache.fetch` did (`Fetched.action`).
DOWNLOADED, CHECKED, FRESH, UNCHECKED = "downloaded", "checked", "fresh", "unchecked"


@dataclass(frozen=True)
class Fetched:
    """What `AssetCache.fetch` did for one object: ``action`` is `DOWNLOADED` (``size``
    bytes in ``seconds``), `CHECKED` (one HEAD found it unchanged), `FRESH` (no request
    was needed, or another process had just fetched it), or `UNCHECKED` (the store could
    not be asked: the cached copy is served, with a warning)."""

    path: Path
    action: str
    size: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Entry:
    """One cached file, for listings; ``used`` is when it was last used (`AssetCache.used`);
    ``endpoint`` the S3-compatible server it came from, as its record says (None: AWS's
    own, a folder store, or no record)."""

    path: Path
    url: str | None
    size: int
    checked: float | None
    due: bool
    used: float = 0.0
    endpoint: str | None = None


@dataclass(frozen=True)
class Leftover:
    """What an interrupted write left in ``.pod/_tmp/``: ``path`` (the bytes of a download
    that died or were kept to resume it, or a small temporary file), the cache-relative
    path of the object ``of`` (the leftover's own when it is not known: no project pins
    that), its size and mtime."""

    path: Path
    of: str
    size: int
    mtime: float


class AssetCache:
    """Local copies of remote objects. Safe to share between threads and processes."""

    def __init__(self, settings: Settings, mirrors: Mirrors | None = None, project: Path | None = None,
                 pins: Callable[[], Iterable[str]] | None = None) -> None:
        """``mirrors``: read before the store (none by default). ``project``: the assets.yaml
        of the project using the cache, and ``pins`` what it pins (the cache-relative paths,
        in this process's environment): both remembered in it on first use, for `doit gc`."""
        self.settings = settings
        self.mirrors = mirrors or Mirrors()
        self.project = project
        self._pins = pins
        self._remembered = project is None
        self._remember_lock = threading.Lock()
        self.root = Path(os.path.realpath(settings.cache_dir))
        self.layout = Layout(self.root)
        #: Read-only folders of cached files, looked up when the cache has no fresh copy.
        self.tiers = tuple(ReadOnlyTier(folder) for folder in settings.tiers
                           if Path(os.path.realpath(folder)) != self.root)
        self._safe: set[Path] = set()
        self._claimed = False
        self._outages = Outages(self.root / META / UNREACHABLE, self._write_note)

    # --- layout -------------------------------------------------------------------

    def path_for(self, ref: ObjectRef) -> Path:
        """Where ``ref`` lives in the cache (whether or not it is there)."""
        check_relative_key(ref.key, "key")
        return self.layout.data(self._rel(ref))

    def located(self, ref: ObjectRef) -> Path:
        """Where ``ref``'s file is: in the cache when it is there, else in the first
        read-only tier that vouches for it, else where the cache would put it."""
        path = self.path_for(ref)
        if self.tiers and not path.exists():
            return self._tiered(ref) or path
        return path

    def untouched(self) -> str:
        """What a line about changing the cache adds when read-only tiers are set: that
        they were left as they are (empty without tiers)."""
        if not self.tiers:
            return ""
        return "; read-only tiers left as they are: " + ", ".join(str(tier.root) for tier in self.tiers)

    def _tiered(self, ref: ObjectRef) -> Path | None:
        """The file of ``ref`` in the first read-only tier that vouches for it (`pod_tasks.tiers`)."""
        rel = self._rel(ref)
        for tier in self.tiers:
            found = tier.lookup(rel, ref.url, ref.sha256, lambda record: self._in_time(ref, record))
            if found is not None:
                return found
        return None

    @staticmethod
    def _rel(ref: ObjectRef) -> str:
        """The cache-relative path of ``ref`` (its key unchecked: `path_for` checks it)."""
        return f"{ref.store.name}/{ref.key}"

    def _lock(self, ref: ObjectRef):
        return self._lock_at(self._rel(ref))

    def _lock_at(self, rel: str):
        """The inter-process lock of the object at ``rel``."""
        return self._lock_file(self.layout.lock(rel))

    def _lock_file(self, lock_path: Path):
        """A lock at ``lock_path`` (created with the umask's permissions, so a group-shared
        cache stays lockable by every member of the group)."""
        from filelock import FileLock

        self._safe_dir(lock_path.parent)
        # The lock file stays when released: a cold fetch then creates one file per object,
        # not a file and a probe of the folder on every acquire (2 ms each here).
        return FileLock(str(lock_path), preserve_lock_file=True)

    def _safe_dir(self, folder: Path, create: bool = True) -> Path:
        """``folder`` under the root, created unless ``create`` is False (the first creation
        claims the cache dir: `Layout.claim`, which may raise `CacheError`); any symlink on
        the way (``folder`` included) raises `UnsafePathError`. A folder this process
        created and checked is not checked again."""
        if folder in self._safe:
            return folder
        rel = folder.relative_to(self.root)
        current = self.root
        if create and not self._claimed:
            self.layout.claim()
            self._claimed = True
        for part in rel.parts:
            current = current / part
            if current.is_symlink():
                raise UnsafePathError(
                    f"{current} is a symlink inside the cache dir: remove it (pod-tasks never writes through links)"
                )
            if create:
                current.mkdir(exist_ok=True)
        if create:
            self._safe.add(folder)
        return folder

    # --- records ------------------------------------------------------------------

    def record(self, ref: ObjectRef) -> Record | None:
        """The stored record of ``ref``, or None."""
        return self._record_at(self._rel(ref))

    def _record_at(self, rel: str) -> Record | None:
        try:
            return Record(**json.loads(self.layout.record(rel).read_bytes()))
        except (OSError, ValueError, TypeError):
            return None

    def _save(self, ref: ObjectRef, record: Record) -> None:
        self._write(self.layout.record(self._rel(ref)), json.dumps(asdict(record), sort_keys=True).encode())

    def _write(self, path: Path, data: bytes, durable: bool = False) -> None:
        """Replace the small file ``path`` in the cache dir with ``data``, through a temporary
        file in ``.pod/_tmp/``. No fsync unless ``durable``: a record or note lost or garbled
        by a crash only costs a re-hash or a request, as any that does not parse does."""
        self._safe_dir(path.parent)
        self._safe_dir(self.layout.tmp)
        write_atomic(path, data, durable=durable, temp=self.layout.temp())

    def _old_mark(self, rel: str) -> float | None:
        """When the old tool last checked the cache-relative ``rel`` (its empty mark file)."""
        try:
            return self.layout.old_mark(rel).stat().st_mtime
        except OSError:
            return None

    def _verified(self, ref: ObjectRef, path: Path, st: os.stat_result) -> Record | None:
        """A record that describes the file at ``path`` now, hashing only if it changed.

        None when the file does not match the sha256 pin, or was changed after it was
        recorded (it must be fetched again).
        A file with no record (an old cache) is adopted: its old mark counts as the
        last check.
        """
        record = self.record(ref)
        if record is not None and record.url == ref.url and record.matches(st):
            if not ref.sha256 or record.sha256 == ref.sha256:
                return record
        elif record is not None and record.url != ref.url:
            record = None
        digest = Digester.of_file(path, record.etag if record else None, sha256=bool(ref.sha256))
        sha = digest.sha256.hexdigest() if digest.sha256 else None
        if ref.sha256 and sha != ref.sha256:
            return None
        if record is not None and record.md5 != digest.md5.hexdigest():
            # Changed since it was verified (edited in place): no longer the store's
            # bytes, whatever its size; a store without ETags could not tell.
            return None
        if record is not None:
            fresh = replace(record, size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha or record.sha256, unsynced=None)
        else:
            fresh = Record(
                url=ref.url, size=st.st_size, mtime_ns=st.st_mtime_ns, md5=digest.md5.hexdigest(),
                etag=None, sha256=sha, checked=self._old_mark(self._rel(ref)),
                immutable=ref.immutable,
            )
        self._save(ref, fresh)
        return fresh

    def _in_time(self, ref: ObjectRef, record: Record) -> bool:
        if record.checked is None:
            return False
        if ref.immutable or self.settings.timeout == math.inf:
            return True
        return time.time() - record.checked < self.settings.timeout

    # --- freshness ------------------------------------------------------------------

    def is_fresh(self, ref: ObjectRef, *, network: bool = True) -> bool:
        """The cached file can be used as it is.

        Without a request when immutable or inside the timeout. Otherwise (not fresh
        when ``network`` is False) one HEAD compares the remote ETag with the local hash
        and, when they agree, marks the file checked. In offline mode, or when the store
        cannot be reached or was not reached lately (`pod_tasks.outage`), a cached file
        counts as fresh, with one warning per store per process.
        """
        if self._freshness(ref, network) is not None:
            return True
        return bool(self.tiers) and not self.path_for(ref).exists() and self._tiered(ref) is not None

    def _freshness(self, ref: ObjectRef, network: bool = True) -> str | None:
        """How `is_fresh` knows: `FRESH`, `CHECKED` or `UNCHECKED`; None when not fresh."""
        path = self.path_for(ref)
        try:
            st = path.stat()
        except OSError:
            return None
        record = self._verified(ref, path, st)
        if record is None:
            return None
        if self._in_time(ref, record):
            return FRESH
        if not network:
            return None
        if self.settings.offline:
            return self._unchecked(ref, "offline mode is on (POD_OFFLINE=1)")
        return self._revalidate(ref, path, record)

    def _revalidate(self, ref: ObjectRef, path: Path, record: Record, force: bool = False) -> str | None:
        """One HEAD: `CHECKED` (unchanged), `UNCHECKED` (the store could not say), None
        (changed). No request while the store is remembered as unreachable, unless ``force``."""
        store = ref.store.identity
        with self._outages.contact(store) as outage:
            if outage is not None and not force:
                return self._unchecked(ref, outage)
            try:
                head = ref.store.head(ref.key)
            except OfflineError as exc:
                if not exc.no_credentials:  # no answer at all (a refusal is one)
                    return self._unchecked(ref, self._outages.failed(store, str(exc)))
                self._outages.reached(store)
                log.warning("%s: serving the cached copy, could not check it: %s", ref, exc)
                return UNCHECKED
            except AssetNotFound:
                self._outages.reached(store)
                log.warning("%s: no longer in the store; serving the cached copy at %s", ref, path)
                return UNCHECKED
            self._outages.reached(store)
        if head.etag and record.etag != head.etag:
            if not head.md5_etag:  # an opaque ETag that changed: the object changed
                return None
            if "-" in head.etag:
                same = head.size == record.size and etag_verdict(
                    path, head.etag, Digester.of_file(path, head.etag), lambda: ref.store.part_size(ref.key)) is True
            else:
                same = record.md5 == head.etag
            if not same:
                return None
        elif head.size != record.size:
            return None
        self._save(ref, replace(record, etag=head.etag, checked=time.time()))
        return CHECKED

    def _unchecked(self, ref: ObjectRef, why: Outage | str) -> str:
        """`UNCHECKED`, warning the first time in this process for ``ref``'s store that one
        of its files is served unchecked, because of ``why`` (offline mode, or a failure to
        reach the store, after which it is left alone for a while)."""
        if self._outages.first_warning(ref.store.identity):
            if isinstance(why, str):
                reason, retry = why, ""
            else:
                at, until = (time.strftime("%H:%M:%S", time.localtime(t)) for t in (why.failed_at, why.until))
                reason, retry = f"{why.reason} (at {at})", f"; it is tried again after {until}"
            log.warning("%s: serving the cached copy unchecked: %s; other files of %s due for a check are served "
                        "unchecked too, with no further warning%s", ref, reason, ref.store.url(""), retry)
        return UNCHECKED

    # --- fetching -------------------------------------------------------------------

    def fetch(self, ref: ObjectRef, *, force: bool = False, progress: Progress | None = None) -> Fetched:
        """Make ``ref`` present and fresh in the cache; return its path and what it took.

        ``force`` checks with the store even when the file would count as fresh (or the
        store was not reached lately). Raises `AssetNotFound`, `IntegrityError`, or
        `OfflineError` (the file is not cached and the store cannot be reached; its URL
        then goes to ``missing_assets.yaml``, and leaves it once the file is fetched).
        """
        path = self.path_for(ref)
        self._remember()  # before the file exists: gc never sees a file of a project it does not know
        with self._local_errors(ref):
            # Most calls find the file fresh, or fresh after one HEAD: no lock for those.
            since, absent = time.time(), not path.exists()
            tiered = self._tiered(ref) if self.tiers and absent and not force else None
            if tiered is not None:  # a read-only tier's: never written, so not noted as used
                return Fetched(tiered, FRESH)
            state = None if force or absent else self._freshness(ref)
            fetched = Fetched(path, state) if state is not None \
                else self._fetch_locked(ref, path, force, progress, since, absent)
        self.used(ref)
        return fetched

    def _fetch_locked(self, ref: ObjectRef, path: Path, force: bool, progress: Progress | None, since: float,
                      absent: bool) -> Fetched:
        with self._lock(ref):
            if force and path.exists():
                record = self._verified(ref, path, path.stat())
                state = None if record is None else UNCHECKED if self.settings.offline else self._revalidate(ref, path, record, force)
                if state is not None:
                    return Fetched(path, state)
            elif not force and (self.is_fresh(ref, network=False) or self._checked_since(ref, path, since, absent)):
                return Fetched(path, FRESH)  # another process fetched or checked it while we waited for the lock
            if self.settings.offline:
                raise self._missing(ref, path, OfflineError("offline mode is on (POD_OFFLINE=1)"))
            start = time.monotonic()
            try:
                self._download(ref, path, progress)
            except OfflineError as exc:
                outage = None if exc.no_credentials else self._outages.failed(ref.store.identity, str(exc))
                if path.exists():
                    if outage is not None:
                        return Fetched(path, self._unchecked(ref, outage))
                    log.warning("%s: serving the cached copy, could not update it: %s", ref, exc)
                    return Fetched(path, UNCHECKED)
                raise self._missing(ref, path, exc) from None
            except AssetNotFound as exc:
                self._outages.reached(ref.store.identity)
                named = f"{ref.label}: " if ref.label and ref.label != ref.url else ""
                raise AssetNotFound(f"{named}{exc}: check the name, version or URL asked for") from None
            self._outages.reached(ref.store.identity)
            self._found(ref.url)
            return Fetched(path, DOWNLOADED, path.stat().st_size, time.monotonic() - start)

    def verified_sha256(self, ref: ObjectRef, *, check: bool = False) -> str:
        """The sha256 of ``ref``'s bytes as the cache holds them, verified: fetched first
        when need be (``check``: checked with the store even when fresh, as with
        ``fetch(force=True)``, so that a mutable object's current bytes are the ones
        hashed). A record without a sha256 gets one, hashed once from the file, which
        must still be the bytes the record vouches for (its MD5). Raises what `fetch`
        raises, `OfflineError` when ``check`` could not reach the store, and
        `IntegrityError` when the file changed meanwhile."""
        fetched = self.fetch(ref, force=check)
        if check and fetched.action == UNCHECKED:
            raise OfflineError(f"{ref}: the cached copy could not be checked with the store (see the warning above)")
        with self._local_errors(ref), self._lock(ref):
            record = self._verified(ref, fetched.path, fetched.path.stat())
            if record is not None and record.sha256:
                return record.sha256
            digest = Digester.of_file(fetched.path, sha256=True)
            if record is None or digest.md5.hexdigest() != record.md5:
                raise IntegrityError(f"{ref}: the cached file {fetched.path} changed while it was read: run again")
            self._save(ref, replace(record, sha256=digest.sha256.hexdigest()))
            return digest.sha256.hexdigest()

    def _checked_since(self, ref: ObjectRef, path: Path, since: float, absent: bool) -> bool:
        """The file at ``path`` was fetched or checked with the store at ``since`` or later,
        or fetched at all if it was ``absent`` then (even with ``timeout: 0``, a fetch or
        check made while we waited for the lock counts; its record may predate ``since``,
        being saved just before the file is renamed into place)."""
        record = self.record(ref)
        try:
            st = path.stat()
        except OSError:
            return False
        return (record is not None and record.checked is not None and record.matches(st)
                and (absent or record.checked >= since))

    @contextlib.contextmanager
    def _local_errors(self, ref: ObjectRef) -> Iterator[None]:
        """Turn a failure of the local disk into one actionable `CacheError` line."""
        try:
            yield
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise CacheError(
                f"{ref}: cannot use the cache dir {self.root}: {exc.strerror or exc}{where}: "
                f"free some space, fix its permissions, or set POD_CACHE_DIR"
            ) from None

    def _download(self, ref: ObjectRef, path: Path, progress: Progress | None) -> None:
        self._fits(ref)
        self._safe_dir(path.parent)
        for source in self.mirrors.sources(ref.store, ref.key, ref.sha256, str(ref)):
            with self.mirrors.attempt(source, str(ref)):  # a failure here goes on to the next source
                self._download_once(ref, path, progress, source)
                return
        error: IntegrityError | None = None
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._download_once(ref, path, progress)
                return
            except (PinMismatch, SizeRefused) as exc:  # the store holds these bytes: asking again cannot help
                error = exc
                break
            except IntegrityError as exc:
                error = exc
                log.warning("%s: %s (attempt %d of %d)", ref, exc, attempt, _ATTEMPTS)
        assert error is not None
        kind, why = blame(error, attempt)
        raise kind(f"{ref}: {error}; nothing was kept at {path}: {why}")

    def _fits(self, ref: ObjectRef) -> None:
        """Raise `CacheError` when the file system cannot hold ``ref``'s file name."""
        why = self.layout.too_long(self._rel(ref))
        if why is not None:
            raise CacheError(f"{ref}: cannot be cached in {self.root}: {why}; use a cache dir on a file system "
                             f"that holds longer names (POD_CACHE_DIR), or a shorter name")

    def _fresh_temp(self, ref: ObjectRef) -> Path:
        """The temporary file of ``ref``'s bytes, with nothing left there (hold its lock:
        what is there was left by a writer that died, or kept for a resume no longer wanted)."""
        rel = self._rel(ref)
        temp = self.layout.partial(rel)
        self._safe_dir(temp.parent)
        temp.unlink(missing_ok=True)
        self.layout.partial_meta(rel).unlink(missing_ok=True)
        return temp

    def abandon(self, ref: ObjectRef) -> None:
        """Remove the bytes of ``ref``'s download in flight (`Layout.partial`), which a
        thread of this process gives up while it holds ``ref``'s lock: a worker stuck past
        Ctrl-C, which dies with the process and cannot remove them. No other process writes
        them meanwhile: that takes the lock. Bytes kept to resume (with their JSON) stay;
        what cannot go (open, on Windows) goes with the next download of ``ref``."""
        rel = self._rel(ref)
        if not self.layout.partial_meta(rel).exists():
            with contextlib.suppress(OSError):
                self.layout.partial(rel).unlink()

    @staticmethod
    def _new_record(ref: ObjectRef, st: os.stat_result, head: Head, digester: Digester, verified: str,
                    unsynced: str | None) -> Record:
        """The record of a file just written from the store's bytes (``head`` is what the
        store said of them, ``digester`` hashed them, ``verified`` names the check they passed)."""
        return Record(
            url=ref.url, size=st.st_size, mtime_ns=st.st_mtime_ns, md5=digester.md5.hexdigest(),
            etag=head.etag or digester.md5.hexdigest(), sha256=digester.sha256.hexdigest() if digester.sha256 else None,
            checked=time.time(), immutable=ref.immutable, verified=verified,
            checksum=str(head.checksum) if head.checksum else None,
            endpoint=ref.store.endpoint if endpoint_folder(ref.store.endpoint) else None,
            unsynced=unsynced,
        )

    def _download_once(self, ref: ObjectRef, path: Path, progress: Progress | None, source: Source | None = None) -> None:
        """One download of ``ref`` from the store, or from a mirror (``source``), whose
        bytes are checked against what `Source.basis` says instead of its own answer."""
        reader, key, url = (ref.store, ref.key, ref.url) if source is None else (source.reader, source.key, source.url)

        def save(st: os.stat_result) -> None:
            # The record goes first: a reader outside the lock (doit's uptodate) that sees
            # the new file also sees its record, and never adopts it as unchecked.
            self._save(ref, self._new_record(ref, st, head, digester, verified, boot_id()))

        rel = self._rel(ref)
        offset, etag, kept_meta = self._resumable(ref, url)
        parted: Parted | None = None
        keepable = True  # the bytes so far are the store's (not yet found wrong)

        def keep(temp: Path) -> bool:
            """After a failure: keep what a big download has so far, for the next one (or,
            when this source failed before its first byte, what an earlier one had)."""
            if parted is not None and keepable and parted.contiguous >= _KEEP_FROM:
                record = {"of": rel, "url": ref.url, "etag": parted.head.etag, "size": parted.head.size,
                          "have": parted.contiguous, "source": url}
            elif parted is None and keepable and kept_meta is not None:
                record = kept_meta  # as it was: the next source resumes from it
            else:
                return False
            self._write(self.layout.partial_meta(rel), json.dumps(record).encode())
            return True

        # No fsync (a disk-speed wait on every download): the record says so instead.
        with staged(path, before_replace=save, durable=False, temp=self.layout.partial(rel), resume=bool(offset),
                    keep=keep) as out, \
                contextlib.ExitStack() as threads:
            digester = Digester()
            received = offset

            def on_bytes(count: int) -> None:
                nonlocal received
                received += count
                if progress is not None:
                    progress(received, head_size)

            def start(head: Head) -> Callable[[bytes], None]:
                nonlocal digester, parted, head_size
                head_size = head.size
                # Before a byte is read: the size the server declares is bounded, and so is the time.
                left = self.settings.limits.expected(url, head.size, ref.size) - offset
                deadline = self.settings.limits.deadline(left)
                basis = head if source is None else source.basis(head)
                digester = Digester(basis.etag if basis.md5_etag else None, basis.size, sha256=bool(ref.sha256),
                                    checksum=basis.checksum)
                if offset or (reader.remote and head.etag and head.size >= _PARTS_FROM):
                    # Several ranges at once, hashed in order from the file as it fills.
                    hashing = threads.enter_context(Pipeline(digester.steps()))
                    parted = threads.enter_context(Parted(reader, key, head, Path(out.name), offset, hashing, on_bytes,
                                                          deadline=deadline))
                    return Bounded(parted.first_sink, left, deadline, url)
                # A big object is written and hashed on threads while the network reads.
                pipe = threads.enter_context(Pipeline([out.write, *digester.steps()])) \
                    if head.size >= _PIPELINE_FROM else None

                def sink(chunk: bytes) -> None:
                    if pipe is None:
                        out.write(chunk)
                        digester.update(chunk)
                    else:
                        pipe(chunk)
                    on_bytes(len(chunk))

                return Bounded(sink, left, deadline, url)

            head_size = 0
            try:
                head = reader.download_to(key, start, first=offset, etag=etag)
                threads.close()  # every chunk written and hashed
                if source is not None:
                    head = source.basis(head)  # what the bytes must be, and the record keeps
            except Changed:
                keepable = False  # another version: what is on disk is no use to it
                raise
            except OSError:
                keepable = False  # a full disk keeps nothing: the space is wanted
                raise
            keepable = False  # from here on, a failure is about the bytes themselves
            if digester.size != head.size:
                raise TransferError(f"the download came short: got {digester.size} bytes of {head.size}")
            out.flush()  # the bytes may be read again, for an unguessed multipart part size
            verified = check(Path(out.name), head, digester, ref.sha256,
                             functools.cache(lambda: ref.store.part_size(ref.key)))  # one HEAD at most

    def _resumable(self, ref: ObjectRef, origin: str) -> tuple[int, str | None, dict | None]:
        """What an earlier, interrupted download of ``ref`` kept in its temporary file
        (`Layout.partial`; hold the object's lock): (bytes to resume from, the ETag they
        belong to when they came from ``origin``, the source about to be read, else None,
        what the kept bytes are); (0, None, None) when nothing usable is kept, and then
        nothing is left there (a download killed in flight leaves bytes without their
        JSON: they are removed). Bytes of another source (a mirror, the store) are resumed
        too: the whole file is checked against the same proof."""
        rel = self._rel(ref)
        data, meta = self.layout.partial(rel), self.layout.partial_meta(rel)
        self._safe_dir(data.parent)
        try:
            text = meta.read_bytes()
        except FileNotFoundError:  # the usual case: nothing kept
            data.unlink(missing_ok=True)
            return 0, None, None
        meta.unlink()
        try:
            kept = json.loads(text)
            have = int(kept["have"])
            if kept["of"] == rel and kept["url"] == ref.url and kept["etag"] and 0 < have <= data.stat().st_size:
                return have, str(kept["etag"]) if kept.get("source", ref.url) == origin else None, kept
        except (OSError, ValueError, KeyError, TypeError):
            pass
        data.unlink(missing_ok=True)
        return 0, None, None

    def _missing(self, ref: ObjectRef, path: Path, cause: OfflineError) -> OfflineError:
        """The error for a file that is not cached and cannot be fetched; remembers its URL."""
        self.remember_missing([ref.url])
        return OfflineError(
            f"{ref}: not in the cache and {cause}; expected {ref.url} at {path} "
            f"(listed in {self.layout.missing_list()})",
            no_credentials=cause.no_credentials,
        )

    def remember_missing(self, urls: list[str]) -> None:
        """Add ``urls`` to ``missing_assets.yaml`` (kept sorted and unique)."""
        self._edit_missing(lambda known: known | set(urls))

    def _found(self, url: str) -> None:
        """``url`` is in the cache now: it leaves ``missing_assets.yaml`` (a stat when
        there is no such file, the usual case)."""
        if self.layout.missing_list().exists():
            self._edit_missing(lambda known: known - {url})

    def _edit_missing(self, change: Callable[[set[str]], set[str]]) -> None:
        """Replace the URLs of ``missing_assets.yaml`` with ``change(URLs)``, under a lock and
        atomically; the file goes when no URL is left."""
        import yaml

        target = self.layout.missing_list()
        with self._lock_file(self.layout.missing_lock()):
            try:
                known = yaml.safe_load(target.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                known = None
            before = {u for u in known if isinstance(u, str)} if isinstance(known, list) else set()
            after = change(before)
            if not after:
                target.unlink(missing_ok=True)
            elif after != before or not isinstance(known, list):
                self._write(target, yaml.safe_dump(sorted(after), default_flow_style=False).encode(), durable=True)

    # --- what was learnt about servers, and who uses this cache ------------------------

    def _notes(self, topic: str) -> dict:
        try:
            known = json.loads((self.layout.meta / NOTES / f"{topic}.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def _write_note(self, path: Path, data: bytes) -> None:
        """Replace a small note under the cache dir (no fsync: a lost note costs a request)."""
        self._write(path, data)

    def noted(self, topic: str, key: str) -> object | None:
        """What `note` kept for ``key`` under ``topic``, or None."""
        return self._notes(topic).get(key)

    def note(self, topic: str, key: str, value: object) -> None:
        """Remember ``value`` for ``key`` under ``topic`` (e.g. whether a server honours
        conditional writes), for every later process that uses this cache dir."""
        self._edit_notes(topic, lambda known: known.__setitem__(key, value))

    def _edit_notes(self, topic: str, change: Callable[[dict], object]) -> None:
        """Apply ``change`` to the notes of ``topic``, under their lock, and replace them atomically."""
        folder = self.layout.meta / NOTES
        with self._lock_file(folder / f"{topic}.lock"):
            known = self._notes(topic)
            change(known)
            self._write_note(folder / f"{topic}.json", json.dumps(known, sort_keys=True, indent=1).encode())

    def _remember(self) -> None:
        """Remember this cache's project (the real path of its assets.yaml) in the cache dir,
        and what it pins here (`record_pins`), for `doit gc`: once per process, with no
        write when both are known already. Best effort: a cache dir that cannot be written
        still serves what it holds."""
        if self._remembered:
            return
        with self._remember_lock:  # the other threads wait: none fetches before it is written
            if self._remembered:
                return
            key = os.path.realpath(self.project)
            with contextlib.suppress(OSError, UnsafePathError):
                if self.noted(PROJECTS, key) is None:
                    self.note(PROJECTS, key, round(time.time()))
                if self._pins is not None:
                    self.record_pins(key, self.pins_context(), self._pins())
            self._remembered = True

    def pins_context(self) -> str:
        """What the cache-relative paths of a project's pins depend on in this process besides
        its assets.yaml: the path it was reached by (a folder store is named by the folder's
        absolute path) and the S3 endpoint (mirrors and credentials change no path)."""
        return f"{os.path.abspath(self.project or '')} on {self.settings.endpoint or 'AWS'}"

    def record_pins(self, project: str, context: str, rels: Iterable[str]) -> None:
        """Keep ``rels`` (cache-relative paths) as what the project whose assets.yaml is at
        the real path ``project`` pins in ``context`` (`pins_context`), replacing what an
        earlier process recorded in that context and keeping the other contexts' (the same
        project run with another endpoint, or through another path). No write when
        unchanged: a read of one small note."""
        rels = sorted(set(rels))
        topic = _pins_topic(project)
        if self.noted(topic, context) != rels:
            self.note(topic, context, rels)

    def recorded_pins(self, project: str, besides: str | None = None) -> set[str] | None:
        """What the project at the real path ``project`` pins, as recorded by every process
        that used it (`record_pins`), in every context but ``besides``; None when nothing
        was recorded (a project remembered before pins were, or whose note was lost)."""
        known = self._notes(_pins_topic(project))
        if not known:
            return None
        return {rel for context, rels in known.items() if context != besides and isinstance(rels, list)
                for rel in rels if isinstance(rel, str)}

    def projects(self) -> list[str]:
        """The assets.yaml paths of the projects that used this cache dir, sorted."""
        return sorted(self._notes(PROJECTS))

    def forget_projects(self, paths: Iterable[str]) -> None:
        """Forget the projects at ``paths`` (their assets.yaml is gone), and what they pin."""
        gone = set(paths)
        if gone:
            self._edit_notes(PROJECTS, lambda known: [known.pop(path, None) for path in gone])
        for path in gone:  # no process uses a project whose assets.yaml is gone: its lock too
            for suffix in (".json", ".lock"):
                (self.root / META / NOTES / f"{_pins_topic(path)}{suffix}").unlink(missing_ok=True)

    # --- use, and dropping what gc chose ------------------------------------------------

    def used(self, ref: ObjectRef) -> None:
        """Note that ``ref``'s file was just used (fetched, found fresh by ``doit fetch``, or
        resolved): its record's mtime becomes now, which `doit gc` orders files by. Once per
        file per process (then a set lookup, never a write); best effort, like `_remember`."""
        self._remember()
        path = self.layout.record(self._rel(ref))
        key = str(path)
        if key in _USED:
            return
        _USED.add(key)
        with contextlib.suppress(OSError, UnsafePathError):
            self._safe_dir(path.parent)
            os.utime(path, **_NO_FOLLOW)

    def _last_used(self, rel: str, st: os.stat_result) -> float:
        """When the file at the cache-relative ``rel`` (``st``: its stat) was last used: its
        record's mtime (see `used`), else (no record) its own."""
        try:
            return self.layout.record(rel).stat().st_mtime
        except OSError:
            return st.st_mtime

    @contextlib.contextmanager
    def _unless_locked(self, lock_path: Path) -> Iterator[bool]:
        """Hold the lock at ``lock_path`` when it is free (True); never wait (False)."""
        from filelock import Timeout

        lock = self._lock_file(lock_path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def drop(self, rel: str, seen: float) -> bool:
        """Remove the cached file at the cache-relative ``rel`` with its record, kept partial
        download and old mark, holding its lock. False (nothing removed) when a fetch holds
        the lock, or the file was used after ``seen`` (its last use when gc looked). Raises
        `UnsafePathError` for a symlink on the way or a file that is not the cache's own
        (`Layout.owns`), OSError when the disk refuses."""
        path = self.root / check_relative_key(rel, "cache path")
        with self._unless_locked(self.layout.lock(rel)) as mine:
            if not mine:
                return False
            self._safe_dir(path, create=False)
            try:
                st = path.stat()
            except FileNotFoundError:
                return True  # another gc was first
            if self._last_used(rel, st) > seen:
                return False
            self._remove(rel)
        return True

    def _remove(self, rel: str) -> None:
        """Remove the cache's own file at ``rel`` and all it has in ``.pod/`` and ``.timestamps/``;
        `UnsafePathError` (nothing removed) when it is not the cache's own, or a link is on the way."""
        if not self.layout.owns(rel):
            raise UnsafePathError(f"{self.root / rel} has no record in {self.layout.meta}: it is not the cache's "
                                  f"own, so pod-tasks leaves it alone")
        mark = self.layout.old_mark(rel)
        self._safe_dir(mark.parent, create=False)
        self.layout.data(rel).unlink()
        for extra in (self.layout.record(rel), self.layout.partial(rel), self.layout.partial_meta(rel), mark):
            extra.unlink(missing_ok=True)

    def drop_leftover(self, rel: str) -> bool:
        """Remove the leftover (see `leftovers`) at the cache-relative ``rel``, holding the
        lock of the object it was a download of; False (nothing removed) when a fetch holds
        it, or, for a small temporary file, when it was written lately. Raises
        `UnsafePathError` for anything else."""
        path = self.layout.data(check_relative_key(rel, "cache path"))
        if path not in {p for p, _ in self.layout.leftovers()}:
            raise UnsafePathError(f"{path} is not a leftover of the cache (see `doit gc --dry-run`)")
        lock = self.layout.lock_of_leftover(path)
        if lock is None:
            path.unlink(missing_ok=True)  # listed: not written to for long
            return True
        with self._unless_locked(lock) as mine:
            if not mine:
                return False
            path.unlink(missing_ok=True)
            path.with_name(path.name.split(".", 1)[0] + PARTIAL_META).unlink(missing_ok=True)
        return True

    # --- adopting bytes from elsewhere (asset packs) ----------------------------------

    def install(self, ref: ObjectRef, source: BinaryIO, record: Record | None) -> Path:
        """Put the bytes read from ``source`` into the cache as ``ref``; return the path.

        With a ``record`` (another cache's, e.g. from an asset pack) the bytes must match
        its size, MD5, ETag and sha256 (and ``ref``'s sha256 pin); it is saved with the new
        file's ``mtime_ns``, keeping its ETag and ``checked`` mark, so the file is then
        used with no re-hash and no request. Without one the file gets a record of its
        hashes that says it was never checked (it is checked with the store on first
        use). The bytes go to a temporary file renamed into place under the object's
        lock: a failure leaves the final path as it was. Raises `IntegrityError`, and
        `CacheError` for a name the file system cannot hold.
        """
        if record is not None and record.url != ref.url:
            raise IntegrityError(f"{ref}: the record is for {record.url}, not {ref.url}")
        path = self.path_for(ref)
        self._fits(ref)
        with self._lock(ref):
            self._safe_dir(path.parent)
            with staged(path, temp=self._fresh_temp(ref)) as out:
                digester = Digester(sha256=bool(ref.sha256 or (record and record.sha256)))
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    digester.update(chunk)
                sha = digester.sha256.hexdigest() if digester.sha256 else None
                problem = mismatch(digester, sha, record, ref.sha256)
                if problem:
                    raise IntegrityError(f"{ref}: {problem}; nothing was kept at {path}")
            st = path.stat()
            if record is None:
                record = Record(url=ref.url, size=st.st_size, mtime_ns=st.st_mtime_ns, md5=digester.md5.hexdigest(),
                                immutable=ref.immutable)
            self._save(ref, replace(record, size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha or record.sha256,
                                    unsynced=None))  # `staged` synced it
        self._found(ref.url)
        return path

    def adopt_upload(self, ref: ObjectRef, path: Path, head: Head, digester: Digester,
                     hashed: os.stat_result) -> Path:
        """Put a copy of the local file ``path``, just uploaded as ``ref`` (pinned by its
        sha256; ``head`` is the store's answer), into the cache, so that the next fetch of
        ``ref`` makes no request. ``digester`` hashed the file (MD5 and sha256) when it
        had the size and ``mtime_ns`` of ``hashed``: the copy is trusted without hashing it
        again only if the file still has them after the copy (the cache's own rule for
        not re-hashing a file), else `IntegrityError` and nothing is kept. The copy is not
        fsynced: its record names this boot, as a download's does. Returns its path."""
        assert ref.sha256 is not None and digester.sha256 is not None
        target = self.path_for(ref)

        def save(st: os.stat_result) -> None:
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns) != (hashed.st_size, hashed.st_mtime_ns) or st.st_size != hashed.st_size:
                raise IntegrityError(f"{ref}: {path} changed while it was published: it was not cached")
            self._save(ref, self._new_record(ref, st, head, digester, "sha256", boot_id()))

        self._fits(ref)
        with self._lock(ref):
            self._safe_dir(target.parent)
            with open(path, "rb") as source, \
                    staged(target, before_replace=save, durable=False, temp=self._fresh_temp(ref)) as out:
                shutil.copyfileobj(source, out, CHUNK)
        self._found(ref.url)
        return target

    # --- housekeeping ---------------------------------------------------------------

    def relative(self, target: str | os.PathLike[str]) -> str:
        """The cache-relative POSIX path of an ``s3://`` URL, a folder store's ``file://``
        URL (the forms `entries` lists), or a path in the cache."""
        text = os.fspath(target)
        if text.startswith("s3://"):
            rel = endpoint_folder(self.settings.endpoint) + text[len("s3://"):].rstrip("/")
        elif text.startswith("file://"):
            rel = self._relative_of_url(text.rstrip("/"))
        else:
            try:
                rel = Path(os.path.realpath(text)).relative_to(self.root).as_posix()
            except ValueError:
                raise UnsafePathError(f"{text} is not inside the cache dir {self.root}") from None
        if rel in ("", "."):
            return ""
        return check_relative_key(rel, "cache path")

    def _relative_of_url(self, url: str) -> str:
        """Where the object (or folder of objects) at ``url`` is cached, found by the URL
        its records keep (a folder store's cache folder is named by a hash of its path)."""
        for rel in self.layout.own_files():
            record = self._record_at(rel)
            known = record.url if record is not None else None
            if isinstance(known, str) and (known == url or known.startswith(url + "/")):
                return rel[: len(rel) - (len(known) - len(url))]
        raise UnsafePathError(f"{url} is not in the cache dir {self.root}: give a URL or path that `doit cache` lists")

    def _own_under(self, rel: str) -> list[str]:
        """The cache's own files at or below the cache-relative ``rel`` (all when empty);
        `UnsafePathError` for a link on the way to ``rel``."""
        if rel:
            self._safe_dir(self.root / rel, create=False)
        return list(self.layout.own_files(rel))

    def invalidate(self, target: str | os.PathLike[str] | None = None) -> int:
        """Force a check with the store on next use, for a file, a tree, or everything
        (None), immutable or not (stores remembered as unreachable are tried again too).
        Returns how many records were marked."""
        self._outages.forget()
        count = 0
        for rel in self._own_under(self.relative(target) if target is not None else ""):
            record_path = self.layout.record(rel)
            try:
                data = json.loads(record_path.read_bytes())
                st = record_path.stat()
            except (OSError, ValueError):
                continue
            data["checked"] = None
            self._write(record_path, json.dumps(data, sort_keys=True).encode(), durable=True)
            os.utime(record_path, ns=(st.st_atime_ns, st.st_mtime_ns))  # not a use: the last use stays
            count += 1
        return count

    def delete(self, target: str | os.PathLike[str]) -> int:
        """Remove a cached file or tree of the cache's own files, with their records (other
        files there stay). Returns how many files went."""
        rel = self.relative(target)
        if not rel:
            raise UnsafePathError("refusing to delete the whole cache: name a file or folder in it")
        count = 0
        for own in self._own_under(rel):
            self._remove(own)
            count += 1
        return count

    def leftovers(self) -> Iterator[Leftover]:
        """What interrupted writes left in ``.pod/_tmp/`` (`Layout.leftovers`), sorted by path:
        the bytes of a download that died or were kept to resume it, and small temporary
        files written long ago. Nothing outside the cache's own folder is a leftover."""
        for path, ident in self.layout.leftovers():
            try:
                st = path.stat()
            except OSError:
                continue
            of = self._leftover_of(path) if ident is not None else None
            yield Leftover(path, of or path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def _leftover_of(self, path: Path) -> str | None:
        """The cache-relative path of the object whose kept bytes ``path`` holds, as their
        JSON says (when it is the object whose `object_id` names them), else None."""
        meta = path if path.name.endswith(PARTIAL_META) else path.with_name(path.name + ".json")
        try:
            of = json.loads(meta.read_bytes())["of"]
            return of if isinstance(of, str) and object_id(of) == path.name.split(".", 1)[0] else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def entries(self) -> Iterator[Entry]:
        """Every file of the cache's own (old-cache files marked by the old tool included),
        sorted by path."""
        for rel in self.layout.own_files():
            path = self.layout.data(rel)
            record = self._record_at(rel)
            first, _, rest = rel.partition("/")
            s3_rel = rest if first.startswith("_endpoint-") else None if first.startswith("_dir-") else rel
            bucket = s3_rel.split("/", 1)[0] if s3_rel else first
            immutable = record.immutable if record else bucket in self.settings.immutable
            checked = record.checked if record else self._old_mark(rel)
            due = checked is None or (
                not immutable and self.settings.timeout != math.inf
                and time.time() - checked >= self.settings.timeout
            )
            url = record.url if record else (f"s3://{s3_rel}" if s3_rel else None)
            st = path.stat()
            yield Entry(path, url, st.st_size, checked, due, self._last_used(rel, st),
                        record.endpoint if record else None)


def _pins_topic(project: str) -> str:
    """The `note` topic of what the project at the real path ``project`` pins."""
    return "pins-" + hashlib.sha1(project.encode()).hexdigest()[:16]
