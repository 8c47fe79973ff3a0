"""The benchmark rows: each case makes its own data on the workspace's server,
measures ours and its baseline (or every peer, `bench.peers`) in pairs, ours first,
`Sizes.runs` times, and returns its figures.

Timings of commands (doit, the peers, the HEAD baseline) are wall clock of the whole
child process, start-up included on both sides; in-process timings (resolve, publish)
come from `bench/probe.py` and start after the imports on both sides. ``doit fetch``
runs as a user types it (no ``-n``/``-P``).

Request counts come from runs of ours through the server's counting endpoint: one
extra, untimed run before the timed ones (it also warms the server up), whose timed
runs reach the server directly; a row that makes no request (no-op fetch, warm
resolve) has all its runs go through the counting endpoint. The cache knows objects
by endpoint, so a counted run never shares a cache with a direct one. The counted run
is also the one traced by ``strace -f -c`` (`bench.syscalls`), where strace may trace;
a row without one gets an extra untimed traced run.

CPU (user+sys) is measured on every sample of both sides (`bench.measure.Sample`) and
shown per object; the cold fetch rows (`bench.many`, with the no-op rows and their
scaling) also check the issue's 1 ms of CPU per object.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from bench import syscalls
from bench.measure import Figure, Sample, Target
from bench.peers import Copy, Peer, available
from bench.workspace import PROBE, ChildFailed, Sizes, Workspace
from tests.servers import CREDENTIALS

__all__ = ["CASES", "FASTEST", "cold_cache", "counted_fetch", "requests_note", "peer_times"]

_MIB = 1 << 20
BIG_BUCKET = "bench-big"
FASTEST = "the fastest peer (see notes)"
#: A first resolve() in a new process (prints the path), and the bare boto3 script it
#: is measured against (BUCKET KEY FILE): the same bytes into a file.
_RESOLVE_ONE = "import sys; from pod_tasks import resolve; print(resolve(sys.argv[1]))"
_GET_OBJECT = (
    "import sys, boto3; from pathlib import Path; "
    "Path(sys.argv[3]).write_bytes(boto3.client('s3').get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read())"
)


def _mb(n: int) -> str:
    return f"{n / 1024:g} GB" if n >= 1024 else f"{n} MB"


def _big_project(ws: Workspace, name: str, pins: dict[str, tuple[str, int]]) -> tuple[Path, dict[str, tuple[Path, str]]]:
    """A project on ``bench-big`` pinning ``asset: (file, megabytes)`` at 1.0.0 with sha256.

    Returns the folder and ``asset: (local source file, sha256)``. The store's key of
    ``a/b.bin`` is ``a/b.1.0.0.bin``."""
    if BIG_BUCKET not in {b["Name"] for b in ws.client.list_buckets()["Buckets"]}:
        ws.bucket(BIG_BUCKET)
    lines = [f"store: s3://{BIG_BUCKET}", "assets:"]
    made = {}
    for asset, (filename, megabytes) in pins.items():
        path, sha = ws.big_file(filename, megabytes)
        stem, ext = asset.rsplit(".", 1)
        ws.put_file(BIG_BUCKET, f"{stem}.1.0.0.{ext}", path)
        lines.append(f"  {asset}: {{version: 1.0.0, sha256: {sha}}}")
        made[asset] = (path, sha)
    return ws.project(name, "\n".join(lines) + "\n"), made


def cold_cache(ws: Workspace, folder: Path, name: str) -> Path:
    """An empty cache ``cache-NAME``, and ``folder`` without doit's dependency file."""
    for db in folder.glob(".doit.db*"):
        db.unlink()
    return ws.fresh_dir(f"cache-{name}")


def counted_fetch(ws: Workspace, folder: Path, cache: Path, trace: Path | None = None) -> tuple[Sample, Counter, dict]:
    """``doit fetch`` through the counting endpoint (under strace writing to ``trace``,
    if given): its sample, the requests it made by method, and the probe's stats."""
    ws.server.clear()
    sample, stats = ws.doit(["fetch"], folder, ws.env(cache, counted=True), trace=trace)
    return sample, ws.server.counts(), stats


def requests_note(counts: Counter) -> str:
    """``requests (counted run): 1,000 GET, 2 HEAD`` (or none)."""
    made = ", ".join(f"{n:,} {method}" for method, n in sorted(counts.items()) if n) or "none"
    return f"requests (counted run): {made}"


