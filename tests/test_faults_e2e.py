"""Network faults between the client and S3 (through tests/faults.py's proxy).

Transient faults are retried and the fetch ends with the right bytes; persistent ones
fail with one clean line and a non-zero exit; damaged bytes (cut, truncated, flipped,
or not matching the sha256 pin) never reach a final cache path.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from pod_tasks import IntegrityError, PodError, StoreError, resolve
from pod_tasks.manifest import load_manifest
from tests.conftest import cache_folder, run_doit, write
from tests.faults import SECRET, Rule, assert_clean, proxy, record  # noqa: F401 - proxy is a fixture

KEY = "foo/bar.1.0.0.csv"
PATH = f"/assets/{KEY}"
BODY = os.urandom(300 * 1024)
MIB = 1 << 20


def _project(project: Path, client, body: bytes = BODY, pin: str = "1.0.0") -> Path:
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key=KEY, Body=body)
    write(project / "assets.yaml", f"""
        store: s3://assets
        assets:
          foo/bar.csv: {pin}
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    return project


def _cached(cache_dir: Path) -> Path:
    return cache_dir / cache_folder("assets") / KEY


def _leftovers(cache_dir: Path) -> list[Path]:
    """Temporary files left anywhere in the cache."""
    return [p for p in cache_dir.rglob("*") if p.name.endswith((".part", ".tmp"))]


TRANSIENT = [
    # (id, rules, faults injected, GETs that reached the server)
    ("cut mid-body twice", [Rule("GET", PATH, "close", times=2)], 2, 3),
    ("cut before the first byte", [Rule("GET", PATH, "close", times=1, keep=0.0)], 1, 2),
    ("truncated once", [Rule("GET", PATH, "truncate", times=1, keep=0.9)], 1, 2),
    ("503 SlowDown once", [Rule("GET", PATH, "status", times=1, status=503)], 1, 1),
    ("500 twice", [Rule("GET", PATH, "status", times=2, status=500)], 2, 1),
    ("flipped bytes once", [Rule("GET", PATH, "flip", times=1)], 1, 2),
    ("flipped, then cut", [Rule("GET", PATH, "flip", times=1), Rule("GET", PATH, "close", times=1)], 2, 3),
    ("slow answer", [Rule("GET", PATH, "delay", times=1, seconds=0.5)], 1, 1),
]


