"""SIGKILL in the middle of `doit fetch` and `doit publish`: no partial file at a final
path, no lock that blocks the next run, assets.yaml either old or new, never half-written.

The proxy (tests/faults.py) slows the body down so that a kill lands mid-download; the
moment is a random byte offset of the download (seeded, and printed on failure), not a
guess at timing.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from pod_tasks.layout import Layout
from pod_tasks.manifest import load_manifest, set_pin
from pod_tasks.names import version_of_key
from tests.conftest import cache_folder, run_doit, write
from tests.faults import Rule, assert_clean, proxy, record  # noqa: F401 - proxy is a fixture

pytestmark = pytest.mark.skipif(os.name == "nt" or not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")

MIB = 1 << 20
SIZE = 64 * MIB
KILLS = 10


def _start_doit(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(condition, what: str, proc: subprocess.Popen, limit: float = 60.0):
    """Poll ``condition()`` until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        time.sleep(0.005)
    raise AssertionError(f"gave up waiting for {what}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_a_64mb_fetch_never_leaves_a_partial_file(s3, client, proxy, project, cache_dir, tmp_path):
    from boto3.s3.transfer import TransferConfig

    body = os.urandom(SIZE)
    digest = hashlib.sha256(body).hexdigest()
    source = tmp_path / "big.bin"
    source.write_bytes(body)
    client.create_bucket(Bucket="assets")
    client.upload_file(str(source), "assets", "data/big.1.0.0.bin",
                       Config=TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB))
    write(project / "assets.yaml", f"""
        store: s3://assets
        assets:
          data/big.bin: {{version: 1.0.0, sha256: {digest}}}
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    rel = f"{cache_folder('assets')}/data/big.1.0.0.bin"
    final, layout = cache_dir / rel, Layout(cache_dir)
    lock = layout.lock(rel)
    parts = lambda: [p for p in (layout.partial(rel),) if p.exists()]  # noqa: E731  (where a download writes)

    def outside_pod() -> list[str]:
        """Every file in the cache dir outside its own hidden folder, but the tag and the final file."""
        return sorted(p.relative_to(cache_dir).as_posix() for p in cache_dir.rglob("*") if p.is_file()
                      and ".pod" not in p.relative_to(cache_dir).parts and p not in (final, cache_dir / "CACHEDIR.TAG"))

    slow = proxy.add(Rule("GET", r"/assets/data/big\.1\.0\.0\.bin", "slow", times=None, seconds=0.002))
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    mid_download = 0
    for kill in range(KILLS):
        at = rng.randrange(MIB, SIZE - MIB)  # the byte the download has reached when it dies
        proc = _start_doit(["fetch"], project)
        try:
            _wait_for(lambda: any(p.stat().st_size >= at for p in parts() if p.exists()),
                      f"kill {kill} (seed {seed}) at byte {at}", proc)
        finally:
            _kill(proc)
        if final.exists():  # it finished between the last look and the kill: it must be whole
            assert hashlib.sha256(final.read_bytes()).hexdigest() == digest, f"seed {seed}"
            final.unlink()
        else:
            mid_download += 1
        assert outside_pod() == [], "a killed download left a file outside .pod/"
        assert [p.name for p in layout.tmp.iterdir()] == [p.name for p in parts()] and len(parts()) == 1
        with FileLock(str(lock), timeout=0):  # a dead process holds no lock
            pass
    slow.times = 0  # the last run at full speed
    result = run_doit(["fetch"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hashlib.sha256(final.read_bytes()).hexdigest() == digest
    assert parts() == [] and list(layout.tmp.iterdir()) == [] and outside_pod() == []
    assert mid_download >= KILLS - 1, f"most kills must land mid-download (seed {seed})"
    record("kills survived", KILLS)
    record("kills mid-download", mid_download)


NEW = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20000))


def _publish_project(project: Path, client) -> bytes:
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"old\n")
    old = hashlib.sha256(b"old\n").hexdigest()
    write(project / "assets.yaml", f"""
        # pinned data; keep this comment
        store: s3://assets
        assets:
          other/thing.json: 2.0.1    # untouched by every publish
          foo/bar.csv: {{version: 1.0.0, sha256: {old}}}
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    (project / "new.csv").write_bytes(NEW)
    return (project / "assets.yaml").read_bytes()


def _store_versions(client) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket="assets", Prefix="foo/bar.").get("Contents", [])
    return {o["Key"]: client.get_object(Bucket="assets", Key=o["Key"])["Body"].read() for o in listing}


def _check_manifest(project: Path, before: bytes, client, tmp_path: Path) -> bytes:
    """assets.yaml is the old bytes, or exactly the old bytes with the one pin rewritten
    to a version the store holds with the new file's bytes. Returns the current bytes."""
    now = (project / "assets.yaml").read_bytes()
    stored = _store_versions(client)
    for key, data in stored.items():
        assert key == "foo/bar.1.0.0.csv" or data == NEW, f"{key} holds partial bytes"
    if now == before:
        return now
    pin = load_manifest(project / "assets.yaml").assets["foo/bar.csv"]
    assert pin.sha256 == hashlib.sha256(NEW).hexdigest()
    assert stored[f"foo/bar.{pin.version}.csv"] == NEW
    expected = tmp_path / "expected.yaml"
    expected.write_bytes(before)
    set_pin(expected, "foo/bar.csv", pin.version, pin.sha256, pin.size)
    assert now == expected.read_bytes(), "assets.yaml changed beyond the one pin"
    return now


