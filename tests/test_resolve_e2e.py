"""resolve() from real processes against moto's S3 server over HTTP and the directory store."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.conftest import cache_folder, run_python, write

PROGRAM = """
import hashlib, sys
from pod_tasks import PodError, resolve
try:
    path = {expr}
except PodError as exc:
    print(f"{{type(exc).__name__}}: {{exc}}")
    sys.exit(3)
print(path)
print(hashlib.sha256(open(path, "rb").read()).hexdigest())
"""


def resolve_in(cwd: Path, expr: str, env: dict | None = None) -> tuple[str, str]:
    """Run ``expr`` (a resolve() call) in a new process: (path, sha256 of its bytes)."""
    result = run_python(PROGRAM.format(expr=expr), cwd, env)
    assert result.returncode == 0, result.stdout + result.stderr
    path, digest = result.stdout.splitlines()
    return path, digest


def fail_in(cwd: Path, expr: str, env: dict | None = None) -> str:
    """Run ``expr`` expecting a PodError: its one-line ``Type: message``."""
    result = run_python(PROGRAM.format(expr=expr), cwd, env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bucket_with(client, bucket: str, objects: dict[str, bytes]) -> None:
    """Create ``bucket`` holding ``objects`` (key -> bytes)."""
    client.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def test_resolve_miss_then_hit_counts_requests(s3, client, project, cache_dir):
    bucket_with(client, "assets", {"foo/bar.1.2.5.csv": b"a,b\n1,2\n"})
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          foo/bar.csv: 1.2.5
    """)
    s3.clear()
    path, digest = resolve_in(project, "resolve('foo/bar.csv')")
    assert Path(path) == cache_dir.resolve() / cache_folder("assets") / "foo" / "bar.1.2.5.csv"
    assert digest == sha(b"a,b\n1,2\n")
    assert s3.counts() == {"GET": 1}
    s3.clear()
    assert resolve_in(project, "resolve('/foo/bar.csv')") == (path, digest)
    assert s3.requests == []  # immutable store: no request at all
    assert resolve_in(project, "resolve('foo/bar.csv')", {"POD_TIMEOUT": "0"}) == (path, digest)
    assert s3.requests == []  # the store is immutable whatever the timeout


def test_mutable_object_timeout_and_etag_change(s3, client, project):
    bucket_with(client, "raw", {"data/x.json": b'{"v": 1}'})
    write(project / "assets.yaml", "store: s3://assets\n")
    expr = "resolve('s3://raw/data/x.json')"
    s3.clear()
    path, digest = resolve_in(project, expr)
    assert digest == sha(b'{"v": 1}') and s3.counts() == {"GET": 1}
    s3.clear()
    assert resolve_in(project, expr) == (path, digest)  # inside the default day
    assert s3.requests == []
    assert resolve_in(project, expr, {"POD_TIMEOUT": "0"}) == (path, digest)  # unchanged: one HEAD
    assert s3.counts() == {"HEAD": 1}

    client.put_object(Bucket="raw", Key="data/x.json", Body=b'{"v": 2}')
    s3.clear()
    assert resolve_in(project, expr) == (path, digest)  # not due yet: the old bytes, no request
    assert s3.requests == []
    assert resolve_in(project, expr, {"POD_TIMEOUT": "0"}) == (path, sha(b'{"v": 2}'))
    assert s3.counts() == {"HEAD": 1, "GET": 1}
    s3.clear()
    assert resolve_in(project, expr, {"STATIC_CACHE_TIMEOUT": "never", "POD_TIMEOUT": ""}) == (path, sha(b'{"v": 2}'))
    assert s3.requests == []


