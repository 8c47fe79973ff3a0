"""Where versions live: an S3 bucket (AWS or any S3-compatible server, through boto3)
or a plain directory.

One small interface, `Store`, two implementations. Keys are relative POSIX paths. Every
failure is translated into a `PodError` whose one line names the cause: a missing
object is `AssetNotFound`; an unreachable store, missing or refused credentials
`OfflineError`; a missing bucket, a clock skew or an endpoint that is not S3
`StoreError`; an existing key on a conditional write `PublishConflict` (servers that
ignore conditions overwrite instead: `pod_tasks.publish` guards against them). A `Head`
carries the store's own checksum when it keeps one, says when the ETag is known
not to be an MD5 (SSE-KMS, SSE-C), and carries the object's metadata (written with it
by `Store.put_if_absent`: S3 user metadata; a folder keeps it in a hidden sidecar file
beside the object, never listed). Nothing outside this module imports boto3.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Protocol
from urllib.parse import unquote, urlparse

from .bounds import watch
from .digests import Checksum, is_md5_etag
from .endpoints import configured_endpoint, endpoint_folder, signing_refusal, strip_userinfo
from .errors import (AssetNotFound, IntegrityError, OfflineError, PodError, PublishConflict, StoreError, TransferError,
                     UnsafePathError, UntrustedEndpoint, shown)
from .names import check_bucket, check_relative_key
from .uploads import upload
from .wire import Reply, wire_for

__all__ = [
    "Head", "Reader", "Store", "S3Store", "DirStore", "open_store", "parse_s3_url", "endpoint_folder",
    "path_of_file_url", "get_headers", "pump", "CHUNK", "SINGLE_PUT_LIMIT", "Enough", "Changed",
]

CHUNK = 1 << 20
#: A folder store's folder of metadata sidecars.
_META = ".pod-meta"
Sink = Callable[[bytes], None]
#: Called once the object's head is known (before the first byte); returns the sink.
Opener = Callable[["Head"], Sink]


class Enough(Exception):
    """Raised by a download's sink to stop reading: the rest of the body is not wanted."""


class Changed(IntegrityError):
    """The object changed while it was read in several requests (``If-Match`` failed)."""


@dataclass(frozen=True)
class Head:
    """What the store says of an object: its ETag (None when the store keeps none), size,
    own checksum (None when it keeps none), and whether the server says the ETag is not
    an MD5 of the bytes (``opaque``: SSE-KMS or SSE-C objects on AWS)."""

    etag: str | None
    size: int
    checksum: Checksum | None = None
    opaque: bool = False
    #: When the object was last written, in seconds since the epoch by the store's clock.
    modified: float | None = field(default=None, compare=False)
    #: The metadata written with the object (names lower-case), as `Store.put_if_absent` took it.
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def md5_etag(self) -> bool:
        """The ETag can be taken as the MD5 (or multipart MD5) of the bytes."""
        return not self.opaque and is_md5_etag(self.etag)


class Reader(Protocol):
    """What the cache reads through: a store, or a mirror of one (`pod_tasks.web`, or a
    folder). Implementations are thread-safe."""

    #: Over a network: a big object comes faster as several ranges at once.
    remote: bool

    def url(self, key: str) -> str:
        """A URL a person can read and paste: ``s3://bucket/key``, ``file:///...``, ``https://...``."""

    def head(self, key: str) -> Head:
        """ETag and size of ``key``; raises `AssetNotFound` when it does not exist."""

    def part_size(self, key: str) -> int | None:
        """The size of the first part of a multipart object; None when it has no parts."""

    def download_to(self, key: str, start: Opener, first: int = 0, last: int | None = None,
                    etag: str | None = None) -> Head:
        """Stream ``key`` (its bytes ``first`` to ``last`` included, default all of them):
        call ``start(head)`` once (``head.size`` is the whole object's), feed its sink every
        chunk, return the head. With ``etag``, only while the object still has that ETag
        (else `IntegrityError`: it changed). A sink may raise `Enough` to stop reading."""


