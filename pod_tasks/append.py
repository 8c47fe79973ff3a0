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
   always removed. A claim's name is a fresh uuid, so a conflict on it is the client
   retrying a write whose reply was lost and meeting its own claim: the claim is in
   place (and, on the second write, the server honours conditions). A claim write
   that gets no answer at all stops the publish before anything is uploaded, and
   teaches nothing;
3. uploads conditionally; when the upload's outcome is unknown (its replies lost, the
   connection cut after the body went, a server error), asks the store whether ``key``
   now holds these bytes (then the upload happened), other bytes (a conflict), or
   nothing (it did not: the error says that nothing was published);
4. reads the stored object back (`pod_tasks.provenance.proves`: its sha256 checksum,
   MD5 ETag or sha256 metadata, re-read while a server's answer is still settling) and
   only then reports success.

Contract: a call that returns put these bytes at ``key``; a call that raises
`PublishConflict` left the store as it found it, save for a version that someone else
published; any other error says whether ``key`` was written.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Protocol

from .digests import Digester
from .errors import AssetNotFound, OfflineError, PodError, PublishConflict
from .provenance import proves
from .store import Head, Store

__all__ = ["append", "Appended", "Notes", "CLAIMS"]

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


@dataclass(frozen=True)
class Appended:
    """What `append` did: the stored object as read back, and whether the upload's
    replies were lost (the store was asked, and holds these bytes)."""

    head: Head
    recovered: bool = False


def append(store: Store, key: str, path: Path, digest: Digester, notes: Notes, prefix: str = "",
           metadata: Mapping[str, str] | None = None) -> Appended:
    """Put the file at ``path`` (hashed in ``digest``: MD5 and sha256) at ``key``, with
    ``metadata``, never replacing an object that is there; ``prefix`` is the store's key
    prefix (claims go under it). Raises `PublishConflict` when ``key`` exists, or another
    publisher holds it."""
    _ensure_free(store, key)
    upload = _Upload(store, key, path, digest, metadata)
    atomic = store.atomic_create
    if atomic is None:
        atomic = notes.noted("conditional-writes", store.identity)
    if atomic is True:
        upload()
    else:
        claims = f"{prefix}{CLAIMS}{key[len(prefix):]}/"
        _claimed_upload(store, key, upload, notes, claims, learn=atomic is None)
    verdict, head = _holds(store, key, digest, path)
    if verdict is False:
        raise PublishConflict(f"{store.url(key)} holds other bytes than the ones uploaded: someone published it meanwhile")
    return Appended(head, upload.recovered)


def _ensure_free(store: Store, key: str) -> None:
    try:
        store.head(key)
    except AssetNotFound:
        return
    raise PublishConflict(f"{store.url(key)} already exists: someone published it first")


class _Upload:
    """The one conditional upload of a publish, and what it learnt when its outcome was
    unknown (``recovered``: the replies were lost, the store holds these bytes)."""

    def __init__(self, store: Store, key: str, path: Path, digest: Digester, metadata: Mapping[str, str] | None) -> None:
        self.store, self.key, self.path, self.digest, self.metadata = store, key, path, digest, metadata
        self.recovered = False

    def __call__(self) -> None:
        store, key, digest = self.store, self.key, self.digest
        try:
            store.put_if_absent(key, self.path, digest.md5.digest(), digest.sha256.digest(), self.metadata)
        except PublishConflict:
            # Our own upload whose reply was lost, met by the client's retry: these bytes are there.
            if proves(store.head(key), digest, self.path) is not True:
                raise
            self.recovered = True
        except OfflineError as exc:
            if exc.no_credentials:  # refused: nothing was written
                raise
            self._learn(exc)
        except PodError as exc:  # a server error, a reply that made no sense: it may have been written
            self._learn(exc)

    def _learn(self, failure: PodError) -> None:
        """The upload failed without saying whether the object was written: ask the store."""
        url = self.store.url(self.key)
        try:
            head = self.store.head(self.key)
        except AssetNotFound:
            raise type(failure)(f"{failure}; asked afterwards, the store does not hold {url}: "
                                f"nothing was published") from None
        except PodError as again:
            raise type(failure)(f"{failure}; whether {url} was written is not known (asking the store failed too: "
                                f"{again}): look for it in the store once it answers") from None
        verdict = proves(head, self.digest, self.path)
        if verdict is False:
            raise PublishConflict(f"{url} holds other bytes than the ones uploaded (the upload failed: {failure}): "
                                  f"someone published it meanwhile")
        if verdict is None:
            raise type(failure)(f"{failure}; the store now holds {url}, but cannot show whether it holds these bytes: "
                                f"compare it by hand before pinning it") from None
        self.recovered = True


def _claimed_upload(store: Store, key: str, upload: _Upload, notes: Notes, claims: str, learn: bool) -> None:
    """Upload under a claim, on a server that may ignore conditional writes."""
    deadline = time.monotonic() + _WAIT
    attempt = 0
    while True:
        attempt += 1
        mine = f"{claims}{uuid.uuid4().hex}"
        try:
            _write_claim(store, mine)
            if learn:
                learn = False
                if _honours_conditions(store, mine):
                    notes.note("conditional-writes", store.identity, True)
                    return upload()
                notes.note("conditional-writes", store.identity, False)
                log.warning(
                    "%s: this S3 server accepts a conditional write onto an existing object (it ignores "
                    "If-None-Match): publishing under a claim so that no version is ever overwritten",
                    store.url(key),
                )
            if not _live_claims(store, claims, mine):
                _ensure_free(store, key)
                with _heartbeat(store, mine):
                    return upload()
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


def _put_claim(store: Store, claim: str) -> None:
    """Write ``claim`` conditionally. `PublishConflict` means it is there; a failure
    that does not say whether it was written (every reply lost, the store out of reach)
    stops the publish before its upload, saying that nothing was published (the claim,
    if it landed, is removed on the way out)."""
    try:
        store.put_bytes(claim, _CLAIM_TEXT)
    except PublishConflict:
        raise
    except PodError as exc:
        raise type(exc)(f"{exc}; this was publish's claim on the version, before its upload: nothing was "
                        f"published") from None


def _write_claim(store: Store, claim: str) -> None:
    """Write our claim ``claim``, a name no other publisher uses (a fresh uuid): a
    conflict on it is the client's retry of this very write, whose reply was lost,
    meeting the claim it wrote, so the claim is in place."""
    with contextlib.suppress(PublishConflict):
        _put_claim(store, claim)


def _honours_conditions(store: Store, claim: str) -> bool:
    """Whether the store refuses a conditional write onto our own (existing) ``claim``.
    Only an answer decides: a refusal (met again by a retry if a reply was lost) says
    yes, a write accepted says no; no answer at all raises, and nothing is learnt."""
    try:
        _put_claim(store, claim)
    except PublishConflict:
        return True
    return False


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


def _holds(store: Store, key: str, digest: Digester, path: Path) -> tuple[bool | None, Head]:
    """Read ``key`` back: do the bytes of ``path`` sit there (and what the store says of
    them)? Asked again while the server's checksum and ETag still disagree (they can,
    just after concurrent writes)."""
    for attempt in range(_SETTLE_TRIES):
        head = store.head(key)
        verdict = proves(head, digest, path)
        inconsistent = verdict is None and head.checksum is not None and head.md5_etag
        if not inconsistent:
            return verdict, head
        time.sleep(0.05 * (attempt + 1))
    return False, head
