"""The doit tasks, run as a user runs them: ``doit`` in a subprocess in a temp project
(the repo's dodo.py next to a generated assets.yaml), against moto's S3 server on
127.0.0.1 (requests counted at the server) and against a directory store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, cache_folder, doit_on_a_terminal, run_doit, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    backend,
    closed_port,
    dir_backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
    table_rows,
)

CSV = b"a,b\n1,2\n"
JSON = b'{"k": 1}\n'


def cached(backend, cache_dir: Path, key: str) -> Path:
    return cache_dir / backend.cache_folder / key


def two_assets(backend) -> None:
    backend.put("foo/bar.1.2.5.csv", CSV)
    backend.put("foo/bar.1.2.6.csv", b"newer\n")
    backend.put("cfg/params.2.0.0.json", JSON)
    manifest(backend, f"""
        assets:
          foo/bar.csv: 1.2.5
          cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
    """)


# --- listing and help ------------------------------------------------------------------


def test_list_shows_every_task_with_a_one_line_doc(backend):
    two_assets(backend)
    result = doit(backend, "list", "--all")
    assert result.returncode == 0, output(result)
    docs = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines())
    expected = {
        "cache", "fetch", "ls-remote", "publish", "status", "sync", "versions",
        "fetch:foo/bar.csv", "fetch:cfg/params.json",
        "publish:foo/bar.csv", "publish:cfg/params.json",
        "versions:foo/bar.csv", "versions:cfg/params.json",
    }
    assert expected <= set(docs), result.stdout
    for name in expected:
        assert docs[name].strip() and "\n" not in docs[name], name


def test_help_publish_documents_every_option(backend):
    two_assets(backend)
    result = doit(backend, "help", "publish")
    assert result.returncode == 0, output(result)
    for option in ("--major", "--minor", "--patch", "--version=", "--min-version=", "--file=", "--dry-run"):
        line = next((l for l in result.stdout.splitlines() if l.strip().startswith(option)), None)
        assert line is not None, (option, result.stdout)
        assert len(line.split(option, 1)[1].strip()) > 10, line  # a real description


# --- fetch ---------------------------------------------------------------------------------


def test_fetch_then_noop_fetch(backend, cache_dir):
    two_assets(backend)
    first = doit(backend, "fetch")
    assert first.returncode == 0, output(first)
    csv = cached(backend, cache_dir, "foo/bar.1.2.5.csv")
    params = cached(backend, cache_dir, "cfg/params.2.0.0.json")
    assert csv.read_bytes() == CSV and params.read_bytes() == JSON
    assert not cached(backend, cache_dir, "foo/bar.1.2.6.csv").exists()
    if backend.s3:
        assert backend.gets("foo/bar.1.2.5.csv") == 1 and backend.gets("cfg/params.2.0.0.json") == 1
        assert backend.gets() == 2
        backend.s3.clear()
    # one line per download: name, size, speed
    line = next(l for l in first.stdout.splitlines() if l.startswith("foo/bar.csv"))
    assert re.search(r"\b8 B\b.*\d+(\.\d+)? ?[KMG]?i?B/s", line), line
    mtimes = (csv.stat().st_mtime_ns, params.stat().st_mtime_ns)

    second = doit(backend, "fetch", "-v")
    assert second.returncode == 0, output(second)
    assert "-- fetch:foo/bar.csv" in second.stdout and "-- fetch:cfg/params.json" in second.stdout
    assert (csv.stat().st_mtime_ns, params.stat().st_mtime_ns) == mtimes
    if backend.s3:
        assert backend.s3.requests == []  # the store is immutable: not even a HEAD


def test_fetch_one_subtask(backend, cache_dir):
    two_assets(backend)
    result = doit(backend, "fetch:cfg/params.json")
    assert result.returncode == 0, output(result)
    assert cached(backend, cache_dir, "cfg/params.2.0.0.json").read_bytes() == JSON
    assert not cached(backend, cache_dir, "foo/bar.1.2.5.csv").exists()
    if backend.s3:
        assert backend.s3.counts() == {"GET": 1}


def test_default_task_is_fetch(backend, cache_dir):
    two_assets(backend)
    result = doit(backend)
    assert result.returncode == 0, output(result)
    assert cached(backend, cache_dir, "foo/bar.1.2.5.csv").read_bytes() == CSV


def test_files_entries_are_mutable(s3_backend, cache_dir):
    store = s3_backend
    store.client.create_bucket(Bucket="other")
    store.client.put_object(Bucket="other", Key="raw/data.json", Body=b"v1")
    manifest(store, """
        assets: {}
        files:
          - s3://other/raw/data.json
    """)
    path = cache_dir / cache_folder("other") / "raw" / "data.json"
    store.s3.clear()
    first = doit(store, "fetch:s3://other/raw/data.json")
    assert first.returncode == 0, output(first)
    assert path.read_bytes() == b"v1"
    assert store.s3.count("GET", "/other/raw/data.json") == 1
    store.s3.clear()

    within = doit(store, "fetch", "-v")  # inside the timeout (one day): no request
    assert "-- fetch:s3://other/raw/data.json" in within.stdout, output(within)
    assert store.s3.requests == []

    always = doit(store, "fetch", env={"POD_TIMEOUT": "0"})  # unchanged: one HEAD, no GET
    assert always.returncode == 0, output(always)
    assert store.s3.counts() == {"HEAD": 1}
    assert path.read_bytes() == b"v1"
    store.s3.clear()

    store.client.put_object(Bucket="other", Key="raw/data.json", Body=b"version 2")
    store.s3.clear()
    changed = doit(store, "fetch", env={"POD_TIMEOUT": "0"})  # changed: HEAD, then GET
    assert changed.returncode == 0, output(changed)
    assert store.s3.counts() == {"HEAD": 1, "GET": 1}
    assert path.read_bytes() == b"version 2"


def test_files_in_an_immutable_bucket_are_never_checked(s3_backend, cache_dir):
    store = s3_backend
    store.client.create_bucket(Bucket="frozen")
    store.client.put_object(Bucket="frozen", Key="a/b.bin", Body=b"frozen")
    manifest(store, """
        immutable: [frozen]
        assets: {}
        files:
          - s3://frozen/a/b.bin
    """)
    assert doit(store, "fetch").returncode == 0
    assert store.s3.counts() == {"GET": 1}
    store.s3.clear()
    again = doit(store, "fetch", "-v", env={"POD_TIMEOUT": "0"})
    assert "-- fetch:s3://frozen/a/b.bin" in again.stdout, output(again)
    assert store.s3.requests == [] and (cache_dir / cache_folder("frozen") / "a" / "b.bin").read_bytes() == b"frozen"


def test_overrides(s3_backend, cache_dir):
    """A local override is reported and needs no request; an s3:// one is fetched as it is."""
    store = s3_backend
    store.client.create_bucket(Bucket="other")
    store.client.put_object(Bucket="other", Key="x.bin", Body=b"\x00\x01")
    write(store.project / "try" / "local.csv", "x,y\n")
    manifest(store, """
        assets:
          foo/bar.csv: try/local.csv
          other/x.bin: s3://other/x.bin
    """)
    local = doit(store, "fetch:foo/bar.csv")
    assert local.returncode == 0, output(local)
    assert f"foo/bar.csv: local override {store.project / 'try' / 'local.csv'} (nothing to fetch)" in local.stdout
    assert store.s3.requests == [] and not cache_dir.exists()
    remote = doit(store, "fetch")
    assert remote.returncode == 0, output(remote)
    assert (cache_dir / cache_folder("other") / "x.bin").read_bytes() == b"\x00\x01"
    assert store.s3.counts() == {"GET": 1}
    assert [p.name for p in cache_dir.rglob("*") if p.is_file() and ".pod" not in p.parts] == ["CACHEDIR.TAG", "x.bin"]


