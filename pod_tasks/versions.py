"""Version numbers and the rules for choosing the next one. Pure functions, no I/O.

Versions are ``MAJOR.MINOR.PATCH``, decimal, no leading zeros. The next version is
computed from the latest version present in the store, never from a manifest pin.
"""

from __future__ import annotations

import re
from typing import Literal

import semver

from .errors import VersionError

__all__ = ["Version", "Bump", "VERSION_PATTERN", "parse_version", "pad_version", "next_version", "nearest"]

Version = semver.Version
Bump = Literal["major", "minor", "patch"]

_NUM = r"(?:0|[1-9][0-9]*)"
VERSION_PATTERN = rf"{_NUM}\.{_NUM}\.{_NUM}"
_FULL = re.compile(rf"^{VERSION_PATTERN}$")
_PARTIAL = re.compile(rf"^{_NUM}(?:\.{_NUM}){{0,2}}$")


def parse_version(text: str) -> Version:
    """Parse an exact ``X.Y.Z``; anything else raises `VersionError`."""
    if not isinstance(text, str) or not _FULL.match(text):
        raise VersionError(f"{text!r} is not a version: write MAJOR.MINOR.PATCH, e.g. 1.2.5")
    return Version.parse(text)


def pad_version(text: str) -> Version:
    """Parse ``X``, ``X.Y`` or ``X.Y.Z``, padding the missing parts with zeros."""
    if not isinstance(text, str) or not _PARTIAL.match(text):
        raise VersionError(f"{text!r} is not a version: write MAJOR[.MINOR[.PATCH]], e.g. 1.2")
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return Version(*parts[:3])


def next_version(
    latest: Version | None,
    bump: Bump | None = None,
    explicit: str | None = None,
    minimum: str | None = None,
) -> Version:
    """The version to publish next.

    - ``explicit`` (padded) wins over ``bump``; it must exceed ``latest`` and be at
      least ``minimum``.
    - Otherwise, with nothing published yet, ``1.0.0``; with ``latest``, ``bump`` is
      required and applied to it.
    - The result is ``max(result, minimum)`` (``minimum`` padded).
    """
    floor = pad_version(minimum) if minimum is not None else None
    if explicit is not None:
        wanted = pad_version(explicit)
        if latest is not None and wanted <= latest:
            raise VersionError(
                f"version {wanted} is not greater than {latest}, the latest in the store: "
                f"versions must strictly increase (try --version {latest.bump_patch()})"
            )
        if floor is not None and wanted < floor:
            raise VersionError(f"version {wanted} is below the minimum {floor}")
        return wanted
    if latest is None:
        result = Version(1, 0, 0)
    elif bump is None:
        raise VersionError(
            f"the latest version is {latest}: say --major, --minor, --patch or --version X.Y.Z"
        )
    else:
        result = {"major": latest.bump_major, "minor": latest.bump_minor, "patch": latest.bump_patch}[bump]()
    return max(result, floor) if floor is not None else result


def nearest(versions: list[Version], wanted: Version, count: int = 5) -> list[Version]:
    """Up to ``count`` of ``versions``, the closest to ``wanted`` first: by the distance
    of the major, then the minor, then the patch number (the newer first on a tie)."""
    def distance(v: Version) -> tuple[int, int, int, int]:
        return (abs(v.major - wanted.major), abs(v.minor - wanted.minor), abs(v.patch - wanted.patch), -v.patch)

    return sorted(versions, key=distance)[:count]
