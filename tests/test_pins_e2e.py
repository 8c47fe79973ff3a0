"""Versions over time, run as a user runs them against each S3 server and a directory
store: pre-releases (publish, pin, list, import), ``doit update`` and ``doit lock``
(only the changed entries' text rewritten, sha256s from verified bytes, and a later
fetch checked by them)."""

from __future__ import annotations

import json

import pytest

from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    backend,
    closed_port,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
    table_rows,
)

BAR = {v: f"bar {v}\n".encode() for v in ("1.2.5", "1.3.0", "1.4.0", "1.5.0-rc.1", "2.0.0-rc.1", "2.0.0")}
HEAD = "# pinned data\n\nassets:\n"
BAR_LINE = "  foo/bar.csv: {pin}    # the bar table\n"
TAIL = "  other/x.json: 1.0.0   # keep me\n  dev/local.csv: local.csv\n\n# the end\n"


def bar_project(backend, pin: str = "1.2.5") -> list[str]:
    """foo/bar.csv at every version of `BAR`, other/x.json at 1.0.0 (its latest), a local
    override; assets.yaml pins bar at ``pin``. Returns assets.yaml's lines."""
    for version, data in BAR.items():
        backend.put(f"foo/bar.{version}.csv", data)
    backend.put("other/x.1.0.0.json", b"{}")
    (backend.project / "local.csv").write_bytes(b"mine\n")
    path = manifest(backend, HEAD + BAR_LINE.format(pin=pin) + TAIL)
    return path.read_text().splitlines(keepends=True)


def changed_lines(backend, before: list[str]) -> dict[int, str]:
    """The lines of assets.yaml that differ from ``before`` (same number of lines)."""
    after = (backend.project / "assets.yaml").read_text().splitlines(keepends=True)
    assert len(after) == len(before), after
    return {i: a for i, (a, b) in enumerate(zip(after, before)) if a != b}


def cached(backend, cache_dir, key):
    return cache_dir / backend.cache_folder / key


def object_gets(backend) -> dict[str, int]:
    """GETs of objects (not listings) the server saw, by key."""
    paths = [p.split("?")[0] for m, p in backend.s3.requests if m == "GET" and "list-type" not in p]
    keys = [p.split("/", 2)[2] for p in paths if p.count("/") >= 2 and p.split("/", 2)[2]]
    return {key: keys.count(key) for key in keys}


def locked(version: str, data: bytes) -> str:
    return f"{{version: {version}, sha256: {sha256(data)}, size: {len(data)}}}"


# --- doit update -----------------------------------------------------------------------


def test_update_moves_a_pin_within_its_major(backend, cache_dir):
    before = bar_project(backend)
    result = doit(backend, "update")
    assert result.returncode == 0, output(result)
    assert "foo/bar.csv: 1.2.5 -> 1.4.0\n" in result.stdout  # 1.5.0-rc.1 and 2.0.0 skipped
    assert "other/x.json:" not in result.stdout  # at its latest: nothing to say
    assert result.stdout.splitlines()[-1] == "update: 1 pin(s) moved, 2 already the latest"
    assert changed_lines(backend, before) == {4: BAR_LINE.format(pin=locked("1.4.0", BAR["1.4.0"]))}
    # the sha256 came from bytes fetched and verified into the cache
    assert cached(backend, cache_dir, "foo/bar.1.4.0.csv").read_bytes() == BAR["1.4.0"]
    if backend.s3:
        assert object_gets(backend) == {"foo/bar.1.4.0.csv": 1}
        backend.s3.clear()

    again = doit(backend, "update")  # at the latest of major 1: the newer major is named
    assert again.returncode == 0, output(again)
    assert "foo/bar.csv: 1.4.0 is the latest 1.x; 2.0.0 is in the store (doit update:foo/bar.csv --major)" in again.stdout
    assert " -> " not in again.stdout
    assert again.stdout.splitlines()[-1] == "update: every pin is already the latest in the store"
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    if backend.s3:
        assert object_gets(backend) == {"other/x.1.0.0.json": 1}  # bar 1.4.0 was cached already


def test_update_dry_run_changes_nothing_then_major(backend, cache_dir):
    before = bar_project(backend)
    text = (backend.project / "assets.yaml").read_bytes()
    dry = doit(backend, "update:foo/bar.csv", "--major", "--dry-run")
    assert dry.returncode == 0, output(dry)
    assert "foo/bar.csv: 1.2.5 -> 2.0.0" in dry.stdout
    assert (backend.project / "assets.yaml").read_bytes() == text
    assert not (cache_dir / backend.cache_folder).exists()  # nothing fetched either
    if backend.s3:
        assert object_gets(backend) == {}

    result = doit(backend, "update", "--major")  # the option given to the group reaches every name
    assert result.returncode == 0, output(result)
    assert "foo/bar.csv: 1.2.5 -> 2.0.0\n" in result.stdout
    assert changed_lines(backend, before) == {4: BAR_LINE.format(pin=locked("2.0.0", BAR["2.0.0"]))}


