"""Remembering that a store could not be reached, so that a machine without access to it
pays for that once per store every `QUIET` seconds, not once per file per call.

A store "could not be reached" when a check or download got no answer from it: a
connection refused, reset or timed out, a store folder that is not mounted. A refusal
(403, no credentials) or a 404 is an answer, and counts as reaching it.

- After such a failure, the cache serves its files of that store unchecked, making no
  request, until `QUIET` seconds have passed (`quiet_until`); then one check is tried
  again. Files that are not cached are still asked for (there is nothing else to serve).
- The failure is kept in a small note per store, ``<cache_dir>/.pod/_unreachable/HASH.json``
  (written atomically, through the writer the cache hands over), so the next process
  knows it too; the first answer from the store removes it.
- In one process, checks of a store wait for the first one until the store has answered
  (or failed): N threads checking N files of an unreachable store make one attempt.
- The warning is given once per store per process (`Outages.first_warning`).

`QUIET` is fixed, not the cache's ``timeout``: the timeout says how old a checked file
may be while the store answers; an unreachable store cannot make a file any fresher, so
trying it sooner only costs time, and a ``timeout: 0`` project would never remember.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["QUIET", "Outage", "Outages", "quiet_until"]

#: Seconds a store that could not be reached is left alone.
QUIET = 600.0


def quiet_until(failed_at: float, now: float) -> float | None:
    """Until when a store that could not be reached at ``failed_at`` is left alone, seen
    at ``now``; None when it may be tried: the quiet period is over, or ``failed_at`` is
    later than ``now`` (the clock was set back: the note cannot be trusted)."""
    until = failed_at + QUIET
    return until if failed_at <= now < until else None


@dataclass(frozen=True)
class Outage:
    """A failure to reach a store: when, and the one-line error it gave."""

    failed_at: float
    reason: str

    @property
    def until(self) -> float:
        """When the store is tried again."""
        return self.failed_at + QUIET


class Outages:
    """What one process knows of the stores of one cache dir that could not be reached,
    keyed by a store's ``identity``. Thread-safe.

    ``folder`` holds the notes; ``write(path, data)`` replaces a note atomically.
    """

    def __init__(self, folder: Path, write: Callable[[Path, bytes], None]) -> None:
        self.folder = folder
        self._write = write
        self._lock = threading.Lock()
        #: The last failure known per store (None: none), read from its note on first need.
        self._known: dict[str, Outage | None] = {}
        #: Stores that answered in this process since their last failure: no waiting, no note.
        self._answered: set[str] = set()
        self._gates: dict[str, threading.Lock] = {}
        self._warned: set[str] = set()

    def _note(self, store: str) -> Path:
        return self.folder / (hashlib.sha256(store.encode()).hexdigest()[:24] + ".json")

    def _last(self, store: str) -> Outage | None:
        if store not in self._known:
            try:
                data = json.loads(self._note(store).read_bytes())
                found = Outage(float(data["failed"]), str(data["reason"])) if data.get("store") == store else None
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                found = None
            with self._lock:
                self._known.setdefault(store, found)
        return self._known[store]

    def quiet(self, store: str) -> Outage | None:
        """The failure for which ``store`` is not to be tried now, or None."""
        last = self._last(store)
        return last if last is not None and quiet_until(last.failed_at, time.time()) is not None else None

    @contextlib.contextmanager
    def contact(self, store: str) -> Iterator[Outage | None]:
        """Around one check with ``store``: yields the failure for which it is not to be
        tried now (or None: try it, then call `failed` or `reached`). Until the store has
        answered in this process, checks of it run one at a time, so that the first
        failure spares the others; once it answers, those waiting go on together."""
        if store not in self._answered:
            with self._lock:
                gate = self._gates.setdefault(store, threading.Lock())
            with gate:
                if store not in self._answered:  # (else it answered while we waited: go on at once)
                    yield self.quiet(store)
                    return
        yield None

    def failed(self, store: str, reason: str) -> Outage:
        """``store`` could not be reached (``reason``: the error's line): remember it, in
        this process and in its note. Returns the failure."""
        outage = Outage(time.time(), reason)
        with self._lock:
            self._known[store] = outage
            self._answered.discard(store)
        data = {"store": store, "failed": outage.failed_at, "reason": reason}
        self._write(self._note(store), json.dumps(data, sort_keys=True).encode())
        return outage

    def reached(self, store: str) -> None:
        """``store`` answered: forget any failure (its note goes, once per process)."""
        if store in self._answered:
            return
        self._note(store).unlink(missing_ok=True)
        with self._lock:
            self._known[store] = None
            self._answered.add(store)

    def first_warning(self, store: str) -> bool:
        """True the first time it is asked for ``store`` in this process, then False."""
        with self._lock:
            first = store not in self._warned
            self._warned.add(store)
        return first

    def forget(self) -> None:
        """Forget every failure, here and on disk: every store is tried at its next check."""
        with self._lock:
            self._known.clear()
            self._answered.clear()
        if self.folder.is_dir():
            for note in self.folder.glob("*.json"):
                note.unlink(missing_ok=True)
