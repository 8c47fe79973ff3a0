"""Version parsing, padding and the next-version rules (the reference page's tables)."""

from __future__ import annotations

import re

import pytest
import semver

from pod_tasks.errors import VersionError
from pod_tasks.versions import Version, is_version, next_version, pad_version, parse_version


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
    "01.1.9", "1.01.9", "1.1.09", "0.1", "1", "", "1.2.3.4", "1.2.3+build", "1.2.3-rc.1+build",
    "1.2.3-", "1.2.3-rc..1", "1.2.3-rc.01", "1.2.3-rc_1", "1.2.3-.rc", "1.2.3-rc.",
    "v1.2.3", " 1.2.3", "1.2.3 ", "1..3", "a.b.c", "-1.2.3", "1.2.x",
])
def test_parse_version_invalid(text):
    with pytest.raises(VersionError, match="is not a version"):
        parse_version(text)


@pytest.mark.parametrize("text, parts, pre", [
    ("2.0.0-rc.1", (2, 0, 0), "rc.1"),
    ("0.1.6-foo", (0, 1, 6), "foo"),
    ("1.0.0-0.3.7", (1, 0, 0), "0.3.7"),
    ("1.0.0-x.7.z.92", (1, 0, 0), "x.7.z.92"),
    ("1.0.0-x-y-z.--", (1, 0, 0), "x-y-z.--"),
    ("1.0.0-0a.1", (1, 0, 0), "0a.1"),
])
def test_parse_pre_release(text, parts, pre):
    version = parse_version(text)
    assert (version.major, version.minor, version.patch, version.prerelease) == (*parts, pre)
    assert str(version) == text


# semver.org section 11's example, shuffled: precedence, not text order
ORDERED = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
           "1.0.0-rc.1", "1.0.0", "1.0.1-rc.1", "1.0.1", "2.0.0-0", "2.0.0-rc.1", "2.0.0-rc.2", "2.0.0-rc.10", "2.0.0"]


def test_versions_sort_by_semver_precedence():
    shuffled = ORDERED[::2] + ORDERED[1::2][::-1]
    assert [str(v) for v in sorted(parse_version(v) for v in shuffled)] == ORDERED


@pytest.mark.parametrize("text, padded", [
    ("1", "1.0.0"), ("1.2", "1.2.0"), ("1.2.3", "1.2.3"), ("0", "0.0.0"), ("0.3", "0.3.0"),
    ("2.0.0-rc.1", "2.0.0-rc.1"),
])
def test_pad_version(text, padded):
    assert str(pad_version(text)) == padded


@pytest.mark.parametrize("text", ["01", "1.02", "1.2.3.4", "", "x", "1.", ".1", "2-rc.1", "2.0-rc.1", "1.2.3+b"])
def test_pad_version_invalid(text):
    with pytest.raises(VersionError):
        pad_version(text)


LATEST = Version(1, 2, 5)


@pytest.mark.parametrize("minimum, expected", [
    (None, "1.2.6"), ("0", "1.2.6"), ("1", "1.2.6"), ("2", "2.0.0"), ("0.3", "1.2.6"),
    ("1.1", "1.2.6"), ("1.2", "1.2.6"), ("1.3", "1.3.0"), ("1.2.4", "1.2.6"), ("1.2.13", "1.2.13"),
])
def test_next_patch_with_minimum(minimum, expected):
    assert str(next_version([LATEST], "patch", minimum=minimum)) == expected


@pytest.mark.parametrize("bump, expected", [("major", "2.0.0"), ("minor", "1.3.0"), ("patch", "1.2.6")])
def test_bumps_from_latest(bump, expected):
    assert str(next_version([LATEST], bump)) == expected


@pytest.mark.parametrize("bump, explicit, expected", [
    (None, None, "1.0.0"),        # a new name starts at 1.0.0
    ("minor", None, "1.0.0"),
    (None, "1.2", "1.2.0"),       # a partial version is padded
    ("major", "0.2", "0.2.0"),    # explicit wins over the flag
])
def test_first_version(bump, explicit, expected):
    assert str(next_version([], bump, explicit=explicit)) == expected


