"""migrate.py: the old JSON manifest into assets.yaml, every other byte kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pod_tasks.errors import ManifestError, PodError
from pod_tasks.manifest import load_manifest
from pod_tasks.migrate import convert, import_manifest, read_old_manifest
from pod_tasks.versions import parse_version
from tests.conftest import write

OLD = {"/new/c.csv": "1.2.5", "new/d.bin": "0.1.0"}
ADDED = "  new/c.csv: 1.2.5\n  new/d.bin: 0.1.0\n"


def old_manifest(folder: Path, entries: dict) -> Path:
    path = folder / "versioned_assets.json"
    path.write_text(json.dumps(entries, indent=4), encoding="utf-8")
    return path


@pytest.mark.parametrize("before, after", [
    (  # block mapping with comments, a trailing comment, blank lines and a later key
        "# team assets\nstore: s3://assets   # the bucket\nassets:\n  foo/a.csv: 1.0.0   # first\n"
        "  foo/b.csv: {version: 1.0.0}  # second\n\n# the end\nfiles: []\n",
        "# team assets\nstore: s3://assets   # the bucket\nassets:\n  foo/a.csv: 1.0.0   # first\n"
        "  foo/b.csv: {version: 1.0.0}  # second\n" + ADDED + "\n# the end\nfiles: []\n",
    ),
    (  # a nested pin last, four-space indent, no newline at the end
        "store: s3://assets\nassets:\n    foo/a.csv:\n        version: 1.0.0\n        source: data/a.csv",
        "store: s3://assets\nassets:\n    foo/a.csv:\n        version: 1.0.0\n        source: data/a.csv\n"
        "    new/c.csv: 1.2.5\n    new/d.bin: 0.1.0\n",
    ),
    (  # `assets:` with nothing under it, a comment on its line
        "store: s3://assets\nassets:   # none yet\ntimeout: 1d\n",
        "store: s3://assets\nassets:   # none yet\n" + ADDED + "timeout: 1d\n",
    ),
    (  # `assets: ~`
        "store: s3://assets\nassets: ~\n",
        "store: s3://assets\nassets: \n" + ADDED,
    ),
    (  # a flow mapping
        "store: s3://assets\nassets: {foo/a.csv: 1.0.0}  # inline\n",
        "store: s3://assets\nassets: {foo/a.csv: 1.0.0, new/c.csv: 1.2.5, new/d.bin: 0.1.0}  # inline\n",
    ),
    (  # an empty flow mapping
        "store: s3://assets\nassets: {}\n",
        "store: s3://assets\nassets: {new/c.csv: 1.2.5, new/d.bin: 0.1.0}\n",
    ),
    (  # no `assets:` key at all
        "store: s3://assets   # only a store\n",
        "store: s3://assets   # only a store\nassets:\n" + ADDED,
    ),
])
def test_new_entries_are_appended_and_every_other_byte_kept(tmp_path, before, after):
    path = tmp_path / "assets.yaml"
    path.write_bytes(before.encode())
    result = import_manifest(old_manifest(tmp_path, OLD), path)
    assert path.read_bytes().decode() == after
    assert (result.added, result.created, result.conflicts) == (["new/c.csv", "new/d.bin"], False, [])
    assert load_manifest(path).assets["new/c.csv"].version == parse_version("1.2.5")


def test_every_kind_of_old_entry(tmp_path):
    project = tmp_path / "project"
    (project / "scratch").mkdir(parents=True)
    (project / "scratch" / "try.obj").write_bytes(b"local")
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"outside")
    old = old_manifest(project, {
        "/foo/bar.csv": "1.2.5",                      # leading slash, version
        "foo/plain.json": "0.1.6",                    # no slash
        "/dev/try.obj": "scratch/try.obj",            # local path, relative to the old manifest
        "/dev/abs.bin": str(outside),                 # local path outside the project
        "/other/x.bin": "s3://other-bucket/x.bin",    # any S3 object
        "/bad/gone.csv": "scratch/nothing.txt",       # neither: reported
        "/bad/bucket.csv": "s3://only-a-bucket",      # not an object: reported
        "/../escape.csv": "1.0.0",                    # not a name: reported
    })
    result = import_manifest(old, project / "assets.yaml", "s3://assets")
    assert result.created
    assert (project / "assets.yaml").read_text() == (
        "store: s3://assets\nassets:\n  foo/bar.csv: 1.2.5\n  foo/plain.json: 0.1.6\n  dev/try.obj: scratch/try.obj\n"
        f"  dev/abs.bin: {outside}\n  other/x.bin: s3://other-bucket/x.bin\n"
    )
    assert result.problems == [
        "'/bad/gone.csv': 'scratch/nothing.txt' is neither a version (X.Y.Z), an s3:// URL nor an existing file",
        "'/bad/bucket.csv': 's3://only-a-bucket' is not an s3://bucket/key URL",
        "'/../escape.csv': invalid name '../escape.csv': it has an empty, '.' or '..' segment: fix the name by hand",
    ]
    pins = load_manifest(project / "assets.yaml").assets
    assert pins["dev/try.obj"].override == str(project / "scratch" / "try.obj")
    assert pins["dev/abs.bin"].override == str(outside)
    assert pins["other/x.bin"].override == "s3://other-bucket/x.bin"


def test_identical_names_are_kept_and_conflicts_reported_never_overwritten(tmp_path):
    text = "store: s3://assets\nassets:\n  foo/a.csv: {version: 1.0.0, sha256: " + "a" * 64 + "}\n  foo/b.csv: 2.0.0\n"
    path = write(tmp_path / "assets.yaml", text)
    result = import_manifest(old_manifest(tmp_path, {"/foo/a.csv": "1.0.0", "/foo/b.csv": "3.0.0"}), path)
    assert path.read_text() == text
    assert result.unchanged == ["foo/a.csv"] and result.added == []
    assert result.conflicts == [
        "foo/b.csv: assets.yaml line 4 pins it differently; the old manifest says '3.0.0' (kept as it was)"
    ]


@pytest.mark.parametrize("existing, store, message", [
    (None, None, "assets.yaml has no store: give --store s3://bucket"),
    ("assets:\n", None, "assets.yaml has no store: give --store s3://bucket"),
    ("store: s3://assets\nassets:\n", "s3://other", "already has store: s3://assets, not s3://other"),
    (None, "http://x", "store 'http://x': use s3://bucket"),
])
def test_store_problems_write_nothing(tmp_path, existing, store, message):
    path = tmp_path / "assets.yaml"
    if existing is not None:
        path.write_text(existing)
    with pytest.raises(PodError, match=message):
        import_manifest(old_manifest(tmp_path, OLD), path, store)
    assert (path.read_text() if path.exists() else None) == existing


def test_store_is_added_to_a_manifest_without_one(tmp_path):
    path = write(tmp_path / "assets.yaml", "# overrides only\nassets:\n  x.bin: s3://bkt/x.bin\n")
    import_manifest(old_manifest(tmp_path, OLD), path, "s3://assets")
    assert path.read_text() == "# overrides only\nstore: s3://assets\nassets:\n  x.bin: s3://bkt/x.bin\n" + ADDED


@pytest.mark.parametrize("text, message", [
    ("{", r"versioned_assets.json:1: not valid JSON"),
    ('{\n  "/a.csv": "1.0.0",\n  "/b.csv": 1\n}', r"the value of '/b.csv' must be a string"),
    ('["/a.csv"]', r"the old manifest is a JSON object"),
])
def test_bad_old_manifest_is_one_line(tmp_path, text, message):
    path = tmp_path / "versioned_assets.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_old_manifest(path)


def test_convert_writes_local_paths_relative_to_assets_yaml(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("x")
    entries, problems = convert({"/x.csv": "data/x.csv"}, tmp_path, tmp_path)
    assert (entries, problems) == ({"x.csv": "data/x.csv"}, [])
    entries, _ = convert({"/x.csv": "x.csv"}, tmp_path / "data", tmp_path)
    assert entries == {"x.csv": "data/x.csv"}


def test_windows_line_endings_are_kept(tmp_path):
    path = tmp_path / "assets.yaml"
    path.write_bytes(b"store: s3://assets\r\nassets:\r\n  foo/a.csv: 1.0.0  # first\r\n")
    import_manifest(old_manifest(tmp_path, {"/new/c.csv": "1.2.5"}), path)
    assert path.read_bytes() == b"store: s3://assets\r\nassets:\r\n  foo/a.csv: 1.0.0  # first\r\n  new/c.csv: 1.2.5\r\n"


def test_pre_release_versions_import(tmp_path):
    """The old tool's own test_semver_works pins /foo/semver.ftw to 0.1.6-foo."""
    path = tmp_path / "assets.yaml"
    path.write_text("store: s3://assets\nassets:\n  foo/a.csv: 1.0.0\n")
    old = old_manifest(tmp_path, {"/foo/semver.ftw": "0.1.6-foo", "/foo/next.csv": "2.0.0-rc.1"})
    result = import_manifest(old, path)
    assert (result.added, result.problems) == (["foo/semver.ftw", "foo/next.csv"], [])
    assert path.read_text() == (
        "store: s3://assets\nassets:\n  foo/a.csv: 1.0.0\n  foo/semver.ftw: 0.1.6-foo\n  foo/next.csv: 2.0.0-rc.1\n"
    )
    assert load_manifest(path).assets["foo/semver.ftw"].version == parse_version("0.1.6-foo")
    assert import_manifest(old, path).unchanged == ["foo/semver.ftw", "foo/next.csv"]
