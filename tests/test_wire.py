"""The fast GET/HEAD path: botocore's addresses, SigV4 signing, retries, a bucket
followed to its region, one connection pool. Against each S3 server, and a stub HTTP
server on 127.0.0.1 for the answers no test server gives (a redirect to a region)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from pod_tasks.errors import AssetNotFound, OfflineError, StoreError
from pod_tasks.store import S3Store
from pod_tasks.wire import Wire, wire_for
from tests.faults import Rule, proxy  # noqa: F401 - proxy is a fixture


def _unreachable(region: str):
    raise AssertionError(f"no redirect expected (to {region})")


@pytest.mark.parametrize("bucket, key, url", [
    ("legacy-assets", "a/b.csv", "https://legacy-assets.s3.amazonaws.com/a/b.csv"),
    ("dotted.bucket", "a/b.csv", "https://s3.amazonaws.com/dotted.bucket/a/b.csv"),
    ("legacy-assets", "a b/ü+&.csv", "https://legacy-assets.s3.amazonaws.com/a%20b/%C3%BC%2B%26.csv"),
])
def test_addresses_on_aws_are_botocores(bucket, key, url):
    """AWS's own endpoint: virtual-hosted (path style for a dotted name), keys quoted;
    worked out locally, nothing is sent."""
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version=UNSIGNED))
    assert Wire(client, bucket, None, _unreachable).url(key) == url


def test_get_and_head_of_odd_keys(s3, client):
    client.create_bucket(Bucket="wire-bucket")
    keys = {"plain.txt": b"plain", "dir/with space/ü+&=.bin": b"odd\x00bytes", "tilde~/x": b""}
    for key, body in keys.items():
        client.put_object(Bucket="wire-bucket", Key=key, Body=body)
    store = S3Store("wire-bucket")
    for key, body in keys.items():
        got = bytearray()
        head = store.download_to(key, lambda head: got.extend)
        assert bytes(got) == body and head.size == len(body) and head.etag == hashlib.md5(body).hexdigest()
        assert store.head(key) == head
    s3.clear()
    with pytest.raises(AssetNotFound, match="s3://wire-bucket/nope does not exist"):
        store.head("nope")
    assert s3.count("HEAD") == 1


def test_a_5xx_is_retried_then_reported(s3, client, proxy):
    client.create_bucket(Bucket="wire-bucket")
    client.put_object(Bucket="wire-bucket", Key="k", Body=b"data")
    store = S3Store("wire-bucket")
    flaky = proxy.add(Rule("GET", r"/wire-bucket/k", "status", times=2, status=503))
    got = bytearray()
    store.download_to("k", lambda head: got.extend)
    assert bytes(got) == b"data" and flaky.injected == 2
    broken = proxy.add(Rule("HEAD", r"/wire-bucket/k", "status", times=None, status=500))
    s3.clear()
    with pytest.raises(StoreError, match="^the store refused s3://wire-bucket/k: 500"):
        store.head("k")
    assert broken.injected == 6 and s3.count("HEAD") == 0  # boto3's 1 + 5 retries, all refused


def test_wrong_secret_is_one_line_about_credentials(s3, s3_kind, client, monkeypatch):
    if s3_kind == "moto":
        pytest.skip("moto's server accepts any signature")
    client.create_bucket(Bucket="wire-bucket")
    client.put_object(Bucket="wire-bucket", Key="k", Body=b"data")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all")
    from pod_tasks import store as store_module

    monkeypatch.setattr(store_module, "_clients", {})  # a client built with these credentials
    with pytest.raises(OfflineError, match="does not accept these credentials .SignatureDoesNotMatch."):
        S3Store("wire-bucket").download_to("k", lambda head: None)


def test_one_connection_pool_for_every_bucket(s3, client):
    for bucket in ("wire-one", "wire-two"):
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="k", Body=bucket.encode())
        S3Store(bucket).head("k")
    from pod_tasks import store as store_module

    signed = store_module._s3_client(S3Store("wire-one").endpoint)
    one, two = (wire_for(signed, b, None, _unreachable) for b in ("wire-one", "wire-two"))
    assert one.pool is two.pool


class _RegionStub(http.server.BaseHTTPRequestHandler):
    """Answers as AWS does for a bucket in eu-west-1 asked in another region."""

    seen: list[str] = []

    def do_HEAD(self):
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        if "/eu-west-1/s3/aws4_request" in auth:
            self.send_response(200)
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.send_header("Content-Length", "7")
        else:
            self.send_response(400)
            self.send_header("x-amz-bucket-region", "eu-west-1")
            self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_bucket_in_another_region_is_followed_there(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RegionStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", endpoint)  # signed: the region is in the signature's scope
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPODTESTKEY0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pod-region-SECRET-0000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        head = S3Store("far-bucket", endpoint).head("k")
    finally:
        server.shutdown()
    assert head.size == 7 and head.etag == "0123456789abcdef0123456789abcdef"
    assert ["/us-east-1/s3/" in a for a in _RegionStub.seen] == [True, False]
