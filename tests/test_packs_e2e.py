"""``doit pack`` / ``doit unpack``, run as a user runs them: a pack made against moto's
S3 server on 127.0.0.1 is loaded into an empty cache and used with the server stopped."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO, cache_folder, run_doit, run_python, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)

A, B, RAW = b"a,b\n1,2\n", b"\x00\x01" * 300, b'{"k": 1}\n'

RESOLVE = """
from pod_tasks import resolve
for name in ("foo/a.csv", "foo/b.bin", "s3://raw/x.json"):
    print(resolve(name))
"""


def at(bucket: str, rel: str) -> str:
    """The cache-relative path of ``rel`` in ``bucket`` on the server the environment names."""
    return f"{cache_folder(bucket)}/{rel}"


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.slow
def test_pack_then_unpack_into_an_empty_cache_with_the_server_stopped(own_s3, project, tmp_path):
    client = boto3.client("s3", endpoint_url=own_s3.endpoint)
    client.create_bucket(Bucket="assets")
    client.create_bucket(Bucket="raw")
    for bucket, key, body in (("assets", "foo/a.1.0.0.csv", A), ("assets", "foo/b.2.0.0.bin", B), ("raw", "x.json", RAW)):
        client.put_object(Bucket=bucket, Key=key, Body=body)
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"""
        store: s3://assets
        assets:
          foo/a.csv: 1.0.0
          foo/b.bin: {{version: 2.0.0, sha256: {sha256(B)}}}
        files:
          - s3://raw/x.json     # mutable: its check mark travels with it
    """)
    packed = run_doit(["pack", "--out", "out/assets.zip"], project, {"POD_CACHE_DIR": str(tmp_path / "cache-a")})
    assert packed.returncode == 0, output(packed)
    with zipfile.ZipFile(project / "out/assets.zip") as zf:
        names = sorted(zf.namelist())
        record = json.loads(zf.read(".pod/" + at("assets", "foo/b.2.0.0.bin.json")))
    assert names == sorted([
        at("assets", "foo/a.1.0.0.csv"), ".pod/" + at("assets", "foo/a.1.0.0.csv.json"),
        at("assets", "foo/b.2.0.0.bin"), ".pod/" + at("assets", "foo/b.2.0.0.bin.json"),
        at("raw", "x.json"), ".pod/" + at("raw", "x.json.json"),
    ])
    assert (record["url"], record["size"], record["sha256"]) == ("s3://assets/foo/b.2.0.0.bin", len(B), sha256(B))
    assert record["checked"] is not None

    own_s3.clear()
    own_s3.stop()
    offline = {"POD_CACHE_DIR": str(tmp_path / "cache-b")}
    loaded = run_doit(["unpack", "out/assets.zip"], project, offline)
    assert loaded.returncode == 0, output(loaded)
    assert "unpacked 3 file(s)" in loaded.stdout
    cache = tmp_path / "cache-b"
    assert (cache / at("assets", "foo/b.2.0.0.bin")).read_bytes() == B
    assert json.loads((cache / ".pod" / at("raw", "x.json.json")).read_bytes())["checked"] is not None

    resolved = run_python(RESOLVE, project, offline)
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.splitlines() == [
        str(cache / at("assets", "foo/a.1.0.0.csv")), str(cache / at("assets", "foo/b.2.0.0.bin")), str(cache / at("raw", "x.json")),
    ]
    assert resolved.stderr == ""  # no "serving the cached copy" warning: nothing was asked of the store
    fetched = run_doit(["fetch"], project, offline)
    assert fetched.returncode == 0, output(fetched)
    assert "cannot reach" not in output(fetched) and "ERROR" not in output(fetched)
    assert own_s3.requests == []
    assert (cache / at("assets", "foo/a.1.0.0.csv")).read_bytes() == A


def test_max_size_splits_largest_first_into_the_first_zip_with_room(s3_backend, cache_dir):
    store = s3_backend
    sizes = {"e.csv": 200, "a.csv": 600, "d.csv": 300, "b.csv": 500, "c.csv": 400}
    for name, size in sizes.items():
        store.put(f"set/{name[0]}.1.0.0.csv", name[0].encode() * size)
    manifest(store, "assets:\n" + "".join(f"  set/{n}: 1.0.0\n" for n in sizes))
    write(store.project / "needed.yaml", "".join(f"- set/{n}\n" for n in sizes))
    limit = str(1000 / (1 << 20))  # exactly 1000 bytes
    result = doit(store, "pack", "--list", "needed.yaml", "--out", "packs/assets.zip", "--max-size", limit)
    assert result.returncode == 0, output(result)
    assert files_under(store.project / "packs") == ["assets-1.zip", "assets-2.zip"]

    def names(zip_name: str) -> list[str]:
        with zipfile.ZipFile(store.project / "packs" / zip_name) as zf:
            return zf.namelist()

    def entries(*letters: str) -> list[str]:
        return [n for x in letters for n in (at("assets", f"set/{x}.1.0.0.csv"), ".pod/" + at("assets", f"set/{x}.1.0.0.csv.json"))]

    assert names("assets-1.zip") == entries("a", "c")  # 600 + 400
    assert names("assets-2.zip") == entries("b", "d", "e")  # 500 + 300 + 200

    (store.project / "packs" / "assets-3.zip").write_bytes(b"from an earlier pack")
    again = doit(store, "pack", "--list", "needed.yaml", "--out", "packs/assets.zip", "--max-size", limit)
    assert again.returncode == 0 and "warning: packs/assets-3.zip is left from an earlier pack" in again.stdout

    too_small = doit(store, "pack", "--list", "needed.yaml", "--out", "small/assets.zip", "--max-size", str(550 / (1 << 20)))
    assert_clean_failure(too_small, at("assets", "set/a.1.0.0.csv is 600 bytes"), "--max-size")
    assert not (store.project / "small").exists() or files_under(store.project / "small") == []


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize("entry, shown", [
    (("../evil", b"gotcha"), "'../evil'"),
    (("/tmp/evil", b"gotcha"), "'/tmp/evil'"),
    (symlink_entry("assets/evil", "../../evil"), "'assets/evil' is a link"),
], ids=["dotdot", "absolute", "symlink"])
def test_malicious_zip_is_refused_with_nothing_written(s3_backend, cache_dir, tmp_path, entry, shown):
    manifest(s3_backend, "assets:\n")
    bad = s3_backend.project / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("assets/ok.txt", b"fine")
        zf.writestr(*entry)
    result = doit(s3_backend, "unpack", "bad.zip")
    assert_clean_failure(result, "bad.zip", shown, "nothing was unpacked")
    assert files_under(cache_dir) == []
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
