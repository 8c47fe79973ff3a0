"""``doit publish:NAME``, run as a user runs it, against each S3 server and a
directory store: the version rules (from the latest version in the store, not the
pin), the conditional upload, the one-entry rewrite of assets.yaml, identical bytes
refused, the published file in the cache, and the publisher and message kept."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO, cache_folder, s3_client, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    Store,
    assert_clean_failure,
    backend,
    closed_port,
    dir_backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)
from tests.servers import FaultProxy, Rule

NEW = b"id,value\n1,new\n"

# The pin says 1.2.5, the store's latest is 1.3.0: versions are computed from the store.
HEADER = "# pinned data\n\nassets:\n"
OTHER = "  other/x.json: 1.0.0   # keep me\n"


def published_project(backend, pin: str = "1.2.5") -> bytes:
    backend.put("foo/bar.1.2.5.csv", b"old\n")
    backend.put("foo/bar.1.3.0.csv", b"newer\n")
    backend.put("other/x.1.0.0.json", b"{}")
    write(backend.project / "data" / "bar.csv", NEW.decode())
    manifest(backend, HEADER + f"  foo/bar.csv: {pin}    # the bar table\n" + OTHER)
    return (backend.project / "assets.yaml").read_bytes()


def assert_pinned(backend, before: bytes, version: str, data: bytes) -> None:
    """The store holds ``data`` at ``version``, and only the pin's text changed."""
    assert backend.get(f"foo/bar.{version}.csv") == data
    after = (backend.project / "assets.yaml").read_bytes().decode().splitlines(keepends=True)
    old = before.decode().splitlines(keepends=True)
    assert len(after) == len(old)
    changed = [i for i, (a, b) in enumerate(zip(old, after)) if a != b]
    assert len(changed) == 1, after
    line = after[changed[0]]
    assert line == f"  foo/bar.csv: {{version: {version}, sha256: {sha256(data)}, size: {len(data)}}}    # the bar table\n"


BUMPS = [
    (["--major"], "2.0.0"),
    (["--minor"], "1.4.0"),
    (["--patch"], "1.3.1"),
    (["--version", "1.5.0"], "1.5.0"),
    (["--version", "3"], "3.0.0"),
    (["--minor", "--version", "4.0.0"], "4.0.0"),
    (["--patch", "--min-version", "1.5"], "1.5.0"),
    (["--patch", "--min-version", "1.2"], "1.3.1"),
    (["--major", "--min-version", "2.0.7"], "2.0.7"),
]


@pytest.mark.parametrize("args, version", BUMPS, ids=[" ".join(a) for a, _ in BUMPS])
def test_publish_version_rules(backend, args, version):
    before = published_project(backend)
    keys = backend.keys()
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", *args)
    assert result.returncode == 0, output(result)
    assert f"foo/bar.csv: published {version} (was 1.3.0), {len(NEW)} B -> {backend.url(f'foo/bar.{version}.csv')}" in result.stdout
    assert backend.keys() == sorted(keys + [f"foo/bar.{version}.csv"])
    assert_pinned(backend, before, version, NEW)


def test_published_version_fetches_and_verifies(backend, cache_dir):
    before = published_project(backend)
    assert doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch").returncode == 0
    assert_pinned(backend, before, "1.3.1", NEW)
    fetched = doit(backend, "fetch:foo/bar.csv")
    assert fetched.returncode == 0, output(fetched)
    assert (cache_dir / backend.cache_folder / "foo" / "bar.1.3.1.csv").read_bytes() == NEW


