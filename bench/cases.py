"""The benchmark rows: each case makes its own data on the workspace's server,
measures ours and its baseline (or every peer, `bench.peers`) in pairs, ours first,
`Sizes.runs` times, and returns its figures.

Timings of commands (doit, the peers, the HEAD baseline) are wall clock of the whole
child process, start-up included on both sides; in-process timings (resolve, publish)
come from `bench/probe.py` and start after the imports on both sides. ``doit fetch``
runs as a user types it (no ``-n``/``-P``).

Request counts come from runs of ours through the server's counting endpoint: one
extra, untimed run before the timed ones (it also warms the server up), whose timed
runs reach the server directly; a no-op row makes no request, so all its runs go
through the counting endpoint. The cache knows objects by endpoint, so a counted run
never shares a cache with a direct one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Figure, Target
from bench.peers import Copy, Peer, available
from bench.workspace import PROBE, ChildFailed, Sizes, Workspace
from tests.servers import CREDENTIALS

__all__ = ["Scaling", "CASES", "many_assets", "flatness"]

_MIB = 1 << 20
BIG_BUCKET = "bench-big"
_FASTEST = "the fastest peer (see notes)"


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


def _cold_cache(ws: Workspace, folder: Path, name: str) -> Path:
    """An empty cache ``cache-NAME``, and ``folder`` without doit's dependency file."""
    for db in folder.glob(".doit.db*"):
        db.unlink()
    return ws.fresh_dir(f"cache-{name}")


def _counted(ws: Workspace, folder: Path, cache: Path) -> tuple[float, Counter, dict]:
    """``doit fetch`` through the counting endpoint: its seconds, the requests it made
    by method, and the probe's stats."""
    ws.server.clear()
    seconds, stats = ws.doit(["fetch"], folder, ws.env(cache, counted=True))
    return seconds, ws.server.counts(), stats


def _peer_times(ws: Workspace, peers: list[Peer], bucket: str, key: str | None, folder: Path, files: int) -> dict[str, float]:
    """Each peer's seconds copying ``key`` (None: the whole bucket) into an empty folder;
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
    """Warm resolve() of an immutable asset, per call, against os.stat of its path."""
    folder, _ = _big_project(ws, "resolve", {"small/table.csv": ("table.csv", 1)})
    figure = Figure("warm `resolve()` of an immutable asset, per call", "bare `os.stat` of the same path", Target(3))
    cache = ws.fresh_dir("cache-resolve")
    for _ in range(sizes.runs):
        sample = ws.probe(["resolve-loop", "small/table.csv", str(sizes.calls), "1"], folder, ws.env(cache))
        figure.add(sample["ours"][0], sample["base"][0])
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
        figure.add(ours, base)
    return [figure]


# --- many small assets: no-op and cold fetch, and how they grow ---------------------


@dataclass
class Scaling:
    """Cold and no-op fetch figures by asset count."""

    noop: dict[int, Figure] = field(default_factory=dict)
    cold: dict[int, Figure] = field(default_factory=dict)


def _many_project(ws: Workspace, count: int, size_kb: int) -> tuple[Path, str]:
    """A bucket of ``count`` distinct objects and a project pinning each at 1.0.0."""
    bucket = ws.bucket(f"bench-n{count}")
    body = os.urandom(size_kb * 1024)
    objects, lines = {}, [f"store: s3://{bucket}", "assets:"]
    for i in range(count):
        objects[f"set/{i:05d}.1.0.0.bin"] = i.to_bytes(4, "little") + body[4:]
        lines.append(f"  set/{i:05d}.bin: 1.0.0")
    ws.put_many(bucket, objects)
    return ws.project(f"n{count}", "\n".join(lines) + "\n"), bucket


def _cold(ws: Workspace, sizes: Sizes, folder: Path, bucket: str, count: int) -> Figure:
    """Cold ``doit fetch`` of the project against every peer copying the bucket."""
    peers, missing = available(ws.root, one=False)
    figure = Figure(f"cold `doit fetch`, {count} x {sizes.small_kb} KB", _FASTEST, Target(1.0), notes=missing)
    _, requests, _ = _counted(ws, folder, _cold_cache(ws, folder, f"n{count}"))
    figure.checks["1 GET per object"] = requests["GET"] == count
    for _ in range(sizes.runs):
        ours, _ = ws.doit(["fetch"], folder, ws.env(_cold_cache(ws, folder, f"n{count}")))
        figure.add_run(ours, _peer_times(ws, peers, bucket, None, folder, count))
    shutil.rmtree(ws.root / f"cache-n{count}")
    return figure


def _noop(ws: Workspace, sizes: Sizes, folder: Path, count: int) -> Figure:
    """``doit fetch`` with every asset cached (by an untimed fetch) against ``doit list``."""
    figure = Figure(
        f"no-op `doit fetch`, {count} assets all up to date (immutable store)", "`doit list` on the same dodo.py",
        Target(1.3),
    )
    cache = _cold_cache(ws, folder, f"n{count}")
    ws.doit(["fetch"], folder, ws.env(cache, counted=True))
    requests = Counter()
    for _ in range(sizes.runs):
        ours, made, _ = _counted(ws, folder, cache)
        requests += made
        figure.add(ours, ws.doit(["list"], folder, ws.env(cache))[0])
    figure.checks["0 requests"] = sum(requests.values()) == 0
    shutil.rmtree(cache)
    return figure


def many_assets(ws: Workspace, sizes: Sizes) -> Scaling:
    """A cold fetch row for each count of `Sizes.cold`, a no-op row for each of `Sizes.noop`."""
    result = Scaling()
    for count in sorted({*sizes.cold, *sizes.noop}):
        folder, bucket = _many_project(ws, count, sizes.small_kb)
        if count in sizes.cold:
            result.cold[count] = _cold(ws, sizes, folder, bucket, count)
        if count in sizes.noop:
            result.noop[count] = _noop(ws, sizes, folder, count)
    return result


def flatness(scaling: Scaling) -> list[Figure]:
    """For each series of at least three counts, the marginal cost per asset over the
    larger counts against the smaller ones (1 = flat)."""
    series = (("no-op `doit fetch`", scaling.noop), ("cold `doit fetch`", scaling.cold))
    return [_flatness(label, by_count) for label, by_count in series if len(by_count) >= 3]


def _flatness(label: str, by_count: dict[int, Figure]) -> Figure:
    counts = sorted(by_count)
    low, mid, high = counts[0], counts[len(counts) // 2], counts[-1]
    figure = Figure(f"{label}: cost per extra asset from {mid} to {high}", f"the same from {low} to {mid}", Target(1.5))
    for a, b, c in zip(by_count[low].ours, by_count[mid].ours, by_count[high].ours):
        # 1 us per asset is below what a child process's wall clock can resolve
        figure.add(max((c - b) / (high - mid), 1e-6), max((b - a) / (mid - low), 1e-6))
    return figure


# --- one big object -----------------------------------------------------------------


def big_fetch(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Cold ``doit fetch`` of one big pinned object (sha256 verified) against every peer
    copying it."""
    folder, _ = _big_project(ws, "big", {"big/data.bin": ("big.bin", sizes.big_mb)})
    peers, missing = available(ws.root, one=True)
    figure = Figure(f"cold `doit fetch` of one {_mb(sizes.big_mb)} object, verified", _FASTEST, Target(1.2),
                    notes=missing)
    for _ in range(sizes.runs):
        ours, _ = ws.doit(["fetch"], folder, ws.env(_cold_cache(ws, folder, "big")))
        figure.add_run(ours, _peer_times(ws, peers, BIG_BUCKET, "big/data.1.0.0.bin", folder, 1))
    shutil.rmtree(ws.root / "cache-big")
    ws.client.delete_object(Bucket=BIG_BUCKET, Key="big/data.1.0.0.bin")
    return [figure]


