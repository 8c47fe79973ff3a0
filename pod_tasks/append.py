"""Append-only writes on any store: a new key is created once, never overwritten.

S3 promises this with a conditional write (``If-None-Match: *``), and a folder with a
hard link; but some S3-compatible servers (rclone serve s3, older MinIO and Ceph)
accept the condition and overwrite anyway. `append` therefore:

1. checks the key is free;
2. where the server is not known to honour conditional writes, takes a *claim*: a small
   object under ``.pod-claims/<key>/`` that every publisher of that key writes and then
   lists; a publisher that sees another's live claim steps back and tries again (one
   of two racers wins). A claim is rewritten every few seconds while its upload runs,
   so one left by a killed publish is known by its age and removed. Whether a server
   honours conditions is learnt from the first claim (written twice, the second time
   conditionally) and remembered per endpoint and bucket in the cache dir; claims are
   always removed;
3. uploads conditionally;
4. reads the stored object back (its sha256 checksum or MD5 ETag, re-read while a
   server's answer is still settling) and only then reports success.

Contract: a call that returns put these bytes at ``key``; a call that raises
`PublishConflict` left the store as it found it, save for a version that someone else
published.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Protocol

from .digests import Digester
from .errors import AssetNotFound, PodError, PublishConflict
from .store import Head, Store

__all__ = ["append", "Notes", "CLAIMS"]

log = logging.getLogger("pod_tasks")

#: Folder (under the store's prefix) of publish's short-lived claims.
CLAIMS = ".pod-claims/"
_SETTLE_TRIES = 8
_CLAIM_TEXT = b"a publish of this key is under way; removed when it ends\n"
#: A live claim is rewritten this often (seconds) ...
_HEARTBEAT = 3.0
#: ... so one not rewritten for this long was left by a publish that was killed.
_STALE = 15.0
#: How long a publisher waits for another's claim on the same version to go.
_WAIT = 60.0


class Notes(Protocol):
    """Where what was learnt about a server is kept (the cache dir)."""

    def noted(self, topic: str, key: str) -> object | None: ...

    def note(self, topic: str, key: str, value: object) -> None: ...


def append(store: Store, key: str, path: Path, digest: Digester, notes: Notes, prefix: str = "") -> None:
    """Put the file at ``path`` (hashed in ``digest``: MD5 and sha256) at ``key``, never
    replacing an object that is there; ``prefix`` is the store's key prefix (claims go
    under it). Raises `PublishConflict` when ``key`` exists, or another publisher holds it."""
    _ensure_free(store, key)
    atomic = store.atomic_create
    if atomic is None:
        atomic = notes.noted("conditional-writes", store.identity)
    if atomic is True:
        _upload(store, key, path, digest)
    else:
        claims = f"{prefix}{CLAIMS}{key[len(prefix):]}/"
        _claimed_upload(store, key, path, digest, notes, claims, learn=atomic is None)
    if _holds(store, key, digest, path) is False:
        raise PublishConflict(f"{store.url(key)} holds other bytes than the ones uploaded: someone published it meanwhile")


def _ensure_free(store: Store, key: str) -> None:
    try:
        store.head(key)
    except AssetNotFound:
        return
    raise PublishConflict(f"{store.url(key)} already exists: someone published it first")


def _upload(store: Store, key: str, path: Path, digest: Digester) -> None:
    try:
        store.put_if_absent(key, path, digest.md5.digest(), digest.sha256.digest())
    except PublishConflict:
        # Our own upload whose reply was lost, met by the client's retry: these bytes are there.
        if _proof(store.head(key), digest, path) is not True:
            raise


def _claimed_upload(store: Store, key: str, path: Path, digest: Digester, notes: Notes, claims: str, learn: bool) -> None:
    """Upload under a claim, on a server that may ignore conditional writes."""
    deadline = time.monotonic() + _WAIT
    attempt = 0
    while True:
        attempt += 1
        mine = f"{claims}{uuid.uuid4().hex}"
        store.put_bytes(mine, _CLAIM_TEXT)
        try:
            if learn:
                learn = False
                try:
                    store.put_bytes(mine, _CLAIM_TEXT)
                except PublishConflict:
                    notes.note("conditional-writes", store.identity, True)
                    return _upload(store, key, path, digest)
                notes.note("conditional-writes", store.identity, False)
                log.warning(
                    "%s: this S3 server accepts a conditional write onto an existing object (it ignores "
                    "If-None-Match): publishing under a claim so that no version is ever overwritten",
                    store.url(key),
                )
            if not _live_claims(store, claims, mine):
                _ensure_free(store, key)
                with _heartbeat(store, mine):
                    return _upload(store, key, path, digest)
        finally:
            try:
                store.delete(mine)
            except PodError as exc:
                log.warning("%s: could not remove publish's claim %s (%s): remove it by hand",
                            store.url(key), store.url(mine), exc)
        if time.monotonic() > deadline:
            raise PublishConflict(
                f"{store.url(key)}: another publish of this version has been under way for over {_WAIT:.0f} s "
                f"(claims under {store.url(claims)})"
            )
        time.sleep(random.uniform(0.05, 0.3) * min(attempt, 8))  # another publisher holds it: step back
        _ensure_free(store, key)


def _live_claims(store: Store, claims: str, mine: str) -> list[str]:
    """The other publishers' claims that are alive: rewritten less than `_STALE` seconds
    before ours (by the server's own clock). Stale ones, left by a publish that was
    killed, are removed."""
    others = [k for k in store.list_keys(claims) if k != mine]
    if not others:
        return []
    now = store.head(mine).modified
    live = []
    for other in others:
        try:
            modified = store.head(other).modified
        except AssetNotFound:
            continue  # its publish just ended
        if now is None or modified is None or now - modified < _STALE:
            live.append(other)
        else:
            with contextlib.suppress(PodError):
                store.delete(other)
    return live


@contextlib.contextmanager
def _heartbeat(store: Store, claim: str) -> Iterator[None]:
    """Rewrite ``claim`` every `_HEARTBEAT` seconds while the block runs, so that a long
    upload's claim never looks stale to another publisher."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(_HEARTBEAT):
            with contextlib.suppress(PodError):
                store.put_bytes(claim, _CLAIM_TEXT)

    thread = threading.Thread(target=beat, daemon=True, name="pod-claim")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _proof(head: Head, digest: Digester, path: Path) -> bool | None:
    """Whether ``head`` describes these bytes: by its sha256 checksum, else its MD5
    ETag; None when neither can tell (an opaque ETag and no sha256 checksum). A
    multipart object's (composite) ones are worked out again from the file at ``path``."""
    if head.size != digest.size:
        return False
    multipart = (head.md5_etag and "-" in head.etag) or (head.checksum is not None and head.checksum.parts)
    if multipart:
        digest = Digester.of_file(path, head.etag if head.md5_etag else None, sha256=True, checksum=head.checksum)
    by_checksum = by_etag = None
    if head.checksum is not None and head.checksum.algorithm == "sha256":
        by_checksum = digest.proves_checksum() if multipart else (
            head.checksum.value == base64.b64encode(digest.sha256.digest()).decode())
    if head.md5_etag:
        by_etag = digest.proves_etag(head.etag)
    if by_checksum is not None and by_etag is not None and by_checksum != by_etag:
        return None  # the two disagree: a server still settling after concurrent writes
    return by_checksum if by_checksum is not None else by_etag


def _holds(store: Store, key: str, digest: Digester, path: Path) -> bool | None:
    """Read ``key`` back: do the bytes of ``path`` sit there? Asked again while the
    server's checksum and ETag still disagree (they can, just after concurrent writes)."""
    for attempt in range(_SETTLE_TRIES):
        head = store.head(key)
        verdict = _proof(head, digest, path)
        inconsistent = verdict is None and head.checksum is not None and head.md5_etag
        if not inconsistent:
            return verdict
        time.sleep(0.05 * (attempt + 1))
    return False