@pytest.mark.parametrize("rules, faults, gets", [t[1:] for t in TRANSIENT], ids=[t[0] for t in TRANSIENT])
def test_transient_fault_is_retried_and_fetch_gets_exact_bytes(s3, client, proxy, project, cache_dir, rules, faults, gets):
    _project(project, client)
    for rule in rules:
        proxy.add(rule)
    s3.clear()
    result = run_doit(["fetch"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cached(cache_dir).read_bytes() == BODY
    assert proxy.injected == faults
    assert s3.count("GET", PATH) == gets
    assert _leftovers(cache_dir) == []
    record("faults injected", proxy.injected)


def test_flipped_bytes_in_a_multipart_object_are_caught_by_its_etag(s3, client, proxy, project, cache_dir):
    from boto3.s3.transfer import TransferConfig

    body = os.urandom(9 * MIB)
    _project(project, client)
    source = project / "big.bin"
    source.write_bytes(body)
    client.upload_file(str(source), "assets", "foo/big.1.0.0.bin",
                       Config=TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB))
    # moto: a multipart ETag (md5-of-md5s-2); rclone keeps none: the MD5 of the whole
    assert client.head_object(Bucket="assets", Key="foo/big.1.0.0.bin")["ETag"] == f'"{s3.etag(body, part=8 * MIB)}"'
    proxy.add(Rule("GET", r"/assets/foo/big\.1\.0\.0\.bin", "flip", times=1))
    s3.clear()
    path = resolve("foo/big.bin", "1.0.0", manifest=project / "assets.yaml")
    assert Path(path).read_bytes() == body
    assert (proxy.injected, s3.count("GET", "/assets/foo/big.1.0.0.bin")) == (1, 2)
    assert _leftovers(cache_dir) == []
    record("faults injected", proxy.injected)


def test_a_multipart_object_with_an_unusual_part_size_is_fetched(s3, client, project, cache_dir):
    from boto3.s3.transfer import TransferConfig

    body = os.urandom(25 * MIB)
    _project(project, client)
    source = project / "odd.bin"
    source.write_bytes(body)
    client.upload_file(str(source), "assets", "foo/odd.1.0.0.bin",
                       Config=TransferConfig(multipart_threshold=10 * MIB, multipart_chunksize=10 * MIB))
    assert client.head_object(Bucket="assets", Key="foo/odd.1.0.0.bin")["ETag"] == f'"{s3.etag(body, part=10 * MIB)}"'
    path = resolve("foo/odd.bin", "1.0.0", manifest=project / "assets.yaml")
    assert Path(path).read_bytes() == body


PERSISTENT = [
    # (id, rule, what the one line says, faults injected: 3 cache attempts, or botocore's 1 + 5 retries)
    ("always cut", Rule("GET", PATH, "close", times=None), "the network cut it short 3 time(s): check the "
                                                               "connection (or a proxy in the way) and run it again", 3),
    ("always truncated", Rule("GET", PATH, "truncate", times=None, keep=0.5), "the network cut it short 3 time(s)", 3),
    ("always flipped", Rule("GET", PATH, "flip", times=None), "do not match the store's ETag", 3),
    ("always 500", Rule("GET", PATH, "status", times=None, status=500), "InternalError", 6),
]


@pytest.mark.parametrize("rule, says, faults", [t[1:] for t in PERSISTENT], ids=[t[0] for t in PERSISTENT])
def test_persistent_fault_fails_doit_fetch_with_one_line(s3, client, proxy, project, cache_dir, rule, says, faults):
    _project(project, client)
    proxy.add(rule)
    result = run_doit(["fetch"], project)
    assert_clean(result)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith("ERROR fetch:foo/bar.csv: ") and says in errors[0], result.stdout
    assert "foo/bar.1.0.0.csv" in errors[0]
    assert "the stored copy is damaged" not in errors[0]  # nothing proved the store's bytes wrong
    assert not _cached(cache_dir).exists()
    assert _leftovers(cache_dir) == []
    assert proxy.injected == faults
    record("faults injected", proxy.injected)


@pytest.mark.parametrize("rule, error", [
    (Rule("GET", PATH, "close", times=None), IntegrityError),
    (Rule("GET", PATH, "status", times=None, status=500), StoreError),
], ids=["always cut", "always 500"])
def test_persistent_fault_raises_pod_error_from_resolve(s3, client, proxy, project, cache_dir, rule, error):
    _project(project, client)
    proxy.add(rule)
    with pytest.raises(error) as caught:
        resolve("foo/bar.csv", manifest=project / "assets.yaml")
    assert isinstance(caught.value, PodError)
    message = str(caught.value)
    assert "\n" not in message and "foo/bar" in message and SECRET not in message
    assert not _cached(cache_dir).exists() and _leftovers(cache_dir) == []
    record("faults injected", proxy.injected)


def test_bytes_not_matching_the_sha256_pin_are_refused(s3, client, proxy, project, cache_dir):
    """The store's copy (its ETag matches) differs from what assets.yaml pinned: one try, nothing kept."""
    pinned = hashlib.sha256(b"what was published").hexdigest()
    _project(project, client, pin=f"{{version: 1.0.0, sha256: {pinned}}}")
    s3.clear()
    result = run_doit(["fetch"], project)
    assert_clean(result)
    assert result.returncode != 0
    assert f"does not match the pin {pinned}" in result.stdout
    assert s3.count("GET", PATH) == 1
    assert not _cached(cache_dir).exists() and _leftovers(cache_dir) == []


def test_transient_fault_on_a_revalidation_head_is_retried(s3, client, proxy, project, cache_dir):
    """A mutable `files:` object checked every time (timeout 0): a 503 on the HEAD is retried."""
    client.create_bucket(Bucket="data")
    client.put_object(Bucket="data", Key="x.json", Body=b'{"a": 1}')
    write(project / "assets.yaml", """
        timeout: 0
        files:
          - s3://data/x.json
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    assert run_doit(["fetch"], project).returncode == 0
    proxy.add(Rule("HEAD", r"/data/x\.json", "status", times=1, status=503))
    s3.clear()
    result = run_doit(["fetch", "-v"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unchanged" in result.stdout and "s3://data/x.json" in result.stdout
    assert (proxy.injected, s3.count("HEAD", "/data/x.json"), s3.count("GET", "/data/x.json")) == (1, 1, 0)
    record("faults injected", proxy.injected)


def test_parallel_fetch_retries_a_fault_on_every_object(s3, client, proxy, project, cache_dir):
    """doit -n 4 -P thread: the first GET of each of 12 objects is cut; all arrive whole."""
    bodies = {f"set/f{i:02d}.bin": os.urandom(100_000 + i) for i in range(12)}
    client.create_bucket(Bucket="assets")
    for name, body in bodies.items():
        client.put_object(Bucket="assets", Key=name.replace(".bin", ".1.0.0.bin"), Body=body)
        proxy.add(Rule("GET", "^/assets/" + re.escape(name.replace(".bin", ".1.0.0.bin")), "close", times=1))
    write(project / "assets.yaml", "store: s3://assets\nassets:\n" + "".join(f"  {n}: 1.0.0\n" for n in bodies))
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    s3.clear()
    result = run_doit(["-n", "4", "-P", "thread", "fetch"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, body in bodies.items():
        key = name.replace(".bin", ".1.0.0.bin")
        assert (cache_dir / cache_folder("assets") / key).read_bytes() == body
        assert s3.count("GET", f"/assets/{key}") == 2
    assert proxy.injected == len(bodies) and _leftovers(cache_dir) == []
    record("faults injected", proxy.injected)


# --- no credentials ----------------------------------------------------------------------

NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}
RESOLVE_EACH = """
import json, sys
from pod_tasks import resolve, PodError
for name in sys.argv[1:]:
    try:
        print(json.dumps([name, "ok", open(resolve(name), "rb").read().decode()]))
    except PodError as exc:
        print(json.dumps([name, type(exc).__name__, str(exc), exc.no_credentials]))
"""


def _resolve_each(project: Path, names: list[str], env: dict | None = None) -> tuple[dict, str]:
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", RESOLVE_EACH, *names], cwd=project, capture_output=True,
                            text=True, timeout=120, env={**os.environ, **(env or {})})
    assert_clean(result)
    assert result.returncode == 0, result.stderr
    return {row[0]: row[1:] for row in map(json.loads, result.stdout.splitlines())}, result.stderr


def test_without_credentials_cached_files_are_served_and_missing_ones_named(s3, client, project, cache_dir):
    import yaml

    client.create_bucket(Bucket="assets")
    client.create_bucket(Bucket="data")
    client.put_object(Bucket="assets", Key=KEY, Body=b"pinned\n")
    client.put_object(Bucket="data", Key="x.json", Body=b"mutable\n")
    for key in ("foo/zeta.1.0.0.csv", "foo/alpha.2.0.0.csv"):  # in the store, private, not cached
        client.put_object(Bucket="assets", Key=key, Body=b"private\n")
    write(project / "assets.yaml", """
        store: s3://assets
        timeout: 0
        assets:
          foo/bar.csv: 1.0.0
          foo/zeta.csv: 1.0.0
          foo/alpha.csv: 2.0.0
        files:
          - s3://data/x.json
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    seen, _ = _resolve_each(project, ["foo/bar.csv", "s3://data/x.json"])  # with credentials
    assert seen == {"foo/bar.csv": ["ok", "pinned\n"], "s3://data/x.json": ["ok", "mutable\n"]}
    s3.clear()

    seen, stderr = _resolve_each(project, ["foo/bar.csv", "s3://data/x.json", "foo/zeta.csv"], NO_CREDENTIALS)
    assert seen["foo/bar.csv"] == ["ok", "pinned\n"]  # immutable: no check needed, no warning
    assert seen["s3://data/x.json"] == ["ok", "mutable\n"]  # due a check it cannot make: served, warned
    warnings = [line for line in stderr.splitlines() if "s3://data/x.json" in line]
    assert len(warnings) == 1 and "serving the cached copy" in warnings[0] and "aws configure" in warnings[0]
    kind, message, no_credentials = seen["foo/zeta.csv"]
    assert (kind, no_credentials) == ("OfflineError", True)
    for part in ("foo/zeta.csv", "s3://assets/foo/zeta.1.0.0.csv", str(cache_dir / cache_folder("assets") / "foo/zeta.1.0.0.csv"),
                 "aws configure", "AWS_PROFILE", "missing_assets.yaml"):
        assert part in message
    assert set(s3.counts()) <= {"GET", "HEAD"}  # reads tried unsigned (a public bucket would answer), refused

    _resolve_each(project, ["foo/alpha.csv", "foo/zeta.csv"], NO_CREDENTIALS)
    result = run_doit(["--continue", "fetch"], project, env=NO_CREDENTIALS)
    assert_clean(result)
    assert result.returncode != 0
    errors = sorted(re.findall(r"^ERROR fetch:(\S+): .*aws configure", result.stdout, re.MULTILINE))
    assert errors == ["foo/alpha.csv", "foo/zeta.csv"], result.stdout
    missing = (cache_dir / "missing_assets.yaml").read_text()
    assert yaml.safe_load(missing) == ["s3://assets/foo/alpha.2.0.0.csv", "s3://assets/foo/zeta.1.0.0.csv"]
    assert "s3://data/x.json: using the cached copy, not checked with the store" in result.stdout
    assert (cache_dir / cache_folder("assets") / KEY).read_bytes() == b"pinned\n"


# --- publish under faults ------------------------------------------------------------------

NEW = b"id,value\n1,2\n"


def _publish_project(project: Path, client) -> None:
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"old\n")
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          foo/bar.csv: 1.0.0
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    (project / "new.csv").write_bytes(NEW)


def _stored(client) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket="assets")["Contents"]
    return {o["Key"]: client.get_object(Bucket="assets", Key=o["Key"])["Body"].read() for o in listing}


