"""`pod_tasks.digests`: every proof a store's ETag or checksum allows, as tables."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

from pod_tasks.digests import Checksum, Digester, is_md5_etag

MIB = 1 << 20
DATA = b"x" * (5 * MIB) + b"y" * 100
PARTS = [DATA[:5 * MIB], DATA[5 * MIB:]]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def digest_of(data: bytes, *args, **kwargs) -> Digester:
    digester = Digester(*args, **kwargs)
    for start in range(0, len(data), 777_777):  # chunks that do not line up with any part
        digester.update(data[start:start + 777_777])
    return digester


@pytest.mark.parametrize("etag, md5_shaped", [
    (hashlib.md5(b"a").hexdigest(), True),
    (hashlib.md5(b"a").hexdigest() + "-12", True),
    (hashlib.md5(b"a").hexdigest().upper(), True),
    (hashlib.sha1(b"a").hexdigest(), False),        # rclone --etag-hash SHA1
    ("0" * 31, False),
    ("0" * 32 + "-x", False),
    ("", False),
    (None, False),
])
def test_is_md5_etag(etag, md5_shaped):
    assert is_md5_etag(etag) is md5_shaped


@pytest.mark.parametrize("etag, proves", [
    (None, False),                                          # a directory store: nothing to prove
    (hashlib.md5(b"abc").hexdigest(), True),
    (hashlib.md5(b"abd").hexdigest(), False),
    ("0" * 32 + "-5", False),                               # 3 bytes in 5 parts: no part size fits
    ("0" * 32 + "-2", False),                               # parts of 2 bytes fit, and differ
])
def test_digester_etags(etag, proves):
    digester = digest_of(b"abc", etag, 3)
    assert digester.proves_etag(etag) is proves


def test_digester_multipart_etag():
    etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in PARTS)).hexdigest() + "-2"
    digester = digest_of(DATA, etag, len(DATA))
    assert digester.proves_etag(etag)
    assert not digester.proves_etag(hashlib.md5(b"other").hexdigest() + "-2")


def _composite(factory, parts: list[bytes]) -> bytes:
    return factory(b"".join(factory(p) for p in parts))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("checksum, etag, proves", [
    # full-object checksums
    (Checksum("sha256", b64(_sha256(DATA))), None, True),
    (Checksum("sha256", b64(_sha256(b"other"))), None, False),
    (Checksum("sha1", b64(hashlib.sha1(DATA).digest())), None, True),
    (Checksum("crc32", b64(crc32(DATA))), None, True),
    (Checksum("crc32", b64(crc32(b"other"))), None, False),
    (Checksum("sha256", "not base64!"), None, False),
    # composite over two parts, marked -2 as AWS sends it
    (Checksum("sha256", b64(_composite(_sha256, PARTS)) + "-2"), None, True),
    (Checksum("crc32", b64(_composite(crc32, PARTS)) + "-2"), None, True),
    (Checksum("sha256", b64(_composite(_sha256, [b"a", b"b"])) + "-2"), None, False),
    # composite without the -N (moto): the multipart ETag gives the part count
    (Checksum("sha256", b64(_composite(_sha256, PARTS))), "0" * 32 + "-2", True),
    # an algorithm nobody here computes proves nothing either way
    (Checksum("md2", "AAAA"), None, None),
])
def test_digester_checksums(checksum, etag, proves):
    digester = digest_of(DATA, etag, len(DATA), checksum=checksum)
    assert digester.proves_checksum() is proves


def test_a_sha256_checksum_shares_the_sha256_pass():
    digester = digest_of(b"abc", checksum=Checksum("sha256", b64(_sha256(b"abc"))))
    assert digester.sha256.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    assert digester.proves_checksum() is True
    assert len(digester.steps()) == 2  # MD5 and sha256: no third pass for the checksum


def test_composite_part_size_given():
    odd = 5 * MIB - 12345
    parts = [DATA[:odd], DATA[odd:]]
    checksum = Checksum("sha256", b64(_composite(_sha256, parts)) + "-2")
    assert digest_of(DATA, None, len(DATA), checksum=checksum).proves_checksum() is False  # not guessable
    assert digest_of(DATA, None, len(DATA), part_size=odd, checksum=checksum).proves_checksum() is True