class Store(Reader, Protocol):
    """The operations the cache and publish need: a `Reader` that can also be written
    and listed. Implementations are thread-safe."""

    #: Folder under the cache dir (``<bucket>`` on AWS, ``_endpoint-HOST-PORT/<bucket>``
    #: on another S3 server, ``_dir-HASH`` for a folder).
    name: str
    #: Which server and bucket or folder this is (what publish learns is kept under it).
    identity: str
    #: The S3-compatible server's URL; None for AWS's own endpoint and for a folder.
    endpoint: str | None
    #: A conditional create is known to be atomic (True), known to be ignored (False),
    #: or not known yet (None).
    atomic_create: bool | None

    def put_if_absent(self, key: str, path: Path, md5: bytes, sha256: bytes,
                      metadata: Mapping[str, str] | None = None) -> Head:
        """Upload ``path`` (with these digests, for the store to check) to ``key`` only if
        ``key`` does not exist (else `PublishConflict`), where the store honours that;
        ``metadata`` (ASCII names and values) is kept with it, and `head` gives it back."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object, only if ``key`` does not exist (where honoured)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (publish's own claims only: versions are never deleted)."""

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix`` (raw, as the store reports them)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); raises ValueError when it is not one, its
    message starting with the URL (`shown`).

    The bucket must be one by S3's rules (`check_bucket`), which also keeps it from
    naming anything of the cache's own. Control characters and outer spaces are refused
    rather than silently dropped as ``urlparse`` would."""
    parsed = urlparse(url)
    clean = url == url.strip() and not any(ord(c) < 32 or ord(c) == 127 for c in url)
    if not clean or parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{shown(url)} is not an s3://bucket/key URL")
    try:
        check_bucket(parsed.netloc)
    except UnsafePathError as exc:
        raise ValueError(f"{shown(url)}: {exc}: fix the URL") from None
    return parsed.netloc, parsed.path.lstrip("/")


def get_headers(first: int, last: int | None, etag: str | None) -> dict[str, str]:
    """The headers of a GET of bytes ``first`` to ``last`` (None: to the end; none at all
    for the whole object) while the object's ETag is ``etag`` (None: any)."""
    headers = {}
    if first or last is not None:
        headers["Range"] = f"bytes={first}-{'' if last is None else last}"
    if etag:
        headers["If-Match"] = f'"{etag}"'
    return headers


def pump(reply: Reply, sink: Sink, url: str) -> bool:
    """Feed ``sink`` the body of ``reply`` (the object at ``url``) until it ends (True) or
    the sink raises `Enough` (False); a cut body raises `TransferError`. The sink's own
    errors (a full disk) pass through as they are. A `pod_tasks.bounds.Bounded` sink's
    deadline cuts the connection when it passes (its `~Bounded.late` error is raised),
    however slowly the body comes."""
    from botocore.exceptions import BotoCoreError

    chunks = reply.chunks(CHUNK)
    deadline = getattr(sink, "deadline", None)
    with watch(deadline, reply.cut) as watched:
        while True:
            try:
                chunk = next(chunks, b"")
            except (BotoCoreError, OSError, ValueError) as exc:
                if watched.fired:
                    raise sink.late() from None
                # urllib3's protocol errors are OSErrors; a cut connection is an incomplete body.
                raise TransferError(f"the download of {url} was cut short ({type(exc).__name__})") from None
            if not chunk:
                return not watched.fired  # a connection cut at the deadline is never reused
            try:
                sink(chunk)
            except Enough:
                return False


# --- S3 -----------------------------------------------------------------------------

_client_lock = threading.Lock()
_clients: dict[tuple[str | None, bool, str | None], object] = {}
#: id(client) -> (signs requests, the credentials it signs with: None when the chain found none)
_signing: dict[int, tuple[bool, object]] = {}

