"""Where versions live: an S3 bucket (through boto3) or a plain directory.

One small interface, `Store`, two implementations. Keys are relative POSIX paths. Every
failure is translated into a `PodError`: a missing object is `AssetNotFound`, an
unreachable store or missing credentials `OfflineError`, an existing key on upload
`PublishConflict`. Nothing outside this module imports boto3.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol
from urllib.parse import unquote, urlparse

from .errors import AssetNotFound, IntegrityError, OfflineError, PodError, PublishConflict, StoreError
from .names import check_relative_key

__all__ = ["Head", "Store", "S3Store", "DirStore", "open_store", "parse_s3_url", "CHUNK"]

CHUNK = 1 << 20
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
Sink = Callable[[bytes], None]
#: Called once the object's head is known (before the first byte); returns the sink.
Opener = Callable[["Head"], Sink]


@dataclass(frozen=True)
class Head:
    """What the store says of an object: its ETag (None when the store keeps none) and size."""

    etag: str | None
    size: int


class Store(Protocol):
    """The operations the cache and publish need. Implementations are thread-safe."""

    #: Folder name under the cache dir (the bucket name for S3).
    name: str

    def url(self, key: str) -> str:
        """A URL a person can read and paste: ``s3://bucket/key`` or ``file:///...``."""

    def head(self, key: str) -> Head:
        """ETag and size of ``key``; raises `AssetNotFound` when it does not exist."""

    def part_size(self, key: str) -> int | None:
        """The size of the first part of a multipart object; None when it has no parts."""

    def download_to(self, key: str, start: Opener) -> Head:
        """Stream ``key``: call ``start(head)`` once, feed its sink every chunk, return the head."""

    def put_if_absent(self, key: str, path: Path, md5: bytes) -> Head:
        """Upload ``path`` to ``key`` only if ``key`` does not exist (else `PublishConflict`)."""

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix`` (raw, as the store reports them)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); raises ValueError when it is not one.

    The bucket is a folder name in the cache, so it must look like one (letters,
    digits, ``.``, ``_``, ``-``; not ``.`` or ``..``). Control characters and outer
    spaces are refused rather than silently dropped as ``urlparse`` would."""
    parsed = urlparse(url)
    clean = url == url.strip() and not any(ord(c) < 32 or ord(c) == 127 for c in url)
    if not clean or parsed.scheme != "s3" or not _BUCKET.match(parsed.netloc):
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    return parsed.netloc, parsed.path.lstrip("/")


# --- S3 -----------------------------------------------------------------------------

_client_lock = threading.Lock()
_clients: dict[str | None, object] = {}

_CREDENTIALS_HINT = (
    "configure credentials with `aws configure`, AWS_PROFILE or AWS_ACCESS_KEY_ID/"
    "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an S3-compatible server)"
)


def _s3_client():
    """One boto3 client per process and endpoint (``AWS_ENDPOINT_URL``): thread-safe,
    standard retries, a connection pool large enough for ``doit -n 8``."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    client = _clients.get(endpoint)
    if client is None:
        with _client_lock:
            client = _clients.get(endpoint)
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)
                client = _clients[endpoint] = boto3.session.Session().client("s3", config=config)
    return client


def _translate(exc: Exception, url: str) -> PodError:
    """Map a botocore exception to the `PodError` a user can act on."""
    from botocore import exceptions as bx

    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.NoRegionError)):
        return OfflineError(f"no AWS credentials to read {url}: {_CREDENTIALS_HINT}", no_credentials=True)
    if isinstance(exc, bx.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket") or status == 404:
            return AssetNotFound(f"{url} does not exist in the store")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
            return PublishConflict(f"{url} already exists: someone published it first; pick the next version")
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken") or status == 403:
            return OfflineError(f"access to {url} was denied ({code}): {_CREDENTIALS_HINT}", no_credentials=True)
        return StoreError(f"the store refused {url}: {code} {exc.response.get('Error', {}).get('Message', '')}".strip())
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError, bx.ReadTimeoutError)):
        return OfflineError(f"cannot reach the store for {url}: check the network (or AWS_ENDPOINT_URL)")
    if isinstance(exc, bx.BotoCoreError):
        return StoreError(f"talking to the store for {url} failed: {exc}")
    raise exc


