"""Whether downloaded bytes are the ones wanted, and whom to blame when they are not.

- `check` gives the strongest check fetched bytes pass (`pod_tasks.digests.STRENGTH`):
  the sha256 pin decides alone; else the store's own checksum and an MD5-shaped ETag
  (multipart ones included, over a guessed or reported part size) must agree; else the
  length. It raises `IntegrityError`, or `PinMismatch` when the store's own ETag or
  checksum proves the bytes are the ones it holds (asking again cannot help).
- `mismatch` says what is wrong with bytes against a cache record and a pin.
- `blame` ends the line of a download that failed every attempt: the network (a
  `TransferError`), a declared size refused, the store's proven bytes against the pin,
  or unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .bounds import SizeRefused
from .digests import STRENGTH, Digester, is_md5_etag
from .errors import IntegrityError, TransferError
from .records import Record
from .store import Head

__all__ = ["PinMismatch", "etag_verdict", "checksum_verdict", "check", "mismatch", "blame"]


class PinMismatch(IntegrityError):
    """Bytes proven to be the store's (by its ETag or checksum) that differ from the sha256 pin."""


def etag_verdict(path: Path, etag: str, digester: Digester, part_size: Callable[[], int | None]) -> bool | None:
    """Whether the bytes at ``path`` (hashed in ``digester``) give the MD5 ``etag``:
    shown by their MD5, by a guessed part size, or else by the part size the store
    reports (``part_size()``). None when nothing can show it (no part size known)."""
    if digester.proves_etag(etag):
        return True
    if "-" not in etag:
        return False
    part = part_size()
    if part is None:
        return False if digester.parts else None
    return Digester.of_file(path, etag, part_size=part).proves_etag(etag)

def checksum_verdict(path: Path, head: Head, digester: Digester, part_size: Callable[[], int | None]) -> bool | None:
    """Whether the bytes give the store's own checksum (a composite one over a part
    size that could not be guessed is tried again with ``part_size()``); None when
    the store sent none this machine can compute."""
    verdict = digester.proves_checksum()
    if verdict is False and digester.composite:
        part = part_size()
        if part is not None:
            verdict = Digester.of_file(path, head.etag, part_size=part, checksum=head.checksum).proves_checksum()
    return verdict

def check(path: Path, head: Head, digester: Digester, pin: str | None,
          part_size: Callable[[], int | None]) -> str:
    """The strongest check the downloaded bytes pass (see `pod_tasks.digests.STRENGTH`).

    The pinned sha256 (``pin``) decides alone when there is one. Otherwise the store's own
    checksum and an MD5-shaped ETag must both agree where present, except that a
    sha256 or sha1 checksum that agrees outweighs an ETag that is not an MD5 after
    all; an opaque ETag proves nothing; with nothing else, the length decides.
    Raises `IntegrityError` (`PinMismatch` when the store proves it holds these
    bytes, so that asking again cannot help).
    """
    by_checksum = checksum_verdict(path, head, digester, part_size)
    by_etag = etag_verdict(path, head.etag, digester, part_size) if head.md5_etag else None
    strong = by_checksum is True and head.checksum is not None and head.checksum.algorithm in ("sha256", "sha1")
    if pin:
        sha = digester.sha256.hexdigest()
        if sha == pin:
            return "sha256"
        mismatch = PinMismatch if (by_checksum or by_etag) else IntegrityError
        raise mismatch(f"sha256 {sha} does not match the pin {pin} in assets.yaml")
    if by_checksum is False:
        raise IntegrityError(f"the bytes do not match the store's {head.checksum.algorithm} checksum")
    if by_etag is False and not strong:
        raise IntegrityError(f"the bytes do not match the store's ETag {head.etag}")
    passed = {f"checksum-{head.checksum.algorithm}"} if by_checksum else set()
    passed |= {"etag-md5"} if by_etag else set()
    return next((check for check in STRENGTH if check in passed), "size")


def mismatch(digester: Digester, sha: str | None, record: Record | None, pin: str | None) -> str | None:
    """What is wrong with hashed bytes against a record and a sha256 pin, or None."""
    if record is not None:
        if digester.size != record.size:
            return f"got {digester.size} bytes, the record says {record.size}"
        md5 = digester.md5.hexdigest()
        etag_is_md5 = is_md5_etag(record.etag) and "-" not in record.etag and record.verified in (None, "etag-md5")
        if md5 != record.md5 or (etag_is_md5 and record.etag != md5):
            return "the bytes do not match the record's MD5/ETag"
        if record.sha256 and sha != record.sha256:
            return "the bytes do not match the record's sha256"
    if pin and sha != pin:
        return f"sha256 {sha} does not match the pin {pin} in assets.yaml"
    return None


def blame(error: IntegrityError, attempts: int) -> tuple[type[IntegrityError], str]:
    """The error to raise for a download whose last attempt failed with ``error``, and
    the end of its line: who is at fault and what to do. Only bytes the store proved
    its own (by its ETag or checksum) that fail the pin blame the stored copy."""
    if isinstance(error, TransferError):
        return TransferError, (f"the network cut it short {attempts} time(s): check the connection "
                               f"(or a proxy in the way) and run it again")
    if isinstance(error, SizeRefused):
        return IntegrityError, ("its declared size alone refuses it: if the pin's `size:` is wrong, fix it in "
                                "assets.yaml (doit lock writes it), else the store holds another object: tell its owner")
    if isinstance(error, PinMismatch):
        return IntegrityError, ("the store's own ETag or checksum shows these are its bytes: if assets.yaml "
                                "pins the right sha256, the stored copy is damaged: tell the store's owner; "
                                "if the pin is wrong, fix it in assets.yaml")
    return IntegrityError, (f"the bytes came damaged {attempts} time(s), on the way or from the store (nothing "
                            f"shows which): run it again; if it persists, ask the store's owner to check the object "
                            f"(or fix the sha256 pin in assets.yaml, if it is wrong)")
