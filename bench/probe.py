"""The child side of the bench: ``python bench/probe.py COMMAND ARGS``.

Each command runs in its own fresh interpreter (cwd = a project folder, environment
from `Workspace.env`) and prints one JSON line. In-process timings start after the
imports, and both sides of a pair import boto3 before the clock starts; each comes
with the CPU seconds (user+sys, every thread) of the same span (``cpu``, or
``ours_cpu`` and ``base_cpu`` per call; null where ``resource`` is missing).

- ``doit ARGS``: run doit as ``python -m doit ARGS`` would, counting every re-hash of a
  cached file (`Digester.of_file`) into the JSON file named by ``BENCH_STATS``.
- ``resolve-loop NAME CALLS RUNS``: per-call seconds of warm ``resolve(NAME)`` and of
  ``os.stat`` on its path, alternating.
- ``pooch-loop NAME URL SHA256 FOLDER CALLS RUNS``: seconds of a warm ``pooch.fetch`` and
  per-call seconds of warm ``resolve(NAME)`` on the same bytes, alternating.
- ``fetch NAME``: seconds of a cold ``resolve(NAME)`` and the peak RSS.
- ``copy ENDPOINT BUCKET KEY DEST``: boto3 ``download_file`` of KEY (empty: every object of
  BUCKET, listed) into the folder DEST, one GET each, 8 at a time (a peer, timed whole).
- ``publish NAME FILE VERSION``: seconds of `pod_tasks.publish.publish`.
- ``upload FILE BUCKET KEY``: seconds of boto3 ``upload_file`` in one PUT (client included).
- ``heads BUCKET KEYS_FILE CONCURRENCY``: ``head_object`` every key, CONCURRENCY at a time.
- ``idle``: the peak RSS of an interpreter that imported pod_tasks and made a client.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # import `bench`, not the folder's modules

from bench.measure import cpu_seconds, peak_rss_bytes  # noqa: E402


def _emit(**values) -> None:
    print(json.dumps(values))


class _Span:
    """Wall-clock and CPU seconds of the ``with`` block: `seconds` and `cpu` (None
    where ``resource`` is missing)."""

    def __enter__(self) -> "_Span":
        self._cpu, self._start = cpu_seconds(children=False), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds, after = time.perf_counter() - self._start, cpu_seconds(children=False)
        self.cpu = None if after is None or self._cpu is None else after - self._cpu

    def per(self, calls: int) -> tuple[float, float | None]:
        return self.seconds / calls, None if self.cpu is None else self.cpu / calls


def _doit(args: list[str]) -> int:
    from doit.doit_cmd import DoitMain

    from pod_tasks import cache

    rehashes = 0
    of_file = cache.Digester.of_file.__func__

    def counting(cls, *a, **kw):
        nonlocal rehashes
        rehashes += 1
        return of_file(cls, *a, **kw)

    cache.Digester.of_file = classmethod(counting)
    try:
        return DoitMain().run(args)
    finally:
        Path(os.environ["BENCH_STATS"]).write_text(json.dumps({"rehashes": rehashes}))


def _client(endpoint: str | None = None):
    """A boto3 S3 client of ``endpoint`` (default: the environment's)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=64))


def _resolve_loop(name: str, calls: int, runs: int) -> None:
    from pod_tasks import resolve

    path = str(resolve(name))
    stat = os.stat
    ours, base = [], []
    for _ in range(runs):
        with _Span() as span:
            for _ in range(calls):
                resolve(name)
        ours.append(span.per(calls))
        with _Span() as span:
            for _ in range(calls):
                stat(path)
        base.append(span.per(calls))
    _emit(ours=[s for s, _ in ours], base=[s for s, _ in base],
          ours_cpu=[c for _, c in ours], base_cpu=[c for _, c in base])


def _pooch_loop(name: str, url: str, sha256: str, folder: str, calls: int, runs: int) -> None:
    import pooch

    from pod_tasks import resolve

    fname = "data.bin"
    registry = pooch.create(path=folder, base_url="", registry={fname: f"sha256:{sha256}"}, urls={fname: url})
    registry.fetch(fname)  # the cold download, not timed
    resolve(name)
    ours, base = [], []
    for _ in range(runs):
        with _Span() as span:
            registry.fetch(fname)
        base.append(span.seconds)
        with _Span() as span:
            for _ in range(calls):
                resolve(name)
        ours.append(span.per(calls)[0])
    _emit(ours=ours, base=base)


def _fetch(name: str) -> None:
    import boto3  # noqa: F401  (imported before the clock, as in `upload`)

    from pod_tasks import resolve

    with _Span() as span:
        resolve(name)
    _emit(seconds=span.seconds, cpu=span.cpu, peak_rss=peak_rss_bytes())


def _one_request():
    """A transfer config for one GET or PUT, the requests pod-tasks makes: moto copies
    the whole object for each ranged GET, which would make boto3's default 8 MB ranges
    many times slower here than on S3 (and flatter pod-tasks)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=1 << 50)


def _copy(endpoint: str, bucket: str, key: str, dest: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client, config = _client(endpoint), _one_request()
    if key:
        keys = [key]
    else:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]

    def get(name: str) -> None:
        path = Path(dest, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, name, str(path), Config=config)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, keys))
    _emit(objects=len(keys))


def _publish(name: str, file: str, version: str) -> None:
    import boto3  # noqa: F401

    from pod_tasks.publish import publish
    from pod_tasks.resolver import Project

    with _Span() as span:
        publish(Project.get(), name, file=file, version=version)
    _emit(seconds=span.seconds, cpu=span.cpu)


def _upload(file: str, bucket: str, key: str) -> None:
    import boto3  # noqa: F401

    with _Span() as span:
        _client().upload_file(file, bucket, key, Config=_one_request())
    _emit(seconds=span.seconds, cpu=span.cpu)


def _heads(bucket: str, keys_file: str, concurrency: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    keys = Path(keys_file).read_text(encoding="utf-8").split()
    client = _client()
    with ThreadPoolExecutor(concurrency) as pool:
        etags = list(pool.map(lambda key: client.head_object(Bucket=bucket, Key=key)["ETag"], keys))
    _emit(heads=len(etags))


def _idle() -> None:
    from pod_tasks import store
    from pod_tasks.endpoints import configured_endpoint

    store._s3_client(configured_endpoint())
    _emit(peak_rss=peak_rss_bytes())


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "doit":
        return _doit(args)
    commands = {
        "resolve-loop": lambda n, c, r: _resolve_loop(n, int(c), int(r)),
        "pooch-loop": lambda n, u, s, f, c, r: _pooch_loop(n, u, s, f, int(c), int(r)),
        "fetch": _fetch,
        "copy": _copy,
        "publish": _publish,
        "upload": _upload,
        "heads": lambda b, k, c: _heads(b, k, int(c)),
        "idle": _idle,
    }
    commands[command](*args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