@pytest.mark.slow
def test_eight_processes_on_one_missing_object_make_one_get(s3, client, project, tmp_path):
    data = os.urandom(1 << 16) * 32  # 2 MiB, so the downloads would overlap
    bucket_with(client, "assets", {"big/blob.1.0.0.bin": data})
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          big/blob.bin: 1.0.0
    """)
    go = tmp_path / "go"
    code = f"""
        import hashlib, pathlib, time
        from pod_tasks import resolve
        go = pathlib.Path({str(go)!r})
        while not go.exists():
            time.sleep(0.005)
        path = resolve('big/blob.bin')
        print(path, hashlib.sha256(open(path, 'rb').read()).hexdigest())
    """
    s3.clear()
    with ThreadPoolExecutor(8) as pool:
        runs = [pool.submit(run_python, code, project) for _ in range(8)]
        go.touch()
        results = [run.result() for run in runs]
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results]
    assert len({r.stdout for r in results}) == 1
    assert results[0].stdout.split()[1] == sha(data)
    assert s3.count("GET", "/assets/big/blob.1.0.0.bin") == 1
    assert s3.count("GET") == 1


def test_offline_with_the_server_stopped(own_s3, project, cache_dir):
    import boto3

    client = boto3.client("s3", endpoint_url=own_s3.endpoint)
    bucket_with(client, "assets", {"have.1.0.0.csv": b"pinned"})
    bucket_with(client, "raw", {"live.json": b"live"})
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          have.csv: 1.0.0
          want.csv: 2.0.0
    """)
    pinned = resolve_in(project, "resolve('have.csv')")
    live = resolve_in(project, "resolve('s3://raw/live.json')")
    own_s3.stop()

    assert resolve_in(project, "resolve('have.csv')") == pinned
    result = run_python(PROGRAM.format(expr="resolve('s3://raw/live.json')"), project, {"POD_TIMEOUT": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == list(live)
    assert "serving the cached copy" in result.stderr and "s3://raw/live.json" in result.stderr

    message = fail_in(project, "resolve('want.csv')")
    expected_path = cache_dir.resolve() / cache_folder("assets") / "want.2.0.0.csv"
    assert message.startswith("OfflineError: want.csv@2.0.0: not in the cache and cannot reach the store")
    assert "s3://assets/want.2.0.0.csv" in message and str(expected_path) in message
    assert not expected_path.exists()
    fail_in(project, "resolve('s3://raw/other.json')")
    assert yaml.safe_load((cache_dir / "missing_assets.yaml").read_text()) == [
        "s3://assets/want.2.0.0.csv", "s3://raw/other.json"]


def test_offline_mode_makes_no_request(s3, client, project, cache_dir):
    bucket_with(client, "assets", {"a.1.0.0.txt": b"a"})
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          a.txt: 1.0.0
          b.txt: 1.0.0
    """)
    path = resolve_in(project, "resolve('a.txt')")
    s3.clear()
    assert resolve_in(project, "resolve('a.txt')", {"POD_OFFLINE": "1", "POD_TIMEOUT": "0"}) == path
    message = fail_in(project, "resolve('b.txt')", {"POD_OFFLINE": "1"})
    assert message.startswith("OfflineError: b.txt@1.0.0: not in the cache and offline mode is on")
    assert s3.requests == []


def test_directory_store(project, cache_dir):
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"x" * 1000)
    (project / "store" / "foo" / "bar.1.1.0.csv").write_bytes(b"y" * 10)
    write(project / "assets.yaml", """
        store: store
        assets:
          /foo/bar.csv: 1.0.0
    """)
    path, digest = resolve_in(project, "resolve('/foo/bar.csv')")
    assert digest == sha(b"x" * 1000)
    assert Path(path).parent.parent.parent == cache_dir.resolve()
    assert Path(path).relative_to(cache_dir.resolve()).parts[1:] == ("foo", "bar.1.0.0.csv")
    other, other_digest = resolve_in(project, "resolve('foo/bar.csv', version='1.1.0')")
    assert other_digest == sha(b"y" * 10) and Path(other).name == "bar.1.1.0.csv"
    message = fail_in(project, "resolve('foo/bar.csv', version='9.9.9')")
    assert message.startswith("AssetNotFound: foo/bar.csv@9.9.9: file://") and "bar.9.9.9.csv does not exist" in message
    (project / "store" / "foo" / "bar.1.0.0.csv").unlink()  # the cache still has it
    assert resolve_in(project, "resolve('foo/bar.csv')") == (path, digest)


def test_store_folder_missing_is_offline(project):
    write(project / "assets.yaml", "store: not-mounted\nassets:\n  a.txt: 1.0.0\n")
    message = fail_in(project, "resolve('a.txt')")
    assert message.startswith("OfflineError: a.txt@1.0.0: not in the cache and cannot reach")
    assert "not-mounted: it is not there: mount it" in message


def test_overrides(s3, client, project, cache_dir):
    bucket_with(client, "other", {"x/y.bin": b"from s3"})
    (project / "scratch").mkdir()
    (project / "scratch" / "try.obj").write_bytes(b"local try")
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          dev/try.obj: scratch/try.obj
          other/y.bin: s3://other/x/y.bin
    """)
    s3.clear()
    local = resolve_in(project, "resolve('dev/try.obj')")
    assert local == (str(project / "scratch" / "try.obj"), sha(b"local try"))
    assert s3.requests == []
    remote = resolve_in(project, "resolve('other/y.bin')")
    assert remote == (str(cache_dir.resolve() / cache_folder("other") / "x" / "y.bin"), sha(b"from s3"))
    assert s3.counts() == {"GET": 1}
    client.put_object(Bucket="other", Key="x/y.bin", Body=b"from s3, changed")
    s3.clear()
    assert resolve_in(project, "resolve('other/y.bin')", {"POD_TIMEOUT": "0"})[1] == sha(b"from s3, changed")
    assert s3.counts() == {"HEAD": 1, "GET": 1}  # an override's bucket is not the store: mutable


def test_integrity_check_catches_replaced_bytes(s3, client, project, cache_dir):
    bucket_with(client, "assets", {"model.1.0.0.bin": b"the real model", "other.1.0.0.bin": b"other"})
    write(project / "assets.yaml", f"""
        store: s3://assets
        assets:
          model.bin: {{version: 1.0.0, sha256: {sha(b"the real model")}}}
          other.bin: {{version: 1.0.0, sha256: {sha(b"other")}}}
    """)
    good = resolve_in(project, "resolve('model.bin')")
    assert good[1] == sha(b"the real model")
    client.put_object(Bucket="assets", Key="model.1.0.0.bin", Body=b"a tampered model")
    client.put_object(Bucket="assets", Key="other.1.0.0.bin", Body=b"tampered other")
    assert resolve_in(project, "resolve('model.bin')") == good  # verified copy in the cache

    message = fail_in(project, "resolve('other.bin')")
    assert message.startswith("IntegrityError: other.bin@1.0.0: sha256 ")
    assert sha(b"tampered other") in message and sha(b"other") in message
    final = cache_dir.resolve() / cache_folder("assets") / "other.1.0.0.bin"
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir()] == ["model.1.0.0.bin"]