def peer_times(ws: Workspace, peers: list[Peer], bucket: str, key: str | None, folder: Path, files: int) -> dict[str, Sample]:
    """Each peer's sample copying ``key`` (None: the whole bucket) into an empty folder;
    `ChildFailed` if a peer leaves other than ``files`` files there."""
    times = {}
    for peer in peers:
        dest = ws.fresh_dir("peer-dest")
        times[peer.name] = ws.run(peer.argv(Copy(ws.server.direct_endpoint, bucket, key, dest, CREDENTIALS)),
                                  folder, ws.env(**peer.env))
        copied = sum(1 for path in dest.rglob("*") if path.is_file())
        if copied != files:
            raise ChildFailed(f"{peer.name} copied {copied} files of s3://{bucket}/{key or ''}, not {files}")
    shutil.rmtree(ws.root / "peer-dest", ignore_errors=True)
    return times


# --- resolve() --------------------------------------------------------------------


def resolve_per_call(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Warm resolve() of an immutable asset, per call, against os.stat of its path;
    every timed process goes through the counting endpoint (a warm call makes no
    request), after an untimed cold one."""
    folder, _ = _big_project(ws, "resolve", {"small/table.csv": ("table.csv", 1)})
    figure = Figure("warm `resolve()` of an immutable asset, per call", "bare `os.stat` of the same path", Target(1.5),
                    per="call")
    env = ws.env(ws.fresh_dir("cache-resolve"), counted=True)
    ws.probe(["fetch", "small/table.csv"], folder, env)
    ws.server.clear()
    for _ in range(sizes.runs):
        sample = ws.probe(["resolve-loop", "small/table.csv", str(sizes.calls), "1"], folder, env)
        figure.add(Sample(sample["ours"][0], sample["ours_cpu"][0]), Sample(sample["base"][0], sample["base_cpu"][0]))
    requests = ws.server.counts()
    figure.checks["0 requests"] = sum(requests.values()) == 0
    return [figure]


def first_resolve(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """The first resolve() of one small pinned object in a new process (interpreter
    start-up, imports, the GET, the checks, the cache), timed whole, against a bare
    boto3 ``get_object`` script writing the same bytes to a file in a new process."""
    bucket, key, body = ws.bucket("bench-first"), "first/table.1.0.0.csv", os.urandom(sizes.small_kb * 1024)
    ws.put_many(bucket, {key: body})
    pin = f"{{version: 1.0.0, sha256: {hashlib.sha256(body).hexdigest()}}}"
    folder = ws.project("first", f"store: s3://{bucket}\nassets:\n  first/table.csv: {pin}\n")
    figure = Figure(f"first `resolve()` of one {sizes.small_kb} KB object in a new process",
                    "a bare boto3 `get_object` script writing it, in a new process", Target(1.5))
    ours = [sys.executable, "-c", _RESOLVE_ONE, "first/table.csv"]
    trace = ws.trace_file()
    ws.server.clear()
    ws.run(ours, folder, ws.env(ws.fresh_dir("cache-first"), counted=True), trace=trace)
    requests = ws.server.counts()
    figure.checks["1 GET"] = requests["GET"] == 1
    for _ in range(sizes.runs):
        cache = ws.fresh_dir("cache-first")
        ours_sample = ws.run(ours, folder, ws.env(cache))
        copy = ws.fresh_dir("first-dest") / "table.csv"
        figure.add(ours_sample, ws.run([sys.executable, "-c", _GET_OBJECT, bucket, key, str(copy)], folder, ws.env()))
    [cached] = cache.rglob("table.1.0.0.csv")
    figure.checks["same bytes"] = cached.read_bytes() == body == copy.read_bytes()
    figure.notes += [requests_note(requests), syscalls.summary(trace, 1)]
    return [figure]


def resolve_vs_pooch(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Warm resolve() of a big asset against a warm pooch.fetch of the same bytes."""
    figure = Figure(
        f"warm `resolve()` of a {_mb(sizes.pooch_mb)} asset", "`pooch.fetch` of the same file, warm",
        Target(1000, at_most=False, unit="x faster"), speedup=True,
    )
    if importlib.util.find_spec("pooch") is None:
        figure.notes.append("SKIPPED: pooch is not installed (pip install -e '.[bench]')")
        return [figure]
    folder, made = _big_project(ws, "pooch", {"pooch/data.bin": ("pooch.bin", sizes.pooch_mb)})
    _, sha = made["pooch/data.bin"]
    url = ws.client.generate_presigned_url(
        "get_object", Params={"Bucket": BIG_BUCKET, "Key": "pooch/data.1.0.0.bin"}, ExpiresIn=3600,
    )
    calls = max(sizes.calls // 10, 100)
    sample = ws.probe(
        ["pooch-loop", "pooch/data.bin", url, sha, str(ws.fresh_dir("pooch-cache")), str(calls), str(sizes.runs)],
        folder, ws.env(ws.fresh_dir("cache-pooch")),
    )
    for ours, base in zip(sample["ours"], sample["base"]):
        figure.add(Sample(ours), Sample(base))
    return [figure]


# --- one big object -----------------------------------------------------------------


def big_fetch(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Cold ``doit fetch`` and cold ``resolve()`` of one big pinned object (sha256
    verified), then every peer copying it; both rows share the peers' samples."""
    folder, _ = _big_project(ws, "big", {"big/data.bin": ("big.bin", sizes.big_mb)})
    peers, missing = available(ws.root, one=True)
    fetch = Figure(f"cold `doit fetch` of one {_mb(sizes.big_mb)} object, verified", FASTEST, Target(1.2),
                   notes=list(missing))
    resolved = Figure(f"cold `resolve()` of one {_mb(sizes.big_mb)} object, verified (timed after its imports)",
                      FASTEST, Target(1.1), notes=missing)
    trace = ws.trace_file()
    ws.server.clear()
    ws.probe(["fetch", "big/data.bin"], folder, ws.env(ws.fresh_dir("cache-big-resolve"), counted=True), trace=trace)
    resolved.notes += [requests_note(ws.server.counts()), syscalls.summary(trace, 1)]
    for _ in range(sizes.runs):
        ours, _ = ws.doit(["fetch"], folder, ws.env(cold_cache(ws, folder, "big")))
        sample = ws.probe(["fetch", "big/data.bin"], folder, ws.env(ws.fresh_dir("cache-big-resolve")))
        times = peer_times(ws, peers, BIG_BUCKET, "big/data.1.0.0.bin", folder, 1)
        fetch.add_run(ours, times)
        resolved.add_run(Sample(sample["seconds"], sample["cpu"]), times)
    shutil.rmtree(ws.root / "cache-big")
    shutil.rmtree(ws.root / "cache-big-resolve")
    ws.client.delete_object(Bucket=BIG_BUCKET, Key="big/data.1.0.0.bin")
    return [fetch, resolved]


def peak_memory(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Peak RSS of a process fetching one huge object."""
    folder, _ = _big_project(ws, "huge", {"huge/data.bin": ("huge.bin", sizes.huge_mb)})
    figure = Figure(
        f"peak memory fetching a {_mb(sizes.huge_mb)} object", "-", Target(100, unit=" MB"), absolute=True, unit="MB",
    )
    for _ in range(sizes.runs):
        cache = ws.fresh_dir("cache-huge")
        figure.add(Sample(ws.probe(["fetch", "huge/data.bin"], folder, ws.env(cache))["peak_rss"] / _MIB))
        shutil.rmtree(cache)
    idle = ws.probe(["idle"], folder, ws.env())["peak_rss"] / _MIB
    figure.notes.append(f"an idle interpreter with pod_tasks, boto3 and a client: {idle:.0f} MB")
    ws.client.delete_object(Bucket=BIG_BUCKET, Key="huge/data.1.0.0.bin")
    return [figure]


def publish_big(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """publish() of a big file (hash + conditional upload + pin) against upload_file."""
    bucket = ws.bucket("bench-publish")
    source, _ = ws.big_file("publish.bin", sizes.big_mb)
    folder = ws.project("publish", f"store: s3://{bucket}\nassets:\n  pub/data.bin: {{source: {source.as_posix()}}}\n")
    figure = Figure(
        f"publish of a {_mb(sizes.big_mb)} file (hash + upload)", "boto3 `upload_file` alone (one PUT, see README)", Target(1.15),
    )
    trace = ws.trace_file()
    ws.server.clear()
    ws.probe(["publish", "pub/data.bin", str(source), "0.0.1"], folder, ws.env(counted=True), trace=trace)
    figure.notes += [requests_note(ws.server.counts()), syscalls.summary(trace, 1)]
    ws.client.delete_object(Bucket=bucket, Key="pub/data.0.0.1.bin")
    for run in range(sizes.runs):
        version = f"1.0.{run}"
        ours = ws.probe(["publish", "pub/data.bin", str(source), version], folder, ws.env())
        base = ws.probe(["upload", str(source), bucket, f"base/{run}.bin"], folder, ws.env())
        figure.add(Sample(ours["seconds"], ours["cpu"]), Sample(base["seconds"], base["cpu"]))
        ws.client.delete_object(Bucket=bucket, Key=f"pub/data.{version}.bin")
        ws.client.delete_object(Bucket=bucket, Key=f"base/{run}.bin")
    return [figure]


def pack_big(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """``doit pack`` of one big cached object that does not compress (model weights)
    against the zip tools a user has packing the same file."""
    folder, _ = _big_project(ws, "pack", {"pack/weights.bin": ("big.bin", sizes.big_mb)})
    cache = cold_cache(ws, folder, "pack")
    ws.doit(["fetch"], folder, ws.env(cache))
    [cached] = cache.rglob("weights.1.0.0.bin")
    out = ws.root / "pack-out.zip"
    peers = {"`python -m zipfile -c`": [sys.executable, "-m", "zipfile", "-c", str(out), str(cached)]}
    zip_tool = shutil.which("zip")
    if zip_tool:
        peers |= {"`zip -0` (stored)": [zip_tool, "-q", "-0", str(out), str(cached)],
                  "`zip`": [zip_tool, "-q", str(out), str(cached)]}
    figure = Figure(f"`doit pack` of one cached {_mb(sizes.big_mb)} file that does not compress", FASTEST,
                    Target(1.5), notes=[] if zip_tool else ["Info-ZIP `zip` is not installed"])
    for _ in range(sizes.runs):
        out.unlink(missing_ok=True)
        ours, _ = ws.doit(["pack", "--out", str(out)], folder, ws.env(cache))
        times = {}
        for name, argv in peers.items():
            out.unlink(missing_ok=True)
            times[name] = ws.run(argv, folder, ws.env())
        figure.add_run(ours, times)
    out.unlink(missing_ok=True)
    shutil.rmtree(cache)
    ws.client.delete_object(Bucket=BIG_BUCKET, Key="pack/weights.1.0.0.bin")
    return [figure]


# --- revalidation -------------------------------------------------------------------


def revalidation(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Revalidating unchanged mutable objects after the timeout (plain ``doit fetch``)
    against as many bare HEADs on `Sizes.concurrency` threads."""
    count, timeout = sizes.many, 0.5
    bucket = ws.bucket("bench-mutable")
    body = os.urandom(sizes.small_kb * 1024)
    keys = [f"live/{i:05d}.bin" for i in range(count)]
    ws.put_many(bucket, {key: i.to_bytes(4, "little") + body[4:] for i, key in enumerate(keys)})
    listing = "\n".join(f"  - s3://{bucket}/{key}" for key in keys)
    folder = ws.project("mutable", f"timeout: {timeout}s\nfiles:\n{listing}\n")
    keys_file = ws.root / "mutable-keys.txt"
    keys_file.write_text("\n".join(keys), encoding="utf-8")
    figure = Figure(
        f"revalidation of {count} unchanged mutable objects after the timeout",
        f"{count} bare boto3 `head_object`, {sizes.concurrency} threads", Target(0.5), objects=count,
    )
    counted, trace = cold_cache(ws, folder, "mutable-counted"), ws.trace_file()
    ws.doit(["fetch"], folder, ws.env(counted, counted=True))
    time.sleep(timeout * 1.2)
    _, requests, stats = counted_fetch(ws, folder, counted, trace)
    figure.checks[f"{count} HEADs and 0 GETs"] = requests["HEAD"] == count and requests["GET"] == 0
    rehashes = stats["rehashes"]
    cache = cold_cache(ws, folder, "mutable")
    ws.doit(["fetch"], folder, ws.env(cache))
    heads = [sys.executable, str(PROBE), "heads", bucket, str(keys_file), str(sizes.concurrency)]
    for _ in range(sizes.runs):
        time.sleep(timeout * 1.2)
        ours, stats = ws.doit(["fetch"], folder, ws.env(cache))
        rehashes += stats["rehashes"]
        figure.add(ours, ws.run(heads, folder, ws.env()))
    figure.checks["0 re-hashes"] = rehashes == 0
    figure.notes += [requests_note(requests), syscalls.summary(trace, count)]
    shutil.rmtree(cache)
    shutil.rmtree(counted)
    return [figure]


#: name -> case; `run.py --only NAME` runs a subset.
CASES = {
    "resolve": resolve_per_call,
    "first-resolve": first_resolve,
    "pooch": resolve_vs_pooch,
    "big-fetch": big_fetch,
    "revalidate": revalidation,
    "memory": peak_memory,
    "publish": publish_big,
    "pack": pack_big,
}