@pytest.mark.parametrize("args, version", [([], "1.0.0"), (["--version", "0.3"], "0.3.0")])
def test_publish_a_source_only_asset(backend, args, version):
    write(backend.project / "data" / "new.csv", "fresh\n")
    text = HEADER + "  foo/new.csv: {source: data/new.csv}  # not yet published\n" + OTHER
    manifest(backend, text)
    result = doit(backend, "publish:foo/new.csv", *args)
    assert result.returncode == 0, output(result)
    assert f"foo/new.csv: published {version} (new)" in result.stdout
    assert backend.get(f"foo/new.{version}.csv") == b"fresh\n"
    expected = text.replace(
        "{source: data/new.csv}", f"{{version: {version}, sha256: {sha256(b'fresh' + bytes([10]))}, size: 6, source: data/new.csv}}"
    )
    assert (backend.project / "assets.yaml").read_text() == f"store: {backend.spec}\n" + expected


def test_dry_run_changes_nothing(backend):
    before = published_project(backend)
    keys = backend.keys()
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--minor", "--dry-run")
    assert result.returncode == 0, output(result)
    assert "foo/bar.csv: would publish 1.4.0 (was 1.3.0)" in result.stdout
    assert backend.keys() == keys
    assert (backend.project / "assets.yaml").read_bytes() == before
    if backend.s3:
        assert backend.s3.count("PUT") == 0


REFUSED = [
    (["--version", "1.3.0"], "not greater than 1.3.0"),  # equal to the latest in the store
    (["--version", "1.2.9"], "not greater than 1.3.0"),  # above the pin, below the store's latest
    (["--version", "1.x"], "'1.x' is not a version"),
    ([], "say --major, --minor, --patch or --version"),
    (["--major", "--minor"], "give one of --major, --minor, --patch"),
    (["--patch", "--min-version", "two"], "'two' is not a version"),
    (["--version", "1.4.0", "--min-version", "1.5"], "below the minimum 1.5.0"),
]


@pytest.mark.parametrize("args, says", REFUSED, ids=[" ".join(a) or "no flag" for a, _ in REFUSED])
def test_refused_versions(backend, args, says):
    before = published_project(backend)
    keys = backend.keys()
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", *args)
    assert_clean_failure(result, "publish:foo/bar.csv", says)
    assert backend.keys() == keys
    assert (backend.project / "assets.yaml").read_bytes() == before


@pytest.mark.parametrize("args", [[], ["--patch"]], ids=["bare", "option before the name"])
def test_publish_without_a_name_publishes_nothing(dir_backend, args):
    """`doit publish` runs every subtask (and gives --patch to the group, not to them):
    nothing is published, not even a source-only asset, and the error says how."""
    write(dir_backend.project / "data" / "new.csv", "fresh\n")
    before = published_project(dir_backend, pin="{version: 1.2.5, source: data/bar.csv}")
    text = before.decode() + "  foo/new.csv: {source: data/new.csv}\n"
    (dir_backend.project / "assets.yaml").write_text(text)
    keys = dir_backend.keys()
    result = doit(dir_backend, "publish", *args)
    said = output(result)
    assert result.returncode != 0 and "Traceback" not in said, said
    errors = sorted(line for line in said.splitlines() if line.startswith("ERROR"))
    assert errors == [
        f"ERROR publish:{name}: publish one asset at a time, options after its name: doit publish:{name} --patch"
        for name in ("foo/bar.csv", "foo/new.csv", "other/x.json")
    ], said
    assert (dir_backend.project / "assets.yaml").read_text() == text
    assert dir_backend.keys() == keys


@pytest.mark.parametrize("file_arg, says", [
    ([], "give --file PATH, or add `source: PATH`"),
    (["--file", "data/missing.csv"], "data/missing.csv is not a file"),
])
def test_which_file(backend, file_arg, says):
    before = published_project(backend)
    keys = backend.keys()
    result = doit(backend, "publish:foo/bar.csv", "--patch", *file_arg)
    assert_clean_failure(result, "publish:foo/bar.csv", says)
    assert backend.keys() == keys
    assert (backend.project / "assets.yaml").read_bytes() == before


