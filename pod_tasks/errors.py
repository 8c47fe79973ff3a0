"""One exception hierarchy for every failure a user can cause or meet.

Every message is one line that names the thing at fault and says what to do next;
the doit and command-line layers print ``str(error)`` and exit non-zero.
"""

from __future__ import annotations

__all__ = [
    "PodError",
    "ManifestError",
    "AssetNotFound",
    "IntegrityError",
    "TransferError",
    "VersionError",
    "OfflineError",
    "UntrustedEndpoint",
    "StoreError",
    "PublishConflict",
    "UnsafePathError",
    "CacheError",
    "shown",
]


class PodError(Exception):
    """Base of every pod-tasks error; catch this to handle them all."""


class ManifestError(PodError):
    """``assets.yaml`` (or another input file) is unreadable or invalid.

    The message starts ``FILE:LINE:`` so editors can jump to it.
    """


class AssetNotFound(PodError, LookupError):
    """The asset, version or remote object does not exist (a remote 404 included)."""


class IntegrityError(PodError):
    """Bytes did not match their length, ETag or pinned sha256; nothing was kept."""


class TransferError(IntegrityError):
    """A download came short: the connection was cut, reset or timed out mid-body. The
    network's fault, not the store's: running it again may succeed."""


class VersionError(PodError, ValueError):
    """A version is malformed, or does not strictly increase."""


class OfflineError(PodError):
    """The store cannot be reached, there are no credentials, or offline mode is on."""

    def __init__(self, message: str, *, no_credentials: bool = False) -> None:
        super().__init__(message)
        self.no_credentials = no_credentials


class UntrustedEndpoint(OfflineError):
    """The store's server got no credentials (the user's own configuration does not trust
    it, or it is plain http:// to another machine), and it refused, or a write needs them.
    The message says how to trust it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, no_credentials=True)


class StoreError(PodError):
    """The store answered with an error that is neither a 404 nor a conflict."""


class PublishConflict(VersionError):
    """The version being published already exists in the store (someone else won)."""


class UnsafePathError(PodError):
    """A path would land outside the folder it must stay in."""


class CacheError(PodError):
    """The cache dir cannot be written (full disk, permissions, not a folder)."""


def shown(value: str, limit: int = 80) -> str:
    """``value`` quoted for a one-line message: as it is when short, else its start and
    its length (a hostile input of a megabyte must not make a megabyte of error)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit - 20]!r}... ({len(value)} characters)"
