"""Which server a project talks to, and how it signs: `endpoint:` / `anonymous:` in
assets.yaml, their environment overrides, and the cache folder each server gets.
Tables, and moto's in-process mock for AWS's own endpoint (no HTTP server)."""

from __future__ import annotations

import hashlib

import pytest

from pod_tasks.config import Settings
from pod_tasks.errors import ManifestError
from pod_tasks.manifest import parse_manifest
from pod_tasks.store import S3Store, endpoint_folder, open_store


@pytest.mark.parametrize("endpoint, folder", [
    (None, ""),                                                   # AWS's own: the old layout
    ("", ""),
    # the S3 hosts AWS documents for its global partition: one cache, AWS's own
    ("https://s3.amazonaws.com", ""),
    ("https://S3.AmazonAWS.com/", ""),
    ("https://s3.amazonaws.com:443", ""),
    ("https://s3.amazonaws.com.", ""),
    ("https://s3.eu-west-1.amazonaws.com", ""),
    ("https://s3-eu-west-1.amazonaws.com", ""),
    ("https://s3-external-1.amazonaws.com", ""),
    ("https://s3.dualstack.us-east-1.amazonaws.com", ""),
    ("https://s3-fips.us-east-2.amazonaws.com", ""),
    ("https://s3-fips.dualstack.us-east-2.amazonaws.com", ""),
    ("https://s3-accelerate.amazonaws.com", ""),
    ("https://s3-accelerate.dualstack.amazonaws.com", ""),
    ("https://user:secret@s3.amazonaws.com", ""),               # userinfo is no part of a server
    # hosts under .amazonaws.com that are not S3's, or not as itself: folders of their own
    ("https://abc123.execute-api.us-east-1.amazonaws.com", "_endpoint-abc123.execute-api.us-east-1.amazonaws.com/"),
    ("https://my-lb-1234.eu-west-1.elb.amazonaws.com", "_endpoint-my-lb-1234.eu-west-1.elb.amazonaws.com/"),
    ("https://amazonaws.com", "_endpoint-amazonaws.com/"),
    ("https://evil.s3.amazonaws.com", "_endpoint-evil.s3.amazonaws.com/"),   # asks bucket "evil" for key BUCKET/KEY
    ("https://evil.s3.eu-west-1.amazonaws.com", "_endpoint-evil.s3.eu-west-1.amazonaws.com/"),
    ("https://evil.s3-website-us-east-1.amazonaws.com", "_endpoint-evil.s3-website-us-east-1.amazonaws.com/"),
    ("https://s3-website.eu-west-1.amazonaws.com", "_endpoint-s3-website.eu-west-1.amazonaws.com/"),
    ("https://s3.amazonaws.com.evil.example", "_endpoint-s3.amazonaws.com.evil.example/"),
    ("http://s3.amazonaws.com", "_endpoint-s3.amazonaws.com+http/"),         # in clear: anyone on the way may answer
    ("https://s3.amazonaws.com:8443", "_endpoint-s3.amazonaws.com-8443+https/"),
    ("https://s3.amazonaws.com/evil", f"_endpoint-s3.amazonaws.com-{hashlib.sha1(b'/evil').hexdigest()[:8]}/"),
    # other partitions: another bucket namespace, so not AWS's folder (as before)
    ("https://s3.cn-north-1.amazonaws.com.cn", "_endpoint-s3.cn-north-1.amazonaws.com.cn/"),
    ("https://s3.us-gov-west-1.amazonaws.com", "_endpoint-s3.us-gov-west-1.amazonaws.com/"),
    # any other server: scheme, host and port exactly, default ports dropped, host lowercased
    ("http://127.0.0.1:9000", "_endpoint-127.0.0.1-9000/"),                 # as old caches named it
    ("http://127.0.0.1:9000/", "_endpoint-127.0.0.1-9000/"),
    ("https://127.0.0.1:9000", "_endpoint-127.0.0.1-9000+https/"),
    ("http://localhost:9000", "_endpoint-localhost-9000/"),                 # a name is not its address
    ("https://MinIO.Example.com", "_endpoint-minio.example.com/"),          # as old caches named it
    ("https://minio.example.com:443", "_endpoint-minio.example.com/"),
    ("https://minio.example.com.", "_endpoint-minio.example.com/"),
    ("http://minio.example.com", "_endpoint-minio.example.com+http/"),
    ("http://minio.example.com:80", "_endpoint-minio.example.com+http/"),
    ("http://minio.example.com:443", "_endpoint-minio.example.com-443+http/"),
    ("https://minio.example.com:80", "_endpoint-minio.example.com-80+https/"),
    ("https://u:p@minio.example.com", "_endpoint-minio.example.com/"),
    ("http://[::1]:9000", "_endpoint-__1-9000/"),                           # no ':' in a Windows folder name
    ("http://[0:0::1]:9000", "_endpoint-__1-9000/"),
    ("https://bücher.example", "_endpoint-xn--bcher-kva.example/"),
])
def test_endpoint_folder(endpoint, folder):
    assert endpoint_folder(endpoint) == folder