_CREDENTIALS_HINT = (
    "configure credentials with `aws configure`, AWS_PROFILE or AWS_ACCESS_KEY_ID/"
    "AWS_SECRET_ACCESS_KEY (and `endpoint:` or AWS_ENDPOINT_URL for an S3-compatible server)"
)
#: Response fields of a store's own checksum, strongest first.
_CHECKSUM_FIELDS = (("ChecksumSHA256", "sha256"), ("ChecksumSHA1", "sha1"), ("ChecksumCRC64NVME", "crc64nvme"),
                    ("ChecksumCRC32C", "crc32c"), ("ChecksumCRC32", "crc32"))
#: S3's limit for one PUT; bigger files go up in parts (`S3Store.put_if_absent`).
SINGLE_PUT_LIMIT = 5 * (1 << 30)
#: The part size of those uploads (more when 10,000 parts would not hold the file).
PART_SIZE = 64 << 20
_MAX_PARTS = 10_000
#: Pages of a listing after which it is taken for one that never ends (10 million keys).
MAX_PAGES = 10_000


def _s3_client(endpoint: str | None, signed: bool = True, region: str | None = None):
    """One boto3 client per process, endpoint, signing (and region, for a bucket found
    in another): thread-safe, standard retries, a connection pool large enough for
    ``doit -n 8``."""
    client = _clients.get((endpoint, signed, region))
    if client is None:
        with _client_lock:
            client = _clients.get((endpoint, signed, region))
            if client is None:
                import boto3
                from botocore import UNSIGNED
                from botocore.config import Config

                config = Config(
                    retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64,
                    **({} if signed else {"signature_version": UNSIGNED}),
                )
                session = boto3.session.Session()
                kwargs = {"endpoint_url": endpoint} if endpoint else {}
                if region is not None:
                    kwargs["region_name"] = region
                elif not signed and session.region_name is None:
                    kwargs["region_name"] = "us-east-1"  # an unsigned read needs no region of the user's
                client = _clients[(endpoint, signed, region)] = session.client("s3", config=config, **kwargs)
                _signing[id(client)] = (signed, session.get_credentials() if signed else None)
    return client


def _checksum(reply: dict) -> Checksum | None:
    for name, algorithm in _CHECKSUM_FIELDS:
        if reply.get(name):
            return Checksum(algorithm, str(reply[name]))
    return None


def _not_s3(url: str, answer: str) -> StoreError:
    return StoreError(
        f"{url}: the endpoint answered {answer}: it is not an S3 server "
        f"(check `endpoint:` in assets.yaml or AWS_ENDPOINT_URL, or a proxy in the way)"
    )


def _head_of(reply: dict, url: str) -> Head:
    """The `Head` a HEAD or GET reply describes; a reply that is not S3's raises."""
    etag = reply.get("ETag", "").strip('"') or None
    if etag is None and str(reply.get("ContentType", "")).startswith("text/html"):
        raise _not_s3(url, "with a web page, not an S3 object")
    opaque = reply.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse") or bool(reply.get("SSECustomerAlgorithm"))
    modified = reply.get("LastModified")
    whole = str(reply.get("ContentRange", "")).rpartition("/")[2]  # "bytes A-B/SIZE" for a range
    whole = whole if whole.isascii() else ""
    if not whole.isdigit() and reply.get("ContentLength") is None:
        raise StoreError(f"{url}: the store did not say the object's length (no Content-Length): "
                         f"a broken S3 server? check `endpoint:` / AWS_ENDPOINT_URL")
    size = int(whole) if whole.isdigit() else int(reply["ContentLength"])
    metadata = {str(name).lower(): str(value) for name, value in (reply.get("Metadata") or {}).items()}
    return Head(etag, size, _checksum(reply), opaque, modified.timestamp() if modified is not None else None, metadata)


