"""Asset names and the store keys that hold their versions. Pure functions, no I/O.

A name is a relative POSIX path (``foo/bar.csv``; a leading ``/`` is allowed and
dropped). Version ``1.2.5`` of it is stored at ``foo/bar.1.2.5.csv``: the version goes
between the stem and the last extension, or at the end when there is none.
"""

from __future__ import annotations

import posixpath
import re

from .errors import UnsafePathError, shown
from .versions import VERSION_PATTERN, Version, parse_version

__all__ = ["normalise_name", "check_relative_key", "versioned_key", "version_of_key", "name_of_key"]

_MAX_NAME = 1024
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:")
_KEY_RE = re.compile(rf"^(?P<stem>.+?)\.(?P<version>{VERSION_PATTERN})(?P<ext>\.[^./]*)?$")


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
    elif any(ord(c) < 32 or ord(c) == 127 for c in key):
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
    """The version if ``key`` holds a version of ``name`` (same folder, stem and extension)."""
    folder, stem, ext = _split(name)
    k_folder, k_base = posixpath.split(key)
    if k_folder != folder or not k_base.startswith(stem + ".") or not k_base.endswith(ext):
        return None
    middle = k_base[len(stem) + 1 : len(k_base) - len(ext)]
    try:
        return parse_version(middle)
    except ValueError:
        return None


def name_of_key(key: str) -> tuple[str, Version] | None:
    """Split a store key into (name, version): ``a.b.0.14.6.ext`` -> (``a.b.ext``, 0.14.6).

    Keys that hold no version give None.
    """
    folder, base = posixpath.split(key)
    match = _KEY_RE.match(base)
    if not match:
        return None
    name = posixpath.join(folder, match["stem"] + (match["ext"] or ""))
    return name, parse_version(match["version"])
