"""What a server can make one download cost: bytes written, and time.

A store, a mirror and a pack are input from strangers: none of them decides how much
is written or how long a fetch waits.

- `Limits` (settings ``POD_MAX_SIZE``, ``POD_MIN_RATE``). `Limits.expected` is what a
  download may write: the pin's ``size``, else the size the server declared, and never
  more than ``max_size``; a declared size other than the pin's, or over the cap, is
  refused before a byte is read. `Limits.deadline`: a download of N bytes has
  ``GRACE + N / min_rate`` seconds, counted from the server's answer.
- `Bounded`: a sink that takes at most its limit of bytes and no chunk after its
  deadline. `pod_tasks.store.pump` also cuts the connection when the deadline passes
  (`watch`), so a server that drip-feeds or stalls is given up on time: the cache then
  tries the next source.
- `watch`: one watchdog thread for the process (a heap of deadlines), so that a
  download costs no thread of its own.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .errors import IntegrityError, TransferError

__all__ = ["Limits", "Bounded", "SizeRefused", "watch", "Watched", "GRACE", "DEFAULT_MAX_SIZE", "DEFAULT_MIN_RATE"]

#: Seconds every download is given on top of its size's worth at the minimum rate.
GRACE = 5.0
#: The most one download may write when nothing else bounds it (``POD_MAX_SIZE``).
DEFAULT_MAX_SIZE = 1 << 40
#: Bytes per second under which a download is given up (``POD_MIN_RATE``).
DEFAULT_MIN_RATE = 64 << 10


class SizeRefused(IntegrityError):
    """The size a server declares is refused before any byte is read: other than the
    pin's, or over ``POD_MAX_SIZE`` (asking it again cannot help)."""


@dataclass(frozen=True)
class Limits:
    """The bounds of every download of a run."""

    max_size: int = DEFAULT_MAX_SIZE
    min_rate: float = DEFAULT_MIN_RATE

    def expected(self, url: str, declared: int, pinned: int | None) -> int:
        """The bytes a download of ``url`` may write, given the size its server
        ``declared`` and the pin's size (None: not pinned). Raises `SizeRefused` when
        they differ or the size is over ``max_size``."""
        if pinned is not None and declared != pinned:
            raise SizeRefused(f"{url} is {declared} bytes, the pin in assets.yaml says {pinned}")
        if declared > self.max_size:
            raise SizeRefused(
                f"{url} is {declared} bytes, more than POD_MAX_SIZE ({self.max_size}): raise POD_MAX_SIZE "
                f"if the object is that big"
            )
        return declared

    def deadline(self, size: int) -> float:
        """When (`time.monotonic`) a download of ``size`` bytes starting now must be done."""
        return time.monotonic() + GRACE + size / self.min_rate


class Bounded:
    """``sink``, taking at most ``limit`` bytes in all and nothing after ``deadline``
    (`time.monotonic`); `pod_tasks.store.pump` reads ``deadline`` to cut a stalled
    connection. ``url`` names the object in messages."""

    def __init__(self, sink: Callable[[bytes], None], limit: int, deadline: float, url: str) -> None:
        self.sink, self.limit, self.deadline, self.url = sink, limit, deadline, url
        self.taken = 0
        self._started = time.monotonic()

    def __call__(self, chunk: bytes) -> None:
        if time.monotonic() >= self.deadline:
            raise self.late()
        if self.taken + len(chunk) > self.limit:
            raise IntegrityError(f"{self.url} sent more than the {self.limit} bytes expected")
        self.taken += len(chunk)
        self.sink(chunk)

    def late(self) -> TransferError:
        """The error of this download past its deadline."""
        return TransferError(
            f"the download of {self.url} was given up after {time.monotonic() - self._started:.0f} s "
            f"({self.taken} of {self.limit} bytes): slower than POD_MIN_RATE; lower it for a slow link"
        )


class Watched:
    """A deadline being watched: ``fired`` once its callback ran."""

    fired = False


class _Watchdog:
    """Calls each callback at its time, on one thread; cancelling is synchronous (a
    callback runs under the lock, so after `cancel` it has run or never will)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None], Watched]] = []
        self._live: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, when: float, callback: Callable[[], None]) -> tuple[int, Watched]:
        watched = Watched()
        with self._cond:
            token = next(self._tokens)
            heapq.heappush(self._heap, (when, token, callback, watched))
            self._live.add(token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="pod-watchdog")
                self._thread.start()
            self._cond.notify()
        return token, watched

    def cancel(self, token: int) -> None:
        with self._cond:
            self._live.discard(token)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                when, token, callback, watched = self._heap[0]
                if when > time.monotonic():
                    self._cond.wait(when - time.monotonic())
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                watched.fired = True
                with contextlib.suppress(Exception):  # a callback's failure must not stop the watchdog
                    callback()


_watchdog = _Watchdog()


@contextlib.contextmanager
def watch(deadline: float | None, cut: Callable[[], None]) -> Iterator[Watched]:
    """Within the block, ``cut()`` is called (once, on the watchdog's thread) if
    ``deadline`` (`time.monotonic`; None: never) passes; the `Watched` says whether it
    was. ``cut`` must be quick: it runs under the watchdog's lock."""
    if deadline is None:
        yield Watched()
        return
    token, watched = _watchdog.add(deadline, cut)
    try:
        yield watched
    finally:
        _watchdog.cancel(token)