@pytest.mark.parametrize("pin, store, moved", [
    ("2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2"], "2.0.0-rc.2"),   # a pre-release pin follows its pre-releases
    ("2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0"], "2.0.0"),
    ("1.0.0", ["1.0.0", "1.0.1-rc.1"], None),                      # a release pin never takes one
])
def test_update_and_pre_releases(backend, pin, store, moved):
    for version in store:
        backend.put(f"foo/bar.{version}.csv", version.encode())
    path = manifest(backend, f"assets:\n  foo/bar.csv: {pin}\n")
    text = path.read_text()
    result = doit(backend, "update:foo/bar.csv")
    assert result.returncode == 0, output(result)
    if moved is None:
        assert f"foo/bar.csv: {pin} is the latest" in result.stdout
        assert path.read_text() == text
    else:
        assert f"foo/bar.csv: {pin} -> {moved}\n" in result.stdout
        assert path.read_text() == f"store: {backend.spec}\nassets:\n  foo/bar.csv: {locked(moved, moved.encode())}\n"


def test_update_of_an_override_and_a_failure(backend):
    before = bar_project(backend)
    text = (backend.project / "assets.yaml").read_bytes()
    local = doit(backend, "update:dev/local.csv")
    assert local.returncode == 0, output(local)
    assert "dev/local.csv: not pinned to a version (an override, or not published yet): nothing to update" in local.stdout
    # the store out of reach (a server nobody answers on), or holding no version: nothing is pinned
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"} if backend.s3 else None
    if env is None:
        (backend.project / "store" / "foo").rename(backend.project / "store" / "gone")
    failed = doit(backend, "update:foo/bar.csv", env=env)
    assert_clean_failure(failed, "update:foo/bar.csv", *(() if env else ("the store has no version of it",)))
    assert (backend.project / "assets.yaml").read_bytes() == text
    assert changed_lines(backend, before) == {}


# --- doit lock -------------------------------------------------------------------------

LOCK_HEAD = "assets:\n"


def test_lock_gives_every_pin_its_sha256_and_size(backend, cache_dir):
    for key, data in {"a/short.1.0.0.csv": b"short", "a/long.2.0.0-rc.1.bin": b"long", "a/done.1.0.0.csv": b"done"}.items():
        backend.put(key, data)
    (backend.project / "mine.csv").write_bytes(b"mine")
    path = manifest(backend, f"""
        # comment
        assets:
          a/short.csv: 1.0.0   # short
          a/long.bin: {{version: 2.0.0-rc.1, source: data/long.bin}}
          a/done.csv: {{version: 1.0.0, sha256: {sha256(b"done")}}}
          a/mine.csv: mine.csv
          a/new.csv: {{source: new.csv}}
    """)
    before = path.read_text().splitlines(keepends=True)
    result = doit(backend, "lock")
    assert result.returncode == 0, output(result)
    assert f"a/short.csv: sha256 {sha256(b'short')}\n" in result.stdout
    assert f"a/long.bin: sha256 {sha256(b'long')}\n" in result.stdout
    assert f"a/done.csv: sha256 {sha256(b'done')}\n" in result.stdout  # it had its sha256, not its size
    assert ("lock: 3 locked, 0 already locked, 0 failed, 2 override(s) or unpublished name(s) left as they are; "
            "assets.yaml updated") in result.stdout
    assert changed_lines(backend, before) == {
        3: f"  a/short.csv: {locked('1.0.0', b'short')}   # short\n",
        4: f"  a/long.bin: {{version: 2.0.0-rc.1, sha256: {sha256(b'long')}, size: 4, source: data/long.bin}}\n",
        5: f"  a/done.csv: {locked('1.0.0', b'done')}\n",
    }
    if backend.s3:
        assert object_gets(backend) == {"a/short.1.0.0.csv": 1, "a/long.2.0.0-rc.1.bin": 1, "a/done.1.0.0.csv": 1}
    assert cached(backend, cache_dir, "a/long.2.0.0-rc.1.bin").read_bytes() == b"long"

    again = doit(backend, "lock")  # nothing left to lock
    assert again.returncode == 0, output(again)
    assert "lock: 0 locked, 3 already locked, 0 failed" in again.stdout


