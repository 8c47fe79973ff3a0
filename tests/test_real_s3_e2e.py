"""What real S3 servers do differently from moto, run as a user runs pod-tasks (doit in
a subprocess, HTTP on 127.0.0.1): ETags that are not MD5s, servers that ignore
conditional writes, one cache for several servers, public buckets, and the error a
user sees for each way a server can refuse."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import threading

import boto3
import pytest
from botocore.config import Config

from pod_tasks.store import endpoint_folder
from tests.conftest import REPO, cache_folder, point_at, run_doit, run_python, s3_client, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    BUCKET,
    Store,
    assert_clean_failure,
    backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)
from tests.servers import CREDENTIALS, FaultProxy, RcloneServer, Rule

CSV = b"id,value\n1,one\n"
KEY = "foo/bar.1.0.0.csv"


@pytest.fixture
def opaque_backend(project, opaque_s3) -> Store:
    """The project's store on an rclone server whose ETags are SHA-1s, not MD5s."""
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    return Store("s3", project, opaque_s3, s3_client(opaque_s3))


def put(store: Store, key: str, data: bytes, checksum: str | None, bucket: str = BUCKET) -> None:
    """Upload as another tool would: with ``checksum`` (``CRC32``, ``SHA256``) or with none
    at all (boto3 then adds no CRC32 of its own)."""
    if checksum is None:
        plain = boto3.client("s3", endpoint_url=store.s3.endpoint,
                             config=Config(request_checksum_calculation="when_required"))
        plain.put_object(Bucket=bucket, Key=key, Body=data)
    else:
        store.client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=checksum)
    store.s3.clear()


def record_of(store: Store, cache_dir, key: str) -> dict:
    return json.loads((cache_dir / ".pod" / store.cache_folder / (key + ".json")).read_bytes())


def status_row(store: Store, name: str) -> list[str]:
    result = doit(store, "status")
    assert result.returncode == 0, output(result)
    line = next(l for l in result.stdout.splitlines() if l.startswith(name + " "))
    return line.split()


# --- opaque ETags -------------------------------------------------------------------------


@pytest.mark.parametrize("checksum, pinned, verified", [
    (None, False, "size"),                  # nothing but the length can be checked
    ("CRC32", False, "checksum-crc32"),
    ("SHA256", False, "checksum-sha256"),
    (None, True, "sha256"),                 # the pin decides
    ("CRC32", True, "sha256"),
])
def test_an_object_whose_etag_is_not_an_md5_is_fetched_once(opaque_backend, cache_dir, checksum, pinned, verified):
    store = opaque_backend
    put(store, KEY, CSV, checksum)
    pin = f"{{version: 1.0.0, sha256: {sha256(CSV)}}}" if pinned else "1.0.0"
    manifest(store, f"assets:\n  foo/bar.csv: {pin}\n")
    head = store.client.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ETag"].strip('"') == hashlib.sha1(CSV).hexdigest()  # the server's opaque ETag
    store.s3.clear()

    result = doit(store, "fetch")
    assert result.returncode == 0, output(result)
    assert (cache_dir / store.cache_folder / KEY).read_bytes() == CSV
    assert store.gets(KEY) == 1 and store.s3.counts() == {"GET": 1}
    assert "WARNING" not in output(result) and "attempt" not in output(result)
    record = record_of(store, cache_dir, KEY)
    assert (record["verified"], record["etag"]) == (verified, hashlib.sha1(CSV).hexdigest())
    assert status_row(store, "foo/bar.csv")[-1] == verified


def test_a_damaged_download_fails_its_checksum_even_with_an_opaque_etag(opaque_backend, cache_dir, monkeypatch,
                                                                      request):
    store = opaque_backend
    put(store, KEY, CSV, "SHA256")
    manifest(store, "assets:\n  foo/bar.csv: 1.0.0\n")
    faults = FaultProxy(store.s3.port).start()
    request.addfinalizer(faults.stop)
    monkeypatch.setenv("AWS_ENDPOINT_URL", faults.endpoint)
    # the body arrives with one byte flipped, the store's checksum header intact
    faults.add(Rule("GET", r"^/assets/foo/bar", "flip", times=None, keep_checksums=True))
    result = doit(store, "fetch")
    line = assert_clean_failure(result, "foo/bar.csv", "do not match the store's sha256 checksum")
    assert "nothing was kept" in line
    assert not (cache_dir / store.cache_folder / KEY).exists()
    assert store.gets(KEY) == 3  # a transfer fault: asked again, then given up


