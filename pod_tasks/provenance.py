"""What a version says of itself beyond its key: who published it, when, with what
message, and whether given bytes are its bytes.

Publish writes, with each version, this metadata (S3 user metadata, ``x-amz-meta-pod-*``;
a folder store keeps it in a hidden sidecar, see `pod_tasks.store.DirStore`):

    pod-sha256     the sha256 of the bytes (hex), as the publisher hashed them
    pod-publisher  ``user@host`` of whoever published it
    pod-message    ``doit publish --message TEXT``, when given

Values are percent-encoded UTF-8 (S3 metadata travels in HTTP headers, ASCII only) and
decoded on the way out; S3 keeps at most 2 KB of it per object, so a longer message is
refused before anything is uploaded.

Contract: `proves` answers True or False only from hashes (the store's sha256 checksum,
its MD5 ETag, the ``pod-sha256`` metadata), once the sizes agree, and None when none can
tell; it never downloads anything.
"""

from __future__ import annotations

import base64
import getpass
import socket
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, unquote

from .catalog import Project, store_versions
from .digests import Digester
from .errors import PodError
from .names import versioned_key
from .store import Head
from .versions import Version

__all__ = ["SHA256", "PUBLISHER", "MESSAGE", "Provenance", "VersionInfo", "publisher", "stamp", "provenance",
           "proves", "history"]

SHA256, PUBLISHER, MESSAGE = "pod-sha256", "pod-publisher", "pod-message"
#: S3's limit on an object's user metadata (names and values), in bytes.
METADATA_LIMIT = 2048
#: Characters kept as they are in a metadata value: printable ASCII but ``%``.
_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")
#: HEADs in flight when `history` reads every version of a name.
_HEADS = 8


def publisher() -> str:
    """``user@host`` of this process, on any platform; a part that cannot be found (no
    login name in a container, no host name) is ``unknown``, never an error."""
    try:
        user = getpass.getuser()
    except Exception:  # OSError, KeyError, ImportError: no login name in the environment or password db
        user = "unknown"
    try:
        host = socket.gethostname() or "unknown"
    except OSError:
        host = "unknown"
    return f"{user}@{host}"


def stamp(sha256: str, who: str, message: str | None = None) -> dict[str, str]:
    """The metadata publish writes with a version. Raises `PodError` when it exceeds
    what S3 keeps (a message of about 2 KB)."""
    metadata = {SHA256: sha256, PUBLISHER: quote(who, safe=_SAFE)}
    if message:
        metadata[MESSAGE] = quote(message, safe=_SAFE)
    size = sum(len("x-amz-meta-" + name) + len(value) for name, value in metadata.items())
    if size > METADATA_LIMIT:
        raise PodError(f"--message is too long: the store keeps at most {METADATA_LIMIT} bytes of metadata with a "
                       f"version and this one needs {size} (non-ASCII characters take 6 to 12): shorten it")
    return metadata


@dataclass(frozen=True)
class Provenance:
    """What publish wrote with a version (None where it wrote nothing: a version put in
    the store by other means, or before pod-tasks kept it)."""

    sha256: str | None = None
    publisher: str | None = None
    message: str | None = None


def provenance(metadata: Mapping[str, str]) -> Provenance:
    """The `Provenance` in an object's metadata (as `pod_tasks.store.Head` carries it)."""
    def read(name: str) -> str | None:
        value = metadata.get(name)
        return unquote(value) if value else None

    return Provenance(read(SHA256), read(PUBLISHER), read(MESSAGE))


def proves(head: Head, digest: Digester, path: Path) -> bool | None:
    """Whether ``head`` describes the bytes of ``path`` (hashed in ``digest``: MD5 and
    sha256): a different size says no at once; then the store's sha256 checksum, else its
    MD5 ETag, else the ``pod-sha256`` metadata decides; None when none of them can tell
    (an opaque ETag and nothing else), or when the checksum and the ETag disagree (a
    server still settling after concurrent writes). A multipart object's (composite)
    checksum or ETag is worked out again from the file at ``path``."""
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
        return None
    if by_checksum is not None or by_etag is not None:
        return by_checksum if by_checksum is not None else by_etag
    claimed = provenance(head.metadata).sha256
    return None if claimed is None else claimed == digest.sha256.hexdigest()


@dataclass(frozen=True)
class VersionInfo:
    """One version of a name as the store describes it."""

    version: Version
    size: int
    #: When it was written, in seconds since the epoch (None: the store did not say).
    modified: float | None
    provenance: Provenance


def history(project: Project, name: str) -> list[VersionInfo]:
    """Every version of ``name`` in the store, oldest first, with its size, date and
    provenance (one HEAD each, a few at once)."""
    versions = store_versions(project, name)
    store = project.store
    assert store is not None  # store_versions raised otherwise

    def describe(version: Version) -> VersionInfo:
        head = store.head(project.prefix + versioned_key(name, version))
        return VersionInfo(version, head.size, head.modified, provenance(head.metadata))

    if len(versions) < 2:
        return [describe(v) for v in versions]
    with ThreadPoolExecutor(min(_HEADS, len(versions))) as pool:
        return list(pool.map(describe, versions))
