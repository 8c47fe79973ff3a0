"""Asset names, their store keys, and the names refused as unsafe."""

from __future__ import annotations

from pathlib import Path

import pytest

from pod_tasks.errors import UnsafePathError
from pod_tasks.names import (
    check_bucket, check_relative_key, name_of_key, normalise_name, version_of_key, versioned_key,
)
from pod_tasks.store import DirStore, endpoint_folder
from pod_tasks.versions import Version


@pytest.mark.parametrize("name, version, key", [
    ("foo/bar.csv", "1.2.5", "foo/bar.1.2.5.csv"),
    ("file_with_no_ext", "10.1.6", "file_with_no_ext.10.1.6"),
    ("dots.in.filename.ext", "0.14.6", "dots.in.filename.0.14.6.ext"),
    ("a/b/c/archive.tar.gz", "2.0.0", "a/b/c/archive.tar.2.0.0.gz"),
    ("dir.with.dots/plain", "1.0.0", "dir.with.dots/plain.1.0.0"),
])
def test_versioned_key(name, version, key):
    assert versioned_key(name, version) == key
    assert versioned_key(name, Version.parse(version)) == key


@pytest.mark.parametrize("key, name, version", [
    ("foo/bar.1.2.5.csv", "foo/bar.csv", "1.2.5"),
    ("file_with_no_ext.10.1.6", "file_with_no_ext", "10.1.6"),
    ("dots.in.filename.0.14.6.ext", "dots.in.filename.ext", "0.14.6"),
    ("a/b/c/archive.tar.2.0.0.gz", "a/b/c/archive.tar.gz", "2.0.0"),
    ("dir.with.dots/plain.1.0.0", "dir.with.dots/plain", "1.0.0"),
    # pre-releases: the key's last extension is the name's, whatever dots the pre-release has
    ("foo/bar.2.0.0-rc.1.csv", "foo/bar.csv", "2.0.0-rc.1"),
    ("foo/semver.0.1.6-foo.ftw", "foo/semver.ftw", "0.1.6-foo"),   # the old tool's test_semver_works
    ("a.1.0.0-0.3.7.csv", "a.csv", "1.0.0-0.3.7"),
    ("a.1.0.0-alpha.beta.csv", "a.csv", "1.0.0-alpha.beta"),
    ("tool.2.0.0-rc1", "tool", "2.0.0-rc1"),
    ("tool.2.0.0-rc.1", "tool.1", "2.0.0-rc"),                     # the extension first
    ("x.1.2.3-x.4.5.6.csv", "x.1.2.3-x.csv", "4.5.6"),              # the rightmost version
])
def test_name_of_key(key, name, version):
    assert name_of_key(key) == (name, Version.parse(version))


@pytest.mark.parametrize("key", ["foo/bar.csv", "foo/bar.1.2.csv", "foo/bar.01.2.3.csv", "README", "1.2.3"])
def test_name_of_key_without_version(key):
    assert name_of_key(key) is None


@pytest.mark.parametrize("name, key, version", [
    ("foo/bar.csv", "foo/bar.1.2.5.csv", "1.2.5"),
    ("foo/bar.csv", "foo/bar.1.2.5.json", None),        # another extension
    ("foo/bar.csv", "foo/bar.x.1.2.5.csv", None),       # another stem
    ("foo/bar.csv", "other/bar.1.2.5.csv", None),       # another folder
    ("foo/bar.csv", "foo/sub/bar.1.2.5.csv", None),
    ("foo/bar.csv", "foo/bar.01.2.5.csv", None),        # not a version
    ("file_with_no_ext", "file_with_no_ext.10.1.6", "10.1.6"),
    ("file_with_no_ext", "file_with_no_ext.10.1.6.csv", None),
    ("dots.in.filename.ext", "dots.in.filename.0.14.6.ext", "0.14.6"),
    ("foo/bar.csv", "foo/bar.2.0.0-rc.1.csv", "2.0.0-rc.1"),
    ("foo/bar", "foo/bar.2.0.0-rc.1.csv", None),      # foo/bar.csv's, not foo/bar at 2.0.0-rc.1.csv
    ("foo/bar", "foo/bar.2.0.0-rc1", "2.0.0-rc1"),
    ("foo/bar", "foo/bar.2.0.0-rc.1", None),          # foo/bar.1's at 2.0.0-rc
    ("foo/bar.1", "foo/bar.2.0.0-rc.1", "2.0.0-rc"),
])
def test_version_of_key(name, key, version):
    expected = Version.parse(version) if version else None
    assert version_of_key(name, key) == expected


@pytest.mark.parametrize("name, version", [
    ("foo/bar.csv", "2.0.0-rc.1"), ("foo/bar.csv", "1.0.0-0.3.7"), ("tool", "2.0.0-rc1"), ("foo/bar.csv", "1.2.5"),
    ("file_with_no_ext", "10.1.6"), ("a/b/c/archive.tar.gz", "2.0.0-beta.2"),
])
def test_check_versioned_keeps_what_reads_back(name, version):
    from pod_tasks.names import check_versioned

    key = check_versioned(name, Version.parse(version))
    assert key == versioned_key(name, version)
    assert name_of_key(key) == (name, Version.parse(version))


