"""Version numbers and the rules for choosing one. Pure functions, no I/O.

Versions are semver's: ``MAJOR.MINOR.PATCH``, decimal, no leading zeros, optionally
with a pre-release (``2.0.0-rc.1``: dot-separated identifiers of ``[0-9A-Za-z-]``,
numeric ones without leading zeros). Build metadata (``+build``) is refused: semver
orders ``1.0.0+a`` and ``1.0.0+b`` alike, and versions must strictly increase. Versions
sort by semver precedence: ``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta.2 < 1.0.0-beta.11
< 1.0.0-rc.1 < 1.0.0``.

The next version is computed from the versions present in the store, never from a
manifest pin: a bump applies to the latest *release*; whatever is published, release
or pre-release, must be greater than every release there and not there already, but
need not exceed a newer pre-release (1.2.7 may follow 2.0.0-rc.1, as npm, cargo and
PyPI allow). `update_target` is the rule ``doit update`` moves a pin by.
"""

from __future__ import annotations

import re
from typing import Iterable, Literal, Sequence

import semver

from .errors import VersionError

__all__ = [
    "Version", "Bump", "VERSION_PATTERN", "parse_version", "pad_version", "next_version", "nearest",
    "latest_release", "update_target",
]

Version = semver.Version
Bump = Literal["major", "minor", "patch"]

_NUM = r"(?:0|[1-9][0-9]*)"
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
#: A version as text: ``X.Y.Z`` with an optional ``-PRE.RELEASE``.
VERSION_PATTERN = rf"{_NUM}\.{_NUM}\.{_NUM}(?:-{_IDENT}(?:\.{_IDENT})*)?"
_FULL = re.compile(rf"^{VERSION_PATTERN}$")
_PARTIAL = re.compile(rf"^{_NUM}(?:\.{_NUM}){{0,2}}$")


def parse_version(text: str) -> Version:
    """Parse an exact ``X.Y.Z`` or ``X.Y.Z-PRE``; anything else raises `VersionError`."""
    if not isinstance(text, str) or not _FULL.match(text):
        raise VersionError(
            f"{text!r} is not a version: write MAJOR.MINOR.PATCH, e.g. 1.2.5, or a pre-release, e.g. 2.0.0-rc.1"
        )
    return Version.parse(text)


def pad_version(text: str) -> Version:
    """Parse ``X``, ``X.Y`` or ``X.Y.Z``, padding the missing parts with zeros, or an
    exact pre-release ``X.Y.Z-PRE``."""
    if isinstance(text, str) and "-" in text and _FULL.match(text):
        return Version.parse(text)
    if not isinstance(text, str) or not _PARTIAL.match(text):
        raise VersionError(f"{text!r} is not a version: write MAJOR[.MINOR[.PATCH]], e.g. 1.2, or X.Y.Z-PRE, e.g. 2.0.0-rc.1")
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return Version(*parts[:3])


def latest_release(versions: Iterable[Version]) -> Version | None:
    """The highest of ``versions`` that is not a pre-release, or None."""
    return max((v for v in versions if not v.prerelease), default=None)


def next_version(
    versions: Sequence[Version],
    bump: Bump | None = None,
    explicit: str | None = None,
    minimum: str | None = None,
) -> Version:
    """The version to publish next, given the ``versions`` in the store.

    - ``explicit`` (padded; a pre-release is taken as written) wins over ``bump``; it
      must be at least ``minimum``.
    - Otherwise, with nothing published yet, ``1.0.0``; else ``bump`` is required and
      applied to the latest release, pre-releases skipped (with 1.4.0 and 2.0.0-rc.1 in
      the store, ``major`` gives 2.0.0 and ``patch`` 1.4.1; with pre-releases only, to
      ``0.0.0``).
    - The result is ``max(result, minimum)`` (``minimum`` padded).
    - It must be greater than every release in the store (semver precedence) and not
      in the store already; it may be below a pre-release there. `VersionError` says
      which rule it breaks and a version that passes.
    """
    floor = pad_version(minimum) if minimum is not None else None
    release = latest_release(versions)
    if explicit is not None:
        result = pad_version(explicit)
        if floor is not None and result < floor:
            raise VersionError(f"version {result} is below the minimum {floor}")
    else:
        if not versions:
            result = Version(1, 0, 0)
        elif bump is None:
            raise VersionError(
                f"the latest version is {max(versions)}: say --major, --minor, --patch or --version X.Y.Z"
            )
        else:
            base = release or Version(0, 0, 0)
            result = {"major": base.bump_major, "minor": base.bump_minor, "patch": base.bump_patch}[bump]()
        result = max(result, floor) if floor is not None else result
    if release is not None and result <= release:
        raise VersionError(
            f"version {result} is not greater than {release}, the latest release in the store: "
            f"versions must increase (try --version {release.bump_patch()})"
        )
    if result in versions:
        raise VersionError(
            f"version {result} is already in the store: a version is published once "
            f"(try --version {_free_prerelease(result, versions)})"
        )
    return result


def _free_prerelease(taken: Version, versions: Sequence[Version]) -> Version:
    """The first pre-release after ``taken`` (``2.0.0-rc.1`` -> ``2.0.0-rc.2``) that is
    not among ``versions``."""
    candidate = taken.bump_prerelease()
    while candidate in versions:
        candidate = candidate.bump_prerelease()
    return candidate


def update_target(pin: Version, versions: Iterable[Version], major: bool = False) -> Version | None:
    """The version ``doit update`` moves ``pin`` to, or None to leave it.

    The highest of ``versions`` above ``pin`` with the pin's major number (any major
    with ``major``). Pre-releases are skipped, unless the pin is a pre-release itself:
    then those of its own ``X.Y.Z`` count too (``2.0.0-rc.1`` moves to ``2.0.0-rc.2``,
    or to ``2.0.0`` once it is out), as npm's ranges read them.
    """
    def eligible(v: Version) -> bool:
        if not major and v.major != pin.major:
            return False
        return not v.prerelease or (bool(pin.prerelease) and v.finalize_version() == pin.finalize_version())

    best = max((v for v in versions if eligible(v)), default=None)
    return best if best is not None and best > pin else None


def nearest(versions: list[Version], wanted: Version, count: int = 5) -> list[Version]:
    """Up to ``count`` of ``versions``, the closest to ``wanted`` first: by the distance
    of the major, then the minor, then the patch number (the newer first on a tie)."""
    def distance(v: Version) -> tuple[int, int, int, int]:
        return (abs(v.major - wanted.major), abs(v.minor - wanted.minor), abs(v.patch - wanted.patch), -v.patch)

    return sorted(versions, key=distance)[:count]
