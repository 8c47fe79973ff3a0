"""Feeding one stream of chunks to several consumers at once, each on a thread of its own.

A big download is read from the network, written to disk, MD5-hashed and (when pinned)
sha256-hashed. Socket reads, file writes and hashlib's digests of large buffers all
release the GIL, so with each consumer on its own thread the download takes about as
long as its slowest stage instead of the sum of them. Queues are short, so memory
stays bounded (``depth`` chunks) whatever the size of the object.
"""

from __future__ import annotations


import queue
import threading
from typing import Callable

__all__ = ["Pipeline"]

Consumer = Callable[[bytes], None]


class Pipeline:
    """Call it with each chunk; every consumer gets every chunk, in order, on its thread.

    Use it as a context manager: leaving the block waits for every consumer to finish
    and, when the block itself raised nothing, raises the first error a consumer hit.
    After a consumer fails, chunks are still taken (and dropped) so the feeder never
    blocks, and the next call raises that error.
    """

    def __init__(self, consumers: list[Consumer], depth: int = 8) -> None:
        self._errors: list[BaseException] = []
        self._queues: list[queue.Queue] = [queue.Queue(depth) for _ in consumers]
        self._threads = [
            threading.Thread(target=self._run, args=(consumer, lane), daemon=True, name="pod-pipeline")
            for consumer, lane in zip(consumers, self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, consumer: Consumer, lane: queue.Queue) -> None:
        while (chunk := lane.get()) is not None:
            if self._errors:
                continue
            try:
                consumer(chunk)
            except BaseException as exc:  # handed to the feeding thread
                self._errors.append(exc)

    def __call__(self, chunk: bytes) -> None:
        if self._errors:
            raise self._errors[0]
        for lane in self._queues:
            lane.put(chunk)

    def close(self) -> None:
        """Wait for every consumer to take every chunk; raise the first error."""
        for lane in self._queues:
            lane.put(None)
        for thread in self._threads:
            thread.join()
        self._queues = []
        if self._errors:
            raise self._errors[0]

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if self._queues:
            try:
                self.close()
            except BaseException:
                if kind is None:
                    raise