def test_round_trip_pickle_and_version(s3, client, project):
    bucket_with(client, "assets", {"d/a.1.0.0.txt": b"one", "d/a.2.0.0.txt": b"two"})
    (project / "local.txt").write_bytes(b"local")
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          d/a.txt: 2.0.0
          l.txt: local.txt
    """)
    code = """
        import pickle
        from pod_tasks import AssetPath, resolve
        for name, version in [('d/a.txt', None), ('d/a.txt', '1.0.0'), ('l.txt', None), ('s3://assets/d/a.1.0.0.txt', None)]:
            p = resolve(name, version=version)
            plain = pickle.loads(pickle.dumps(p))
            assert type(plain) is str and plain == p, (type(plain), plain)
            assert isinstance(p, str) and isinstance(p, AssetPath)
            assert resolve(p) == p and resolve(str(p)) == p and resolve(plain) == p
            print(open(p).read())
    """
    result = run_python(code, project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["two", "one", "local", "one"]
    # And from another process, with the plain string a first one printed:
    path, _ = resolve_in(project, "resolve('d/a.txt')")
    assert resolve_in(project, f"resolve({path!r})")[0] == path
    local, _ = resolve_in(project, "resolve('l.txt')")
    assert resolve_in(project, f"resolve({local!r})")[0] == local


def test_manifest_discovery(s3, client, project, tmp_path):
    bucket_with(client, "assets", {"n.1.0.0.txt": b"near", "n.2.0.0.txt": b"named"})
    write(project / "assets.yaml", "store: s3://assets\nassets:\n  n.txt: 1.0.0\n")
    write(tmp_path / "elsewhere" / "pins.yaml", "store: s3://assets\nassets:\n  n.txt: 2.0.0\n")
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    assert resolve_in(deep, "resolve('n.txt')")[1] == sha(b"near")
    assert resolve_in(deep, "resolve('n.txt')", {"POD_ASSETS": str(tmp_path / "elsewhere" / "pins.yaml")})[1] == sha(b"named")
    argument = f"resolve('n.txt', manifest={str(tmp_path / 'elsewhere' / 'pins.yaml')!r})"
    assert resolve_in(deep, argument, {"POD_ASSETS": str(project / "assets.yaml")})[1] == sha(b"named")
    module = deep / "mod.py"  # a library passes its __file__, and works from any folder
    module.write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    assert resolve_in(outside, f"resolve('n.txt', manifest={str(module)!r})")[1] == sha(b"near")
    assert resolve_in(outside, f"resolve('n.txt', manifest={str(deep)!r})")[1] == sha(b"near")  # a folder
    assert fail_in(outside, f"resolve('n.txt', manifest={str(outside)!r})") == (
        f"ManifestError: no assets.yaml in {outside} or any folder above it: create one there, run from the "
        f"project's folder, or name it with POD_ASSETS=PATH (in code: resolve(..., manifest=__file__))"
    )


@pytest.mark.parametrize("text, expr, expected", [
    ("store: s3://assets\nassets:\n  a.csv: 01.0.0\n", "resolve('a.csv')", "ManifestError: assets.yaml:3: a.csv: '01.0.0'"),
    ("store: s3://assets\nassets:\n  a.csv: 1.0.0\n", "resolve('b.csv')", "AssetNotFound: 'b.csv' is not in "),
    ("store: s3://assets\nassets:\n  a.csv: {source: a.csv}\n", "resolve('a.csv')",
     "AssetNotFound: a.csv is declared in assets.yaml but not published: run `doit publish:a.csv`"),
    ("store: s3://assets\nassets:\n  a.csv: 1.0.0\n", "resolve('a.csv', version='1.0')", "VersionError: '1.0' is not a version"),
    (None, "resolve('a.csv')", "ManifestError: no assets.yaml in "),
])
def test_user_mistakes_are_one_line(project, text, expr, expected):
    if text is not None:
        write(project / "assets.yaml", text)
    assert fail_in(project, expr).startswith(expected)


def test_an_old_tools_cache_is_used_as_it_is(s3, client, project, tmp_path, monkeypatch):
    """STATIC_CACHE_DIR pointing at a cache the old tool filled: its files, no download."""
    old = tmp_path / "baiji_cache"
    bucket_with(client, "assets", {"foo/bar.1.2.5.csv": b"old,cache\n"})
    bucket_with(client, "raw", {"x.json": b"{}"})
    bar, x = f"{cache_folder('assets')}/foo/bar.1.2.5.csv", f"{cache_folder('raw')}/x.json"
    for rel, body in ((bar, b"old,cache\n"), (x, b"{}")):
        (old / rel).parent.mkdir(parents=True, exist_ok=True)
        (old / rel).write_bytes(body)
        (old / ".timestamps" / rel).parent.mkdir(parents=True, exist_ok=True)
        (old / ".timestamps" / rel).touch()
    write(project / "assets.yaml", "store: s3://assets\nassets:\n  foo/bar.csv: 1.2.5\n")
    monkeypatch.delenv("POD_CACHE_DIR")
    monkeypatch.setenv("STATIC_CACHE_DIR", str(old))
    s3.clear()
    pinned = resolve_in(project, "resolve('foo/bar.csv')")
    assert pinned == (str(old.resolve() / bar), sha(b"old,cache\n"))
    assert resolve_in(project, "resolve('s3://raw/x.json')") == (str(old.resolve() / x), sha(b"{}"))
    assert s3.requests == []  # both checked "just now" by the old tool's marks
