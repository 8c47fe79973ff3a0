"""The fetch engine: many objects into the cache at once, with a bounded number of
requests in flight.

A `Batch` fetches the objects a command needs through `AssetCache.fetch` (so every
cache contract holds: one download per object across processes, verified bytes
renamed into place, the up-to-date rules) on ``jobs`` worker threads sharing the
store's one connection pool. ``doit fetch``, ``prefill``, ``pack`` and ``sync`` fetch
through it; one object alone (``resolve()``) is fetched in the calling thread, on the
same pool, where a Ctrl-C interrupts it directly.

Workers are daemon threads, and `Batch.cancel` stops each at its next chunk (its
temporary file goes, its lock is released): an interrupted run never waits on a stalled
socket (the temporary file of a worker left behind is removed for it), and nothing
incomplete ever reaches a final path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NoReturn

from .cache import AssetCache, Fetched, ObjectRef
from .errors import PodError

__all__ = ["Batch", "Done", "Cancelled", "interrupted", "INTERRUPTED"]


#: The exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def interrupted(line: str) -> NoReturn:
    """End a run stopped by Ctrl-C: ``line`` (what was done, what was not, how to go on)
    on stderr, and exit code 130, with no traceback."""
    sys.stderr.write(f"interrupted: {line}\n")
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED)


class Cancelled(PodError):
    """The run was interrupted: the download stopped, nothing partial was kept at a final path."""


@dataclass(frozen=True)
class Done:
    """One object of a batch, finished: what `AssetCache.fetch` did, or the error it raised."""

    ref: ObjectRef
    fetched: Fetched | None = None
    error: BaseException | None = None


#: Called in a worker thread with each finished object.
OnDone = Callable[[Done], None]
#: Called in a worker thread with the bytes just received of an object, and its size.
OnBytes = Callable[[int, int], None]


class Batch:
    """Fetch ``refs`` concurrently, ``jobs`` at a time, starting at once. As a context
    manager, an error or a Ctrl-C inside the block cancels it.

    `wait` hands one object's result to whoever needs it (in any order); iterating
    yields every `Done` in the order they finish. ``on_done`` and ``on_bytes`` report
    progress from the worker threads.
    """

    def __init__(
        self,
        cache: AssetCache,
        refs: Iterable[ObjectRef],
        jobs: int,
        on_done: OnDone | None = None,
        on_bytes: OnBytes | None = None,
    ) -> None:
        self.cache = cache
        self.refs = list(dict.fromkeys(refs))
        self._wanted = set(self.refs)
        self._pending = deque(self.refs)
        self._done: dict[ObjectRef, Done] = {}
        self._fetching: dict[int, ObjectRef] = {}  # by worker thread ident
        self._order: list[Done] = []
        self._changed = threading.Condition()
        self._cancelled = threading.Event()
        self._on_done = on_done
        self._on_bytes = on_bytes
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name="pod-fetch")
            for _ in range(max(1, min(jobs, len(self.refs))))
        ]
        for worker in self._workers:
            worker.start()

    def __contains__(self, ref: ObjectRef) -> bool:
        return ref in self._wanted

    def _progress(self) -> Callable[[int, int], None]:
        seen = 0

        def progress(done: int, total: int) -> None:
            nonlocal seen
            if self._cancelled.is_set():
                raise Cancelled("interrupted")
            if self._on_bytes is not None:
                self._on_bytes(done - seen, total)
            seen = done

        return progress

    def _work(self) -> None:
        while not self._cancelled.is_set():
            with self._changed:
                if not self._pending:
                    return
                ref = self._fetching[threading.get_ident()] = self._pending.popleft()
            try:
                done = Done(ref, fetched=self.cache.fetch(ref, progress=self._progress()))
            except Cancelled:
                return
            except BaseException as exc:  # handed to whoever waits for this object
                done = Done(ref, error=exc)
            finally:
                with self._changed:
                    del self._fetching[threading.get_ident()]
            with self._changed:
                self._done[ref] = done
                self._order.append(done)
                self._changed.notify_all()
            if self._on_done is not None:
                self._on_done(done)

    def wait(self, ref: ObjectRef) -> Fetched:
        """What fetching ``ref`` (one of this batch's) did; raises what it raised.

        Waits in short steps, so a Ctrl-C reaches the calling (main) thread at once."""
        with self._changed:
            while ref not in self._done:
                if self._cancelled.is_set():
                    raise Cancelled(f"{ref}: interrupted")
                self._changed.wait(0.2)
            done = self._done[ref]
        if done.error is not None:
            raise done.error
        assert done.fetched is not None
        return done.fetched

    def __iter__(self) -> Iterator[Done]:
        """Every `Done`, in the order they finish (waiting for each)."""
        index = 0
        while index < len(self.refs):
            with self._changed:
                while index >= len(self._order):
                    if self._cancelled.is_set():
                        raise Cancelled("interrupted")
                    self._changed.wait(0.2)
                done = self._order[index]
            index += 1
            yield done

    def finished(self) -> list[Done]:
        """The objects finished so far."""
        with self._changed:
            return list(self._order)

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        """Leaving the block early (an error, a Ctrl-C) cancels what is still running."""
        if kind is not None:
            self.cancel()

    def cancel(self, grace: float = 0.5) -> None:
        """Stop every worker at its next chunk and skip what has not started; wait up to
        ``grace`` seconds for them to clean up. A worker still fetching then (a silent
        socket, a busy machine) is left behind: it is a daemon thread, holding nothing
        another process needs once the process ends, and its temporary file is removed
        here (`AssetCache.abandon`)."""
        self._cancelled.set()
        with self._changed:
            self._changed.notify_all()
        deadline = time.monotonic() + grace
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._changed:
            behind = [self._fetching[w.ident] for w in self._workers if w.is_alive() and w.ident in self._fetching]
        for ref in behind:
            self.cache.abandon(ref)