def test_clean_fetch_removes_exactly_the_pinned_files(backend, cache_dir):
    two_assets(backend)
    assert doit(backend, "fetch").returncode == 0
    other = cached(backend, cache_dir, "foo/bar.1.2.6.csv")  # cached by someone else
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"newer\n")
    unrelated = cache_dir / "elsewhere" / "x.bin"
    write(unrelated, "keep me")
    result = doit(backend, "clean", "fetch")
    assert result.returncode == 0, output(result)
    assert not cached(backend, cache_dir, "foo/bar.1.2.5.csv").exists()
    assert not cached(backend, cache_dir, "cfg/params.2.0.0.json").exists()
    assert other.read_bytes() == b"newer\n" and unrelated.read_text() == "keep me"
    again = doit(backend, "fetch", "-v")  # and the next fetch brings them back
    assert "-- fetch" not in again.stdout, output(again)
    assert cached(backend, cache_dir, "foo/bar.1.2.5.csv").read_bytes() == CSV


PARALLEL = [(100, ["-n", "8", "-P", "thread"]), (12, ["-n", "4"])]


@pytest.mark.slow
@pytest.mark.parametrize("count, mode", PARALLEL, ids=["100 assets, -n 8 -P thread", "12 assets, -n 4 (processes)"])
def test_parallel_fetch(s3_backend, cache_dir, count, mode):
    store = s3_backend
    bodies = {f"set/item{i:03d}.txt": f"item {i}\n".encode() * (i + 1) for i in range(count)}
    for name, data in bodies.items():
        store.put(name.replace(".txt", ".1.0.0.txt"), data)
    manifest(store, "assets:\n" + "".join(f"  {name}: 1.0.0\n" for name in bodies))
    store.s3.clear()
    first = doit(store, *mode, "fetch")
    assert first.returncode == 0, output(first)
    for name, data in bodies.items():
        assert cached(store, cache_dir, name.replace(".txt", ".1.0.0.txt")).read_bytes() == data, name
    assert store.s3.counts() == {"GET": count}
    assert sum(1 for l in first.stdout.splitlines() if re.match(r"set/item\d{3}\.txt@1\.0\.0: ", l)) == count
    store.s3.clear()
    second = doit(store, *mode, "fetch", "-v")
    assert second.returncode == 0, output(second)
    assert store.s3.requests == []
    assert sum(1 for l in second.stdout.splitlines() if l.startswith("-- fetch:set/")) == count, second.stdout


