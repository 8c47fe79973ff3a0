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

import functools
import re
from typing import Callable, Iterable, Literal, Sequence

import semver

from .errors import VersionError, shown

__all__ = [
    "Version", "Bump", "VERSION_PATTERN", "MAX_LENGTH", "is_version", "parse_version", "pad_version", "next_version",
    "nearest", "latest_release", "update_target",
]

Version = semver.Version
Bump = Literal["major", "minor", "patch"]

_NUM = r"(?:0|[1-9][0-9]*)"
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
#: A version as text: ``X.Y.Z`` with an optional ``-PRE.RELEASE``.
VERSION_PATTERN = rf"{_NUM}\.{_NUM}\.{_NUM}(?:-{_IDENT}(?:\.{_IDENT})*)?"
_FULL = re.compile(rf"^{VERSION_PATTERN}$")
_PARTIAL = re.compile(rf"^{_NUM}(?:\.{_NUM}){{0,2}}$")
#: The most characters a version may have. semver 3.2 refuses longer ones itself, older
#: releases take any length (and Python refuses ints of over 4,300 digits): the bound is
#: ours, so that a version is accepted or refused alike whichever release is installed.
MAX_LENGTH = 255


def is_version(text: str) -> bool:
    """``text`` is a version `parse_version` accepts: its form, and at most `MAX_LENGTH` characters."""
    return isinstance(text, str) and len(text) <= MAX_LENGTH and _FULL.match(text) is not None


def parse_version(text: str) -> Version:
    """Parse an exact ``X.Y.Z`` or ``X.Y.Z-PRE`` of at most `MAX_LENGTH` characters;
    anything else raises `VersionError`."""
    if not isinstance(text, str) or not _FULL.match(text):
        raise VersionError(
            f"{shown(str(text))} is not a version: write MAJOR.MINOR.PATCH, e.g. 1.2.5, or a pre-release, "
            f"e.g. 2.0.0-rc.1"
        )
    if len(text) > MAX_LENGTH:
        raise _too_long(f"version {shown(text)}")
    return _parsed(text)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Version:
    """``Version.parse``, remembered: a manifest of thousands of pins repeats few versions
    (a `Version` is immutable, so one object can serve them all)."""
    return Version.parse(text)


def _too_long(what: str, fix: str = "write MAJOR.MINOR.PATCH, e.g. 1.2.5") -> VersionError:
    return VersionError(f"{what} is longer than {MAX_LENGTH} characters, the most a version may have: {fix}")


def _made(make: Callable[[], Version], what: str, fix: str = "give a shorter one with --version X.Y.Z") -> Version:
    """The version ``make`` builds (a bump, a padding), refused as `_too_long` when it
    passes `MAX_LENGTH` characters, whichever semver release is installed (3.2 raises
    ValueError itself, older ones build it)."""
    try:
        version = make()
    except ValueError:  # semver 3.2: "Version string exceeds maximum length"
        raise _too_long(what, fix) from None
    if len(str(version)) > MAX_LENGTH:
        raise _too_long(what, fix)
    return version


def pad_version(text: str) -> Version:
    """Parse ``X``, ``X.Y`` or ``X.Y.Z``, padding the missing parts with zeros, or an
    exact pre-release ``X.Y.Z-PRE``."""
    if isinstance(text, str) and "-" in text and _FULL.match(text):
        return parse_version(text)
    if not isinstance(text, str) or not _PARTIAL.match(text):
        raise VersionError(f"{shown(str(text))} is not a version: write MAJOR[.MINOR[.PATCH]], e.g. 1.2, "
                           f"or X.Y.Z-PRE, e.g. 2.0.0-rc.1")
    if len(text) > MAX_LENGTH:
        raise _too_long(f"version {shown(text)}")
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return _made(lambda: Version(*parts[:3]), f"version {shown(text)} (padded to X.Y.Z)", "write it in full")


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
            bumped = {"major": base.bump_major, "minor": base.bump_minor, "patch": base.bump_patch}[bump]
            result = _made(bumped, f"the {bump} after {shown(str(base))}")
        result = max(result, floor) if floor is not None else result
    if release is not None and result <= release:
        above = _made(release.bump_patch, f"the patch after {shown(str(release))}")
        raise VersionError(
            f"version {result} is not greater than {release}, the latest release in the store: "
            f"versions must increase (try --version {above})"
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
    candidate = _made(taken.bump_prerelease, f"the pre-release after {shown(str(taken))}")
    while candidate in versions:
        candidate = _made(candidate.bump_prerelease, f"the pre-release after {shown(str(candidate))}")
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
