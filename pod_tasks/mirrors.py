"""Mirrors: where a fetch reads a store's versions before the store itself, and when
their bytes may be trusted.

A run (one `pod_tasks.cache.AssetCache`) has one `Mirrors`: the base URLs of
``mirrors:`` (or ``POD_MIRRORS``), in order, each opened as a `pod_tasks.store.Reader`
(`pod_tasks.web.WebMirror` for ``http(s)://``, a `DirStore` for ``file://``). For one
object, `Mirrors.sources` yields the mirrors to try, in order; the cache reads the
store after them, as it would with no mirror at all. Contracts:

- Only versions in the store are mirrored: key ``PREFIX + K`` of the store (``PREFIX``
  from ``store: s3://bucket/PREFIX``, ``K`` a versioned key such as
  ``foo/bar.1.2.5.csv``) is ``<base>/K`` on a mirror, the layout ``doit export``
  writes. Any other object (``files:``, ``s3://`` overrides) comes from where it is.
- Mirror bytes are used only when proved (`Source.proof`, the rules in `proof_of`): a
  version pinned with its sha256 is proved by the pin, with no request to the store at
  all (no credentials needed); a short pin only by the store's own sha256 or sha1
  checksum or MD5 ETag, asked with one HEAD (no such proof, or no answer: the store
  alone is read, and the run says once that ``doit lock`` makes mirrors fully usable).
  The cache checks the bytes against the proof before anything reaches a final path;
  bytes that fail are discarded and the next source is tried.
- A mirror that fails an object (404, 5xx, a timeout, a web page, damaged bytes, a
  size other than the pin's or over the cap, a download past its deadline, a full disk)
  is skipped for that object, with one warning line per mirror per run, and for the rest
  of the run once it keeps failing (`next_streak`, `GIVE_UP`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

from .endpoints import redact
from .errors import AssetNotFound, IntegrityError, OfflineError, StoreError, UnsafePathError
from .names import name_of_key
from .store import DirStore, Head, Reader, Store, path_of_file_url
from .web import WebMirror

__all__ = ["Mirrors", "Source", "open_mirror", "proof_of", "next_streak", "GIVE_UP", "SERVED", "MISSING", "FAILED"]

log = logging.getLogger("pod_tasks")

#: Failures in a row after which a mirror is skipped for the rest of the run.
GIVE_UP = 3
#: What one try of a mirror gave (`next_streak`).
SERVED, MISSING, FAILED = "served", "missing", "failed"
#: The failures of a mirror that send a fetch on to the next source: any failure (a full
#: disk included: a mirror that lies about a size may fill it) but an interrupted run.
_FALL_THROUGH = (AssetNotFound, IntegrityError, OfflineError, StoreError, UnsafePathError, OSError)
#: Store checksums that prove a mirror's bytes (CRCs catch accidents, not substitutes).
_PROVING_CHECKSUMS = ("sha256", "sha1")


def proof_of(head: Head) -> Head | None:
    """What of the store's ``head`` a mirror's bytes can be proved against: a sha256 or
    sha1 checksum, or an MD5 ETag (multipart ones included); None when it has neither
    (a folder store, an opaque ETag with no checksum, or only a CRC). The head returned
    keeps only those proofs, and the size."""
    checksum = head.checksum if head.checksum and head.checksum.algorithm in _PROVING_CHECKSUMS else None
    etag = head.etag if head.md5_etag else None
    if checksum is None and etag is None:
        return None
    return Head(etag, head.size, checksum)


def next_streak(streak: int, served: int, outcome: str) -> int:
    """A mirror's failures in a row after one more try (`SERVED`, `MISSING`: a 404, or
    `FAILED`: anything else), given how many objects it has ``served`` this run. A
    mirror that has served something and lacks one file (a mirror of the pinned
    versions only, asked for another) is not failing; one that has served nothing and
    finds nothing is likely the wrong URL."""
    if outcome == SERVED:
        return 0
    if outcome == MISSING and served:
        return streak
    return streak + 1


@dataclass(frozen=True)
class Source:
    """One mirror to read an object from: ``reader`` at ``key``, under ``base``; its
    bytes must match ``proof`` (the store's head, for a short pin) or, when None, the
    pin's sha256."""

    base: str
    reader: Reader
    key: str
    proof: Head | None = None

    @property
    def url(self) -> str:
        return self.reader.url(self.key)

    def basis(self, head: Head) -> Head:
        """What the bytes this mirror answered with ``head`` are checked against: the
        proof, or (a sha256 pin decides) only their length. A length that differs from
        the proof's is an `IntegrityError` before any byte is read."""
        if self.proof is None:
            return Head(None, head.size)
        if head.size != self.proof.size:
            raise IntegrityError(f"{self.url} has {head.size} bytes, the store's copy {self.proof.size}")
        return self.proof


def open_mirror(base: str) -> Reader:
    """The reader of a mirror's base URL (already checked by `pod_tasks.config.parse_mirror`)."""
    if base.startswith("file:"):
        return DirStore(path_of_file_url(base), setting="mirrors")
    return WebMirror(base)


class _State:
    """What a run learnt of one mirror."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.reader = open_mirror(base)
        self.streak = self.served = 0
        self.warned = False


class Mirrors:
    """The mirrors of one run, in order, before ``store`` (whose keys start with
    ``prefix``); what each has done this run decides whether it is still tried.
    Thread-safe: the fetch engine's workers share it."""

    def __init__(self, bases: Sequence[str] = (), store: Store | None = None, prefix: str = "") -> None:
        self._mirrors = [_State(base) for base in bases]
        self.store = store
        self.prefix = prefix
        self._lock = threading.Lock()
        self._hinted = False

    def _live(self) -> Iterator[_State]:
        for mirror in self._mirrors:
            if mirror.streak < GIVE_UP:
                yield mirror

    def sources(self, store: Store, key: str, sha256: str | None, label: str) -> Iterator[Source]:
        """The mirrors to try for ``key`` of ``store`` (the pin's ``sha256``, if any;
        ``label`` names the object in messages), in order, each as it comes (one given
        up meanwhile is skipped). None for an object that is not a version in the
        store, or when no mirror is left. For a short pin, the first step asks the store
        for its proof (one HEAD): `AssetNotFound` from it is raised (the store says the
        version is not there); a store that cannot be asked, or gives no proof, means
        no mirror."""
        mirrored = store is self.store and key.startswith(self.prefix) and name_of_key(key[len(self.prefix):])
        if not mirrored or next(self._live(), None) is None:
            return
        proof = None
        if sha256 is None:
            try:
                proof = proof_of(store.head(key))
                cause = "the store gives no sha256, sha1 or MD5 to check a mirror's bytes against"
            except (OfflineError, StoreError) as exc:
                cause = f"the store could not be asked for its checksum ({exc})"
            self._hint(label, None if proof is not None else cause)
            if proof is None:
                return
        for mirror in self._live():
            yield Source(mirror.base, mirror.reader, key[len(self.prefix):], proof)

    def _hint(self, label: str, cause: str | None) -> None:
        """Say once per run what a short pin costs with mirrors, and what to do about it."""
        with self._lock:
            if self._hinted:
                return
            self._hinted = True
        if cause is None:
            log.warning("%s is pinned without a sha256, so its bytes from a mirror are checked against the store's "
                        "own checksum (one request to the store for each such pin): run `doit lock` (or pin "
                        "{version, sha256}) to fetch from mirrors with no store at all", label)
        else:
            log.warning("%s is pinned without a sha256 and %s, so it comes from the store: run `doit lock` (or pin "
                        "{version, sha256}) to let mirrors serve it", label, cause)

    @contextlib.contextmanager
    def attempt(self, source: Source, label: str) -> Iterator[None]:
        """Around one download from ``source``: a failure (`AssetNotFound`, `IntegrityError`,
        `OfflineError`, `StoreError`, `UnsafePathError`, or a local `OSError` such as a
        full disk, its temporary file already removed) is noted,
        said (the first time for this mirror) and swallowed, so that the caller goes on
        to the next source; anything else (an interrupted run) passes through."""
        mirror = next(m for m in self._mirrors if m.base == source.base)
        try:
            yield
        except _FALL_THROUGH as exc:
            outcome = MISSING if isinstance(exc, AssetNotFound) else FAILED
            with self._lock:
                mirror.streak = next_streak(mirror.streak, mirror.served, outcome)
                first, mirror.warned = not mirror.warned, True
            if first:
                log.warning("mirror %s: %s: %s; trying the next source (a mirror that keeps failing is skipped "
                            "for the rest of this run)", redact(source.base), label, exc)
        else:
            with self._lock:
                mirror.streak = next_streak(mirror.streak, mirror.served, SERVED)
                mirror.served += 1
