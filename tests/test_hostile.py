"""Hostile and broken input: random manifests and names (hypothesis), symlinks planted in
the cache, hostile keys in a store listing, and secrets in output.

A manifest either loads, and then every cache path it implies is inside the cache dir,
or fails with a `ManifestError`; a name is either safe or refused with a `PodError`.
Nothing else escapes, and nothing is written outside the folder it belongs in.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pod_tasks import ManifestError, PodError, UnsafePathError, resolve
from pod_tasks.cache import AssetCache, ObjectRef
from pod_tasks.config import Settings
from pod_tasks.layout import Layout
from pod_tasks.manifest import parse_manifest
from pod_tasks.names import normalise_name, versioned_key
from pod_tasks.resolver import Project
from pod_tasks.store import DirStore, S3Store
from tests.conftest import run_doit, run_python, write
from tests.faults import SECRET, assert_clean, record

EXAMPLES = 300
ROOT = Path(os.path.realpath(tempfile.gettempdir())) / "pod-hostile-cache"
MANIFEST = Path(tempfile.gettempdir()) / "pod-hostile-project" / "assets.yaml"
CACHE = AssetCache(Settings(cache_dir=ROOT))
HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -----------------------------------------------------------------------

SEGMENTS = st.one_of(
    st.sampled_from(["..", ".", "", "~", "C:", "c:\\x", "a", "foo", "bar.csv", "é", "\u202e", "\x00", " ", "x.1.0.0"]),
    st.text(min_size=1, max_size=12),
)
NAMES = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=6).flatmap(
        lambda parts: st.sampled_from(["/", "\\", "//"]).map(lambda sep: sep.join(parts))),
    st.text(max_size=40),
    st.text(alphabet="ab./\\", min_size=1000, max_size=1100),
    st.builds(lambda s: "/" + s, st.text(max_size=20)),
)
VERSIONS = st.sampled_from(["1.0.0", "0.14.6", "01.1.9", "0.1", "1.2.3-rc1", "..", "1.0.0/../.."])
BUCKETS = st.sampled_from(["assets", "..", ".", "a..b", "A_legacy", "x", "evil\\..", "b:80", "%2e%2e", "a b"])
KEYS = st.one_of(st.sampled_from(["x", "a/b.csv", "../x", "a/../../x", "/x", "a\\..\\x"]), NAMES)
URLS = st.one_of(st.builds(lambda b, k: f"s3://{b}/{k}", BUCKETS, KEYS), st.text(max_size=30))
SHA = st.sampled_from(["0" * 64, "F" * 64, "xyz", "0" * 63])
GOOD_NAMES = st.sampled_from(["foo/bar.csv", "/foo/baz.csv", "a.txt", "deep/er/x.1.bin", "noext", "é/ü.csv"])
GOOD_URLS = st.builds(lambda b, k: f"s3://{b}/{k}", st.sampled_from(["assets", "other"]), GOOD_NAMES)
PINS = st.one_of(
    VERSIONS, URLS, GOOD_URLS, st.none(), st.integers(), st.lists(VERSIONS, max_size=2),
    st.fixed_dictionaries({}, optional={"version": VERSIONS, "sha256": SHA, "source": NAMES, "other": st.text(max_size=5)}),
)
STORES = st.one_of(st.sampled_from(["s3://assets", "s3://assets/pre/fix", "s3://..", "s3://../..", "s3://a/../..",
                                    "store", "../outside", "file:///tmp/x", "http://x", ""]), URLS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
ANYTHING = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                        max_leaves=8)
GOOD_VERSIONS = st.sampled_from(["1.0.0", "0.14.6", "10.1.6"])
HOSTILE_URLS = st.builds(lambda b, k: f"s3://{b}/{k}", BUCKETS, KEYS)
#: Mostly well-formed manifests with a hostile value here and there, so that many load.
DOCUMENTS = st.fixed_dictionaries({"store": st.one_of(st.just("s3://assets"), STORES)}, optional={
    "timeout": st.sampled_from(["0", "1d", "never", "-1", "1x"]),
    "immutable": st.lists(BUCKETS, max_size=2),
    "assets": st.dictionaries(st.one_of(GOOD_NAMES, NAMES), st.one_of(GOOD_VERSIONS, HOSTILE_URLS, PINS), max_size=2),
    "files": st.lists(st.one_of(GOOD_URLS, HOSTILE_URLS), max_size=2),
})
#: Anything at all in the shape of a document.
SHAPES = st.dictionaries(st.sampled_from(["store", "cache_dir", "timeout", "immutable", "assets", "files", "x"]),
                         ANYTHING, max_size=4)


def _inside(path: Path) -> bool:
    """``path`` is below the cache root with no ``..`` on the way."""
    try:
        parts = path.relative_to(ROOT).parts
    except ValueError:
        return False
    return bool(parts) and ".." not in parts


def _cache_paths(text: str) -> list[Path]:
    """Every cache path a manifest implies; a ManifestError is the only other outcome."""
    try:
        manifest = parse_manifest(text, MANIFEST)
    except ManifestError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("assets.yaml:")
        return []
    project = Project(manifest, CACHE.settings)
    refs = [project.pin_ref(pin) for pin in manifest.assets.values() if pin.version or pin.override]
    refs += [project.url_ref(url) for url in manifest.files]
    return [CACHE.path_for(ref) for ref in refs if isinstance(ref, ObjectRef)]


# --- property tests ---------------------------------------------------------------------


@HYPOTHESIS
@given(NAMES, VERSIONS)
def test_a_name_is_refused_or_its_cache_path_stays_inside(name, version):
    record("inputs tried", 1)
    try:
        clean = normalise_name(name)
    except PodError as exc:
        assert isinstance(exc, UnsafePathError) and "\n" not in str(exc)
        return
    try:
        key = versioned_key(clean, version)
        path = CACHE.path_for(ObjectRef(S3Store("assets"), key, True))
    except PodError:
        return
    assert _inside(path), (name, version, path)


@HYPOTHESIS
@given(st.one_of(DOCUMENTS, SHAPES))
def test_a_random_manifest_loads_inside_the_cache_or_fails_with_manifest_error(document):
    record("inputs tried", 1)
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    for path in _cache_paths(text):
        assert _inside(path), (document, path)


@HYPOTHESIS
@given(st.text(max_size=200))
def test_random_text_as_a_manifest_is_a_manifest_or_a_manifest_error(text):
    record("inputs tried", 1)
    for path in _cache_paths(text):
        assert _inside(path), (text, path)


@pytest.mark.parametrize("text", [
    "assets: " + "[" * 5000 + "]" * 5000,
    "assets:\n" + "".join(" " * i + "a:\n" for i in range(1, 3000)),
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nassets: *b\n",
    "store: s3://assets\nassets:\n  x.csv: !!python/object/apply:os.system [echo pwned]\n",
    "\ufeffstore: s3://assets\nassets: {x.csv: 1.0.0}\n",
    "store: s3://assets\nassets: {x.csv: 1.0.0}\n" + "#" * 100_000 + "\n",
], ids=["nested 5000 deep", "indented 3000 deep", "alias bomb", "python tag", "byte order mark", "huge comment"])
def test_pathological_yaml_is_handled(text):
    record("inputs tried", 1)
    for path in _cache_paths(text):
        assert _inside(path)


@pytest.mark.parametrize("url", ["s3://../etc/passwd", "s3://./x", "s3://..%2f/x", "s3://a\\..\\../x",
                                 "s3://assets/x\n", " s3://assets/x", "s3://assets/a\tb"])
def test_an_s3_url_cannot_name_a_bucket_outside_the_cache(url):
    record("inputs tried", 1)
    try:
        path = CACHE.path_for(Project(None, CACHE.settings).url_ref(url))
    except PodError as exc:
        assert "\n" not in str(exc)
        return
    assert _inside(path), path
    assert url.endswith(path.name)


# --- mutations of a valid manifest ------------------------------------------------------

VALID = f"""\
store: s3://assets
endpoint: http://127.0.0.1:9
timeout: 1d
immutable: [other, frozen]
assets:
  foo/bar.csv: 1.2.5
  foo/baz.json: {{version: 0.1.6, sha256: {"ab" * 32}}}
  dev/new.csv: {{source: data/new.csv}}
  other/x.bin: s3://other/x.bin
  deep/er/model: 10.1.6