def test_explicit_wins_over_bump():
    assert str(next_version([LATEST], "major", explicit="1.2.7")) == "1.2.7"


@pytest.mark.parametrize("explicit", ["0.2.6", "1.2.5", "1.2", "1"])
def test_explicit_must_strictly_increase(explicit):
    with pytest.raises(VersionError, match=r"not greater than 1\.2\.5.*--version 1\.2\.6"):
        next_version([LATEST], explicit=explicit)


def test_explicit_below_minimum_is_refused():
    with pytest.raises(VersionError, match="below the minimum 2.0.0"):
        next_version([LATEST], explicit="1.3.0", minimum="2")


def test_no_flag_and_no_version_is_an_error():
    with pytest.raises(VersionError, match="--major, --minor, --patch or --version"):
        next_version([LATEST])


def test_bad_minimum_is_an_error():
    with pytest.raises(VersionError, match="'1.x' is not a version"):
        next_version([LATEST], "patch", minimum="1.x")


@pytest.mark.parametrize("have, wanted, shown", [
    (["1.2.5", "1.2.6", "2.0.0"], "1.2.9", ["1.2.6", "1.2.5", "2.0.0"]),
    (["0.9.0", "1.0.0", "1.1.0", "3.0.0"], "1.0.1", ["1.0.0", "1.1.0", "0.9.0", "3.0.0"]),
    ([f"1.0.{n}" for n in range(10)], "1.0.20", ["1.0.9", "1.0.8", "1.0.7", "1.0.6", "1.0.5"]),
    ([], "1.0.0", []),
])
def test_nearest_versions_first(have, wanted, shown):
    from pod_tasks.versions import nearest

    assert [str(v) for v in nearest([parse_version(v) for v in have], parse_version(wanted))] == shown


def versions(*texts: str) -> list[Version]:
    return sorted(parse_version(t) for t in texts)


#: issue 21's store: two releases and a pre-release of the next major.
ISSUE_21 = ["1.2.5", "1.2.6", "2.0.0-rc.1"]


@pytest.mark.parametrize("have, bump, explicit, minimum, expected", [
    # a bump applies to the latest release, never to a pre-release, and may stay below one
    (ISSUE_21, "patch", None, None, "1.2.7"),
    (ISSUE_21, "minor", None, None, "1.3.0"),
    (ISSUE_21, "major", None, None, "2.0.0"),
    (ISSUE_21, "patch", None, "1.5", "1.5.0"),
    (ISSUE_21, "patch", None, "2.0.0-rc.2", "2.0.0-rc.2"),
    (["1.4.0", "2.0.0-rc.1"], "major", None, None, "2.0.0"),
    (["1.4.0", "1.5.0-rc.2"], "minor", None, None, "1.5.0"),
    (["1.4.0", "1.4.1-rc.1"], "patch", None, None, "1.4.1"),
    (["1.4.0", "2.0.0-rc.1", "3.0.0-beta"], "minor", None, None, "1.5.0"),
    (["1.0.0-rc.1"], "major", None, None, "1.0.0"),              # pre-releases only: from 0.0.0
    (["0.1.0-rc.1"], "minor", None, None, "0.1.0"),
    (["2.0.0-rc.1"], "patch", None, None, "0.0.1"),
    # an explicit version: above every release, not in the store; a newer pre-release does not matter
    (["1.4.0"], None, "2.0.0-rc.1", None, "2.0.0-rc.1"),
    (["1.4.0", "2.0.0-rc.1"], "patch", "2.0.0-rc.2", None, "2.0.0-rc.2"),
    (["1.4.0", "2.0.0-rc.9"], None, "2.0.0-rc.10", None, "2.0.0-rc.10"),
    (["1.4.0", "2.0.0-rc.2"], None, "2.0.0-rc.1", None, "2.0.0-rc.1"),  # a pre-release below a newer one
    (ISSUE_21, None, "2.0.0-beta", None, "2.0.0-beta"),
    (ISSUE_21, None, "1.2.7-rc.1", None, "1.2.7-rc.1"),
    (ISSUE_21, None, "1.2.7", None, "1.2.7"),
    (ISSUE_21, None, "1.9", None, "1.9.0"),
    (["2.0.0-alpha"], None, "2.0.0-alpha.1", None, "2.0.0-alpha.1"),
    ([], None, "0.1.6-foo", None, "0.1.6-foo"),
    (["1.4.0", "2.0.0-rc.1"], None, "2", None, "2.0.0"),
])
def test_next_version_with_pre_releases(have, bump, explicit, minimum, expected):
    assert str(next_version(versions(*have), bump, explicit=explicit, minimum=minimum)) == expected


