"""Asset names and the store keys that hold their versions. Pure functions, no I/O.

A name is a relative POSIX path (``foo/bar.csv``; a leading ``/`` is allowed and
dropped). Version ``1.2.5`` of it is stored at ``foo/bar.1.2.5.csv``: the version goes
between the stem and the last extension, or at the end when there is none.

A key is read back by one rule (`name_of_key`), so that every key belongs to one name
at most, pre-releases (whose dots could be read as an extension) included: the key's
last extension is the name's when what comes before it ends in a version (the
rightmost one that reads back as the same key), else the name has no extension.
``foo/bar.2.0.0-rc.1.csv`` is ``foo/bar.csv`` at ``2.0.0-rc.1``, never ``foo/bar`` at
``2.0.0-rc.1.csv``. A version whose key would read back otherwise (a dotted
pre-release of a name with no extension: ``tool`` at ``1.0.0-rc.1`` is stored as
``tool.1.0.0-rc.1``, which is ``tool.1`` at ``1.0.0-rc``) is refused by `check_versioned`.
"""

from __future__ import annotations

import posixpath
import re

from .errors import UnsafePathError, VersionError, shown
from .versions import Version, is_version, parse_version

__all__ = [
    "normalise_name", "check_relative_key", "check_bucket", "versioned_key", "version_of_key", "name_of_key",
    "check_versioned",
]

_MAX_NAME = 1024
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET_CHARS = re.compile(r"[^a-z0-9.-]")
_IPV4 = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_BUCKET_RULE = "S3 bucket names are 3 to 63 lowercase letters, digits, '.' and '-'"


def check_bucket(bucket: str) -> str:
    """Return ``bucket`` if S3's rules allow it as a bucket name, else raise `UnsafePathError`.

    The rules (AWS's for general purpose buckets): 3 to 63 characters of ``a-z``,
    ``0-9``, ``.`` and ``-``, beginning and ending with a letter or digit, no ``..``,
    not an IPv4 address. A bucket is a folder of the cache dir, so no name that passes
    can be one of the cache's own top-level names (``.pod``, ``.timestamps``,
    ``_endpoint-*``, ``_dir-*``, ``missing_assets.yaml``, ``CACHEDIR.TAG``: each has a
    character or a first character no bucket has), nor differ from another only by
    case (which Windows and macOS would file in one folder). Names reserved for creating
    buckets but readable as one (access point aliases ``-s3alias``, directory buckets
    ``--x-s3``) pass.
    """
    bad = _BUCKET_CHARS.search(bucket)
    problem = (
        f"it is {len(bucket)} character{'s' * (len(bucket) != 1)} long" if not 3 <= len(bucket) <= 63
        else "it has capital letters" if bad and bucket.lower() != bucket
        else f"it has {bad[0]!r}" if bad
        else "it does not begin and end with a letter or digit" if not (bucket[0] + bucket[-1]).isalnum()
        else "it has '..'" if ".." in bucket
        else "it is an IP address" if _IPV4.match(bucket)
        else None
    )
    if problem:
        raise UnsafePathError(f"invalid bucket {shown(bucket)}: {problem} ({_BUCKET_RULE})")
    return bucket


def check_relative_key(key: str, what: str = "name") -> str:
    """Return ``key`` if it is a safe relative POSIX path, else raise `UnsafePathError`.

    Safe: non-empty segments, no ``.`` or ``..``, no backslash, no control
    character, no drive letter, not absolute. Such a path can be joined under any
    folder and stays inside it.
    """
    problem = None
    if not key:
        problem = "it is empty"
    elif len(key) > _MAX_NAME:
        problem = f"it is longer than {_MAX_NAME} characters"
    elif _CONTROL.search(key):
        problem = "it contains a control character"
    elif "\\" in key:
        problem = "it contains a backslash (use / between folders)"
    elif _SCHEME.match(key):
        problem = (f"it is a {key.split(':', 1)[0]}:// URL: only s3://bucket/key URLs are fetched (list one under "
                   f"`files:`), or pin a name under `assets:`")
    elif key.startswith("/") or _DRIVE.match(key):
        problem = "it is an absolute path"
    else:
        for part in key.split("/"):
            if part in ("", ".", ".."):
                problem = "it has an empty, '.' or '..' segment"
                break
    if problem:
        raise UnsafePathError(f"invalid {what} {shown(key)}: {problem}")
    return key


def normalise_name(name: str) -> str:
    """Canonical form of an asset name: one leading ``/`` dropped, then checked safe."""
    if name.startswith("/") and not name.startswith("//"):
        name = name[1:]
    return check_relative_key(name)


def _split(name: str) -> tuple[str, str, str]:
    folder, base = posixpath.split(name)
    stem, ext = posixpath.splitext(base)
    return folder, stem, ext


def versioned_key(name: str, version: Version | str) -> str:
    """Store key of ``name`` at ``version``: ``foo/bar.csv`` @ 1.2.5 -> ``foo/bar.1.2.5.csv``."""
    folder, stem, ext = _split(name)
    return posixpath.join(folder, f"{stem}.{version}{ext}")


def version_of_key(name: str, key: str) -> Version | None:
    """The version if ``key`` holds a version of ``name`` (as `name_of_key` reads it)."""
    parsed = name_of_key(key)
    return parsed[1] if parsed is not None and parsed[0] == name else None


def name_of_key(key: str) -> tuple[str, Version] | None:
    """Split a store key into (name, version): ``a.b.0.14.6.ext`` -> (``a.b.ext``, 0.14.6),
    ``foo/bar.2.0.0-rc.1.csv`` -> (``foo/bar.csv``, 2.0.0-rc.1).

    The reading that keeps the key's last extension is tried first, then the one
    without; in each the rightmost version that gives back ``key`` wins. Keys that hold
    no version give None.
    """
    folder, base = posixpath.split(key)
    stem, ext = posixpath.splitext(base)
    for rest, tail in ((stem, ext), (base, "")) if ext else ((base, ""),):
        at = len(rest)
        while (at := rest.rfind(".", 0, at)) > 0:
            text = rest[at + 1:]
            if is_version(text):
                name, version = posixpath.join(folder, rest[:at] + tail), parse_version(text)
                if versioned_key(name, version) == key:
                    return name, version
    return None


def check_versioned(name: str, version: Version) -> str:
    """The store key of ``name`` at ``version``, if it reads back as them; else
    `VersionError` (such a version could not be listed as one of ``name``)."""
    key = versioned_key(name, version)
    parsed = name_of_key(key)
    if parsed != (name, version):
        read = f"{parsed[0]} at {parsed[1]}" if parsed else "no version"
        raise VersionError(
            f"{name}: version {version} would be stored as {key}, which reads back as {read}: "
            f"choose a pre-release that does not end in what looks like an extension or a version "
            f"(e.g. {version.finalize_version()}-rc1)"
        )
    return key