@pytest.mark.parametrize("name, version, read", [
    ("tool", "2.0.0-rc.1", "tool.1 at 2.0.0-rc"),
    ("foo/bar.csv", "1.0.0-rc.1.2.3", "foo/bar.1.0.0-rc.csv at 1.2.3"),
])
def test_check_versioned_refuses_what_reads_back_otherwise(name, version, read):
    from pod_tasks.errors import VersionError
    from pod_tasks.names import check_versioned

    with pytest.raises(VersionError, match=f"would be stored as .*, which reads back as {read}"):
        check_versioned(name, Version.parse(version))


@pytest.mark.parametrize("raw, name", [
    ("foo/bar.csv", "foo/bar.csv"),
    ("/foo/bar.csv", "foo/bar.csv"),
    ("file_with_no_ext", "file_with_no_ext"),
    ("a b/ü.txt", "a b/ü.txt"),
])
def test_normalise_name(raw, name):
    assert normalise_name(raw) == name


@pytest.mark.parametrize("raw, problem", [
    ("https://example.com/x.json", "a https:// URL: only s3://bucket/key URLs are fetched"),
    ("gs://bucket/x.json", "a gs:// URL: only s3://bucket/key URLs are fetched"),
    ("", "empty"),
    ("/", "empty"),
    ("//srv/share/x.csv", "absolute"),
    ("C:/data/x.csv", "absolute"),
    ("c:x.csv", "absolute"),
    ("../x.csv", "'..' segment"),
    ("foo/../../x.csv", "'..' segment"),
    ("foo/./x.csv", "'..' segment"),
    ("foo//x.csv", "empty"),
    ("foo/", "empty"),
    ("foo\\x.csv", "backslash"),
    ("foo\x00.csv", "control character"),
    ("foo\n.csv", "control character"),
    ("foo\t.csv", "control character"),
    ("foo\x7f.csv", "control character"),
    ("x" * 1025, "longer than 1024"),
])
def test_bad_names_raise(raw, problem):
    with pytest.raises(UnsafePathError, match=problem) as info:
        normalise_name(raw)
    assert "\n" not in str(info.value).replace("\\n", "")


def test_check_relative_key_names_what():
    with pytest.raises(UnsafePathError, match=r"^invalid store key '/abs': it is an absolute path$"):
        check_relative_key("/abs", "store key")
    assert check_relative_key("a/b.c") == "a/b.c"


@pytest.mark.parametrize("bucket", [
    "abc", "my-versioned-assets", "example-bucket", "a.b.c", "0ab", "x" * 63,
    "my-ap-1234567890-s3alias", "base--usw2-az1--x-s3",  # read as buckets: an access point alias, a directory bucket
])
def test_check_bucket_takes_s3_bucket_names(bucket):
    assert check_bucket(bucket) == bucket


RULE = "(S3 bucket names are 3 to 63 lowercase letters, digits, '.' and '-')"


@pytest.mark.parametrize("bucket, problem", [
    ("a", "it is 1 character long"),
    ("ab", "it is 2 characters long"),
    ("x" * 64, "it is 64 characters long"),
    ("", "it is 0 characters long"),
    ("UPPER", "it has capital letters"),
    ("Legacy_Bucket", "it has capital letters"),
    ("missing_assets.yaml", "it has '_'"),
    ("b:80", "it has ':'"),
    ("a b", "it has ' '"),
    ("caf\u00e9", "it has '\u00e9'"),
    ("-abc", "it does not begin and end with a letter or digit"),
    ("abc.", "it does not begin and end with a letter or digit"),
    ("a..b", "it has '..'"),
    ("192.168.5.4", "it is an IP address"),
])
def test_check_bucket_refuses_what_s3_refuses(bucket, problem):
    with pytest.raises(UnsafePathError) as info:
        check_bucket(bucket)
    assert str(info.value) == f"invalid bucket {bucket!r}: {problem} {RULE}"


def test_no_bucket_is_one_of_the_caches_own_top_level_names():
    """The cache keeps its own files and folders beside the buckets' folders: no name S3
    allows for a bucket is one of them."""
    from pod_tasks import layout

    owned = [layout.META, layout.OLD_MARKS, layout.MISSING, layout.TAG, "_endpoint-127.0.0.1-9000", "_dir-0a1b2c3d"]
    for name in owned:
        with pytest.raises(UnsafePathError):
            check_bucket(name)
    folder = DirStore(Path("store")).name
    with pytest.raises(UnsafePathError):
        check_bucket(folder)
    with pytest.raises(UnsafePathError):
        check_bucket(endpoint_folder("http://127.0.0.1:9000").rstrip("/"))


def test_a_key_with_a_version_too_long_reads_as_no_version():
    assert name_of_key("foo/bar.1.2." + "9" * 251 + ".csv") == ("foo/bar.csv", Version(1, 2, int("9" * 251)))
    assert name_of_key("foo/bar.1.2." + "9" * 252 + ".csv") is None
