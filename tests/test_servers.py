"""The test harness itself: each S3 server counts the same requests the same way, is
emptied by `reset`, and gives the ETags `etag` predicts; rclone sees objects written
as files at once; a stopped server refuses connections; a `Rule` counts per proxy."""

from __future__ import annotations

import hashlib
import os
import socket

import boto3
import pytest

from tests.conftest import s3_client
from tests.servers import CREDENTIALS, FaultProxy, Rule

KEY = "dir one/\u00e9t\u00e9 50%.csv"  # a space, a non-ASCII letter and a '%' to percent-encode


def test_requests_are_counted_as_method_and_decoded_path(s3, client):
    client.create_bucket(Bucket="abc")
    s3.clear()
    client.put_object(Bucket="abc", Key=KEY, Body=b"a,b\n")
    client.head_object(Bucket="abc", Key=KEY)
    assert client.get_object(Bucket="abc", Key=KEY)["Body"].read() == b"a,b\n"
    assert [item["Key"] for item in client.list_objects_v2(Bucket="abc")["Contents"]] == [KEY]
    client.delete_object(Bucket="abc", Key=KEY)
    path = f"/abc/{KEY}"
    assert s3.requests == [("PUT", path), ("HEAD", path), ("GET", path), ("GET", "/abc"), ("DELETE", path)]
    assert (s3.count("GET"), s3.count("GET", path), s3.counts()) == (2, 1, {"PUT": 1, "HEAD": 1, "GET": 2, "DELETE": 1})


def test_reset_forgets_every_bucket_and_request(s3, client):
    client.create_bucket(Bucket="abc")
    client.put_object(Bucket="abc", Key="k", Body=b"x")
    s3.reset()
    assert s3.requests == []
    assert client.list_buckets()["Buckets"] == []


def test_the_environment_points_at_the_server_with_the_shared_credentials(s3):
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint == f"http://127.0.0.1:{s3.port}"
    assert {key: os.environ[key] for key in CREDENTIALS} == CREDENTIALS


def test_etag_of_one_put(s3, client):
    client.create_bucket(Bucket="abc")
    data = os.urandom(1000)
    client.put_object(Bucket="abc", Key="k.bin", Body=data)
    assert client.head_object(Bucket="abc", Key="k.bin")["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.etag(data) == hashlib.md5(data).hexdigest()


def test_opaque_s3_gives_sha1_etags(opaque_s3):
    client = s3_client(opaque_s3)
    client.create_bucket(Bucket="abc")
    data = b"not an MD5 ETag"
    client.put_object(Bucket="abc", Key="k.txt", Body=data)
    etag = client.head_object(Bucket="abc", Key="k.txt")["ETag"].strip('"')
    assert etag == hashlib.sha1(data).hexdigest() == opaque_s3.etag(data) != hashlib.md5(data).hexdigest()
    assert os.environ["AWS_ENDPOINT_URL"] == opaque_s3.endpoint
    assert opaque_s3.requests == [("PUT", "/abc"), ("PUT", "/abc/k.txt"), ("HEAD", "/abc/k.txt")]


def test_rclone_sees_an_object_written_as_a_file_at_once(opaque_s3):
    client = s3_client(opaque_s3)
    client.create_bucket(Bucket="abc")
    assert client.list_objects_v2(Bucket="abc").get("Contents", []) == []  # a listing rclone could cache
    (opaque_s3.root / "abc" / "sub").mkdir()
    (opaque_s3.root / "abc" / "sub" / "f.txt").write_bytes(b"written as a file")
    assert [item["Key"] for item in client.list_objects_v2(Bucket="abc")["Contents"]] == ["sub/f.txt"]
    (opaque_s3.root / "abc" / "sub" / "f.txt").write_bytes(b"changed")
    assert client.get_object(Bucket="abc", Key="sub/f.txt")["Body"].read() == b"changed"


def test_a_stopped_server_refuses_connections(own_s3):
    client = boto3.client("s3", endpoint_url=own_s3.endpoint)
    client.create_bucket(Bucket="abc")
    own_s3.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", own_s3.port), timeout=5).close()


def test_a_rule_counts_per_proxy(s3, client):
    client.create_bucket(Bucket="abc")
    rule = Rule("HEAD", r"^/abc/k$", "status", times=1, status=503)
    for _ in range(2):  # one Rule, as in a parametrize list, applied by two proxies in turn
        proxy = FaultProxy(s3.port).start()
        try:
            added = proxy.add(rule)
            replies = []
            for _ in range(2):
                try:
                    replies.append(boto3.client("s3", endpoint_url=proxy.endpoint,
                                                config=_no_retries()).head_object(Bucket="abc", Key="k"))
                except client.exceptions.ClientError as exc:
                    replies.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
            assert replies == [503, 404] and (added.injected, proxy.injected, rule.injected) == (1, 1, 0)
        finally:
            proxy.stop()
    assert s3.count("HEAD", "/abc/k") == 2  # the 503s never reached the server


def _no_retries():
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 1})
