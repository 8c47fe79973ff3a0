"""Pipeline: every consumer sees every chunk in order, errors reach the feeder, the
feeder never hangs."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from pod_tasks import pipeline
from pod_tasks.pipeline import Pipeline

CHUNKS = [os.urandom(n) for n in (1, 4096, 70_000, 3, 1 << 20)] * 5


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_every_consumer_gets_every_chunk_in_order(depth):
    md5, sha, seen = hashlib.md5(), hashlib.sha256(), []
    with Pipeline([md5.update, sha.update, seen.append], depth=depth) as feed:
        for chunk in CHUNKS:
            feed(chunk)
    whole = b"".join(CHUNKS)
    assert md5.digest() == hashlib.md5(whole).digest()
    assert sha.digest() == hashlib.sha256(whole).digest()
    assert seen == CHUNKS


def test_a_consumer_error_reaches_the_feeder_and_the_others_finish():
    seen = []

    def broken(chunk: bytes) -> None:
        if len(seen) >= 3:
            raise OSError(28, "No space left on device")

    feed = Pipeline([seen.append, broken], depth=1)
    with pytest.raises(OSError, match="No space left"):
        with feed:
            for chunk in CHUNKS:
                feed(chunk)
    assert all(t.name != "pod-pipeline" for t in threading.enumerate())


def test_an_error_of_the_feeder_wins_and_stops_the_threads():
    def broken(chunk: bytes) -> None:
        raise ValueError("consumer")

    with pytest.raises(KeyError):
        with Pipeline([broken]) as feed:
            feed(b"x")
            raise KeyError("feeder")
    assert all(t.name != "pod-pipeline" for t in threading.enumerate())