def test_tampered_bytes_are_caught_by_the_sha256_pin(backend, cache_dir):
    backend.put("cfg/params.2.0.0.json", b'{"k": 2}\n')  # not the bytes the pin hashes
    manifest(backend, f"""
        assets:
          cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
    """)
    result = doit(backend, "fetch")
    assert_clean_failure(result, "cfg/params.json", "sha256")
    target = cached(backend, cache_dir, "cfg/params.2.0.0.json")
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []  # no temp file either


@pytest.fixture
def big_project(project) -> Path:
    """A folder-store project pinning one 17 MiB asset (above the progress-bar threshold)."""
    big = bytes(range(256)) * (17 * 4096)
    (project / "store" / "big").mkdir(parents=True)
    (project / "store" / "big" / "blob.1.0.0.bin").write_bytes(big)
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", """
        store: store
        assets:
          big/blob.bin: 1.0.0
    """)
    return project


def test_no_progress_bar_when_stdout_is_not_a_terminal(big_project):
    result = run_doit(["fetch"], big_project)
    assert result.returncode == 0, output(result)
    assert "\r" not in output(result) and "#" not in output(result)
    lines = [l for l in result.stdout.splitlines() if l.startswith("big/blob.bin")]
    assert len(lines) == 1 and "17.0 MiB" in lines[0], result.stdout


@pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are POSIX")
def test_progress_bar_on_a_terminal(big_project):
    code, text, errors = doit_on_a_terminal(["fetch"], big_project)
    assert code == 0, errors
    # one live line (tqdm: bytes in binary units, rate, time left), then the summary line only
    assert re.search(r"\rfetch:.* +\d+%\|", text), text
    assert "fetch:big/blob.bin" not in text and "big/blob.bin@1.0.0:" not in text, text
    assert re.search(r"fetched 1 file, 17\.0 MiB in [\d.]+ s; 0 up to date; 0 failed", text), text


@pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are POSIX")
def test_pack_shows_progress_on_a_terminal(big_project):
    assert run_doit(["fetch"], big_project).returncode == 0
    code, text, errors = doit_on_a_terminal(["pack", "--out", "a.zip"], big_project)
    assert code == 0, errors
    assert re.search(r"\rpack: 17\.0 MiB of 17\.0 MiB", text), text
    with zipfile.ZipFile(big_project / "a.zip") as zf:
        [blob] = [i for i in zf.infolist() if i.filename.endswith("big/blob.1.0.0.bin")]
        assert zf.read(blob) == (big_project / "store" / "big" / "blob.1.0.0.bin").read_bytes()


# --- offline and unreachable ---------------------------------------------------------------


def test_offline_mode_with_an_empty_cache(backend, cache_dir):
    two_assets(backend)
    result = doit(backend, "fetch:foo/bar.csv", env={"POD_OFFLINE": "1"})
    assert result.returncode == 1
    target = cached(backend, cache_dir, "foo/bar.1.2.5.csv")
    assert_clean_failure(result, "foo/bar.csv", backend.url("foo/bar.1.2.5.csv"), str(target), "offline")
    assert not target.exists()
    if backend.s3:
        assert backend.s3.requests == []
    missing = (cache_dir / "missing_assets.yaml").read_text()
    assert backend.url("foo/bar.1.2.5.csv") in missing


def test_fetch_goes_on_and_names_every_missing_asset(backend, cache_dir):
    """One run names every asset it cannot fetch (doit's `continue` is on)."""
    two_assets(backend)
    result = doit(backend, "fetch", env={"POD_OFFLINE": "1"})
    said = output(result)
    assert result.returncode == 1 and "Traceback" not in said, said  # as `doit fetch:NAME` alone
    errors = sorted(line for line in said.splitlines() if line.startswith("ERROR"))
    assert [e.split(" ", 2)[1] for e in errors] == ["fetch:cfg/params.json:", "fetch:foo/bar.csv:"], said
    assert backend.url("cfg/params.2.0.0.json") in errors[0] and backend.url("foo/bar.1.2.5.csv") in errors[1]
    missing = (cache_dir / "missing_assets.yaml").read_text()
    assert backend.url("foo/bar.1.2.5.csv") in missing and backend.url("cfg/params.2.0.0.json") in missing


def test_unreachable_store(backend, cache_dir, monkeypatch):
    two_assets(backend)
    if backend.s3:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    else:
        shutil.move(backend.project / "store", backend.project / "elsewhere")
    result = doit(backend, "fetch:foo/bar.csv")
    target = cached(backend, cache_dir, "foo/bar.1.2.5.csv")
    line = assert_clean_failure(result, "foo/bar.csv", backend.url("foo/bar.1.2.5.csv"), str(target))
    assert ("AWS_ENDPOINT_URL" if backend.s3 else "fix `store:`") in line
    assert not target.exists()


def test_no_credentials(s3_backend, cache_dir, tmp_path):
    two_assets(s3_backend)
    (tmp_path / "empty-config").write_text("")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ACCESS") and key != "AWS_SECRET_ACCESS_KEY"}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "empty-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "empty-config"))
    result = subprocess.run([sys.executable, "-m", "doit", "fetch:foo/bar.csv"], cwd=s3_backend.project, env=env,
                            capture_output=True, text=True, timeout=120)
    # With no credentials at all the read is tried unsigned (as for a public bucket); the
    # bucket is private: the refusal is reported as missing credentials, the URL remembered.
    assert s3_backend.s3.requests == [("GET", "/assets/foo/bar.1.2.5.csv")]
    assert_clean_failure(result, "foo/bar.csv", "s3://assets/foo/bar.1.2.5.csv", "credentials", "aws configure")
    assert not cached(s3_backend, cache_dir, "foo/bar.1.2.5.csv").exists()
    assert "s3://assets/foo/bar.1.2.5.csv" in (cache_dir / "missing_assets.yaml").read_text()


