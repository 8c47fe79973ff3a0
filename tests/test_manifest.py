"""assets.yaml: every pin kind, every bad-manifest case, and the one-entry edit of set_pin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import stat
from pathlib import Path

import pytest

from pod_tasks.errors import AssetNotFound, ManifestError, PodError
from pod_tasks.manifest import find_manifest, load_manifest, parse_manifest, set_pin
from pod_tasks.versions import Version
from tests.conftest import write

SHA = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
NEW_SHA = "a" * 64

VALID = f"""\
# the project's assets
store: s3://my-versioned-assets/team
cache_dir: .cache
timeout: 12h
immutable: [frozen-a, frozen-b]
assets:
  foo/bar.csv: 1.2.5
  /foo/bar.json: {{version: 0.1.6, sha256: {SHA}}}
  dev/try.obj: scratch/try.obj
  other/x.bin: s3://other-bucket/x.bin
  foo/new.csv: {{source: data/new.csv}}
  foo/both.csv:
    version: 2.0.0
    source: data/both.csv
files:
  - s3://example-bucket/example.json
  - s3://example-bucket/dir/other.json
"""


def test_valid_manifest_every_pin_kind(tmp_path):
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "try.obj").write_bytes(b"o")
    path = tmp_path / "assets.yaml"
    path.write_text(VALID, encoding="utf-8")
    m = load_manifest(path)
    assert m.path == path.absolute()
    assert m.store == "s3://my-versioned-assets/team"
    assert m.cache_dir == tmp_path / ".cache"
    assert m.timeout == 12 * 3600
    assert m.immutable == {"frozen-a", "frozen-b"}
    assert m.files == ("s3://example-bucket/example.json", "s3://example-bucket/dir/other.json")
    assert list(m.assets) == ["foo/bar.csv", "foo/bar.json", "dev/try.obj", "other/x.bin", "foo/new.csv", "foo/both.csv"]
    short, long, local, remote, source_only, both = m.assets.values()
    assert (short.line, short.version, short.sha256, short.override, short.source) == (7, Version(1, 2, 5), None, None, None)
    assert (long.line, long.version, long.sha256) == (8, Version(0, 1, 6), SHA.lower())
    assert (local.line, local.version, local.override) == (9, None, str(tmp_path / "scratch" / "try.obj"))
    assert (remote.line, remote.version, remote.override) == (10, None, "s3://other-bucket/x.bin")
    assert (source_only.version, source_only.override, source_only.source) == (None, None, tmp_path / "data" / "new.csv")
    assert (both.line, both.version, both.source) == (12, Version(2, 0, 0), tmp_path / "data" / "both.csv")
    assert m.pin("/foo/bar.csv") is m.pin("foo/bar.csv") is short


def test_mirrors_are_base_urls_in_order(tmp_path):
    text = "store: s3://bkt\nmirrors:\n  - https://cdn.example.com/assets/\n  - http://127.0.0.1:8000\n  - file:///srv/m\n"
    m = parse_manifest(text, tmp_path / "assets.yaml")
    assert m.mirrors == ("https://cdn.example.com/assets", "http://127.0.0.1:8000", "file:///srv/m")
    assert parse_manifest("store: s3://bkt\nmirrors:\n", tmp_path / "assets.yaml").mirrors == ()
    assert parse_manifest("store: s3://bkt\n", tmp_path / "assets.yaml").mirrors == ()


def test_overrides_alone_need_no_store(tmp_path):
    m = parse_manifest("assets:\n  a.bin: s3://bkt/a.bin\nfiles: [s3://bkt/c.json]\n", tmp_path / "assets.yaml")
    assert m.store is None and m.assets["a.bin"].override == "s3://bkt/a.bin"


@pytest.mark.parametrize("name, fragment", [
    ("nope.csv", "'nope.csv' is not in"),
    ("../x", "invalid name '../x'"),
])
def test_pin_of_unknown_name(tmp_path, name, fragment):
    m = parse_manifest("store: s3://bkt\nassets:\n  a.csv: 1.0.0\n", tmp_path / "assets.yaml")
    with pytest.raises(AssetNotFound, match=fragment):
        m.pin(name)


BAD = [
    # (id, text, line, fragment)
    ("unknown top key", "store: s3://bkt\nasets:\n  a: 1.0.0\n", 2, "unknown key 'asets'"),
    ("top key twice", "store: s3://bkt\nstore: s3://cde\n", 2, "'store' appears twice"),
    ("s3:/ with one slash", "assets: {}\nstore: s3:/my-assets\n", 2,
     "store 's3:/my-assets' looks like an S3 URL with a slash missing: write `store: s3://my-assets`"),
    ("unknown pin key", "store: s3://bkt\nassets:\n  a:\n    version: 1.0.0\n    sha: abc\n", 5, "a: unknown key 'sha'"),
    ("pin key twice", "store: s3://bkt\nassets:\n  a: {version: 1.0.0, version: 2.0.0}\n", 3, "a: 'version' appears twice"),
    ("duplicate after normalising", "store: s3://bkt\nassets:\n  foo: 1.0.0\n\n  /foo: 2.0.0\n", 5, "'/foo' is listed twice (line 3)"),
    ("leading zero version", "store: s3://bkt\nassets:\n  a.csv: 01.1.9\n", 3, "a.csv: '01.1.9' is neither a version"),
    ("partial version", "store: s3://bkt\nassets:\n  a.csv: 0.1\n", 3, "a.csv: '0.1' is neither a version"),
    ("bad long version", "store: s3://bkt\nassets:\n  a.csv:\n    version: 0.1\n", 4, "a.csv: '0.1' is not a version"),
    ("neither version path nor URL", "store: s3://bkt\nassets:\n  a.csv: scratch/missing.csv\n", 3,
     "a.csv: 'scratch/missing.csv' is neither a version (X.Y.Z), an existing file nor an s3:// URL"),
    ("null pin", "store: s3://bkt\nassets:\n  a.csv:\n", 3, "the pin of a.csv must be a single value"),
    ("store under an unknown home", "store: '~nosuchuser0/store'\n", 1, "store '~nosuchuser0/store': cannot expand its ~"),
    ("cache_dir under an unknown home", "cache_dir: ~nosuchuser0\n", 1, "cache_dir '~nosuchuser0': cannot expand its ~"),
    ("source under an unknown home", "store: s\nassets:\n  a.csv: {source: ~nosuchuser0/a.csv}\n", 3,
     "a.csv: source '~nosuchuser0/a.csv': cannot expand its ~"),
    ("sha256 alone", "store: s3://bkt\nassets:\n  a.csv: {sha256: " + "0" * 64 + "}\n", 3, "a.csv: a pin needs `version:`"),
    ("sha256 with source only", "store: s3://bkt\nassets:\n  a.csv: {source: a.csv, sha256: " + "0" * 64 + "}\n", 3,
     "a.csv: `sha256:` goes with a `version:`"),
    ("short sha256", "store: s3://bkt\nassets:\n  a.csv: {version: 1.0.0, sha256: 9f86d0}\n", 3, "a.csv: sha256 must be 64 hex digits"),
    ("non-hex sha256", "store: s3://bkt\nassets:\n  a.csv:\n    version: 1.0.0\n    sha256: " + "g" * 64 + "\n", 5,
     "a.csv: sha256 must be 64 hex digits"),
    ("files not s3", "files:\n  - s3://bkt/ok.json\n  - https://example.com/x.json\n", 3,
     "a `files:` entry 'https://example.com/x.json' is not an s3://bucket/key URL"),
    ("files bucket only", "files:\n  - s3://bucket\n", 2, "'s3://bucket' names a bucket but no object"),
    ("files dotdot", "files:\n  - s3://bkt/../etc/x\n", 2, "'..' segment"),
    ("files twice", "files:\n  - s3://bkt/x\n  - s3://bkt/x\n", 3, "s3://bkt/x is listed twice under `files:`"),
    ("files not a list", "files: s3://bkt/x\n", 1, "files must be a list"),
    ("files entry without url", "files:\n  - {sha256: " + "0" * 64 + "}\n", 2, "a `files:` entry needs `url:`"),
    ("files entry unknown key", "files:\n  - {url: s3://bkt/x, md5: abc}\n", 2, "a `files:` entry: unknown key 'md5'"),
    ("files entry short sha256", "files:\n  - url: s3://bkt/x\n    sha256: abc\n", 3, "s3://bkt/x: sha256 must be 64 hex digits"),
    ("files entry bad url", "files:\n  - {url: https://x/y}\n", 2, "'https://x/y' is not an s3://bucket/key URL"),
    ("files entry twice", "files:\n  - s3://bkt/x\n  - {url: s3://bkt/x}\n", 3, "s3://bkt/x is listed twice"),
    ("build metadata", "store: s3://bkt\nassets:\n  a.csv: 1.0.0+build\n", 3, "a.csv: '1.0.0+build' is neither a version"),
    ("pre-release leading zero", "store: s3://bkt\nassets:\n  a.csv:\n    version: 1.0.0-rc.01\n", 4,
     "a.csv: '1.0.0-rc.01' is not a version"),
    ("override dotdot", "assets:\n  a.bin: s3://bkt/x/../../y\n", 2, "a.bin: the override 's3://bkt/x/../../y'"),
    ("invalid YAML", "store: s3://bkt\nassets:\n  a: [1.0.0\n  b: 2.0.0\n", "3:6", "this '[' is not closed on its line"),
    ("tab indentation", "store: s3://bkt\nassets:\n\ta: 1.0.0\n", "3:1", "a tab indents this line"),
    ("two documents", "store: s3://bkt\n---\nassets: {}\n", "2:1", "not valid YAML: but found another document"),
    ("empty file", "", 1, "the file is empty"),
    ("only comments", "# nothing yet\n\n", 1, "the file is empty"),
    ("a list", "- a\n- b\n", 1, "the file must be a mapping"),
    ("missing store", "assets:\n  a.csv: 1.0.0\n", 1, "no `store:`: add `store: s3://bucket`"),
    ("missing store for source", "timeout: 1d\nassets:\n  a.csv: {source: a.csv}\n", 1, "no `store:`"),
    ("store not a URL we know", "store: https://example.com/assets\n", 1, "store 'https://example.com/assets': use s3://"),
    ("store empty", "store:\n", 1, "store must be a single value"),
    ("store prefix dotdot", "store: s3://abc/../..\nassets:\n  a.csv: 1.0.0\n", 1, "store 's3://abc/../..': invalid prefix"),
    ("bad timeout", "store: s3://bkt\ntimeout: soon\n", 2, "timeout 'soon' is not a duration"),
    ("mirrors not a list", "store: s3://bkt\nmirrors: https://cdn.example.com\n", 2, "mirrors must be a list"),
    ("mirror ftp", "store: s3://bkt\nmirrors:\n  - https://cdn.example.com\n  - ftp://m.example.com/a\n", 4,
     "mirror 'ftp://m.example.com/a' is not a base URL: write https://host/path"),
    ("mirror s3", "store: s3://bkt\nmirrors: [s3://other]\n", 2, "mirror 's3://other' is not a base URL"),
    ("mirror no host", "store: s3://bkt\nmirrors: ['https:///x']\n", 2, "is not a base URL"),
    ("mirror relative file", "store: s3://bkt\nmirrors: ['file:mirror']\n", 2, "file:///absolute/path"),
    ("mirror with a query", "store: s3://bkt\nmirrors: ['https://cdn.example.com/a?x=1']\n", 2, "is not a base URL"),
    ("mirror bad port", "store: s3://bkt\nmirrors: ['http://m:0/']\n", 2, "is not a base URL"),
    ("mirror twice", "store: s3://bkt\nmirrors:\n  - https://m.example.com/a/\n  - https://m.example.com/a\n", 4,
     "mirror 'https://m.example.com/a' is listed twice (line 3)"),
    ("immutable not a list", "store: s3://bkt\nimmutable: {a: 1}\n", 2, "immutable must be a list"),
    ("assets a list", "store: s3://bkt\nassets:\n  - a.csv\n", 3, "assets must be a mapping"),
    ("absolute name (drive)", "store: s3://bkt\nassets:\n  C:/data/a.csv: 1.0.0\n", 3, "'C:/data/a.csv': it is an absolute path"),
    ("absolute name (UNC)", "store: s3://bkt\nassets:\n  //srv/a.csv: 1.0.0\n", 3, "it is an absolute path"),
    ("dotdot name", "store: s3://bkt\nassets:\n  foo/../../a.csv: 1.0.0\n", 3, "'foo/../../a.csv': it has an empty, '.' or '..' segment"),
    ("empty segment", "store: s3://bkt\nassets:\n  foo//a.csv: 1.0.0\n", 3, "'foo//a.csv': it has an empty"),
    ("backslash name", "store: s3://bkt\nassets:\n  foo\\a.csv: 1.0.0\n", 3, "it contains a backslash"),
    ("escaped control char", 'store: s3://bkt\nassets:\n  "foo\\ta.csv": 1.0.0\n', 3, "it contains a control character"),
    ("escaped NUL", 'store: s3://bkt\nassets:\n  "foo\\0a.csv": 1.0.0\n', 3, "it contains a control character"),
    ("raw control char", "store: s3://bkt\nassets:\n  ok.csv: 1.0.0\n  foo\x01a.csv: 1.0.0\n", 4, "character '\\x01' is not allowed"),
    ("raw NUL", "store: s3://bkt\nassets:\n\n  foo\x00a.csv: 1.0.0\n", 4, "character '\\x00' is not allowed"),
]


@pytest.mark.parametrize("text, line, fragment", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_manifest(tmp_path, text, line, fragment):
    path = tmp_path / "assets.yaml"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"assets.yaml:{line}: "), message
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist: create it, or set POD_ASSETS"),
    (b"store: s3://bkt\nassets:\n  caf\xe9: 1.0.0\n", "cannot read"),
])
def test_unreadable_manifest(tmp_path, content, fragment):
    path = tmp_path / "assets.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ManifestError, match=rf"^assets\.yaml:1: .*{fragment}"):
        load_manifest(path)


def test_find_manifest_walks_up(tmp_path):
    (tmp_path / "assets.yaml").write_text("store: s3://bkt\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_manifest(deep) == tmp_path / "assets.yaml"
    (tmp_path / "a" / "assets.yaml").write_text("store: s3://cde\n")
    assert find_manifest(deep) == tmp_path / "a" / "assets.yaml"


# --- set_pin --------------------------------------------------------------------------

ORIGINAL = [
    "# Assets of the project.   \n",
    "store: s3://bkt   # the bucket\n",
    "\n",
    "assets:\n",
    "  # short pins\n",
    "  foo/short.csv: 1.2.5  # keep this comment\n",
    "  'quoted/name.csv': \"1.0.0\"\n",
    "  foo/flow.json: {version: 0.1.6, sha256: " + "b" * 64 + ", source: \"data/flow.json\"}\n",
    "  /foo/block.csv:\n",
    "    version: 1.0.0\n",
    "    source: 'data/block.csv'\n",
    "\n",
    "  # after the block\n",
    "  foo/new.csv: {source: data/new.csv}\n",
    "files:\n",
    "  - s3://xyz/y.json\n",
]

NEW = f"version: 2.0.0, sha256: {NEW_SHA}"
EDITS = {
    # name: (first line index, last line index, replacement lines)
    "foo/short.csv": (5, 5, ["  foo/short.csv: {" + NEW + "}  # keep this comment\n"]),
    "quoted/name.csv": (6, 6, ["  'quoted/name.csv': {" + NEW + "}\n"]),
    "foo/flow.json": (7, 7, ["  foo/flow.json: {" + NEW + ", source: \"data/flow.json\"}\n"]),
    "foo/block.csv": (9, 10, ["    {" + NEW + ", source: 'data/block.csv'}\n"]),
    "foo/new.csv": (13, 13, ["  foo/new.csv: {" + NEW + ", source: data/new.csv}\n"]),
}


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("name", list(EDITS))
def test_set_pin_changes_only_that_entry(tmp_path, name, newline):
    path = tmp_path / "assets.yaml"
    lines = [line.replace("\n", newline) for line in ORIGINAL]
    path.write_bytes("".join(lines).encode())
    first, last, replacement = EDITS[name]
    expected = lines[:first] + [line.replace("\n", newline) for line in replacement] + lines[last + 1:]

    manifest = set_pin(path, name, Version(2, 0, 0), NEW_SHA)

    assert path.read_bytes() == "".join(expected).encode()
    pin = manifest.assets[name]
    assert (pin.version, pin.sha256) == (Version(2, 0, 0), NEW_SHA)
    assert load_manifest(path).assets == manifest.assets
    if name in ("foo/flow.json", "foo/block.csv", "foo/new.csv"):
        assert pin.source is not None and pin.source.name == Path(name).name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.yaml"]  # no temp file left


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_set_pin_keeps_permissions(tmp_path):
    path = tmp_path / "assets.yaml"
    path.write_text("store: s3://bkt\nassets:\n  a.csv: 1.0.0\n")
    path.chmod(0o640)
    set_pin(path, "a.csv", Version(1, 0, 1), NEW_SHA)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == f"store: s3://bkt\nassets:\n  a.csv: {{version: 1.0.1, sha256: {NEW_SHA}}}\n"


@pytest.mark.parametrize("text, name, error, fragment", [
    ("store: s3://bkt\nassets:\n  a.csv: 1.0.0\n", "b.csv", AssetNotFound, "'b.csv' is not under `assets:`"),
    ("store: s3://bkt\nassets:\n  a.csv: 1.0.0\n  b.csv: 01.0.0\n", "a.csv", ManifestError, "assets.yaml:4:"),
    ("store: s3://bkt\nassets:\n  a.csv: &v 1.0.0\n  b.csv: *v\n", "b.csv", ManifestError,
     "^assets.yaml:4: b.csv: its pin is a YAML alias or anchor"),
    ("store: s3://bkt\nassets:\n  a.csv: &v 1.0.0\n  b.csv: *v\n", "a.csv", ManifestError,
     "^assets.yaml:3: a.csv: its pin is a YAML alias or anchor"),
])
def test_set_pin_refusals_leave_the_file_alone(tmp_path, text, name, error, fragment):
    path = tmp_path / "assets.yaml"
    path.write_bytes(text.encode())
    with pytest.raises(error, match=fragment):
        set_pin(path, name, Version(2, 0, 0), NEW_SHA)
    assert path.read_bytes() == text.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.yaml"]


def test_concurrent_edits_are_serialised_and_leave_no_lock(tmp_path):
    """Processes pinning different names at once, each several times: every edit lands
    (none lost to a lock file removed under a waiting process), and no lock file stays."""
    names = [f"n{i}/x.csv" for i in range(6)]
    path = tmp_path / "assets.yaml"
    path.write_text("store: store\nassets:\n" + "".join(f"  {n}: 1.0.0\n" for n in names))
    code = textwrap.dedent("""
        import sys
        from pod_tasks.manifest import set_pin
        from pod_tasks.versions import Version
        for patch in range(1, 6):
            set_pin(sys.argv[1], sys.argv[2], Version(1, 0, patch), "a" * 64)
    """)
    runs = [subprocess.Popen([sys.executable, "-c", code, str(path), n]) for n in names]
    assert [run.wait(timeout=120) for run in runs] == [0] * len(names)
    pins = load_manifest(path).assets
    assert {n: str(pins[n].version) for n in names} == {n: "1.0.5" for n in names}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.yaml"]


# --- pre-releases and locked `files:` entries --------------------------------------------

def test_pre_release_pins_short_and_long(tmp_path):
    path = write(tmp_path / "assets.yaml", f"""
        store: s3://bkt
        assets:
          foo/semver.ftw: 0.1.6-foo
          foo/bar.csv: {{version: 2.0.0-rc.1, sha256: {NEW_SHA}}}
        """)
    assets = load_manifest(path).assets
    assert assets["foo/semver.ftw"].version == Version.parse("0.1.6-foo")
    assert (assets["foo/bar.csv"].version, assets["foo/bar.csv"].sha256) == (Version.parse("2.0.0-rc.1"), NEW_SHA)


def test_files_entries_with_and_without_sha256(tmp_path):
    path = write(tmp_path / "assets.yaml", f"""
        files:
          - s3://bkt/plain.json
          - {{url: s3://bkt/locked.json, sha256: {NEW_SHA.upper()}}}
          - url: "s3://bkt/block.json"
            sha256: {"c" * 64}
        """)
    manifest = load_manifest(path)
    assert manifest.files == ("s3://bkt/plain.json", "s3://bkt/locked.json", "s3://bkt/block.json")
    assert manifest.file_sha256 == {"s3://bkt/locked.json": NEW_SHA, "s3://bkt/block.json": "c" * 64}


LOCKABLE = (
    "store: s3://bkt   # the bucket\n"
    "assets:\n"
    "  a.csv: 1.0.0    # a\n"
    "  b.csv: {version: 2.0.0-rc.1, source: 'data/b,1.csv'}\n"
    "  c.csv: 1.1.0\n"
    "files:\n"
    "  - s3://xyz/y.json   # y\n"
    "  - s3://xyz/a,b.json\n"
    "  - {url: 's3://xyz/z.json'}\n"
    "flow: 1\n"
)


def test_set_pins_rewrites_those_entries_at_once(tmp_path):
    from pod_tasks.manifest import set_pins

    path = tmp_path / "assets.yaml"
    path.write_bytes(LOCKABLE.replace("flow: 1\n", "").encode())
    sha = {"a": "a" * 64, "b": "b" * 64, "y": "1" * 64, "ab": "2" * 64, "z": "3" * 64}
    manifest = set_pins(
        path, {"a.csv": (Version(1, 0, 0), sha["a"]), "b.csv": (Version.parse("2.0.0-rc.2"), sha["b"])},
        {"s3://xyz/y.json": sha["y"], "s3://xyz/a,b.json": sha["ab"], "s3://xyz/z.json": sha["z"]},
    )
    assert path.read_text() == (
        "store: s3://bkt   # the bucket\n"
        "assets:\n"
        f"  a.csv: {{version: 1.0.0, sha256: {sha['a']}}}    # a\n"
        f"  b.csv: {{version: 2.0.0-rc.2, sha256: {sha['b']}, source: 'data/b,1.csv'}}\n"
        "  c.csv: 1.1.0\n"
        "files:\n"
        f"  - {{url: s3://xyz/y.json, sha256: {sha['y']}}}   # y\n"
        f"  - {{url: \"s3://xyz/a,b.json\", sha256: {sha['ab']}}}\n"
        f"  - {{url: 's3://xyz/z.json', sha256: {sha['z']}}}\n"
    )
    assert manifest == load_manifest(path)
    assert manifest.file_sha256 == {"s3://xyz/y.json": sha["y"], "s3://xyz/a,b.json": sha["ab"], "s3://xyz/z.json": sha["z"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.yaml"]


def test_an_edit_removes_the_copy_a_killed_edit_left_and_writes_through_a_link(tmp_path):
    from pod_tasks.manifest import set_pins

    shared = tmp_path / "shared" / "assets.yaml"
    shared.parent.mkdir()
    shared.write_bytes(LOCKABLE.replace("flow: 1\n", "").encode())
    killed = shared.with_name(f".assets.yaml.{'0a' * 16}.tmp")  # a killed edit's copy
    killed.write_text("store: s3://half")
    mine = shared.with_name(".assets.yaml.mine.tmp")  # not an edit's name: the user's
    mine.write_text("keep")
    link = tmp_path / "project" / "assets.yaml"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "shared" / "assets.yaml")
    set_pins(link, {"c.csv": (Version(1, 1, 0), "c" * 64)})
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "shared", "assets.yaml")
    assert f"  c.csv: {{version: 1.1.0, sha256: {'c' * 64}}}\n" in shared.read_text()
    assert sorted(p.name for p in shared.parent.iterdir()) == [".assets.yaml.mine.tmp", "assets.yaml"]
    assert mine.read_text() == "keep" and sorted(p.name for p in link.parent.iterdir()) == ["assets.yaml"]


@pytest.mark.parametrize("text, files, fragment", [
    ("files:\n  - &u s3://xyz/y.json\n", {"s3://xyz/y.json": "a" * 64}, "s3://xyz/y.json: its entry is a YAML alias or anchor"),
    ("files:\n  - s3://xyz/y.json\n", {"s3://xyz/other.json": "a" * 64}, "s3://xyz/other.json is not under `files:`"),
])
def test_set_pins_refusals_leave_the_file_alone(tmp_path, text, files, fragment):
    from pod_tasks.manifest import set_pins

    path = tmp_path / "assets.yaml"
    path.write_bytes(text.encode())
    with pytest.raises(PodError, match=fragment):
        set_pins(path, {}, files)
    assert path.read_bytes() == text.encode()


def test_set_pins_of_thousands_of_entries_rewrites_each(tmp_path):
    """`doit lock` of a large manifest: every pin and entry rewritten, in order, the rest kept."""
    from pod_tasks.manifest import set_pins

    count = 3000
    path = tmp_path / "assets.yaml"
    path.write_text("store: s3://bkt\nassets:\n" + "".join(f"  f/{i}.csv: 1.0.{i}  # {i}\n" for i in range(count))
                    + "files:\n" + "".join(f"  - s3://bkt/raw/{i}.json\n" for i in range(count)))
    pins = {f"f/{i}.csv": (Version(1, 0, i), f"{i:064x}") for i in range(count)}
    files = {f"s3://bkt/raw/{i}.json": f"{i + count:064x}" for i in range(count)}
    set_pins(path, pins, files)
    assert path.read_text() == (
        "store: s3://bkt\nassets:\n"
        + "".join(f"  f/{i}.csv: {{version: 1.0.{i}, sha256: {i:064x}}}  # {i}\n" for i in range(count))
        + "files:\n" + "".join(f"  - {{url: s3://bkt/raw/{i}.json, sha256: {i + count:064x}}}\n" for i in range(count))
    )


LONGEST_PIN = "{{version: 1.0.0, sha256: {sha}, source: data/{i}.csv}}"


def test_at_most_max_entries_pins_and_files(tmp_path):
    """`MAX_ENTRIES` pins of the longest form load; one `files:` entry more is refused at its line."""
    from pod_tasks.manifest import MAX_ENTRIES

    pins = "".join(f"  f/{i}.csv: {LONGEST_PIN.format(sha='0' * 64, i=i)}\n" for i in range(MAX_ENTRIES))
    text = "store: s3://bkt\nassets:\n" + pins
    assert len(parse_manifest(text, tmp_path / "assets.yaml").assets) == MAX_ENTRIES
    with pytest.raises(ManifestError) as info:
        parse_manifest(text + "files:\n  - s3://bkt/x.json\n", tmp_path / "assets.yaml")
    assert str(info.value) == (
        f"assets.yaml:{MAX_ENTRIES + 4}: more than {MAX_ENTRIES:,} pins and `files:` entries, more than pod-tasks "
        f"reads from one manifest: split the assets over several projects, each with its own assets.yaml")