files:
  - s3://example-bucket/example.json
"""
#: What a token of the valid manifest may become: huge numbers and values, YAML syntax,
#: characters YAML refuses, nothing.
HOSTILE_TOKENS = st.one_of(
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 6000).map(lambda n: "x" * n),
    st.integers(1, 300).map(lambda n: "a/" * n + "b"),
    st.sampled_from(["[", "]", "{", "}", ": ", "- ", "&a ", "*a", "!!python/object/apply:os.system [x]", "'", '"',
                     "|", ">", "%", "@", "\t", "\x00", "\ufeff", "\x85", "#", "?", "~", "null", "", "1.2", "-1.0.0",
                     "1.2.3-rc.1", "0x10", "1e9", "..", "/", "\\", "s3://", "file://", "C:\\x", "\u202e"]),
    st.text(max_size=8),
)
TOKEN = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\n]")


@st.composite
def mutated(draw) -> str:
    """The valid manifest after one to four edits: a token replaced, a line doubled,
    dropped, moved or re-indented, or a token repeated thousands of times."""
    lines = VALID.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["token", "token", "token", "double", "drop", "move", "indent", "repeat"]))
        line = lines[at]
        if how in ("token", "repeat"):
            spans = [m.span() for m in TOKEN.finditer(line)] or [(0, 0)]
            start, end = draw(st.sampled_from(spans))
            new = draw(HOSTILE_TOKENS) if how == "token" else line[start:end] * draw(st.integers(2, 20_000))
            lines[at] = line[:start] + new + line[end:]
        elif how == "double":
            lines.insert(at, line)
        elif how == "drop" and len(lines) > 1:
            del lines[at]
        elif how == "move":
            lines.insert(draw(st.integers(0, len(lines))), lines.pop(at))
        elif how == "indent":
            lines[at] = " " * draw(st.integers(0, 8)) + line.lstrip(" ")
    return "".join(lines)


MANIFEST_ERROR_LINE = re.compile(r"^assets\.yaml:\d+(:\d+)?: \S")


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_mutated_manifest_loads_or_fails_with_one_located_line(text):
    """Every manifest loads, and then gives every pin and file its cache path, or fails
    with one `assets.yaml:LINE: ...` line of bounded length; nothing else, in bounded
    time (the deadline)."""
    record("hostile manifests tried", 1)
    try:
        manifest = parse_manifest(text, MANIFEST)
    except ManifestError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) <= 600 and MANIFEST_ERROR_LINE.match(message), message[:2000]
        return
    project = Project(manifest, CACHE.settings)
    refs = [project.pin_ref(pin) for pin in manifest.assets.values() if pin.version or pin.override]
    refs += [project.url_ref(url) for url in manifest.files]
    assert all(_inside(CACHE.path_for(ref)) for ref in refs if isinstance(ref, ObjectRef))


#: The manifests that escaped as tracebacks, slow loads or unlocated lines, and the line
#: each gives now.
HOSTILE = [
    ("a version of 4,301 digits", "  foo/bar.csv: 1.2." + "9" * 4301 + "\n",
     "assets.yaml:3: foo/bar.csv: version '1.2.999"),
    ("a long pin of 4,300 digits", "  foo/bar.csv: {version: 1.2." + "9" * 4300 + "}\n",
     "assets.yaml:3: foo/bar.csv: version '1.2.999"),
    ("a pin longer than a file name", "  foo/bar.csv: " + "p" * 5000 + "\n",
     "assets.yaml:3: foo/bar.csv: 'ppp"),
    ("a flow list of 250,000 items", "  foo/bar.csv: 1.2.5\nimmutable: [" + ", ".join(["bkt"] * 250_000) + "]\n", None),
]


@pytest.fixture(scope="module")
def hostile_projects(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for label, body, _ in HOSTILE:
        folder = tmp_path_factory.mktemp("hostile")
        write(folder / "assets.yaml", "store: store\nassets:\n")
        with open(folder / "assets.yaml", "a", encoding="utf-8") as out:
            out.write(body)
        (folder / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
        folders[label] = folder
    return folders


@pytest.mark.parametrize("label, expected", [(h[0], h[2]) for h in HOSTILE], ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("command", ["doit list", "doit fetch", "resolve()", "pod-tasks path"])
def test_a_hostile_manifest_is_one_line_for_every_command(hostile_projects, label, expected, command):
    folder = hostile_projects[label]
    if command.startswith("doit"):
        result = run_doit(command.split()[1:], folder, timeout=60)
    elif command == "resolve()":
        result = run_python("""
            import sys
            from pod_tasks import PodError, resolve
            try:
                resolve('foo/bar.csv')
            except PodError as exc:  # a program sees one exception, whose message is the line
                sys.exit(str(exc))
        """, folder, timeout=60)
    else:
        result = run_python("import sys; from pod_tasks.cli import main; sys.exit(main(['path', 'foo/bar.csv']))",
                            folder, timeout=60)
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said[-3000:]
    lines = [line for line in said.splitlines() if re.search(r"assets\.yaml:\d+:", line)]
    if expected is None:  # it loads (and the store is an empty folder: only doit list succeeds)
        assert lines == [] and (result.returncode == 0) == (command == "doit list"), said[-3000:]
        return
    assert result.returncode != 0 and len(lines) == 1 and expected in lines[0] and len(lines[0]) < 600, said[-3000:]


# --- symlinks in the cache ----------------------------------------------------------------


def _dir_project(project: Path) -> Path:
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"good bytes\n")
    write(project / "assets.yaml", """
        store: store
        assets:
          foo/bar.csv: 1.0.0
    """)
    return Path(os.path.realpath(project / "assets.yaml"))


NO_SYMLINKS = pytest.mark.skipif(os.name == "nt", reason="symlinks need extra privileges on Windows")


@NO_SYMLINKS
@pytest.mark.parametrize("planted", ["bucket", "folder", "meta"])
def test_a_symlinked_folder_in_the_cache_is_never_written_through(project, cache_dir, tmp_path, planted):
    manifest = _dir_project(project)
    bucket = DirStore(project / "store").name
    outside = tmp_path / "outside"
    outside.mkdir()
    link = {"bucket": cache_dir / bucket, "folder": cache_dir / bucket / "foo", "meta": cache_dir / ".pod"}[planted]
    if planted != "meta":
        Layout(cache_dir).claim()  # a cache, in which a link then appears
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError) as caught:
        resolve("foo/bar.csv", manifest=manifest)
    assert "symlink" in str(caught.value) and "\n" not in str(caught.value)
    assert list(outside.iterdir()) == []


@NO_SYMLINKS
def test_a_symlink_at_the_final_path_is_replaced_not_followed(project, cache_dir, tmp_path):
    manifest = _dir_project(project)
    precious = tmp_path / "precious.csv"
    precious.write_bytes(b"do not overwrite me\n")
    final = cache_dir / DirStore(project / "store").name / "foo" / "bar.1.0.0.csv"
    Layout(cache_dir).claim()
    final.parent.mkdir(parents=True)
    final.symlink_to(precious)
    path = Path(resolve("foo/bar.csv", manifest=manifest))
    assert path == final and not path.is_symlink() and path.read_bytes() == b"good bytes\n"
    assert precious.read_bytes() == b"do not overwrite me\n"


# --- hostile keys in a store listing -----------------------------------------------------

HOSTILE_KEYS = [
    "../../x.1.0.0.csv", "foo/../../x.9.0.0.csv", "/foo/bar.8.0.0.csv", "foo\\..\\..\\bar.7.0.0.csv",
    "foo/bar.6.0.0.csv/../../../y", "foo/./bar.5.0.0.csv", "foo//bar.4.0.0.csv", "foo/bar.3.0.0.csv\x01",
]


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_hostile_store_keys_cannot_steer_versions_ls_remote_or_sync(s3, client, project, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"real\n")
    for key in HOSTILE_KEYS:
        try:
            client.put_object(Bucket="assets", Key=key, Body=b"hostile\n")
        except client.exceptions.ClientError as exc:  # rclone's keys are paths: no '.', '..', '' segment
            assert (s3.kind, exc.response["Error"]["Code"]) == ("rclone", "InvalidArgument"), key
    listed = {item["Key"] for item in client.list_objects_v2(Bucket="assets")["Contents"]} - {"foo/bar.1.0.0.csv"}
    for other in listed - set(HOSTILE_KEYS):  # rclone stores a control character as its symbol: \x01 as U+2401
        assert s3.kind == "rclone" and "\u2401" in other, other
        client.delete_object(Bucket="assets", Key=other)  # a harmless key, not one of these
    stored = listed & set(HOSTILE_KEYS)
    assert stored == set(HOSTILE_KEYS) or (s3.kind == "rclone" and stored), stored
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          foo/bar.csv: 1.0.0
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    before = _tree(tmp_path)
    versions = run_doit(["versions:foo/bar.csv"], project)
    names = run_doit(["ls-remote"], project)
    synced = run_doit(["sync", "--dest", "out"], project)
    for result in (versions, names, synced):
        assert_clean(result)
        assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split("  ")[:2] for line in versions.stdout.splitlines() if line.startswith("foo/bar.csv")] == [
        ["foo/bar.csv", "1.0.0 (pinned, latest)"]]
    assert [line.split()[0] for line in names.stdout.splitlines() if not line.startswith(".")] == ["foo/bar.csv"]
    assert (project / "out" / "foo" / "bar.csv").read_bytes() == b"real\n"
    created = _tree(tmp_path) - before
    allowed = ("cache", "project/out", "project/.doit.db", "project/__pycache__")
    assert sorted(p for p in created if not p.startswith(allowed)) == []
    assert not (tmp_path / "x.1.0.0.csv").exists() and not (tmp_path.parent / "x.1.0.0.csv").exists()


# --- secrets ---------------------------------------------------------------------------

COMMANDS = [
    (["doit", "fetch"], {}),
    (["doit", "status"], {}),
    (["doit", "fetch"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
    (["doit", "publish:foo/bar.csv", "--minor", "--file", "nope.csv"], {}),
    (["doit", "versions:foo/bar.csv"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
    (["python", "path", "foo/missing.csv"], {}),
    (["python", "cat", "foo/bar.csv"], {"POD_OFFLINE": "1"}),
    (["doit", "-v", "2", "fetch"], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}),
]


@pytest.mark.parametrize("command, env", COMMANDS, ids=[" ".join(c) + (" +env" if e else "") for c, e in COMMANDS])
def test_no_secret_in_output_or_files(s3, client, project, cache_dir, monkeypatch, command, env):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"x\n")
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          foo/bar.csv: 1.0.0
          foo/gone.csv: 2.0.0
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    tool, *args = command
    env = {**env, "POD_CACHE_DIR": str(cache_dir)}
    if tool == "doit":
        result = run_doit(args, project, env=env)
    else:
        result = run_python(f"import sys; from pod_tasks.cli import main; sys.exit(main({args!r}))", project, env=env)
    assert_clean(result)
    for folder in (project, cache_dir):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            assert SECRET.encode() not in path.read_bytes(), path