# (id, rule the proxy applies, what the kill waits for, new versions the store then holds)
PUBLISH_KILLS = [
    ("while listing the store", Rule("GET", r"^/assets/?\?.*list-type=2", "delay", times=1, seconds=5), "hit", 0),
    ("while uploading", Rule("PUT", r"/assets/foo/bar\.", "delay", times=1, seconds=5), "hit", 0),
    ("after the upload, before the reply",
     Rule("PUT", r"/assets/foo/bar\.", "delay", times=1, seconds=5, after=True), "stored", 1),
    ("at a random moment 1", None, "random", None),
    ("at a random moment 2", None, "random", None),
    ("at a random moment 3", None, "random", None),
]


@pytest.mark.slow
def test_sigkill_during_publish_leaves_old_or_new_assets_yaml(s3, client, proxy, project, tmp_path):
    before = _publish_project(project, client)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # --force: every kill meets a whole publish, even after a kill left a version with these bytes
    args = ["publish:foo/bar.csv", "--minor", "--file", "new.csv", "--force"]
    for label, rule, wait, uploaded in PUBLISH_KILLS:
        uploads = lambda: sum(1 for m, p in s3.requests if m == "PUT" and p.startswith("/assets/foo/bar."))  # noqa: E731
        puts = uploads()
        stored = len(_store_versions(client))
        if rule is not None:
            rule = proxy.add(rule)
        proc = _start_doit(args, project)
        try:
            if wait == "hit":
                _wait_for(rule.hit.is_set, label, proc)
            elif wait == "stored":
                _wait_for(lambda: uploads() > puts, label, proc)
            else:
                time.sleep(rng.uniform(0.0, 1.5))
        finally:
            if proc.poll() is None:
                _kill(proc)
        now = _check_manifest(project, before, client, tmp_path)
        if uploaded is not None:  # killed before set_pin: the old file, whatever the store holds
            assert (now, len(_store_versions(client)) - stored) == (before, uploaded), label
        before = now
    latest = max(version_of_key("foo/bar.csv", key) for key in _store_versions(client))
    same = run_doit(args[:-1], project)  # the version a kill left holds these bytes: found, not made again
    assert_clean(same)
    assert same.returncode == 0 and f"foo/bar.csv: identical to {latest} in the store; nothing published" in same.stdout
    assert load_manifest(project / "assets.yaml").assets["foo/bar.csv"].version == latest  # pinned, if a kill had not
    before = _check_manifest(project, before, client, tmp_path)
    result = run_doit(args, project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    after = _check_manifest(project, before, client, tmp_path)
    pinned = load_manifest(project / "assets.yaml").assets["foo/bar.csv"].version
    latest = max(version_of_key("foo/bar.csv", key) for key in _store_versions(client))
    assert after != before and pinned == latest
    record("kills survived", len(PUBLISH_KILLS))


def _files(store: Path) -> dict[str, bytes]:
    """Every file of a folder store but those of uploads under way, with its bytes."""
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*")
            if p.is_file() and ".pod-uploads" not in p.relative_to(store).parts}


def test_sigkill_during_a_publish_to_a_folder_store_leaves_nothing_the_next_publish_does_not_clean(
        project, cache_dir):
    """A publish of a big file to a folder store killed mid-upload leaves its temporary
    files in the store's hidden upload folder, never beside a key; the next publish removes
    them and touches no complete version; `doit gc` then leaves no temporary file in the
    cache either."""
    store = project / "store"
    write(store / "foo" / "bar.1.0.0.csv", "old\n")
    write(project / "assets.yaml", "store: store\nassets:\n  foo/bar.csv: 1.0.0\n")
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    (project / "new.csv").write_bytes(NEW)
    big = os.urandom(SIZE)
    (project / "big.csv").write_bytes(big)
    first = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project)  # 1.1.0, with its metadata
    assert first.returncode == 0, first.stdout + first.stderr
    versions = _files(store)
    assert sorted(versions) == [".pod-meta/foo/bar.1.1.0.csv.json", "foo/bar.1.0.0.csv", "foo/bar.1.1.0.csv"]
    uploads = store / ".pod-uploads"
    parts = lambda: [p for p in uploads.glob("*.part") if p.stat().st_size > 0]  # noqa: E731
    left: list[Path] = []
    for attempt in range(5):  # the kill lands while the bytes are copied or synced, or is tried again
        proc = _start_doit(["publish:foo/bar.csv", "--minor", "--file", "big.csv", "--force"], project)
        try:
            _wait_for(parts, f"the upload (attempt {attempt})", proc)
        finally:
            if proc.poll() is None:
                _kill(proc)
        left = list(uploads.glob("*.part"))
        if left:
            break
    assert left, "no kill landed mid-upload"
    killed = _files(store)
    assert not [k for k in killed if Path(k).name.startswith(".")], "a temporary file beside the versions"
    extra = {k: v for k, v in killed.items() if k not in versions}  # a version the kill met already linked
    assert killed.items() >= versions.items() and all(
        k in ("foo/bar.1.2.0.csv", ".pod-meta/foo/bar.1.2.0.csv.json") for k in extra), sorted(extra)
    assert extra.get("foo/bar.1.2.0.csv", big) == big

    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv", "--force"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(uploads.iterdir()) == []  # the killed upload's files and lock are gone
    assert list(store.rglob("*.part")) == []
    after = _files(store)
    assert after.items() >= killed.items()  # every complete version as it was
    published = "1.3.0" if "foo/bar.1.2.0.csv" in killed else "1.2.0"
    assert after[f"foo/bar.{published}.csv"] == NEW and len(after) == len(killed) + 2
    gc = run_doit(["gc"], project)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert [p for p in cache_dir.rglob("*") if p.name.endswith((".part", ".partial"))] == []
    record("kills survived", 1)