def test_revalidation_with_opaque_etags_is_one_head(opaque_backend, cache_dir):
    store = opaque_backend
    store.client.create_bucket(Bucket="other")  # a bucket of mutable objects, not the store
    put(store, "raw/data.json", b"v1", None, "other")
    manifest(store, "files:\n  - s3://other/raw/data.json\n")
    first = doit(store, "fetch")
    assert first.returncode == 0, output(first)
    store.s3.clear()

    same = doit(store, "fetch", "-v", env={"POD_TIMEOUT": "0"})
    assert same.returncode == 0, output(same)
    assert store.s3.counts() == {"HEAD": 1}  # same ETag: fresh, no download, no re-hash
    assert "checked with the store, unchanged" in same.stdout

    put(store, "raw/data.json", b"version 2", None, "other")
    changed = doit(store, "fetch", env={"POD_TIMEOUT": "0"})
    assert changed.returncode == 0, output(changed)
    assert store.s3.counts() == {"HEAD": 1, "GET": 1}
    assert (cache_dir / cache_folder("other") / "raw" / "data.json").read_bytes() == b"version 2"


def test_a_published_short_pin_is_verified_by_the_stores_sha256(backend, cache_dir):
    """publish gives the store the sha256 (ChecksumAlgorithm=SHA256): a short pin of it
    is then proved by sha256, on every server."""
    if backend.kind == "dir":
        pytest.skip("a folder keeps no checksum")
    write(backend.project / "data.csv", CSV.decode())
    manifest(backend, "assets:\n  foo/bar.csv: {source: data.csv}\n")
    published = doit(backend, "publish:foo/bar.csv", "--major")
    assert published.returncode == 0, output(published)
    head = backend.client.head_object(Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(CSV).digest()).decode()
    manifest(backend, "assets:\n  foo/bar.csv: 1.0.0\n")  # a short pin, as a hand-written one
    shutil.rmtree(cache_dir)  # publish put the file into the cache: fetch it from the store
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    assert record_of(backend, cache_dir, KEY)["verified"] == "checksum-sha256"


# --- publish never overwrites --------------------------------------------------------------


def test_what_publish_learnt_about_the_server_is_remembered(s3_backend, cache_dir):
    store = s3_backend
    write(store.project / "data.csv", "one\n")
    manifest(store, "assets:\n  foo/bar.csv: {source: data.csv}\n")
    first = doit(store, "publish:foo/bar.csv", "--major")
    assert first.returncode == 0, output(first)
    honours = store.s3.kind == "moto"
    notes = json.loads((cache_dir / ".pod" / "_notes" / "conditional-writes.json").read_text())
    assert notes == {f"{store.s3.endpoint} {BUCKET}": honours}
    warned = "ignores If-None-Match" in first.stderr
    assert warned is (not honours)
    claims = store.s3.count("PUT") - 1  # the claim and its probe, or none
    assert claims == 2

    write(store.project / "data.csv", "two\n")
    store.s3.clear()
    second = doit(store, "publish:foo/bar.csv", "--major")
    assert second.returncode == 0, output(second)
    assert "ignores If-None-Match" not in second.stderr  # said once, when learnt
    version_puts = store.s3.count("PUT", f"/{BUCKET}/foo/bar.2.0.0.csv")
    assert version_puts == 1 and store.s3.count("PUT") == (1 if honours else 2)  # + one claim on rclone
    assert store.keys() == ["foo/bar.1.0.0.csv", "foo/bar.2.0.0.csv"]


# --- one cache for several servers ---------------------------------------------------------


def test_same_bucket_on_two_servers_never_shares_a_cached_file(_s3_servers, project, cache_dir, monkeypatch):
    moto, rclone = _s3_servers.get("moto"), _s3_servers.get("rclone")
    for server, data in ((moto, b"bytes on moto\n"), (rclone, b"bytes on rclone\n")):
        point_at(server, monkeypatch)
        s3_client(server).create_bucket(Bucket=BUCKET)
        s3_client(server).put_object(Bucket=BUCKET, Key="x.json", Body=data)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", f"{moto.endpoint},{rclone.endpoint}")  # both the user's own
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"endpoint: {moto.endpoint}\nfiles:\n  - s3://{BUCKET}/x.json\n")
    code = "from pod_tasks import resolve; print(resolve('s3://assets/x.json'))"

    on_moto = run_python(code, project)
    assert on_moto.returncode == 0, on_moto.stderr
    on_rclone = run_python(code, project, env={"AWS_ENDPOINT_URL": rclone.endpoint})  # the environment wins
    assert on_rclone.returncode == 0, on_rclone.stderr
    moto_path, rclone_path = on_moto.stdout.strip(), on_rclone.stdout.strip()
    assert moto_path == str(cache_dir.resolve() / endpoint_folder(moto.endpoint) / BUCKET / "x.json")
    assert rclone_path == str(cache_dir.resolve() / endpoint_folder(rclone.endpoint) / BUCKET / "x.json")
    assert open(moto_path, "rb").read() == b"bytes on moto\n"
    assert open(rclone_path, "rb").read() == b"bytes on rclone\n"
    moto.clear()
    fetched = run_doit(["fetch", "-v"], project)  # endpoint: from assets.yaml, the file already cached by resolve
    assert fetched.returncode == 0, output(fetched)
    assert "-- fetch:s3://assets/x.json" in fetched.stdout and moto.requests == []