@pytest.mark.parametrize("have, bump, explicit, minimum, match", [
    # not greater than every release
    (ISSUE_21, None, "1.2.6", None, r"^version 1\.2\.6 is not greater than 1\.2\.6, the latest release in the store: "
                                    r"versions must increase \(try --version 1\.2\.7\)$"),
    (ISSUE_21, None, "1.2.6-rc.1", None, r"^version 1\.2\.6-rc\.1 is not greater than 1\.2\.6, the latest release"),
    (ISSUE_21, None, "1.0", None, r"^version 1\.0\.0 is not greater than 1\.2\.6,"),
    (["2.0.0"], None, "2.0.0-rc.1", None, r"not greater than 2\.0\.0,.*--version 2\.0\.1"),
    # already in the store: never written twice
    (ISSUE_21, None, "2.0.0-rc.1", None, r"^version 2\.0\.0-rc\.1 is already in the store: a version is published "
                                         r"once \(try --version 2\.0\.0-rc\.2\)$"),
    (["2.0.0-rc.1", "2.0.0-rc.2"], None, "2.0.0-rc.1", None, r"already in the store.*--version 2\.0\.0-rc\.3\)"),
    (ISSUE_21, "patch", None, "2.0.0-rc.1", r"^version 2\.0\.0-rc\.1 is already in the store"),
    # no bump said
    (["1.0.0-rc.1"], None, None, None, "the latest version is 1.0.0-rc.1: say --major"),
    (ISSUE_21, None, None, None, "the latest version is 2.0.0-rc.1: say --major"),
])
def test_next_version_with_pre_releases_refused(have, bump, explicit, minimum, match):
    with pytest.raises(VersionError, match=match):
        next_version(versions(*have), bump, explicit=explicit, minimum=minimum)


def test_nothing_in_the_store_is_ever_chosen_again():
    """Whatever the flags, the version chosen is never one the store holds, and is
    greater than each of its releases."""
    for have in (ISSUE_21, STORE, ["1.0.0-rc.1", "1.0.0-rc.2"], ["0.0.1"]):
        held = versions(*have)
        for bump in ("major", "minor", "patch"):
            for minimum in (None, "1", "2.0.0-rc.1", "2.0.0-rc.2", "3"):
                try:
                    chosen = next_version(held, bump, minimum=minimum)
                except VersionError as exc:  # only a minimum that is itself in the store is refused
                    assert parse_version(minimum) in held and "already in the store" in str(exc), (have, bump, minimum)
                    continue
                assert chosen not in held and all(chosen > v for v in held if not v.prerelease), (have, bump, minimum)


@pytest.mark.parametrize("have, expected", [
    ([], None), (["1.0.0-rc.1"], None), (["1.0.0", "1.1.0-rc.1"], "1.0.0"), (["0.9.0", "1.2.0", "2.0.0-a"], "1.2.0"),
])
def test_latest_release(have, expected):
    from pod_tasks.versions import latest_release

    found = latest_release(versions(*have))
    assert (str(found) if found else None) == expected


STORE = ["1.2.5", "1.2.6", "1.4.0", "1.5.0-rc.1", "2.0.0-rc.1", "2.0.0-rc.2", "2.0.0", "2.1.0", "3.0.0-beta"]