# --- the everyday tasks ---------------------------------------------------------------------


def test_versions_marks_pinned_and_latest(backend):
    two_assets(backend)
    backend.put("foo/bar.1.10.0.csv", b"ten\n")  # semver order, not text order
    backend.put("foo/bar.1.3.0.json", b"{}")  # another extension: another name
    backend.put("foo/barn.2.0.0.csv", b"x")  # another stem
    result = doit(backend, "versions:foo/bar.csv")
    assert result.returncode == 0, output(result)
    assert "asset  version  published" in re.sub(r"  +", "  ", result.stdout)
    rows = table_rows(result, "asset")
    assert [row[:2] for row in rows] == [
        ["foo/bar.csv", "1.2.5 (pinned)"],
        ["foo/bar.csv", "1.2.6"],
        ["foo/bar.csv", "1.10.0 (latest)"],
    ]
    assert [row[3:] for row in rows] == [["8 B", "-", "-"], ["6 B", "-", "-"], ["4 B", "-", "-"]]  # not published by pod-tasks


def test_status_table(backend, cache_dir):
    two_assets(backend)
    write(backend.project / "local.obj", "v 0 0 0\n")
    backend.put("new/thing.1.0.0.txt", b"x")
    manifest(backend, f"""
        assets:
          foo/bar.csv: 1.2.5
          cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
          try/mesh.obj: local.obj
          new/thing.txt: {{source: local.obj}}
    """)
    assert doit(backend, "fetch:foo/bar.csv").returncode == 0
    result = doit(backend, "status")
    assert result.returncode == 0, output(result)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line and line[0] not in ".-"}
    assert rows["asset"] == ["asset", "pin", "cached", "size", "age", "check", "due", "verified", "by"]
    verified = "etag-md5" if backend.s3 else "size"  # the store's CRC32 (boto3 adds one) is weaker than an MD5
    assert rows["foo/bar.csv"][1:4] == ["1.2.5", "yes", "8"] and rows["foo/bar.csv"][-2:] == ["no", verified]
    assert rows["cfg/params.json"][1:4] == ["2.0.0", "+sha256", "no"]
    assert rows["try/mesh.obj"][1:2] == ["override"] and rows["try/mesh.obj"][3] == "local"
    assert rows["new/thing.txt"][1] == "unpublished"