def peak_memory(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Peak RSS of a process fetching one huge object."""
    folder, _ = _big_project(ws, "huge", {"huge/data.bin": ("huge.bin", sizes.huge_mb)})
    figure = Figure(
        f"peak memory fetching a {_mb(sizes.huge_mb)} object", "-", Target(100, unit=" MB"), absolute=True, unit="MB",
    )
    for _ in range(sizes.runs):
        cache = ws.fresh_dir("cache-huge")
        figure.add(ws.probe(["fetch", "huge/data.bin"], folder, ws.env(cache))["peak_rss"] / _MIB)
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
    for run in range(sizes.runs):
        version = f"1.0.{run}"
        ours = ws.probe(["publish", "pub/data.bin", str(source), version], folder, ws.env())["seconds"]
        base = ws.probe(["upload", str(source), bucket, f"base/{run}.bin"], folder, ws.env())["seconds"]
        figure.add(ours, base)
        ws.client.delete_object(Bucket=bucket, Key=f"pub/data.{version}.bin")
        ws.client.delete_object(Bucket=bucket, Key=f"base/{run}.bin")
    return [figure]


def pack_big(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """``doit pack`` of one big cached object that does not compress (model weights)
    against the zip tools a user has packing the same file."""
    folder, _ = _big_project(ws, "pack", {"pack/weights.bin": ("big.bin", sizes.big_mb)})
    cache = _cold_cache(ws, folder, "pack")
    ws.doit(["fetch"], folder, ws.env(cache))
    [cached] = cache.rglob("weights.1.0.0.bin")
    out = ws.root / "pack-out.zip"
    peers = {"`python -m zipfile -c`": [sys.executable, "-m", "zipfile", "-c", str(out), str(cached)]}
    zip_tool = shutil.which("zip")
    if zip_tool:
        peers |= {"`zip -0` (stored)": [zip_tool, "-q", "-0", str(out), str(cached)],
                  "`zip`": [zip_tool, "-q", str(out), str(cached)]}
    figure = Figure(f"`doit pack` of one cached {_mb(sizes.big_mb)} file that does not compress", _FASTEST,
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
        f"{count} bare boto3 `head_object`, {sizes.concurrency} threads", Target(0.5),
    )
    counted = _cold_cache(ws, folder, "mutable-counted")
    ws.doit(["fetch"], folder, ws.env(counted, counted=True))
    time.sleep(timeout * 1.2)
    _, requests, stats = _counted(ws, folder, counted)
    figure.checks[f"{count} HEADs and 0 GETs"] = requests["HEAD"] == count and requests["GET"] == 0
    rehashes = stats["rehashes"]
    cache = _cold_cache(ws, folder, "mutable")
    ws.doit(["fetch"], folder, ws.env(cache))
    heads = [sys.executable, str(PROBE), "heads", bucket, str(keys_file), str(sizes.concurrency)]
    for _ in range(sizes.runs):
        time.sleep(timeout * 1.2)
        ours, stats = ws.doit(["fetch"], folder, ws.env(cache))
        rehashes += stats["rehashes"]
        figure.add(ours, ws.run(heads, folder, ws.env()))
    figure.checks["0 re-hashes"] = rehashes == 0
    shutil.rmtree(cache)
    shutil.rmtree(counted)
    return [figure]


#: name -> case; `run.py --only NAME` runs a subset.
CASES = {
    "resolve": resolve_per_call,
    "pooch": resolve_vs_pooch,
    "big-fetch": big_fetch,
    "revalidate": revalidation,
    "memory": peak_memory,
    "publish": publish_big,
    "pack": pack_big,
}