PUT = r"^/assets/foo/bar\.1\.1\.0\.csv"
PUBLISH_FAULTS = [
    # (id, rule, PUTs that reach the server)
    ("503 SlowDown once", Rule("PUT", PUT, "status", times=1, status=503), 1),
    ("reply lost once", Rule("PUT", PUT, "lost", times=1), 2),
]


@pytest.mark.parametrize("rule, puts", [t[1:] for t in PUBLISH_FAULTS], ids=[t[0] for t in PUBLISH_FAULTS])
def test_a_transient_fault_on_the_upload_still_publishes_once(s3, client, proxy, project, rule, puts):
    """The S3 client retries the PUT; a retry that meets its own upload is not a conflict."""
    _publish_project(project, client)
    proxy.add(rule)
    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout
    assert s3.count("PUT", "/assets/foo/bar.1.1.0.csv") == puts
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n", "foo/bar.1.1.0.csv": NEW}
    pin = load_manifest(project / "assets.yaml").assets["foo/bar.csv"]
    assert (str(pin.version), pin.sha256) == ("1.1.0", hashlib.sha256(NEW).hexdigest())
    record("faults injected", proxy.injected)


def test_a_persistent_fault_on_the_upload_leaves_assets_yaml_alone(s3, client, proxy, project):
    _publish_project(project, client)
    before = (project / "assets.yaml").read_bytes()
    proxy.add(Rule("PUT", PUT, "status", times=None, status=500))
    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project)
    assert_clean(result)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith("ERROR publish:foo/bar.csv: ") and "InternalError" in errors[0]
    # a 500 does not say whether the object was written: the store was asked
    assert "the store does not hold s3://assets/foo/bar.1.1.0.csv: nothing was published" in errors[0]
    assert (project / "assets.yaml").read_bytes() == before
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n"}
    record("faults injected", proxy.injected)