# --- public buckets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public_server():
    """rclone serving with no keys at all: every request is anonymous (a public bucket)."""
    server = RcloneServer(auth=False).start()
    yield server
    server.stop()


@pytest.fixture
def no_credentials(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _public_project(server, project, extra: str = "") -> None:
    server.reset()
    folder = server.root / "open-data" / "foo"
    folder.mkdir(parents=True)
    (folder / "bar.1.0.0.csv").write_bytes(CSV)
    (folder / "bar.1.1.0.csv").write_bytes(CSV + b"2,two\n")
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"store: s3://open-data\nendpoint: {server.endpoint}\n{extra}"
                                   "assets:\n  foo/bar.csv: 1.0.0\n")


@pytest.mark.parametrize("extra, env", [
    ("anonymous: true\n", {}),
    ("", {"POD_ANONYMOUS": "1"}),
    ("", {}),                        # no credentials at all: reads are tried unsigned
])
def test_a_public_bucket_needs_no_account(public_server, project, cache_dir, no_credentials, extra, env):
    _public_project(public_server, project, extra)
    fetched = run_doit(["fetch"], project, env)
    assert fetched.returncode == 0, output(fetched)
    assert (cache_dir / endpoint_folder(public_server.endpoint) / "open-data" / "foo" / "bar.1.0.0.csv").read_bytes() == CSV
    versions = run_doit(["versions:foo/bar.csv"], project, env)
    assert versions.returncode == 0 and "1.1.0" in versions.stdout, output(versions)
    listed = run_doit(["ls-remote"], project, env)
    assert listed.returncode == 0 and "foo/bar.csv" in listed.stdout, output(listed)
    resolved = run_python("from pod_tasks import resolve; print(open(resolve('foo/bar.csv', '1.1.0'), 'rb').read())",
                          project, env)
    assert resolved.returncode == 0 and resolved.stdout.strip() == repr(CSV + b"2,two\n"), resolved.stderr
    write(project / "needed.yaml", "- foo/bar.csv\n- s3://open-data/foo/bar.1.1.0.csv\n")
    prefilled = run_doit(["prefill", "--list", "needed.yaml"], project, env)
    assert prefilled.returncode == 0 and "0 missing" in prefilled.stdout, output(prefilled)


@pytest.mark.parametrize("env, cause", [
    ({}, "cannot write to the store at http://127.0.0.1"),       # named only by assets.yaml: no credentials for it
    ("trusted", "no AWS credentials"),
])
def test_publish_is_never_unsigned(public_server, project, no_credentials, env, cause):
    _public_project(public_server, project, "anonymous: true\n")
    env = {"POD_TRUSTED_ENDPOINTS": public_server.endpoint} if env == "trusted" else env
    write(project / "new.csv", "new\n")
    before = (project / "assets.yaml").read_bytes()
    public_server.clear()
    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project, env)
    assert_clean_failure(result, "publish:foo/bar.csv", cause)
    assert (project / "assets.yaml").read_bytes() == before
    assert public_server.count("PUT") == 0 and not (public_server.root / "open-data" / "foo" / "bar.1.2.0.csv").exists()


# --- errors that name the cause ------------------------------------------------------------


def test_no_such_bucket_is_named_with_the_endpoint(s3, project):
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", "store: s3://no-such-bucket\nassets:\n  foo/bar.csv: 1.0.0\n")
    for args in (["fetch"], ["versions:foo/bar.csv"], ["ls-remote"]):
        result = run_doit(args, project)
        assert_clean_failure(result, "there is no bucket 'no-such-bucket'", f"at {s3.endpoint}", "endpoint")


def test_wrong_credentials_are_named(s3_backend, monkeypatch):
    store = s3_backend
    if store.s3.kind == "moto":
        pytest.skip("moto accepts any key")
    store.put(KEY, CSV)
    manifest(store, "assets:\n  foo/bar.csv: 1.0.0\n")
    result = doit(store, "fetch", env={"AWS_SECRET_ACCESS_KEY": "not-the-secret-at-all"})
    assert_clean_failure(result, "foo/bar.csv", "does not accept these credentials (SignatureDoesNotMatch)")


class _WebPage(http.server.BaseHTTPRequestHandler):
    """A web server that is not S3: a login page for every request."""

    def _page(self, status: int) -> None:
        body = b"<html><body><h1>Sign in</h1></body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._page(200 if "list-type" not in self.path else 403)

    def do_HEAD(self) -> None:
        self._page(200)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_is_not_s3_is_named(project, cache_dir, web_page, monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"store: s3://assets\nendpoint: {web_page}\nassets:\n  foo/bar.csv: 1.0.0\n"
                                   f"files:\n  - s3://assets/raw.json\n")
    result = run_doit(["fetch:foo/bar.csv"], project)
    assert_clean_failure(result, "foo/bar.csv", "not an S3 server", "endpoint")
    assert not any(p.is_file() for p in cache_dir.rglob("*.csv"))
    mutable = run_doit(["fetch:s3://assets/raw.json"], project)
    assert_clean_failure(mutable, "not an S3 server")