class S3Store:
    """A bucket, through the default boto3 credential chain (``AWS_ENDPOINT_URL`` honoured)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.name = bucket

    def __repr__(self) -> str:
        return f"S3Store({self.bucket!r})"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, key: str, fn: Callable[[], dict]) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, self.url(key)) from None

    def head(self, key: str) -> Head:
        reply = self._call(key, lambda: _s3_client().head_object(Bucket=self.bucket, Key=key))
        return Head(reply.get("ETag", "").strip('"') or None, int(reply["ContentLength"]))

    def part_size(self, key: str) -> int | None:
        reply = self._call(key, lambda: _s3_client().head_object(Bucket=self.bucket, Key=key, PartNumber=1))
        return int(reply["ContentLength"]) if reply.get("PartsCount") else None

    def download_to(self, key: str, start: Opener) -> Head:
        from botocore.exceptions import BotoCoreError

        reply = self._call(key, lambda: _s3_client().get_object(Bucket=self.bucket, Key=key))
        head = Head(reply.get("ETag", "").strip('"') or None, int(reply["ContentLength"]))
        body = reply["Body"]
        try:
            sink = start(head)
            chunks = body.iter_chunks(CHUNK)
            while True:
                try:
                    chunk = next(chunks, b"")
                except (BotoCoreError, OSError, ValueError) as exc:
                    # urllib3's protocol errors are OSErrors; a cut connection is an incomplete body.
                    raise IntegrityError(
                        f"the download of {self.url(key)} was cut short ({type(exc).__name__})"
                    ) from None
                if not chunk:
                    break
                sink(chunk)  # the sink's own errors (a full disk) are not the network's
        finally:
            body.close()
        return head

    def put_if_absent(self, key: str, path: Path, md5: bytes) -> Head:
        import base64

        with open(path, "rb") as body:
            reply = self._call(
                key,
                lambda: _s3_client().put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentMD5=base64.b64encode(md5).decode(),
                ),
            )
        return Head(reply.get("ETag", "").strip('"') or None, path.stat().st_size)

    def list_keys(self, prefix: str) -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = _s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"]
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, self.url(prefix)) from None


# --- Directory ----------------------------------------------------------------------


class DirStore:
    """A folder on disk or a network share, append-only like a bucket.

    Uploads are written to a temporary name and hard-linked into place, which fails if
    the key exists: two publishers of one version make one winner and one conflict.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        # S3 bucket names cannot start with "_", so this never meets a bucket's folder.
        self.name = f"_dir-{digest}"

    def __repr__(self) -> str:
        return f"DirStore({str(self.root)!r})"

    def url(self, key: str) -> str:
        return (self.root / key).as_uri()

    def _path(self, key: str) -> Path:
        """The file of ``key`` (checked to stay inside the folder; "" is the folder)."""
        if key:
            check_relative_key(key.rstrip("/"), "store key")
        if not self.root.is_dir():
            raise OfflineError(
                f"cannot reach {self.url(key)}: the store folder {self.root} is not there: "
                f"mount it or fix `store:` in assets.yaml"
            )
        return self.root / key

    def head(self, key: str) -> Head:
        try:
            return Head(None, self._path(key).stat().st_size)
        except FileNotFoundError:
            raise AssetNotFound(f"{self.url(key)} does not exist in the store") from None

    def part_size(self, key: str) -> int | None:
        return None  # files here are written whole

    def download_to(self, key: str, start: Opener) -> Head:
        try:
            source = open(self._path(key), "rb")
        except FileNotFoundError:
            raise AssetNotFound(f"{self.url(key)} does not exist in the store") from None
        with source:
            head = Head(None, os.fstat(source.fileno()).st_size)
            sink = start(head)
            while chunk := source.read(CHUNK):
                sink(chunk)
        return head

    def put_if_absent(self, key: str, path: Path, md5: bytes) -> Head:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        try:
            with open(path, "rb") as source, open(temp, "xb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, final)
            except FileExistsError:
                raise PublishConflict(f"{self.url(key)} already exists: someone published it first; pick the next version") from None
            except OSError:
                if os.name != "nt":
                    raise
                try:  # no hard links here; rename never overwrites on Windows
                    os.rename(temp, final)
                except FileExistsError:
                    raise PublishConflict(f"{self.url(key)} already exists: pick the next version") from None
        finally:
            temp.unlink(missing_ok=True)
        return Head(None, final.stat().st_size)

    def list_keys(self, prefix: str) -> Iterator[str]:
        self._path(prefix)
        base = self.root / prefix.rpartition("/")[0]
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                key = filename if rel == "." else f"{rel}/{filename}"
                if key.startswith(prefix):
                    yield key


def open_store(spec: str, base: Path) -> tuple[Store, str]:
    """The store a ``store:`` value names, and the key prefix inside it.

    ``s3://bucket[/prefix]``, ``file:///abs/path``, or a directory path (relative to
    ``base``, the folder of assets.yaml). The prefix is empty or ends with ``/``.
    """
    if spec.startswith("s3://"):
        bucket, prefix = parse_s3_url(spec)
        prefix = prefix.strip("/")
        return S3Store(bucket), (prefix + "/" if prefix else "")
    if spec.startswith("file://"):
        parsed = urlparse(spec)
        path = unquote(parsed.path)
        if os.name == "nt" and path.startswith("/") and path[2:3] == ":":
            path = path[1:]
        return DirStore(Path(path)), ""
    return DirStore((base / Path(spec).expanduser())), ""
