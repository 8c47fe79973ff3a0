"""Version parsing, padding and the next-version rules (the reference page's tables)."""

from __future__ import annotations

import pytest

from pod_tasks.errors import VersionError
from pod_tasks.versions import Version, next_version, pad_version, parse_version


@pytest.mark.parametrize("text, parts", [
    ("0.0.0", (0, 0, 0)),
    ("1.2.5", (1, 2, 5)),
    ("0.14.6", (0, 14, 6)),
    ("10.1.6", (10, 1, 6)),
    ("123.456.7890", (123, 456, 7890)),
])
def test_parse_version_valid(text, parts):
    version = parse_version(text)
    assert (version.major, version.minor, version.patch) == parts
    assert str(version) == text


@pytest.mark.parametrize("text", [
    "01.1.9", "1.01.9", "1.1.09", "0.1", "1", "", "1.2.3.4", "1.2.3-rc1", "1.2.3+build",
    "v1.2.3", " 1.2.3", "1.2.3 ", "1..3", "a.b.c", "-1.2.3", "1.2.x",
])
def test_parse_version_invalid(text):
    with pytest.raises(VersionError, match="is not a version"):
        parse_version(text)


@pytest.mark.parametrize("text, padded", [
    ("1", "1.0.0"), ("1.2", "1.2.0"), ("1.2.3", "1.2.3"), ("0", "0.0.0"), ("0.3", "0.3.0"),
])
def test_pad_version(text, padded):
    assert str(pad_version(text)) == padded


@pytest.mark.parametrize("text", ["01", "1.02", "1.2.3.4", "", "x", "1.", ".1"])
def test_pad_version_invalid(text):
    with pytest.raises(VersionError):
        pad_version(text)


LATEST = Version(1, 2, 5)


@pytest.mark.parametrize("minimum, expected", [
    (None, "1.2.6"), ("0", "1.2.6"), ("1", "1.2.6"), ("2", "2.0.0"), ("0.3", "1.2.6"),
    ("1.1", "1.2.6"), ("1.2", "1.2.6"), ("1.3", "1.3.0"), ("1.2.4", "1.2.6"), ("1.2.13", "1.2.13"),
])
def test_next_patch_with_minimum(minimum, expected):
    assert str(next_version(LATEST, "patch", minimum=minimum)) == expected


@pytest.mark.parametrize("bump, expected", [("major", "2.0.0"), ("minor", "1.3.0"), ("patch", "1.2.6")])
def test_bumps_from_latest(bump, expected):
    assert str(next_version(LATEST, bump)) == expected


@pytest.mark.parametrize("bump, explicit, expected", [
    (None, None, "1.0.0"),        # a new name starts at 1.0.0
    ("minor", None, "1.0.0"),
    (None, "1.2", "1.2.0"),       # a partial version is padded
    ("major", "0.2", "0.2.0"),    # explicit wins over the flag
])
def test_first_version(bump, explicit, expected):
    assert str(next_version(None, bump, explicit=explicit)) == expected


def test_explicit_wins_over_bump():
    assert str(next_version(LATEST, "major", explicit="1.2.7")) == "1.2.7"


@pytest.mark.parametrize("explicit", ["0.2.6", "1.2.5", "1.2", "1"])
def test_explicit_must_strictly_increase(explicit):
    with pytest.raises(VersionError, match=r"not greater than 1\.2\.5.*--version 1\.2\.6"):
        next_version(LATEST, explicit=explicit)


def test_explicit_below_minimum_is_refused():
    with pytest.raises(VersionError, match="below the minimum 2.0.0"):
        next_version(LATEST, explicit="1.3.0", minimum="2")


def test_no_flag_and_no_version_is_an_error():
    with pytest.raises(VersionError, match="--major, --minor, --patch or --version"):
        next_version(LATEST)


def test_bad_minimum_is_an_error():
    with pytest.raises(VersionError, match="'1.x' is not a version"):
        next_version(LATEST, "patch", minimum="1.x")


@pytest.mark.parametrize("have, wanted, shown", [
    (["1.2.5", "1.2.6", "2.0.0"], "1.2.9", ["1.2.6", "1.2.5", "2.0.0"]),
    (["0.9.0", "1.0.0", "1.1.0", "3.0.0"], "1.0.1", ["1.0.0", "1.1.0", "0.9.0", "3.0.0"]),
    ([f"1.0.{n}" for n in range(10)], "1.0.20", ["1.0.9", "1.0.8", "1.0.7", "1.0.6", "1.0.5"]),
    ([], "1.0.0", []),
])
def test_nearest_versions_first(have, wanted, shown):
    from pod_tasks.versions import nearest

    assert [str(v) for v in nearest([parse_version(v) for v in have], parse_version(wanted))] == shown
