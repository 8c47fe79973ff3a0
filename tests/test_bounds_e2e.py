"""Everything remote is bounded (issue 22, contract 5), tried as an attacker runs it:
``doit`` and ``resolve()`` in subprocesses against hostile servers on 127.0.0.1
(`tests.hostile_servers`): a mirror that declares a terabyte and streams forever, one that
drip-feeds a byte a second, a fake S3 whose listing never ends. Asserted on the bytes
written, the requests made, the exit codes and the exact lines."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_python
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    dir_backend,
    doit,
    manifest,
    output,
    sha256,
)
from tests.faults import assert_clean
from pod_tasks.layout import TAG
from tests.hostile_servers import HUGE, EndlessListing, LyingMirror

EIGHT = b"8 bytes\n"
KEY = "foo/bar.1.0.0.csv"


def files_in(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (temporary ones included), with its size; not the
    cache's tag (`pod_tasks.layout.TAG`), which marks the folder, not a download."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).as_posix() != TAG}


@pytest.fixture
def site(tmp_path) -> Path:
    """What a mirror serves: the right bytes of `KEY` (the mirror lies about them anyway)."""
    (tmp_path / "site" / "foo").mkdir(parents=True)
    (tmp_path / "site" / KEY).write_bytes(EIGHT)
    return tmp_path / "site"


def mirrored(store, mirror, pin: str) -> None:
    """The store holds `KEY`; assets.yaml reads ``mirror`` first and pins foo/bar.csv as ``pin``."""
    store.put(KEY, EIGHT)
    manifest(store, f"mirrors: [{mirror.endpoint}]\nassets:\n  foo/bar.csv: {pin}\n")


def test_a_mirror_declaring_a_terabyte_for_a_sized_pin_writes_nothing_and_the_store_serves(
        dir_backend, site, cache_dir):
    mirror = LyingMirror(site, "huge").start()
    try:
        mirrored(dir_backend, mirror, f"{{version: 1.0.0, sha256: {sha256(EIGHT)}, size: 8}}")
        result = doit(dir_backend, "fetch")
    finally:
        mirror.stop()
    assert result.returncode == 0, output(result)
    assert_clean(result)
    assert result.stderr.splitlines() == [
        f"mirror {mirror.endpoint}: foo/bar.csv@1.0.0: {mirror.endpoint}/{KEY} is {HUGE} bytes, the pin in "
        f"assets.yaml says 8; trying the next source (a mirror that keeps failing is skipped for the rest of this run)"
    ]
    assert mirror.count("GET") == 1
    data = {path: size for path, size in files_in(cache_dir).items() if not path.startswith(".pod/")}
    assert data == {f"{dir_backend.cache_folder}/{KEY}": 8}  # the store's 8 bytes, no temporary file
    assert (cache_dir / dir_backend.cache_folder / KEY).read_bytes() == EIGHT


def test_a_mirror_declaring_a_terabyte_for_a_sha256_pin_is_capped_by_pod_max_size(dir_backend, site, cache_dir):
    mirror = LyingMirror(site, "huge").start()
    try:
        mirrored(dir_backend, mirror, f"{{version: 1.0.0, sha256: {sha256(EIGHT)}}}")
        result = doit(dir_backend, "fetch", env={"POD_MAX_SIZE": "1MiB"})
    finally:
        mirror.stop()
    assert result.returncode == 0, output(result)
    assert result.stderr.splitlines() == [
        f"mirror {mirror.endpoint}: foo/bar.csv@1.0.0: {mirror.endpoint}/{KEY} is {HUGE} bytes, more than "
        f"POD_MAX_SIZE ({1 << 20}): raise POD_MAX_SIZE if the object is that big; trying the next source (a mirror "
        f"that keeps failing is skipped for the rest of this run)"
    ]
    data = {path: size for path, size in files_in(cache_dir).items() if not path.startswith(".pod/")}
    assert data == {f"{dir_backend.cache_folder}/{KEY}": 8}


def test_a_drip_feeding_mirror_is_given_up_at_the_deadline_and_the_store_serves(dir_backend, site, cache_dir):
    body = bytes(range(64))  # 64 s at a byte a second
    (site / KEY).write_bytes(body)
    mirror = LyingMirror(site, "drip").start()
    try:
        dir_backend.put(KEY, body)
        manifest(dir_backend, f"mirrors: [{mirror.endpoint}]\nassets:\n"
                              f"  foo/bar.csv: {{version: 1.0.0, sha256: {sha256(body)}, size: 64}}\n")
        began = time.monotonic()
        result = doit(dir_backend, "fetch", env={"POD_MIN_RATE": "1MiB"})  # the deadline: 5 s and 64 bytes' worth
        took = time.monotonic() - began
    finally:
        mirror.stop()
    assert result.returncode == 0, output(result)
    assert took < 40, took  # not the 64 s the mirror would take
    warning, = result.stderr.splitlines()
    assert warning.startswith(f"mirror {mirror.endpoint}: foo/bar.csv@1.0.0: the download of {mirror.endpoint}/{KEY} "
                              f"was given up after 5 s (")
    assert warning.endswith(" of 64 bytes): slower than POD_MIN_RATE; lower it for a slow link; trying the next source "
                            "(a mirror that keeps failing is skipped for the rest of this run)")
    assert mirror.count("GET") == 1 and mirror.sent <= 8  # cut after about 5 bytes
    assert (cache_dir / dir_backend.cache_folder / KEY).read_bytes() == body
    assert not [p for p in files_in(cache_dir) if p.endswith(".part")]


@pytest.fixture(params=["same", "new"])
def endless(request, project, monkeypatch):
    """A fake S3 server whose listing never ends, the environment pointed at it (with
    credentials, as a user's); the project's store is a bucket there."""
    server = EndlessListing(request.param).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPODTESTKEY0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pod-bounds-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    (project / "dodo.py").write_text((REPO / "dodo.py").read_text())
    (project / "assets.yaml").write_text("store: s3://assets\nassets:\n  foo/bar.csv: 1.0.0\n")
    yield server
    server.stop()


#: The page limit for a listing of new tokens in these tests (the real one, 10,000 pages,
#: takes minutes against a server in this process): set in the subprocess, as the constant.
FEW = 30


def run_limited(project: Path, mode: str, code: str):
    """Run ``code`` in a fresh interpreter in ``project`` as a user's program, with the page
    limit at `FEW` for a listing of ``new`` tokens (a repeated one needs no such help)."""
    limit = f"import pod_tasks.store\npod_tasks.store.MAX_PAGES = {FEW}\n" if mode == "new" else ""
    return run_python(limit + textwrap.dedent(code), project)


def test_an_endless_listing_stops_versions_with_one_line(endless, project):
    result = run_limited(project, endless.mode, """
        import sys
        from doit.doit_cmd import DoitMain
        sys.exit(DoitMain().run(["versions:foo/bar.csv"]))
    """)
    why = "repeated a continuation token at page 2" if endless.mode == "same" else f"had more than {FEW} pages"
    line = assert_clean_failure(result)
    assert line == (f"ERROR versions:foo/bar.csv: s3://assets/foo/bar.*: the store's listing {why}, so it was "
                    f"stopped: a broken or hostile S3 server; check `endpoint:` / AWS_ENDPOINT_URL"), output(result)
    assert result.returncode == 1
    assert endless.pages == (2 if endless.mode == "same" else FEW)


def test_an_endless_listing_stops_resolve_with_one_line(endless, project):
    result = run_limited(project, endless.mode, """
        import sys
        from pod_tasks import PodError, resolve
        try:
            resolve("foo/bar.csv")
        except PodError as exc:
            sys.exit(f"error: {exc}")
    """)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        "error: foo/bar.csv@1.0.0: s3://assets/foo/bar.1.0.0.csv does not exist in the store: check the name, "
        "version or URL asked for"
    ]
    assert endless.count("GET") == 1 + endless.pages  # the object's GET (404), then the versions' listing, stopped
    assert endless.pages == (2 if endless.mode == "same" else FEW)