def test_failed_upload_leaves_assets_yaml_untouched(s3_backend):
    before = published_project(s3_backend)
    result = doit(s3_backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch",
                  env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"})
    assert_clean_failure(result, "publish:foo/bar.csv", "cannot reach the store")
    assert (s3_backend.project / "assets.yaml").read_bytes() == before
    assert s3_backend.get("foo/bar.1.3.1.csv") is None


def test_two_publishes_racing_on_one_version(backend, request):
    before = published_project(backend)
    write(backend.project / "data" / "mine.csv", "mine\n")
    write(backend.project / "data" / "theirs.csv", "theirs\n")
    env = os.environ.copy()
    if backend.s3 is not None:  # both list the store before either uploads: the uploads race every time
        proxy = FaultProxy(backend.s3.port).start()
        request.addfinalizer(proxy.stop)
        listing = proxy.add(Rule("GET", r"^/assets/?\?.*list-type=2", "delay", times=2, gather=2, seconds=20))
        env["AWS_ENDPOINT_URL"] = proxy.endpoint
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "doit", "publish:foo/bar.csv", "--version", "2.0.0", "--file", f"data/{who}.csv"],
            cwd=backend.project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for who in ("mine", "theirs")
    ]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    if backend.s3 is not None:
        puts = 2 if backend.s3.kind == "moto" else 1  # rclone ignores the condition: claims decide first
        assert (listing.injected, backend.s3.count("PUT", "/assets/foo/bar.2.0.0.csv")) == (2, puts)
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    winner = ("mine", "theirs")[[code for code, _, _ in results].index(0)]
    loser = next(out + err for code, out, err in results if code != 0)
    assert "Traceback" not in loser
    assert [l for l in loser.splitlines() if l.startswith("ERROR")] == [
        next(l for l in loser.splitlines() if l.startswith("ERROR publish:foo/bar.csv: "))
    ]
    assert "2.0.0" in loser
    data = f"{winner}\n".encode()
    assert [k for k in backend.keys() if k.startswith("foo/bar.2.")] == ["foo/bar.2.0.0.csv"]
    assert_pinned(backend, before, "2.0.0", data)


PIN_STYLES = [
    ("short", "  foo/bar.csv: 1.2.5\n", "  foo/bar.csv: {new}\n"),
    ("quoted", "  'foo/bar.csv': \"1.2.5\"   # quoted\n", "  'foo/bar.csv': {new}   # quoted\n"),
    ("leading slash", "  /foo/bar.csv: 1.2.5\n", "  /foo/bar.csv: {new}\n"),
    ("flow", "  foo/bar.csv: {version: 1.2.5, sha256: " + "a" * 64 + "}\n", "  foo/bar.csv: {new}\n"),
    (
        "block with source",
        "  foo/bar.csv:\n    version: 1.2.5  # old\n    source: data/bar.csv\n",
        "  foo/bar.csv:\n    {new_with_source}\n",  # the entry's value, and only it, is replaced
    ),
]


@pytest.mark.parametrize("pin, expected", [p[1:] for p in PIN_STYLES], ids=[p[0] for p in PIN_STYLES])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_rewrite_keeps_every_other_byte(dir_backend, pin, expected, newline):
    """The rewrite does not depend on the store: a folder store is enough here."""
    backend = dir_backend
    backend.put("foo/bar.1.2.5.csv", b"old\n")
    write(backend.project / "data" / "bar.csv", NEW.decode())
    top = (
        f"# The assets of this project.\n\nstore: {backend.spec}   # where versions live\n"
        "timeout: 1d\n\nassets:\n  # tables\n  a/first.csv: {source: data/bar.csv}\n"
    )
    bottom = "\n  # meshes\n  z/last.obj: \"data/bar.csv\"\n\nfiles: []   # none yet\n"
    path = backend.project / "assets.yaml"
    path.write_bytes((top + pin + bottom).replace("\n", newline).encode())
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch")
    assert result.returncode == 0, output(result)
    new = f"{{version: 1.2.6, sha256: {sha256(NEW)}, size: {len(NEW)}}}"
    new_with_source = f"{{version: 1.2.6, sha256: {sha256(NEW)}, size: {len(NEW)}, source: data/bar.csv}}"
    line = expected.format(new=new, new_with_source=new_with_source)
    assert path.read_bytes() == (top + line + bottom).replace("\n", newline).encode()
    assert backend.get("foo/bar.1.2.6.csv") == NEW