def test_ls_remote_lists_the_names_in_the_store(backend):
    two_assets(backend)
    backend.put("notes/readme", b"no version: not a name")
    backend.put("file_with_no_ext.10.1.6", b"x")
    result = doit(backend, "ls-remote")
    assert result.returncode == 0, output(result)
    lines = [l for l in result.stdout.splitlines() if not l.startswith(".")]
    assert lines == [  # in columns
        "cfg/params.json   2.0.0   (1 version)",
        "file_with_no_ext  10.1.6  (1 version)",
        "foo/bar.csv       1.2.6   (2 versions)",
    ]


@pytest.mark.parametrize("dest", [None, "out/copies"])
def test_sync_copies_every_pinned_file(backend, dest):
    two_assets(backend)
    args = ["sync"] + ([] if dest is None else ["--dest", dest])
    result = doit(backend, *args)
    assert result.returncode == 0, output(result)
    folder = backend.project / (dest or "versioned_assets")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["cfg/params.json", "foo/bar.csv"]
    assert (folder / "foo" / "bar.csv").read_bytes() == CSV
    assert (folder / "cfg" / "params.json").read_bytes() == JSON


def test_cache_list_invalidate_delete_location(s3_backend, cache_dir):
    store = s3_backend
    two_assets(store)
    assert doit(store, "fetch").returncode == 0
    csv = cached(store, cache_dir, "foo/bar.1.2.5.csv")

    location = doit(store, "cache", "--location")
    assert str(cache_dir) in location.stdout.splitlines(), location.stdout

    listing = [l for l in doit(store, "cache").stdout.splitlines() if l.startswith("s3://")]
    assert len(listing) == 2
    line = next(l for l in listing if l.startswith("s3://assets/foo/bar.1.2.5.csv "))
    assert " 8 B " in line and "fresh" in line and line.endswith(str(csv))

    store.s3.clear()
    invalidated = doit(store, "cache", "--invalidate", "s3://assets/foo/bar.1.2.5.csv")
    assert "invalidated 1 cached file(s)" in invalidated.stdout, output(invalidated)
    refetch = doit(store, "fetch", "-v")  # the invalidated file is checked (HEAD), not downloaded
    assert refetch.returncode == 0, output(refetch)
    assert store.s3.counts() == {"HEAD": 1}
    assert "foo/bar.csv@1.2.5: checked with the store, unchanged" in refetch.stdout
    assert "-- fetch:cfg/params.json" in refetch.stdout

    deleted = doit(store, "cache", "--delete", str(csv))
    assert "deleted 1 cached file(s)" in deleted.stdout, output(deleted)
    assert not csv.exists() and cached(store, cache_dir, "cfg/params.2.0.0.json").read_bytes() == JSON

    refused = doit(store, "cache", "--delete")
    assert_clean_failure(refused, "cache --delete")