class S3Store:
    """A bucket on AWS or any S3-compatible server, through the default boto3 credential
    chain; ``anonymous`` reads unsigned (public buckets). With no credentials at all,
    reads are tried unsigned before failing; writes are always signed. A server the
    user's own configuration does not trust (`pod_tasks.endpoints.signing_refusal`) gets
    no credentials at all: reads go unsigned, writes raise `UntrustedEndpoint`."""

    def __init__(self, bucket: str, endpoint: str | None = None, anonymous: bool = False) -> None:
        """``endpoint`` None: the one the user's configuration names, else AWS's own.
        Raises `StoreError` for an endpoint that names no server, `pod_tasks.errors.ManifestError`
        for a malformed trust list."""
        self.bucket = bucket
        self.endpoint = strip_userinfo(endpoint or configured_endpoint() or "") or None
        self.anonymous = anonymous
        try:
            self.name = endpoint_folder(self.endpoint) + bucket
        except ValueError as exc:
            raise StoreError(f"s3://{bucket}: the S3 endpoint {exc}") from None
        #: Why requests here go unsigned whatever the credentials (None: they may be signed).
        self.refusal = signing_refusal(self.endpoint)
        #: Which server and bucket this is, for what publish learns about it.
        self.identity = f"{self.endpoint or 'aws'} {bucket}"
        self.atomic_create = None  # learnt by publish, per server and bucket
        self.remote = True

    def __repr__(self) -> str:
        return f"S3Store({self.bucket!r}, endpoint={self.endpoint!r})"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _where(self) -> str:
        return f"at {self.endpoint}" if self.endpoint else "on AWS"

    def _untrusted(self, url: str, what: str) -> UntrustedEndpoint:
        """The error of a request that needed the credentials ``self.refusal`` kept back."""
        return UntrustedEndpoint(f"{url}: {what}: {self.refusal}")

    def _translate(self, exc: Exception, url: str, signed: bool) -> PodError:
        """Map a botocore exception to the `PodError` a user can act on."""
        from botocore import exceptions as bx

        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.NoRegionError)):
            return OfflineError(f"no AWS credentials to read {url}: {_CREDENTIALS_HINT}", no_credentials=True)
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            meta = exc.response.get("ResponseMetadata", {})
            status = meta.get("HTTPStatusCode")
            headers = meta.get("HTTPHeaders", {})
            if not signed and (status in (400, 401, 403) or code == "NoSuchBucket"):
                # refused, or a bucket the server will not show to strangers
                if self.refusal and not self.anonymous:
                    return self._untrusted(url, f"the store {self._where()} refused an unsigned read ({code or status})")
                if self.anonymous:
                    return OfflineError(
                        f"{url}: the store refused an unsigned read ({code or status}) {self._where()}: the bucket "
                        f"is not public; drop `anonymous:` (or POD_ANONYMOUS) and {_CREDENTIALS_HINT}",
                        no_credentials=True,
                    )
                return OfflineError(f"no AWS credentials to read {url} (an unsigned read was refused): "
                                    f"{_CREDENTIALS_HINT}", no_credentials=True)
            if code == "NoSuchBucket":
                return StoreError(
                    f"{url}: there is no bucket {self.bucket!r} {self._where()}: check the bucket name in "
                    f"assets.yaml (`store:`/`files:`) and the endpoint (`endpoint:`, AWS_ENDPOINT_URL)"
                )
            if code in ("404", "NoSuchKey", "NotFound") or status == 404:
                return AssetNotFound(f"{url} does not exist in the store")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return PublishConflict(f"{url} already exists: someone published it first; pick the next version")
            if code == "RequestTimeTooSkewed":
                return StoreError(
                    f"{url}: the store refused the request because this machine's clock is off by more than "
                    f"15 minutes: set the clock right (enable NTP) and try again"
                )
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
                return OfflineError(
                    f"{url}: the store {self._where()} does not accept these credentials ({code}): "
                    f"{'refresh them (e.g. `aws sso login`)' if 'Token' in code else 'check the key pair or AWS_PROFILE'}; "
                    f"{_CREDENTIALS_HINT}",
                    no_credentials=True,
                )
            if code in ("403", "AccessDenied", "AllAccessDisabled") or status == 403:
                return OfflineError(
                    f"access to {url} was denied ({code or 403}) {self._where()}: the credentials in use "
                    f"(AWS_PROFILE, AWS_ACCESS_KEY_ID) lack permission for this bucket or key: check the bucket "
                    f"policy or IAM (s3:GetObject, s3:ListBucket, s3:PutObject to publish)",
                    no_credentials=True,
                )
            if "amz" not in " ".join(headers).lower() and str(headers.get("content-type", "")).startswith("text/html"):
                return _not_s3(url, f"HTTP {status} with a web page")
            return StoreError(f"the store refused {url}: {code} {message}".strip())
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError, bx.ReadTimeoutError)):
            return OfflineError(f"cannot reach the store {self._where()} for {url}: check the network "
                                f"(or `endpoint:` / AWS_ENDPOINT_URL)")
        if isinstance(exc, bx.BotoCoreError):
            return StoreError(f"talking to the store for {url} failed: {exc}")
        raise exc

    def _call(self, key: str, fn: Callable[[object], dict], write: bool = False) -> dict:
        """``fn(client)`` with the right client: signed, or unsigned for an anonymous
        store, and for a read when the credential chain finds none (signing fails
        before any request is sent)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if write and self.refusal:
            raise self._untrusted(self.url(key), f"cannot write to the store {self._where()} without credentials")
        signed = (write or not self.anonymous) and not self.refusal
        try:
            return fn(_s3_client(self.endpoint, signed))
        except NoCredentialsError as exc:
            if write:
                raise self._translate(exc, self.url(key), signed) from None
            signed = False  # public buckets need none: try unsigned before failing
            try:
                return fn(_s3_client(self.endpoint, signed))
            except (BotoCoreError, ClientError) as inner:
                raise self._translate(inner, self.url(key), signed) from None
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, self.url(key), signed) from None

    def _ask(self, key: str, method: str, headers: dict[str, str] | None = None) -> Reply:
        """``method`` (GET, HEAD) of ``key`` on the process's fast path (`pod_tasks.wire`),
        through the client `_call` picks (signed or not)."""
        from botocore.exceptions import ClientError

        def ask(client) -> Reply:
            signed, credentials = _signing[id(client)]
            if signed and credentials is None:
                from botocore.exceptions import NoCredentialsError

                raise NoCredentialsError()  # as boto3 would, before sending anything
            regional = functools.partial(_s3_client, self.endpoint, signed)
            try:
                return wire_for(client, self.bucket, credentials, regional).request(method, key, headers)
            except ClientError as exc:
                if "If-Match" in (headers or {}) and exc.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
                    raise Changed(f"{self.url(key)} changed during the download") from None
                raise

        return self._call(key, ask)

    def head(self, key: str) -> Head:
        try:
            reply = self._ask(key, "HEAD").fields
        except AssetNotFound:
            # A HEAD's 404 has no body: ask once whether the bucket itself is missing.
            self._call(key, lambda c: c.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1))
            raise
        return _head_of(reply, self.url(key))

    def part_size(self, key: str) -> int | None:
        reply = self._call(key, lambda c: c.head_object(Bucket=self.bucket, Key=key, PartNumber=1))
        return int(reply["ContentLength"]) if reply.get("PartsCount") else None

    def download_to(self, key: str, start: Opener, first: int = 0, last: int | None = None,
                    etag: str | None = None) -> Head:
        headers = get_headers(first, last, etag)
        reply = self._ask(key, "GET", headers)
        complete = False
        try:
            head = _head_of(reply.fields, self.url(key))
            if etag and head.etag != etag:
                raise Changed(f"{self.url(key)} changed during the download")
            if "Range" in headers and "ContentRange" not in reply.fields:
                raise IntegrityError(f"the store sent all of {self.url(key)} when asked for a range")
            complete = pump(reply, start(head), self.url(key))
        finally:
            reply.close(reuse=complete)
        return head

    def put_if_absent(self, key: str, path: Path, md5: bytes, sha256: bytes,
                      metadata: Mapping[str, str] | None = None) -> Head:
        import base64

        size = path.stat().st_size
        if size > SINGLE_PUT_LIMIT:
            return self._put_parts(key, path, size, dict(metadata or {}))
        with open(path, "rb") as body:
            reply = self._call(
                key,
                lambda c: c.put_object(
                    Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*",
                    ContentMD5=base64.b64encode(md5).decode(), ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(sha256).decode(), Metadata=dict(metadata or {}),
                ),
                write=True,
            )
        return Head(reply.get("ETag", "").strip('"') or None, size, _checksum(reply), metadata=dict(metadata or {}))

    def _put_parts(self, key: str, path: Path, size: int, metadata: dict[str, str]) -> Head:
        """A multipart upload whose completion is conditional (``If-None-Match: *``),
        each part carrying its MD5 and sha256; aborted on any failure, so no part is
        ever left behind in the store."""
        import base64

        part_size = max(PART_SIZE, -(-size // _MAX_PARTS))
        upload = self._call(key, lambda c: c.create_multipart_upload(
            Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256", Metadata=metadata), write=True)["UploadId"]
        parts = []
        try:
            with open(path, "rb") as source:
                number = 0
                while data := source.read(part_size):
                    number += 1
                    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
                    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    reply = self._call(key, lambda c: c.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=data,
                        ContentMD5=md5, ChecksumSHA256=sha,
                    ), write=True)
                    parts.append({"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": sha})
            reply = self._call(key, lambda c: c.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, IfNoneMatch="*", MultipartUpload={"Parts": parts},
            ), write=True)
        except BaseException:
            with contextlib.suppress(PodError):
                self._call(key, lambda c: c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload),
                           write=True)
            raise
        return Head(reply.get("ETag", "").strip('"') or None, size, _checksum(reply), metadata=metadata)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object (publish's claims), conditional like every write here."""
        self._call(key, lambda c: c.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*"), write=True)

    def delete(self, key: str) -> None:
        self._call(key, lambda c: c.delete_object(Bucket=self.bucket, Key=key), write=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, a page at a time; a listing that does not end (a
        continuation token seen before, or more than `MAX_PAGES` pages) raises
        `StoreError` rather than loop."""
        shown = prefix + "*"  # what a message names: every key under the prefix, not a key
        pages = self._call(shown, lambda c: c.list_objects_v2(Bucket=self.bucket, Prefix=prefix))
        seen: set[bytes] = set()  # digests of the tokens: a server's tokens may be long
        while True:
            for item in pages.get("Contents", ()):
                yield item["Key"]
            token = pages.get("NextContinuationToken")
            if not pages.get("IsTruncated") or not token:
                return
            digest = hashlib.sha256(str(token).encode()).digest()
            if digest in seen or len(seen) + 1 >= MAX_PAGES:
                why = f"repeated a continuation token at page {len(seen) + 1}" if digest in seen \
                    else f"had more than {MAX_PAGES} pages"
                raise StoreError(
                    f"{self.url(shown)}: the store's listing {why}, so it was stopped: a broken or hostile S3 "
                    f"server; check `endpoint:` / AWS_ENDPOINT_URL"
                )
            seen.add(digest)
            pages = self._call(shown, lambda c: c.list_objects_v2(
                Bucket=self.bucket, Prefix=prefix, ContinuationToken=token))


# --- Directory ----------------------------------------------------------------------


class DirStore:
    """A folder on disk or a network share, append-only like a bucket.

    Uploads are written to a temporary name and hard-linked into place, which fails if
    the key exists: two publishers of one version make one winner and one conflict. The
    temporary files are in a hidden folder of their own, where the next upload removes
    those of a killed one (`pod_tasks.uploads`). An
    object's metadata is a sidecar file, ``.pod-meta/<key>.json``, put in place by the
    winner only; hidden folders are never listed, so a sidecar is never a version.
    """

    def __init__(self, root: Path, setting: str = "store") -> None:
        """``setting``: the assets.yaml key that names the folder (``store``, ``mirrors``),
        for the message when it is not there."""
        self.root = Path(root).absolute()
        self.setting = setting
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        # S3 bucket names cannot start with "_", so this never meets a bucket's folder.
        self.name = f"_dir-{digest}"
        self.identity = str(self.root)
        self.endpoint = None
        self.atomic_create = True  # a hard link never replaces an existing file
        self.remote = False

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
                f"cannot reach the {self.setting} folder {self.root}: it is not there: "
                f"mount it or fix `{self.setting}:` in assets.yaml"
            )
        return self.root / key

    def head(self, key: str) -> Head:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise AssetNotFound(f"{self.url(key)} does not exist in the store") from None
        return Head(None, st.st_size, modified=st.st_mtime, metadata=_read_sidecar(self._sidecar(key)))

    def _sidecar(self, key: str) -> Path:
        """The file that holds ``key``'s metadata (in a hidden folder: never listed)."""
        return self.root / _META / f"{key}.json"

    def part_size(self, key: str) -> int | None:
        return None  # files here are written whole

    def download_to(self, key: str, start: Opener, first: int = 0, last: int | None = None,
                    etag: str | None = None) -> Head:
        try:
            source = open(self._path(key), "rb")
        except FileNotFoundError:
            raise AssetNotFound(f"{self.url(key)} does not exist in the store") from None
        with source:
            head = Head(None, os.fstat(source.fileno()).st_size)
            source.seek(first)
            left = (head.size if last is None else last + 1) - first
            sink = start(head)
            while left > 0 and (chunk := source.read(min(CHUNK, left))):
                left -= len(chunk)
                try:
                    sink(chunk)
                except Enough:
                    break
        return head

    def put_if_absent(self, key: str, path: Path, md5: bytes = b"", sha256: bytes = b"",
                      metadata: Mapping[str, str] | None = None) -> Head:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        sidecar = self._sidecar(key)
        with upload(self.root) as temps:  # a killed upload's files are swept by the next one
            temp, temp_meta = temps.data, temps.meta
            with open(path, "rb") as source, open(temp, "xb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if metadata:
                sidecar.parent.mkdir(parents=True, exist_ok=True)
                temp_meta.write_text(json.dumps(dict(metadata), sort_keys=True), encoding="utf-8")
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
            if metadata:
                os.replace(temp_meta, sidecar)  # only the one whose link won gets here
        return Head(None, final.stat().st_size, metadata=dict(metadata or {}))

    def put_bytes(self, key: str, data: bytes) -> None:
        handle, name = tempfile.mkstemp(prefix=".pod-", suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:  # closed before it is copied (and unlinked, on Windows too)
                out.write(data)
            self.put_if_absent(key, temp)
        finally:
            temp.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

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


def _read_sidecar(path: Path) -> dict[str, str]:
    """The metadata in a sidecar; empty when there is none or it is not readable."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return {str(k).lower(): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def open_store(spec: str, base: Path, endpoint: str | None = None, anonymous: bool = False) -> tuple[Store, str]:
    """The store a ``store:`` value names, and the key prefix inside it.

    ``s3://bucket[/prefix]`` (on ``endpoint``, read unsigned when ``anonymous``),
    ``file:///abs/path``, or a directory path (relative to ``base``, the folder of
    assets.yaml). The prefix is empty or ends with ``/``.
    """
    if spec.startswith("s3://"):
        bucket, prefix = parse_s3_url(spec)
        prefix = prefix.strip("/")
        return S3Store(bucket, endpoint, anonymous), (prefix + "/" if prefix else "")
    if spec.startswith("file://"):
        return DirStore(path_of_file_url(spec)), ""
    return DirStore((base / Path(spec).expanduser())), ""


def path_of_file_url(url: str) -> Path:
    """The local path of a ``file:///...`` URL (``file:///C:/x`` on Windows)."""
    path = unquote(urlparse(url).path)
    if os.name == "nt" and path.startswith("/") and path[2:3] == ":":
        path = path[1:]
    return Path(path)