def test_a_leading_slash_in_the_subtask_name(dir_backend, cache_dir):
    """`doit publish:/foo/bar.csv` (the old tool's spelling) is `publish:foo/bar.csv`."""
    before = published_project(dir_backend)
    published = doit(dir_backend, "publish:/foo/bar.csv", "--file", "data/bar.csv", "--patch")
    assert published.returncode == 0, output(published)
    assert_pinned(dir_backend, before, "1.3.1", NEW)
    versions = doit(dir_backend, "versions:/foo/bar.csv")
    assert re.search(r"^foo/bar\.csv +1\.3\.1 \(pinned, latest\) ", versions.stdout, re.MULTILINE), output(versions)
    fetched = doit(dir_backend, "fetch:/foo/bar.csv")
    assert fetched.returncode == 0, output(fetched)
    assert (cache_dir / dir_backend.cache_folder / "foo" / "bar.1.3.1.csv").read_bytes() == NEW
    assert "-- fetch:foo/bar.csv" in doit(dir_backend, "fetch:/foo/bar.csv", "-v").stdout
    listed = doit(dir_backend, "list", "--all").stdout
    assert "publish:/foo/bar.csv" not in listed and "publish:foo/bar.csv" in listed


def test_publish_into_a_store_with_a_key_prefix(s3_backend, cache_dir):
    """`store: s3://bucket/prefix`: versions are read and written under the prefix only."""
    store = s3_backend
    store.put("team/foo/bar.1.2.5.csv", b"old\n")
    store.put("other-team/foo/bar.9.0.0.csv", b"not ours\n")
    write(store.project / "data" / "bar.csv", NEW.decode())
    (store.project / "assets.yaml").write_text("store: s3://assets/team\nassets:\n  foo/bar.csv: 1.2.5\n")
    result = doit(store, "publish:foo/bar.csv", "--file", "data/bar.csv", "--minor")
    assert result.returncode == 0, output(result)
    assert "published 1.3.0 (was 1.2.5)" in result.stdout
    assert store.get("team/foo/bar.1.3.0.csv") == NEW
    assert sorted(store.keys()) == ["other-team/foo/bar.9.0.0.csv", "team/foo/bar.1.2.5.csv", "team/foo/bar.1.3.0.csv"]
    assert doit(store, "fetch").returncode == 0
    assert (cache_dir / cache_folder("assets") / "team" / "foo" / "bar.1.3.0.csv").read_bytes() == NEW


def test_an_edit_leaves_no_lock_behind(dir_backend, tmp_path):
    """The edit lock of assets.yaml is beside it while held, and gone after: nothing in
    the system temp folder (where another user's lock could not be taken), nothing new in
    the project but what the edit wrote."""
    published_project(dir_backend)
    temp = tmp_path / "temp"
    temp.mkdir()
    before = {p.name for p in dir_backend.project.iterdir()}
    result = doit(dir_backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch",
                  env={"TMPDIR": str(temp), "TEMP": str(temp), "TMP": str(temp)})
    assert result.returncode == 0, output(result)
    assert list(temp.iterdir()) == []
    assert {p.name for p in dir_backend.project.iterdir()} - before <= {".doit.db"}