def test_a_locked_pin_checks_every_later_fetch(backend, cache_dir):
    backend.put("a/x.1.0.0.csv", b"the bytes\n")
    manifest(backend, "assets:\n  a/x.csv: 1.0.0\n")
    assert doit(backend, "lock").returncode == 0
    copy = cached(backend, cache_dir, "a/x.1.0.0.csv")
    copy.write_bytes(b"tampered!\n")  # the cached copy changed: fetched again, verified
    fixed = doit(backend, "fetch")
    assert fixed.returncode == 0, output(fixed)
    assert copy.read_bytes() == b"the bytes\n"

    copy.unlink()
    if backend.s3:
        backend.client.put_object(Bucket="assets", Key="a/x.1.0.0.csv", Body=b"replaced!\n")  # the same size
    else:
        (backend.project / "store" / "a" / "x.1.0.0.csv").write_bytes(b"replaced!\n")
    refused = doit(backend, "fetch")  # the store's object changed: refused by the pin
    assert_clean_failure(refused, "a/x.csv", "does not match the pin")
    assert not copy.exists()


def test_lock_files_entries_and_a_later_fetch(s3_backend, cache_dir):
    from tests.conftest import cache_folder

    store = s3_backend
    store.client.create_bucket(Bucket="other")
    store.client.put_object(Bucket="other", Key="raw/a,b.json", Body=b"v1")
    store.client.put_object(Bucket="other", Key="raw/c.json", Body=b"c")
    path = manifest(store, f"""
        assets: {{}}
        files:
          - s3://other/raw/a,b.json   # mutable
          - {{url: s3://other/raw/c.json, sha256: {sha256(b"c")}}}
    """)
    before = path.read_text().splitlines(keepends=True)
    result = doit(store, "lock")
    assert result.returncode == 0, output(result)
    assert f"s3://other/raw/a,b.json: sha256 {sha256(b'v1')}" in result.stdout
    assert changed_lines(store, before) == {
        3: f'  - {{url: "s3://other/raw/a,b.json", sha256: {sha256(b"v1")}}}   # mutable\n',
    }
    store.s3.clear()
    quiet = doit(store, "fetch", env={"POD_TIMEOUT": "0"})  # locked bytes are fixed: never checked
    assert quiet.returncode == 0, output(quiet)
    assert store.s3.counts().get("HEAD", 0) == 0 and store.s3.counts().get("GET", 0) == 1  # c.json, first time

    store.client.put_object(Bucket="other", Key="raw/a,b.json", Body=b"v2")
    (cache_dir / cache_folder("other") / "raw" / "a,b.json").unlink()
    refused = doit(store, "fetch")
    assert_clean_failure(refused, "s3://other/raw/a,b.json", "does not match the pin")


def test_lock_names_what_it_could_not_lock(backend):
    backend.put("a/x.1.0.0.csv", b"x")
    path = manifest(backend, "assets:\n  a/x.csv: 1.0.0\n  a/gone.csv: 3.0.0\n")
    result = doit(backend, "lock")
    assert_clean_failure(result, "lock", "1 entry could not be locked", "a/gone.csv")
    assert "not locked: " in result.stdout
    assert path.read_text() == f"store: {backend.spec}\nassets:\n  a/x.csv: {locked('1.0.0', b'x')}\n  a/gone.csv: 3.0.0\n"


# --- pre-releases --------------------------------------------------------------------------


def test_publish_fetch_and_list_pre_releases(backend, cache_dir):
    backend.put("foo/bar.1.3.0.csv", BAR["1.3.0"])
    (backend.project / "new.csv").write_bytes(b"rc\n")
    path = manifest(backend, "assets:\n  foo/bar.csv: 1.3.0   # bar\n")
    rc = doit(backend, "publish:foo/bar.csv", "--version", "2.0.0-rc.1", "--file", "new.csv")
    assert rc.returncode == 0, output(rc)
    assert backend.get("foo/bar.2.0.0-rc.1.csv") == b"rc\n"
    assert path.read_text().endswith(f"  foo/bar.csv: {locked('2.0.0-rc.1', b'rc' + bytes([10]))}   # bar\n")
    backend.put("foo/bar.2.0.0-rc.10.csv", b"rc10")
    backend.put("foo/bar.2.0.0-rc.2.csv", b"rc2")
    backend.put("foo/bar.2.0.0-rc.1.csv.bak", b"not a version")
    listed = doit(backend, "versions:foo/bar.csv")
    assert [row[1] for row in table_rows(listed, "asset")] == [  # semver precedence; "latest" is a release
        "1.3.0 (latest)", "2.0.0-rc.1 (pinned)", "2.0.0-rc.2", "2.0.0-rc.10",
    ]
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    assert cached(backend, cache_dir, "foo/bar.2.0.0-rc.1.csv").read_bytes() == b"rc\n"

    minor = doit(backend, "publish:foo/bar.csv", "--minor", "--file", "new.csv")  # 1.4.0 may follow 2.0.0-rc.10
    assert minor.returncode == 0, output(minor)
    assert "foo/bar.csv: published 1.4.0 (was 1.3.0)" in minor.stdout
    major = doit(backend, "publish:foo/bar.csv", "--major", "--file", "new.csv")  # from 1.4.0, the latest release
    assert major.returncode == 0, output(major)
    assert "foo/bar.csv: published 2.0.0 (was 2.0.0-rc.10)" in major.stdout


