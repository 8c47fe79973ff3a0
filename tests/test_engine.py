"""The fetch engine (`pod_tasks.engine.Batch`), in process, over HTTP to each S3 server
through the fault proxy: what a cancelled batch leaves in the cache."""

from __future__ import annotations

import time

from pod_tasks.engine import Batch
from tests.conftest import cache_folder
from tests.faults import Rule, proxy  # noqa: F401 - proxy is a fixture
from tests.test_cache import BUCKET, bucket, make_cache, ref  # noqa: F401 - bucket is a fixture


def test_a_worker_stuck_past_cancel_leaves_no_temporary_file(s3, bucket, proxy, cache_dir):
    """Ctrl-C while a worker waits on a silent server: the worker is left behind (a daemon
    thread, gone with the process) but the bytes of its download go at once; another
    download's kept bytes beside them stay; the final path stays empty."""
    bucket.put_object(Bucket=BUCKET, Key="data/x.bin", Body=b"x" * 1000)
    rule = proxy.add(Rule("GET", r"/data/x\.bin", "delay", seconds=3))
    cache = make_cache(cache_dir)
    temp = cache_dir / ".pod" / "_tmp"
    batch = Batch(cache, [ref("data/x.bin")], jobs=1)
    deadline = time.monotonic() + 30
    while not (rule.hit.is_set() and list(temp.glob("*.partial"))):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.01)
    kept = [temp / "0123456789abcdef0123456789abcdef.partial", temp / "0123456789abcdef0123456789abcdef.partial.json"]
    for path in kept:  # what an interrupted download of another object kept to resume
        path.write_bytes(b"{}")
    batch.cancel(grace=0.2)
    assert any(worker.is_alive() for worker in batch._workers)  # still waiting on the server
    assert sorted(temp.iterdir()) == kept
    time.sleep(3.5)  # the server answers: the worker stops at the first chunk, writes nothing
    assert sorted(temp.iterdir()) == kept
    assert not (cache_dir / cache_folder(BUCKET) / "data" / "x.bin").exists()