# --- clean failures -------------------------------------------------------------------------

BAD_MANIFESTS = [
    ("bad version", "store: store\nassets:\n  foo/bar.csv: 1.2\n", "assets.yaml:3:"),
    ("not yaml", "store: store\nassets:\n  foo/bar.csv: [1.2.5\n", "assets.yaml:"),
    ("unknown key", "store: store\nstuff: 1\nassets: {}\n", "assets.yaml:2:"),
    ("no store", "assets:\n  foo/bar.csv: 1.2.5\n", "assets.yaml:1:"),
    ("unsafe name", "store: store\nassets:\n  ../up.csv: 1.0.0\n", "assets.yaml:3:"),
    ("not utf-8", b"store: store\nassets:\n  foo/\xff.csv: 1.0.0\n", "assets.yaml:1:"),
]


COMMANDS = [
    ["list"], ["fetch"], [], ["fetch:foo/bar.csv"], ["help", "publish"], ["status"], ["clean", "fetch"],
    ["publish:foo/bar.csv", "--patch"], ["versions:foo/bar.csv"], ["ls-remote"], ["sync"], ["cache", "--location"],
]


def assert_stopped_by_manifest(project: Path, text: str | bytes, where: str, command: list[str]) -> None:
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    path = project / "assets.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = path.read_bytes()
    result = run_doit(command, project)
    assert result.returncode != 0
    assert "Traceback" not in output(result)
    assert result.stdout == ""
    assert result.stderr.startswith(f"ERROR: {where}") and result.stderr.count("\n") == 1, result.stderr
    assert path.read_bytes() == before
    assert not (project / "versioned_assets").exists()


@pytest.mark.parametrize("text, where", [t[1:] for t in BAD_MANIFESTS], ids=[t[0] for t in BAD_MANIFESTS])
def test_invalid_manifest_fails_fetch_with_its_line(project, text, where):
    assert_stopped_by_manifest(project, text, where, ["fetch"])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_invalid_manifest_stops_every_command(project, command):
    assert_stopped_by_manifest(project, BAD_MANIFESTS[0][1], BAD_MANIFESTS[0][2], command)


