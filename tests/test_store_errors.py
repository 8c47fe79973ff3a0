"""Every way an S3 server can refuse, as the one line a user reads: a table over
botocore's own exceptions (no server), so that each answer is pinned down exactly."""

from __future__ import annotations

import pytest
from botocore import exceptions as bx

from pod_tasks.errors import AssetNotFound, OfflineError, PublishConflict, StoreError
from pod_tasks.store import S3Store

URL = "s3://assets/foo/bar.1.0.0.csv"


def client_error(code: str, status: int, headers: dict | None = None, message: str = "") -> bx.ClientError:
    response = {"Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {"x-amz-request-id": "1"}}}
    return bx.ClientError(response, "GetObject")


@pytest.mark.parametrize("error, signed, kind, fragments", [
    (client_error("NoSuchKey", 404), True, AssetNotFound, [f"{URL} does not exist in the store"]),
    (client_error("404", 404), True, AssetNotFound, ["does not exist in the store"]),
    (client_error("NoSuchBucket", 404), True, StoreError,
     ["there is no bucket 'assets' at http://127.0.0.1:9", "`endpoint:`"]),
    (client_error("PreconditionFailed", 412), True, PublishConflict, ["already exists"]),
    (client_error("AccessDenied", 403), True, OfflineError,
     ["access to", "was denied (AccessDenied) at http://127.0.0.1:9", "bucket policy or IAM", "s3:GetObject"]),
    (client_error("SignatureDoesNotMatch", 403), True, OfflineError,
     ["does not accept these credentials (SignatureDoesNotMatch)", "check the key pair"]),
    (client_error("ExpiredToken", 400), True, OfflineError, ["(ExpiredToken)", "aws sso login"]),
    (client_error("RequestTimeTooSkewed", 403), True, StoreError, ["clock is off by more than 15 minutes", "NTP"]),
    (client_error("502", 502, {"content-type": "text/html"}), True, StoreError,
     ["the endpoint answered HTTP 502 with a web page: it is not an S3 server", "AWS_ENDPOINT_URL"]),
    (client_error("InternalError", 500), True, StoreError, ["the store refused", "InternalError"]),
    # unsigned reads: a refusal means "you need credentials"
    (client_error("AccessDenied", 403), False, OfflineError, ["no AWS credentials to read", "unsigned read was refused"]),
    (client_error("NoSuchBucket", 404), False, OfflineError, ["unsigned read was refused"]),
    (client_error("NoSuchKey", 404), False, AssetNotFound, ["does not exist"]),
    (bx.NoCredentialsError(), True, OfflineError, ["no AWS credentials to read", "aws configure"]),
    (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True, OfflineError, ["cannot reach the store"]),
])
def test_each_refusal_is_one_line_naming_its_cause(error, signed, kind, fragments, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the user's own server: trusted
    store = S3Store("assets", "http://127.0.0.1:9")
    translated = store._translate(error, URL, signed)
    assert type(translated) is kind
    text = str(translated)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text, text


def test_an_anonymous_store_refused_says_the_bucket_is_not_public():
    store = S3Store("assets", "http://127.0.0.1:9", anonymous=True)
    text = str(store._translate(client_error("AccessDenied", 403), URL, False))
    assert "the bucket is not public" in text and "drop `anonymous:`" in text


def test_aws_is_named_when_there_is_no_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    text = str(S3Store("assets")._translate(client_error("NoSuchBucket", 404), URL, True))
    assert "there is no bucket 'assets' on AWS" in text