def test_an_upload_whose_replies_are_all_lost_is_found_in_the_store_and_pinned(s3, client, proxy, project):
    """The upload landed, then every retry's reply was lost too: publish asks the store,
    finds these bytes at the version, pins it and says so; the next publish of the same
    bytes is refused as identical, so no version is left pinned by no one."""
    _publish_project(project, client)
    lost = proxy.add(Rule("PUT", PUT, "lost", times=None))
    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "foo/bar.csv: published 1.1.0 (was 1.0.0), 13 B -> s3://assets/foo/bar.1.1.0.csv; the store's replies " \
           "were lost, so it was asked: it holds these bytes" in result.stdout.splitlines()
    assert lost.injected == s3.count("PUT", "/assets/foo/bar.1.1.0.csv") >= 2  # every try reached it, no reply came
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n", "foo/bar.1.1.0.csv": NEW}
    pin = load_manifest(project / "assets.yaml").assets["foo/bar.csv"]
    assert (str(pin.version), pin.sha256) == ("1.1.0", hashlib.sha256(NEW).hexdigest())
    again = run_doit(["publish:foo/bar.csv", "--patch", "--file", "new.csv"], project)
    assert again.returncode == 0 and "foo/bar.csv: identical to 1.1.0 in the store; nothing published" in again.stdout
    assert sorted(_stored(client)) == ["foo/bar.1.0.0.csv", "foo/bar.1.1.0.csv"]
    record("faults injected", proxy.injected)