def test_publish_through_a_symlinked_assets_yaml_rewrites_its_target_and_keeps_the_link(backend, tmp_path):
    """assets.yaml is a link to a shared file (a monorepo's): publish rewrites the pin in
    that file, atomically, and the link stays a link; nothing is left beside either."""
    before = published_project(backend)
    shared = tmp_path / "shared" / "assets.yaml"
    shared.parent.mkdir()
    link = backend.project / "assets.yaml"
    link.replace(shared)
    link.symlink_to(os.path.relpath(shared, link.parent))
    around = {p.name for p in backend.project.iterdir()}
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--minor")
    assert result.returncode == 0, output(result)
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(shared, link.parent)
    assert_pinned(backend, before, "1.4.0", NEW)  # read through the link: the shared file's text
    assert sorted(os.listdir(shared.parent)) == ["assets.yaml"]  # no temporary copy, no lock
    assert {p.name for p in backend.project.iterdir()} - around <= {".doit.db"}
    again = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--force", "--patch")
    assert again.returncode == 0, output(again)
    assert link.is_symlink() and f"foo/bar.csv: {{version: 1.4.1, sha256: {sha256(NEW)}, size: {len(NEW)}}}" in shared.read_text()


# --- publish helps: identical bytes, the cache, who and why ----------------------------------


def test_identical_bytes_are_not_published_again_unless_forced(backend):
    """The file is 1.3.0's bytes: nothing is uploaded and the exit code is 0 (a CI job
    that publishes on every run goes on); the pin (1.2.5) moves to 1.3.0, which holds
    them (--dry-run says it would); --force publishes."""
    before = published_project(backend)
    write(backend.project / "data" / "same.csv", "newer\n")
    keys = backend.keys()
    dry = doit(backend, "publish:foo/bar.csv", "--file", "data/same.csv", "--minor", "--dry-run")
    assert dry.stdout.splitlines()[-2:] == ["foo/bar.csv: identical to 1.3.0 in the store; nothing published",
                                            "foo/bar.csv: would pin 1.3.0, which holds these bytes"]
    assert (backend.project / "assets.yaml").read_bytes() == before
    if backend.s3:
        backend.s3.clear()
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/same.csv", "--minor")
    assert result.returncode == 0, output(result)
    assert result.stdout.splitlines()[-2:] == ["foo/bar.csv: identical to 1.3.0 in the store; nothing published",
                                               "foo/bar.csv: pinned 1.3.0, which holds these bytes"]
    if backend.s3:  # before the test's own requests below
        assert backend.s3.count("PUT") == 0 and backend.s3.count("GET", "/assets/foo/bar.1.3.0.csv") == 0
    assert backend.keys() == keys
    assert_pinned(backend, before, "1.3.0", b"newer\n")
    pinned = (backend.project / "assets.yaml").read_bytes()
    again = doit(backend, "publish:foo/bar.csv", "--file", "data/same.csv", "--minor")
    assert again.stdout.splitlines()[-1] == "foo/bar.csv: identical to 1.3.0 in the store; nothing published"
    assert (backend.project / "assets.yaml").read_bytes() == pinned  # already the pin: untouched

    forced = doit(backend, "publish:foo/bar.csv", "--file", "data/same.csv", "--minor", "--force")
    assert forced.returncode == 0, output(forced)
    assert "foo/bar.csv: published 1.4.0 (was 1.3.0)" in forced.stdout
    assert backend.get("foo/bar.1.4.0.csv") == b"newer\n"


def test_a_published_file_is_in_the_cache_and_the_next_fetch_downloads_nothing(backend, cache_dir):
    published_project(backend)
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch")
    assert result.returncode == 0, output(result)
    cached = cache_dir / backend.cache_folder / "foo" / "bar.1.3.1.csv"
    assert cached.read_bytes() == NEW
    stat = cached.stat()
    if backend.s3:
        backend.s3.clear()
    fetched = doit(backend, "fetch:foo/bar.csv", "-v")
    assert fetched.returncode == 0, output(fetched)
    assert "-- fetch:foo/bar.csv" in fetched.stdout.splitlines()  # up to date: not even run
    assert "fetched 0 files" in fetched.stdout
    if backend.s3:
        assert backend.s3.counts() == {}  # no request at all
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)  # never rewritten
    resolved = subprocess.run([sys.executable, "-c", "from pod_tasks import resolve; print(resolve('foo/bar.csv'))"],
                              cwd=backend.project, capture_output=True, text=True)
    assert resolved.stdout.strip() == str(cached), resolved.stderr
    if backend.s3:
        assert backend.s3.counts() == {}


