"""Packs from elsewhere are data, not instructions (issue 22, contract 6), tried as an
attacker runs it: ``doit unpack`` of a zip bomb, of a pack with ``../`` paths, of a
pack whose record claims to be checked in the year 5138; ``doit export`` into a folder
holding a symlink. Asserted on the files written, the requests made, the exit codes and
the exact lines."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import cache_folder
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    dir_backend,
    doit,
    manifest,
    output,
    s3_backend,
)


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def record_of(url: str, data: bytes, **changes) -> str:
    md5 = hashlib.md5(data).hexdigest()
    fields = dict(url=url, size=len(data), mtime_ns=1, md5=md5, etag=md5, sha256=hashlib.sha256(data).hexdigest(),
                  checked=time.time(), immutable=False)
    return json.dumps({**fields, **changes})


def test_a_zip_bomb_pack_is_refused_in_one_line(dir_backend, cache_dir):
    manifest(dir_backend, "assets: {}\n")
    bomb = dir_backend.project / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("assets/fine.txt", b"fine")
        with zf.open("assets/bomb.bin", "w") as out:  # 64 MiB of zeros in about 64 KiB
            for _ in range(64):
                out.write(bytes(1 << 20))
    info = zipfile.ZipFile(bomb).getinfo("assets/bomb.bin")
    result = doit(dir_backend, "unpack", "bomb.zip")
    line = assert_clean_failure(result)
    assert line == (f"ERROR unpack: bomb.zip: entry 'assets/bomb.bin' would expand {info.file_size // info.compress_size} "
                    f"times (to {64 << 20} bytes): a zip bomb, not a pack; nothing was unpacked from this zip"), line
    assert result.returncode == 1
    assert files_under(cache_dir) == []


def test_a_pack_with_dotdot_paths_is_refused_in_one_line(dir_backend, cache_dir, tmp_path):
    manifest(dir_backend, "assets: {}\n")
    evil = dir_backend.project / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("assets/fine.txt", b"fine")
        zf.writestr("assets/../../../evil.txt", b"gotcha")
    result = doit(dir_backend, "unpack", "evil.zip")
    line = assert_clean_failure(result)
    assert line == ("ERROR unpack: evil.zip: entry 'assets/../../../evil.txt' would land outside the cache dir (invalid "
                    "zip entry 'assets/../../../evil.txt': it has an empty, '.' or '..' segment); nothing was unpacked "
                    "from this zip"), line
    assert result.returncode == 1
    assert files_under(cache_dir) == [] and not (tmp_path / "evil.txt").exists()


def test_a_pack_record_checked_in_the_future_counts_as_never_checked(s3_backend, cache_dir):
    store = s3_backend
    data = b'{"mutable": true}\n'
    store.client.put_object(Bucket="assets", Key="raw/data.json", Body=data)
    manifest(store, "assets: {}\nfiles:\n  - s3://assets/raw/data.json\n")
    rel = f"{cache_folder('assets')}/raw/data.json"
    pack = store.project / "future.zip"
    with zipfile.ZipFile(pack, "w") as zf:
        zf.writestr(rel, data)
        zf.writestr(f".pod/{rel}.json", record_of("s3://assets/raw/data.json", data, checked=1e11,
                                                  endpoint=os.environ["AWS_ENDPOINT_URL"]))
    unpacked = doit(store, "unpack", "future.zip")
    assert unpacked.returncode == 0, output(unpacked)
    assert json.loads((cache_dir / ".pod" / f"{rel}.json").read_text())["checked"] is None
    store.s3.clear()
    fetched = doit(store, "fetch")
    assert fetched.returncode == 0, output(fetched)
    assert store.s3.count("HEAD", "/assets/raw/data.json") == 1  # checked with the store, as never checked
    assert store.s3.count("GET", "/assets/raw/data.json") == 0  # and found unchanged
    assert (cache_dir / rel).read_bytes() == data
    assert time.time() - 60 < json.loads((cache_dir / ".pod" / f"{rel}.json").read_text())["checked"] <= time.time()


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_export_into_a_folder_holding_a_symlink_writes_nothing_through_it(dir_backend, tmp_path):
    dir_backend.put("foo/bar.1.0.0.csv", b"a,b\n")
    dir_backend.put("top.1.0.0.txt", b"top\n")
    manifest(dir_backend, "assets:\n  foo/bar.csv: 1.0.0\n  top.txt: 1.0.0\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    site = dir_backend.project / "site"
    site.mkdir()
    (site / "foo").symlink_to(outside, target_is_directory=True)  # planted: foo/ leads out of the site
    result = doit(dir_backend, "export", "--dest", "site")
    line = assert_clean_failure(result)
    assert line == (f"ERROR export: 1 version(s) could not be exported: {site / 'foo'} is a symlink: export writes "
                    f"nothing through links: remove it, or export into another folder"), line
    assert result.returncode == 1
    assert f"failed foo/bar.csv@1.0.0: {site / 'foo'} is a symlink" in result.stdout
    assert os.listdir(outside) == []
    assert (site / "top.1.0.0.txt").read_bytes() == b"top\n"  # the rest is exported
