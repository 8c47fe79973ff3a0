"""resolve() in process: the memo (a warm call is one stat), and when it is dropped."""

from __future__ import annotations

import os

import pytest

from pod_tasks import resolve
from pod_tasks.cache import AssetCache
from pod_tasks.resolver import Project
from tests.conftest import write


@pytest.fixture
def pinned(s3, client, project):
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="a.1.0.0.txt", Body=b"pinned")
    client.create_bucket(Bucket="raw")
    client.put_object(Bucket="raw", Key="live.txt", Body=b"live")
    return write(project / "assets.yaml", "store: s3://assets\nassets:\n  a.txt: 1.0.0\n")


def test_warm_call_is_one_stat_and_no_fetch(s3, pinned, monkeypatch):
    path = resolve("a.txt", manifest=pinned)
    s3.clear()

    def no_fetch(*args, **kwargs):
        raise AssertionError("a warm call must not reach the cache")

    monkeypatch.setattr(AssetCache, "fetch", no_fetch)
    stats: list[object] = []
    real_stat = os.stat

    def counting_stat(*args, **kwargs):
        stats.append(args[0])
        return real_stat(*args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    again = resolve("a.txt", manifest=pinned)
    monkeypatch.setattr(os, "stat", real_stat)
    assert again == path and stats == [path]
    assert s3.requests == []


def test_memo_notices_a_changed_file(s3, pinned):
    path = resolve("a.txt", manifest=pinned)
    with open(path, "wb") as handle:
        handle.write(b"scribbled over")
    s3.clear()
    assert resolve("a.txt", manifest=pinned) == path
    assert open(path, "rb").read() == b"pinned"
    assert s3.counts() == {"GET": 1}


@pytest.mark.parametrize("timeout, heads", [("0", 3), ("1d", 0)])
def test_mutable_objects_are_memoised_only_inside_the_timeout(s3, pinned, monkeypatch, timeout, heads):
    monkeypatch.setenv("POD_TIMEOUT", timeout)
    Project.forget()
    for _ in range(4):
        assert open(resolve("s3://raw/live.txt", manifest=pinned), "rb").read() == b"live"
    assert s3.count("GET", "/raw/live.txt") == 1
    assert s3.count("HEAD", "/raw/live.txt") == heads


def test_the_manifest_is_parsed_once_per_process(pinned):
    assert Project.get(pinned) is Project.get(pinned)
    pinned.write_text("this is: [not valid\n")
    assert resolve("a.txt", manifest=pinned).endswith("a.1.0.0.txt")


def test_a_bad_timeout_variable_is_named(pinned, monkeypatch):
    from pod_tasks import ManifestError

    monkeypatch.setenv("POD_TIMEOUT", "tomorrow")
    with pytest.raises(ManifestError, match=r"^\$POD_TIMEOUT: timeout 'tomorrow' is not a duration: write e\.g\. 0, "):
        resolve("a.txt", manifest=pinned)


@pytest.mark.parametrize("url, fragment", [
    ("s3://raw", "'s3://raw' names a bucket but no object: write s3://raw/KEY"),
    ("s3://raw/", "'s3://raw/' names a bucket but no object"),
    ("s3://", "'s3://' is not an s3://bucket/key URL"),
])
def test_a_url_without_an_object(s3, pinned, url, fragment):
    from pod_tasks import AssetNotFound

    s3.clear()
    with pytest.raises(AssetNotFound, match=fragment):
        resolve(url, manifest=pinned)
    assert s3.requests == []


def test_manifest_settings_apply_below_the_environment(s3, pinned, project, monkeypatch, tmp_path):
    write(pinned, """
        store: s3://assets
        cache_dir: my-cache
        timeout: 0
        immutable: [raw]
        assets:
          a.txt: 1.0.0
    """)
    monkeypatch.delenv("POD_CACHE_DIR")
    settings = Project.load(pinned).settings
    assert (settings.cache_dir, settings.timeout, "raw" in settings.immutable) == (project / "my-cache", 0, True)
    s3.clear()
    for _ in range(3):
        assert resolve("s3://raw/live.txt", manifest=pinned).startswith(str((project / "my-cache").resolve()))
    assert s3.counts() == {"GET": 1}  # immutable by the manifest, whatever the timeout
    monkeypatch.setenv("STATIC_CACHE_DIR", str(tmp_path / "old-style"))
    monkeypatch.setenv("POD_TIMEOUT", "2h")
    settings = Project.load(pinned).settings
    assert (settings.cache_dir, settings.timeout) == (tmp_path / "old-style", 7200)