def test_unreadable_manifest(project):
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    (project / "assets.yaml").mkdir()  # there, but not a file that can be read
    result = run_doit(["fetch"], project, env={"POD_ASSETS": str(project / "assets.yaml")})
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"ERROR: assets.yaml:1: cannot read {project / 'assets.yaml'}: ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_missing_manifest(project):
    """With no assets.yaml at all, the tasks that need one fail saying so; the others
    (listing, `doit import-manifest` that creates one) still work."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    listing = run_doit(["list"], project)
    assert listing.returncode == 0 and "fetch " in listing.stdout, output(listing)
    for task in ("fetch", "publish", "status", "sync"):
        result = run_doit([task], project)
        assert_clean_failure(result, f"{task}: no assets.yaml in {project} or any folder above it", "POD_ASSETS")
    assert not (project / "versioned_assets").exists()


@pytest.mark.parametrize("task", ["fetch", "publish", "versions"])
@pytest.mark.parametrize("name", ["no/such.csv", "/no/such.csv"])
def test_unknown_name(s3_backend, task, name):
    two_assets(s3_backend)
    result = doit(s3_backend, f"{task}:{name}", *(["--patch"] if task == "publish" else []))
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.startswith(
        f"ERROR: {task}:{name}: {name!r} is not in {s3_backend.project / 'assets.yaml'}: add it under `assets:`"
    ) and result.stderr.count("\n") == 1, result.stderr
    assert s3_backend.s3.requests == []


def test_unknown_files_entry(s3_backend):
    two_assets(s3_backend)
    result = doit(s3_backend, "fetch:s3://assets/foo/bar.1.2.6.csv")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == (
        f"ERROR: fetch:s3://assets/foo/bar.1.2.6.csv: not under `files:` in {s3_backend.project / 'assets.yaml'}: "
        "add it there first\n"
    )


def test_a_cached_file_changed_locally_is_fetched_again(backend, cache_dir):
    two_assets(backend)
    assert doit(backend, "fetch").returncode == 0
    csv = cached(backend, cache_dir, "foo/bar.1.2.5.csv")
    csv.write_bytes(b"X" * len(CSV))  # same size, other bytes
    if backend.s3:
        backend.s3.clear()
    result = doit(backend, "fetch", "-v")
    assert result.returncode == 0, output(result)
    assert "-- fetch:foo/bar.csv" not in result.stdout and "-- fetch:cfg/params.json" in result.stdout
    assert csv.read_bytes() == CSV
    if backend.s3:
        assert backend.gets("foo/bar.1.2.5.csv") == 1


def test_publish_of_a_files_url_says_what_publish_takes(dir_backend):
    url = "s3://example-bucket/example.json"
    manifest(dir_backend, f"files:\n  - {url}\nassets:\n  foo/bar.csv: {{source: x.csv}}\n")
    result = doit(dir_backend, f"publish:{url}", "--minor")
    assert result.returncode != 0 and "Traceback" not in output(result)
    assert f"publish:{url}: an object under `files:` is used as it is, not versioned: publish takes a name under " \
           f"`assets:`" in output(result)


def test_a_pinned_version_not_in_the_store_names_those_that_are(backend):
    backend.put("foo/bar.1.2.5.csv", b"a\n")
    backend.put("foo/bar.2.0.0.csv", b"b\n")
    manifest(backend, "assets:\n  foo/bar.csv: 1.2.9\n")
    result = doit(backend, "fetch")
    assert result.returncode == 1 and "Traceback" not in output(result)
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith("ERROR fetch:foo/bar.csv: ")
    assert errors[0].endswith("; the store has foo/bar.csv 1.2.5, 2.0.0: pin one of them in assets.yaml"), errors


UNKNOWN_OPTIONS = [
    (["publish:foo/bar.csv", "--minr"], "publish:foo/bar.csv: unknown option --minr: did you mean --minor? "
                                        "(doit help publish lists its options)"),
    (["publish:foo/bar.csv", "--min", "2"], "publish:foo/bar.csv: option --min is ambiguous (--minor, --min-version): "
                                            "write it in full"),
    (["fetch", "-n", "4"], "fetch: unknown option -n: it takes --jobs, --quiet, --verbose, -q, -v; doit's own options go before the task name "
                           "(doit -n 4 fetch)"),
    (["cache", "--delte", "x"], "cache: unknown option --delte: did you mean --delete?"),
    (["status", "--all"], "status: unknown option --all: it takes no options"),
]


@pytest.mark.parametrize("args, line", UNKNOWN_OPTIONS, ids=[" ".join(a) for a, _ in UNKNOWN_OPTIONS])
def test_an_unknown_option_is_one_line_naming_the_nearest(dir_backend, args, line):
    text = manifest(dir_backend, "assets:\n  foo/bar.csv: {source: x.csv}\n").read_text()
    write(dir_backend.project / "x.csv", "a\n")
    result = doit(dir_backend, *args)
    assert result.returncode == 3 and result.stdout == "", output(result)
    assert result.stderr.startswith(f"ERROR: {line}") and result.stderr.count("\n") == 1, result.stderr
    assert (dir_backend.project / "assets.yaml").read_text() == text
    assert not (dir_backend.project / "store" / "foo").exists()


def test_a_unique_prefix_of_an_option_is_taken_as_doit_takes_it(dir_backend):
    manifest(dir_backend, "assets:\n  foo/bar.csv: {source: x.csv}\n")
    write(dir_backend.project / "x.csv", "a\n")
    assert doit(dir_backend, "publish:foo/bar.csv", "--vers", "2.1.0").returncode == 0
    assert (dir_backend.project / "store" / "foo" / "bar.2.1.0.csv").read_bytes() == b"a\n"