@pytest.mark.parametrize("pin, major, expected", [
    ("1.2.5", False, "1.4.0"),           # within the major, pre-releases skipped
    ("1.4.0", False, None),              # at the latest of its major already
    ("1.2.5", True, "2.1.0"),            # across majors, still no pre-release
    ("2.0.0-rc.1", False, "2.1.0"),      # a pre-release pin: releases of its major count ...
    ("3.0.0-beta", False, None),
    ("0.9.0", False, None),              # nothing of major 0 in the store
    ("0.9.0", True, "2.1.0"),
    ("2.1.0", True, None),
    ("9.0.0", True, None),               # never backwards
])
def test_update_target(pin, major, expected):
    from pod_tasks.versions import update_target

    found = update_target(parse_version(pin), versions(*STORE), major)
    assert (str(found) if found else None) == expected


@pytest.mark.parametrize("pin, have, expected", [
    # ... and so do the pre-releases of its own X.Y.Z, never those of another
    ("2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2"], "2.0.0-rc.2"),
    ("2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0"], "2.0.0"),
    ("2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2", "2.1.0-rc.1"], "2.0.0-rc.2"),
    ("2.0.0-rc.2", ["2.0.0-rc.1", "2.0.0-rc.2"], None),
    ("1.0.0", ["1.0.0", "1.0.1-rc.1"], None),
])
def test_update_target_of_a_pre_release(pin, have, expected):
    from pod_tasks.versions import update_target

    found = update_target(parse_version(pin), versions(*have))
    assert (str(found) if found else None) == expected


@pytest.fixture(params=["semver 3.2 (255 at most)", "older semver (any length)"])
def semver_release(request, monkeypatch):
    """The bound semver 3.2 sets itself (`Version.MAX_LENGTH`), or none, as older releases
    have: a version is accepted or refused alike either way."""
    if request.param.startswith("older"):
        monkeypatch.setattr(semver.Version, "MAX_LENGTH", 4000, raising=False)
    return request.param


LONGEST = "1.2." + "9" * 251  # 255 characters


def test_a_version_of_255_characters_parses(semver_release):
    assert str(parse_version(LONGEST)) == LONGEST
    assert str(pad_version(LONGEST)) == LONGEST


@pytest.mark.parametrize("text", [LONGEST + "9", "1.2." + "9" * 300, "1.2." + "9" * 5000, LONGEST[:-1] + "-" + "r" * 10])
def test_a_longer_version_is_one_version_error(semver_release, text):
    for parse in (parse_version, pad_version):
        with pytest.raises(VersionError) as info:
            parse(text)
        assert str(info.value).endswith(f"({len(text)} characters) is longer than 255 characters, the most a version "
                                        f"may have: write MAJOR.MINOR.PATCH, e.g. 1.2.5")
    assert not is_version(text)


@pytest.mark.parametrize("text, why", [("1." + "9" * 252, "(padded to X.Y.Z)"), ("9" * 252, "(padded to X.Y.Z)")])
def test_a_partial_version_too_long_once_padded_is_refused(semver_release, text, why):
    with pytest.raises(VersionError, match=rf"{re.escape(why)} is longer than 255 characters.*: write it in full$"):
        pad_version(text)


@pytest.mark.parametrize("bump, top", [
    ("major", "9" * 251 + ".0.0"), ("minor", "0." + "9" * 251 + ".0"), ("patch", "0.0." + "9" * 251),
])
def test_a_bump_past_255_characters_is_refused(semver_release, bump, top):
    assert len(top) == 255
    with pytest.raises(VersionError, match=rf"^the {bump} after '.*'\.\.\. \(255 characters\) is longer than 255 "
                                           rf"characters, the most a version may have: give a shorter one with "
                                           rf"--version X\.Y\.Z$"):
        next_version([parse_version(top)], bump)


def test_the_hint_after_the_longest_version_is_refused_alike(semver_release):
    with pytest.raises(VersionError, match=r"^the patch after '0\.0\.99.*--version X\.Y\.Z$"):
        next_version([parse_version("0.0." + "9" * 251)], explicit="0.0.1")
