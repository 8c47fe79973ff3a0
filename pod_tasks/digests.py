"""Hashing a stream once for every check a store may offer. Pure computation, no I/O
beyond reading a file in `Digester.of_file`.

A store describes an object by its ETag (the MD5 of the bytes, the MD5 of the parts'
MD5s with ``-N`` for a multipart upload, or an opaque value: SSE-KMS/SSE-C objects on
AWS, ``rclone serve s3 --etag-hash SHA1``) and, when it keeps one, its own checksum
(``x-amz-checksum-sha256``, ``-sha1``, ``-crc32``, ``-crc32c``, ``-crc64nvme``), of
the whole object or composite (the checksum of the parts' checksums). `Digester`
computes, in one pass, everything needed to prove the bytes against any of these.

Contract: ``proves_*`` answers True only when hashes show it, never from the length
alone; the strength order of checks is `STRENGTH` (the first one available decides).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

__all__ = ["Checksum", "Digester", "STRENGTH", "CHECKSUM_ALGORITHMS", "is_md5_etag"]

_MIB = 1 << 20
#: Part sizes that common S3 clients use, tried first when guessing a multipart layout.
_PART_SIZES = (5 * _MIB, 8 * _MIB, 15 * _MIB, 16 * _MIB, 32 * _MIB, 64 * _MIB, 100 * _MIB, 128 * _MIB)
#: The checks a cached file can have had, strongest first (recorded as ``verified``).
STRENGTH = ("sha256", "checksum-sha256", "checksum-sha1", "etag-md5", "checksum-crc64nvme",
            "checksum-crc32c", "checksum-crc32", "size")


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A CRC with hashlib's interface: ``digest()`` is the big-endian value, as S3 encodes it."""

    def __init__(self, step: Callable[[bytes, int], int], width: int) -> None:
        self._step, self._width, self._value = step, width, 0

    def update(self, data: bytes) -> None:
        self._value = self._step(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def _crt(name: str) -> Callable[[bytes, int], int] | None:
    try:
        from awscrt import checksums  # optional: installed with boto3[crt]
    except ImportError:
        return None
    return getattr(checksums, name, None)


def _factories() -> dict[str, Callable[[], _Hash]]:
    found: dict[str, Callable[[], _Hash]] = {
        "sha256": hashlib.sha256, "sha1": hashlib.sha1, "crc32": lambda: _Crc(zlib.crc32, 4),
    }
    for name, width in (("crc32c", 4), ("crc64nvme", 8)):
        step = _crt(name)
        if step is not None:
            found[name] = lambda step=step, width=width: _Crc(step, width)
    return found


#: Store checksum algorithms this machine can verify (crc32c/crc64nvme need awscrt).
CHECKSUM_ALGORITHMS: dict[str, Callable[[], _Hash]] = _factories()


def is_md5_etag(etag: str | None) -> bool:
    """``etag`` has the shape of an MD5 ETag (32 hex digits, optionally ``-N``)."""
    if not etag:
        return False
    body, _, parts = etag.partition("-")
    return len(body) == 32 and all(c in "0123456789abcdefABCDEF" for c in body) and (not parts or parts.isdigit())


@dataclass(frozen=True)
class Checksum:
    """A store's own checksum of an object: ``algorithm`` (``sha256``, ``crc32``...) and
    the base64 ``value`` as sent, with ``-N`` when it is composite over N parts."""

    algorithm: str
    value: str

    @property
    def parts(self) -> int:
        """N for a composite checksum marked ``-N``; 0 otherwise."""
        tail = self.value.rpartition("-")[2]
        return int(tail) if "-" in self.value and tail.isdigit() else 0

    @property
    def digest(self) -> bytes | None:
        try:
            return base64.b64decode(self.value.partition("-")[0], validate=True)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


def _multipart_sizes(size: int, parts: int) -> list[int]:
    """Part sizes that split ``size`` bytes into exactly ``parts`` parts, most common first."""
    guess = -(-size // parts)
    candidates = list(_PART_SIZES) + [-(-guess // _MIB) * _MIB, guess]
    seen: list[int] = []
    for part in candidates:
        if part > 0 and -(-size // part) == parts and part not in seen:
            seen.append(part)
    return seen


class _Parts:
    """The digest of each ``part_size`` slice, then the digest of those digests: an
    S3 multipart ETag (MD5) or a composite checksum (any algorithm)."""

    def __init__(self, part_size: int, factory: Callable[[], _Hash]) -> None:
        self.part_size = part_size
        self.factory = factory
        self.digests: list[bytes] = []
        self.current = factory()
        self.filled = 0

    def update(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            take = min(len(view), self.part_size - self.filled)
            self.current.update(view[:take])
            self.filled += take
            view = view[take:]
            if self.filled == self.part_size:
                self.digests.append(self.current.digest())
                self.current, self.filled = self.factory(), 0

    def combined(self) -> tuple[bytes, int]:
        """The digest of the parts' digests, and how many parts there were."""
        digests = self.digests + ([self.current.digest()] if self.filled else [])
        outer = self.factory()
        outer.update(b"".join(digests))
        return outer.digest(), len(digests)

    def etag(self) -> str:
        digest, count = self.combined()
        return f"{digest.hex()}-{count}"


class Digester:
    """Hashes a stream in one pass: MD5 always; sha256 when asked; the store's checksum
    algorithm; and the multipart candidates (``part_size`` when known, else guessed)
    that a ``-N`` ETag or a composite checksum may need."""

    def __init__(
        self, etag: str | None = None, size: int = 0, sha256: bool = False, part_size: int | None = None,
        checksum: Checksum | None = None,
    ) -> None:
        self.size = 0
        self.md5 = hashlib.md5()
        want_sha = sha256 or (checksum is not None and checksum.algorithm == "sha256")
        self.sha256 = hashlib.sha256() if want_sha else None
        self.checksum = checksum if checksum is not None and checksum.algorithm in CHECKSUM_ALGORITHMS else None
        self._whole: _Hash | None = None
        if self.checksum is not None:
            self._whole = self.sha256 if self.checksum.algorithm == "sha256" else CHECKSUM_ALGORITHMS[self.checksum.algorithm]()
        etag_parts = int(etag.rsplit("-", 1)[1]) if is_md5_etag(etag) and "-" in etag else 0
        parts = etag_parts or (self.checksum.parts if self.checksum else 0)
        sizes = ([part_size] if part_size else _multipart_sizes(size, parts)) if parts else []
        self.parts = [_Parts(p, hashlib.md5) for p in sizes] if etag_parts else []
        self.composite = [_Parts(p, CHECKSUM_ALGORITHMS[self.checksum.algorithm]) for p in sizes] \
            if self.checksum is not None else []
        self._steps = self.steps()

    def update(self, chunk: bytes) -> None:
        for step in self._steps:
            step(chunk)

    def steps(self) -> list[Callable[[bytes], None]]:
        """`update` as independent steps, each needing only its own chunks in order, so
        that a `Pipeline` can run them on threads of their own."""

        def md5(chunk: bytes) -> None:
            self.size += len(chunk)
            self.md5.update(chunk)

        steps: list[Callable[[bytes], None]] = [md5]
        if self.sha256 is not None:
            steps.append(self.sha256.update)
        if self._whole is not None and self._whole is not self.sha256:
            steps.append(self._whole.update)
        return steps + [part.update for part in (*self.parts, *self.composite)]

    # --- ETags ------------------------------------------------------------------------

    def proves_etag(self, etag: str | None) -> bool:
        """The bytes hashed give ``etag``, shown by their hashes (not by length alone)."""
        if not etag:
            return False
        if "-" not in etag:
            return self.md5.hexdigest() == etag
        return any(p.etag() == etag for p in self.parts)

    # --- store checksums --------------------------------------------------------------

    def proves_checksum(self) -> bool | None:
        """The bytes give the store checksum this digester was made for: True, False, or
        None when there is none it can compute (unknown algorithm, no part layout)."""
        if self.checksum is None or self._whole is None:
            return None
        want = self.checksum.digest
        if want is None:
            return False
        if not self.checksum.parts and self._whole.digest() == want:
            return True  # full-object (some servers, moto, drop the -N of a composite)
        count = self.checksum.parts
        return any(p.combined() == (want, count or p.combined()[1]) for p in self.composite)

    @classmethod
    def of_file(
        cls, path: Path, etag: str | None = None, sha256: bool = False, part_size: int | None = None,
        checksum: Checksum | None = None,
    ) -> "Digester":
        digester = cls(etag, path.stat().st_size, sha256, part_size, checksum)
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                digester.update(chunk)
        return digester