def test_message_and_publisher_are_kept_and_shown(backend):
    published_project(backend)
    message = "café: the units are metres now"
    result = doit(backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch", "--message", message)
    assert result.returncode == 0, output(result)
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    versions = doit(backend, "versions:foo/bar.csv")
    assert versions.returncode == 0, output(versions)
    rows = [re.split(r"  +", line) for line in versions.stdout.splitlines() if line.startswith("foo/bar.csv ")]
    assert [row[1] for row in rows] == ["1.2.5", "1.3.0", "1.3.1 (pinned, latest)"]
    assert rows[-1][3:] == [f"{len(NEW)} B", who, message]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[-1][2])
    assert rows[0][3:] == ["4 B", "-", "-"]  # put there by other means: no publisher, no message
    if backend.s3:
        metadata = backend.client.head_object(Bucket="assets", Key="foo/bar.1.3.1.csv")["Metadata"]
        assert {k.lower(): v for k, v in metadata.items()} == {
            "pod-sha256": sha256(NEW), "pod-publisher": who, "pod-message": "caf%C3%A9: the units are metres now"}
    listed = doit(backend, "ls-remote")
    assert [line.split() for line in listed.stdout.splitlines() if not line.startswith(".")] == [
        ["foo/bar.csv", "1.3.1", "(3", "versions)"], ["other/x.json", "1.0.0", "(1", "version)"]]


def test_a_message_too_long_to_keep_is_refused_before_the_upload(dir_backend):
    before = published_project(dir_backend)
    keys = dir_backend.keys()
    result = doit(dir_backend, "publish:foo/bar.csv", "--file", "data/bar.csv", "--patch", "--message", "x" * 3000)
    assert_clean_failure(result, "publish:foo/bar.csv", "--message is too long")
    assert dir_backend.keys() == keys
    assert (dir_backend.project / "assets.yaml").read_bytes() == before


def test_a_store_with_sha1_etags_is_compared_by_metadata_or_the_pin(opaque_s3, project):
    """rclone with SHA1 ETags (as AWS's SSE-KMS objects): a version published by pod-tasks
    is told by its sha256 metadata, one put there by other means by a pin's sha256; with
    neither, the file is published, saying it could not be compared."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    store = Store("s3", project, opaque_s3, s3_client(opaque_s3))
    store.put("foo/bar.1.0.0.csv", b"old\n")
    write(project / "old.csv", "old\n")
    write(project / "new.csv", "new\n")
    manifest(store, "assets:\n  foo/bar.csv: 1.0.0\n")
    blind = doit(store, "publish:foo/bar.csv", "--file", "old.csv", "--patch", "--dry-run")
    assert "foo/bar.csv: would publish 1.0.1 (was 1.0.0), 4 B -> s3://assets/foo/bar.1.0.1.csv; could not compare " \
           "it with 1.0.0 (the store keeps no hash of it to compare)" in blind.stdout, output(blind)
    manifest(store, f"assets:\n  foo/bar.csv: {{version: 1.0.0, sha256: {sha256(b'old' + bytes([10]))}}}\n")
    pinned = doit(store, "publish:foo/bar.csv", "--file", "old.csv", "--patch")
    assert "foo/bar.csv: identical to 1.0.0 in the store; nothing published" in pinned.stdout, output(pinned)
    assert doit(store, "publish:foo/bar.csv", "--file", "new.csv", "--patch").returncode == 0
    again = doit(store, "publish:foo/bar.csv", "--file", "new.csv", "--patch")
    assert "foo/bar.csv: identical to 1.0.1 in the store; nothing published" in again.stdout, output(again)
    assert store.keys() == ["foo/bar.1.0.0.csv", "foo/bar.1.0.1.csv"]