def test_a_bump_after_a_pre_release_applies_to_the_latest_release(backend):
    """Issue 21: with 1.2.5, 1.2.6 and 2.0.0-rc.1 in the store, --patch publishes 1.2.7
    (below the pre-release, above every release) and pins it; nothing in the store is
    written again, and a version below a release is refused, assets.yaml untouched."""
    store = {"foo/bar.1.2.5.csv": b"a\n", "foo/bar.1.2.6.csv": b"b\n", "foo/bar.2.0.0-rc.1.csv": b"rc\n"}
    for key, data in store.items():
        backend.put(key, data)
    (backend.project / "new.csv").write_bytes(b"fix\n")
    path = manifest(backend, "assets:\n  foo/bar.csv: 1.2.6   # bar\n")
    before = path.read_bytes()
    for args, says in ((["--version", "2.0.0-rc.1"], "version 2.0.0-rc.1 is already in the store: a version is "
                                                     "published once (try --version 2.0.0-rc.2)"),
                       (["--version", "1.2.6"], "version 1.2.6 is not greater than 1.2.6, the latest release in the "
                                                "store: versions must increase (try --version 1.2.7)"),
                       (["--version", "1.2.6-rc.1"], "version 1.2.6-rc.1 is not greater than 1.2.6")):
        refused = doit(backend, "publish:foo/bar.csv", *args, "--file", "new.csv")
        assert_clean_failure(refused, f"publish:foo/bar.csv: {says}")
        assert path.read_bytes() == before
    patch = doit(backend, "publish:foo/bar.csv", "--patch", "--file", "new.csv")
    assert patch.returncode == 0, output(patch)
    assert "foo/bar.csv: published 1.2.7 (was 1.2.6), 4 B -> " in patch.stdout
    assert path.read_text() == f"store: {backend.spec}\nassets:\n  foo/bar.csv: {locked('1.2.7', b'fix' + bytes([10]))}   # bar\n"
    assert backend.keys() == sorted([*store, "foo/bar.1.2.7.csv"])
    assert {key: backend.get(key) for key in store} == store and backend.get("foo/bar.1.2.7.csv") == b"fix\n"
    listed = doit(backend, "versions:foo/bar.csv")
    assert [row[1] for row in table_rows(listed, "asset")] == ["1.2.5", "1.2.6", "1.2.7 (pinned, latest)", "2.0.0-rc.1"]


def test_a_version_that_would_read_back_otherwise_is_not_published(backend):
    (backend.project / "tool").write_bytes(b"bin")
    path = manifest(backend, "assets:\n  tool: {source: tool}\n")
    result = doit(backend, "publish:tool", "--version", "1.0.0-rc.1")
    assert_clean_failure(result, "tool.1.0.0-rc.1, which reads back as tool.1 at 1.0.0-rc")
    assert backend.keys() == [] and path.read_text() == f"store: {backend.spec}\nassets:\n  tool: {{source: tool}}\n"


def test_old_manifest_pinning_a_pre_release_imports_and_fetches(backend, cache_dir):
    """The old tool's test_semver_works: /foo/semver.ftw pinned to 0.1.6-foo."""
    backend.put("foo/semver.0.1.6-foo.ftw", b"ftw")
    (backend.project / "versioned_assets.json").write_text(json.dumps({"/foo/semver.ftw": "0.1.6-foo"}))
    imported = doit(backend, "import-manifest", "versioned_assets.json", "--store", backend.spec)
    assert imported.returncode == 0, output(imported)
    assert (backend.project / "assets.yaml").read_text() == f"store: {backend.spec}\nassets:\n  foo/semver.ftw: 0.1.6-foo\n"
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    assert cached(backend, cache_dir, "foo/semver.0.1.6-foo.ftw").read_bytes() == b"ftw"
