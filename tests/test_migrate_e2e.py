"""Moving over from baiji-pod, as a user does it: ``doit import-manifest`` on the old
JSON manifest, and the old cache folder reused as it is, against moto's S3 server on
127.0.0.1 (requests counted)."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from tests.conftest import REPO, cache_folder, run_doit, run_python, write
from tests.doit_project import doit, manifest, output, s3_backend  # noqa: F401  (fixtures)

CSV, X, Y = b"a,b\n1,2\n", b'{"x": 1}\n', b'{"y": 2}\n'


def test_import_manifest_merges_every_kind_of_entry_then_fetch_uses_them(s3_backend, client, cache_dir):
    store = s3_backend
    client.create_bucket(Bucket="other")
    client.put_object(Bucket="other", Key="x.bin", Body=X)
    store.put("foo/bar.1.2.5.csv", CSV)
    store.put("foo/keep.1.0.0.json", Y)
    text = "# our assets\nstore: s3://assets   # the versioned bucket\nassets:\n  foo/keep.json: 1.0.0  # pinned by hand\n"
    write(store.project / "assets.yaml", text)
    (store.project / "scratch").mkdir()
    (store.project / "scratch" / "try.obj").write_bytes(b"local bytes")
    (store.project / "versioned_assets.json").write_text(json.dumps({
        "/foo/bar.csv": "1.2.5",
        "foo/keep.json": "1.0.0",
        "/dev/try.obj": "scratch/try.obj",
        "/other/x.bin": "s3://other/x.bin",
    }, indent=4))
    result = doit(store, "import-manifest", "versioned_assets.json", "--store", "s3://assets")
    assert result.returncode == 0, output(result)
    assert "3 added, 1 already pinned the same, 0 not imported" in result.stdout
    assert (store.project / "assets.yaml").read_text() == text + (
        "  foo/bar.csv: 1.2.5\n  dev/try.obj: scratch/try.obj\n  other/x.bin: s3://other/x.bin\n"
    )
    store.s3.clear()
    fetched = doit(store, "fetch")
    assert fetched.returncode == 0, output(fetched)
    assert (cache_dir / cache_folder("assets") / "foo/bar.1.2.5.csv").read_bytes() == CSV
    assert (cache_dir / cache_folder("other") / "x.bin").read_bytes() == X
    assert store.s3.count("GET", "/assets/foo/bar.1.2.5.csv") == 1 and store.s3.count("GET", "/other/x.bin") == 1
    again = doit(store, "import-manifest", "versioned_assets.json")
    assert again.returncode == 0 and "0 added, 4 already pinned the same" in again.stdout, output(again)


def test_import_manifest_reports_conflicts_and_fails(s3_backend):
    write(s3_backend.project / "assets.yaml", "store: s3://assets\nassets:\n  foo/a.csv: 1.0.0\n")
    (s3_backend.project / "versioned_assets.json").write_text('{"/foo/a.csv": "2.0.0", "/foo/b.csv": "1.0.0"}')
    result = doit(s3_backend, "import-manifest", "versioned_assets.json")
    assert result.returncode != 0
    assert "not imported: foo/a.csv: assets.yaml line 3 pins it differently; the old manifest says '2.0.0'" in result.stdout
    assert "ERROR import-manifest: 1 entry not imported (listed above)" in output(result)
    assert (s3_backend.project / "assets.yaml").read_text() == (
        "store: s3://assets\nassets:\n  foo/a.csv: 1.0.0\n  foo/b.csv: 1.0.0\n"
    )


def test_import_manifest_creates_assets_yaml(project):
    (project / "dodo.py").write_text((REPO / "dodo.py").read_text())
    (project / "versioned_assets.json").write_text('{"/foo/a.csv": "1.0.0", "/x.bin": "s3://raw/x.bin"}')
    result = run_doit(["import-manifest", "versioned_assets.json", "--store", "s3://assets"], project)
    assert result.returncode == 0, output(result)
    assert f"{project / 'assets.yaml'}: created, 2 name(s) added" in result.stdout
    assert (project / "assets.yaml").read_text() == "store: s3://assets\nassets:\n  foo/a.csv: 1.0.0\n  x.bin: s3://raw/x.bin\n"


@pytest.mark.parametrize("variable", ["POD_CACHE_DIR", "STATIC_CACHE_DIR"])
def test_old_cache_is_reused_with_zero_gets(s3_backend, client, tmp_path, monkeypatch, variable):
    store = s3_backend
    client.create_bucket(Bucket="raw")
    client.put_object(Bucket="raw", Key="x.json", Body=X)
    client.put_object(Bucket="raw", Key="y.json", Body=Y)
    store.put("foo/bar.1.2.5.csv", CSV)
    # The old tool's layout: <bucket>/<key>, marks in .timestamps/ (under the folder of
    # this server's endpoint: AWS's own has none, tests/test_endpoints.py).
    old = tmp_path / "baiji_cache"
    now = time.time()
    bar, x, y = f"{cache_folder('assets')}/foo/bar.1.2.5.csv", f"{cache_folder('raw')}/x.json", f"{cache_folder('raw')}/y.json"
    for rel, data, checked in (
        (bar, CSV, now - 30 * 86400),  # immutable: any mark will do
        (x, X, now - 3600),            # mutable, checked an hour ago
        (y, Y, now - 3 * 86400),       # mutable, due: one HEAD, no GET
    ):
        write(old / rel, "").write_bytes(data)
        mark = write(old / ".timestamps" / rel, "")
        os.utime(mark, (checked, checked))
    monkeypatch.delenv("POD_CACHE_DIR")
    monkeypatch.setenv(variable, str(old))
    manifest(store, """
        assets:
          foo/bar.csv: 1.2.5
        files:
          - s3://raw/x.json
          - s3://raw/y.json
    """)
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file()}
    fetched = doit(store, "fetch")
    assert fetched.returncode == 0, output(fetched)
    resolved = run_python(
        "from pod_tasks import resolve\nfor n in ('foo/bar.csv', 's3://raw/x.json', 's3://raw/y.json'): print(resolve(n))",
        store.project,
    )
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.splitlines() == [str(old / bar), str(old / x), str(old / y)]
    assert store.s3.count("GET") == 0
    assert [(m, p) for m, p in store.s3.requests] == [("HEAD", "/raw/y.json")]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing rewritten, old marks untouched
    assert sorted(p.relative_to(old / ".pod").as_posix() for p in (old / ".pod").rglob("*.json")) == sorted([
        f"{bar}.json", f"{x}.json", f"{y}.json", "_notes/projects.json",  # the project and what it pins, for doit gc
        f"_notes/pins-{hashlib.sha1(str((store.project / 'assets.yaml').resolve()).encode()).hexdigest()[:16]}.json",
    ])
