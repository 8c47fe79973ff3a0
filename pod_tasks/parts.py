"""One big object as several ranged GETs at once, written into one file and hashed in order.

A single stream from a fast server tops out near 450 MiB/s here (a Python thread per
socket), four in parallel near 1 GiB/s. `Parted` takes over a download once its first
GET has said the size: that GET reads the first part, ``streams`` threads read the
others (``Range`` and ``If-Match`` on the same ETag, so a changed object fails instead
of mixing versions), each writing at its own offset through its own file handle, while
a reader thread feeds ``consume`` every byte from the start of the file in order as
the written prefix grows: hashing stays off the network path, and memory stays at a
few chunks whatever the size.

`Parted.contiguous` is how many bytes from the start are written, whatever failed:
what a later download can resume from. Each ranged GET writes at most its range's bytes,
and none after the download's ``deadline`` (`pod_tasks.bounds.Bounded`): a server that
answers a range with more, or drip-feeds one, fails the download instead of writing
past it or holding it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from .bounds import Bounded
from .errors import TransferError
from .store import CHUNK, Enough, Head, Store

__all__ = ["Parted", "PART", "STREAMS"]

#: The size of each ranged GET.
PART = 32 << 20
#: Ranged GETs in flight for one object (four saturate loopback here; more only contend).
STREAMS = 4


class Parted:
    """Bytes ``start`` to the end of ``key`` into ``path`` (which already holds the bytes
    before ``start``). Use it as a context manager; `first_sink` takes the caller's own
    GET (from ``start``), which it ends with `Enough` after the first part. Leaving the
    block waits for every thread and raises the first error any of them met. Every range
    must be in by ``deadline`` (`time.monotonic`)."""

    def __init__(
        self,
        store: Store,
        key: str,
        head: Head,
        path: Path,
        start: int,
        consume: Callable[[bytes], None],
        on_bytes: Callable[[int], None],
        streams: int | None = None,
        part: int | None = None,
        deadline: float = float("inf"),
    ) -> None:
        part = part or PART
        streams = streams or STREAMS
        self.store, self.key, self.head, self.path = store, key, head, path
        self.deadline = deadline
        self.consume, self.on_bytes = consume, on_bytes
        first_end = min(head.size, start + part)
        self._ranges = [(start, first_end)] + [(a, min(a + part, head.size)) for a in range(first_end, head.size, part)]
        self._written = [0] * len(self._ranges)
        self._next = 1  # the next range a stream thread takes (0 is the caller's)
        self._errors: list[BaseException] = []
        self._changed = threading.Condition()
        self._first = open(path, "r+b")
        self._first.seek(start)
        self._threads = [threading.Thread(target=self._hash, daemon=True, name="pod-hash")] + [
            threading.Thread(target=self._stream, daemon=True, name="pod-range") for _ in range(streams)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def contiguous(self) -> int:
        """Bytes written from the start of the file without a gap."""
        with self._changed:
            return self._contiguous()

    def _contiguous(self) -> int:  # hold ``_changed``
        done = self._ranges[0][0]
        for (a, b), written in zip(self._ranges, self._written):
            done = a + written
            if written < b - a:
                break
        return done

    def _wrote(self, index: int, count: int) -> None:
        with self._changed:
            self._written[index] += count
            self._changed.notify_all()
        self.on_bytes(count)

    def first_sink(self, chunk: bytes) -> None:
        """The caller's GET: the first part, then `Enough`."""
        if self._errors:
            raise self._errors[0]
        a, b = self._ranges[0]
        wanted = chunk[: b - a - self._written[0]]
        self._first.write(wanted)
        self._first.flush()  # the reader thread reads it back through another handle
        self._wrote(0, len(wanted))
        if self._written[0] == b - a:
            raise Enough

    def _stream(self) -> None:
        try:
            with open(self.path, "r+b") as out:
                while not self._errors:
                    with self._changed:
                        if self._next >= len(self._ranges):
                            return
                        index = self._next
                        self._next += 1
                    a, b = self._ranges[index]
                    out.seek(a)

                    def sink(chunk: bytes, index: int = index, out=out) -> None:
                        if self._errors:
                            raise Enough
                        out.write(chunk)
                        out.flush()  # the reader thread reads it back through another handle
                        self._wrote(index, len(chunk))

                    bounded = Bounded(sink, b - a, self.deadline, self.store.url(self.key))
                    self.store.download_to(self.key, lambda head: bounded, first=a, last=b - 1, etag=self.head.etag)
                    if self._written[index] != b - a and not self._errors:
                        raise TransferError(f"range {a}-{b - 1} of {self.store.url(self.key)} came {self._written[index]} bytes long")
        except BaseException as exc:  # handed to the caller at the end of the block
            self._fail(exc)

    def _hash(self) -> None:
        try:
            with open(self.path, "rb") as source:
                position = 0
                while position < self.head.size:
                    with self._changed:
                        while not self._errors and self._contiguous() <= position:
                            self._changed.wait()
                        if self._errors:
                            return
                        ready = self._contiguous()
                    while position < ready:
                        chunk = source.read(min(CHUNK, ready - position))
                        self.consume(chunk)
                        position += len(chunk)
        except BaseException as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        with self._changed:
            self._errors.append(exc)
            self._changed.notify_all()

    def __enter__(self) -> "Parted":
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if self._written[0] < self._ranges[0][1] - self._ranges[0][0] and kind is None:
            self._fail(TransferError(f"the first part of {self.store.url(self.key)} came short"))
        if kind is not None:
            self._fail(exc)
        self._first.flush()
        for thread in self._threads:
            thread.join()
        self._first.close()
        if self._errors and kind is None:
            raise self._errors[0]