@pytest.mark.parametrize("url", ["minio:9000", "ftp://minio", "http://", "http://host:99999", " http://h", "http://h\n"])
def test_a_url_that_names_no_server_is_refused(url):
    with pytest.raises(ValueError, match="is not a server URL"):
        endpoint_folder(url)


def test_endpoints_with_a_path_get_folders_of_their_own():
    one, two = endpoint_folder("https://gw.example.com/s3/a"), endpoint_folder("https://gw.example.com/s3/b")
    assert one != two and one.startswith("_endpoint-gw.example.com-") and one.endswith("/")


def test_two_servers_never_share_a_cache_folder():
    names = {S3Store("assets", e).name for e in (None, "http://127.0.0.1:9000", "http://127.0.0.1:9001", "http://other:9000")}
    assert len(names) == 4 and "assets" in names


@pytest.mark.parametrize("env, manifest, endpoint", [
    ({}, None, None),
    ({}, "http://minio:9000", "http://minio:9000"),
    ({"AWS_ENDPOINT_URL": "http://env:1"}, "http://minio:9000", "http://env:1"),
    ({"AWS_ENDPOINT_URL": "http://env:1", "AWS_ENDPOINT_URL_S3": "http://s3env:2"}, None, "http://s3env:2"),
])
def test_endpoint_precedence(env, manifest, endpoint):
    settings = Settings.load(cache_dir="c", environ=env, manifest_endpoint=manifest)
    assert settings.endpoint == endpoint


@pytest.mark.parametrize("env, manifest, anonymous", [
    ({}, False, False),
    ({}, True, True),
    ({"POD_ANONYMOUS": "1"}, False, True),
    ({"POD_ANONYMOUS": "0"}, True, False),
    ({"POD_ANONYMOUS": ""}, True, True),
])
def test_anonymous_precedence(env, manifest, anonymous):
    assert Settings.load(cache_dir="c", environ=env, manifest_anonymous=manifest).anonymous is anonymous


def test_a_bad_pod_anonymous_names_the_variable():
    with pytest.raises(ValueError, match=r"\$POD_ANONYMOUS: 'maybe' is not true or false"):
        Settings.load(cache_dir="c", environ={"POD_ANONYMOUS": "maybe"})


def test_manifest_endpoint_and_anonymous(tmp_path):
    text = "store: s3://assets\nendpoint: http://127.0.0.1:9000\nanonymous: true\nassets:\n  a.csv: 1.0.0\n"
    manifest = parse_manifest(text, tmp_path / "assets.yaml")
    assert (manifest.endpoint, manifest.anonymous) == ("http://127.0.0.1:9000", True)
    store, _ = open_store(manifest.store, tmp_path, manifest.endpoint, manifest.anonymous)
    assert store.name == "_endpoint-127.0.0.1-9000/assets" and store.anonymous


@pytest.mark.parametrize("line, fragment", [
    ("endpoint: minio:9000", "endpoint 'minio:9000' is not a server URL: write e.g. https://"),
    ("endpoint: ftp://minio", "is not a server URL"),
    ("endpoint: http://", "is not a server URL"),
    ("endpoint: http://host:99999", "is not a server URL"),
    ("endpoint: [a, b]", "endpoint must be a single value"),
    ("anonymous: perhaps", "anonymous: 'perhaps' is not true or false: write true or false"),
])
def test_bad_endpoint_or_anonymous_is_located(tmp_path, line, fragment):
    text = f"store: s3://assets\n{line}\nassets:\n  a.csv: 1.0.0\n"
    with pytest.raises(ManifestError, match="^assets.yaml:2: ") as info:
        parse_manifest(text, tmp_path / "assets.yaml")
    assert fragment in str(info.value)


def test_aws_own_endpoint_keeps_the_old_layout(cache_dir, monkeypatch):
    """No endpoint: ``<cache_dir>/<bucket>/<key>``, so an old tool's cache is used as it
    is (offline here: nothing may reach AWS from a test)."""
    from pod_tasks.cache import AssetCache, ObjectRef

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    old = cache_dir / "legacy-assets" / "a" / "old.csv"  # left by the old tool, no record
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old\n")
    (cache_dir / ".timestamps").mkdir()  # the old tool's marks (of other files): its cache, adopted
    cache = AssetCache(Settings(cache_dir=cache_dir, offline=True))
    store = S3Store("legacy-assets")
    assert store.name == "legacy-assets" and store.endpoint is None
    assert cache.path_for(ObjectRef(store, "a/new.csv", True)) == cache_dir.resolve() / "legacy-assets" / "a" / "new.csv"
    fetched = cache.fetch(ObjectRef(store, "a/old.csv", True))
    assert fetched.path == old.resolve() and old.read_bytes() == b"old\n"
