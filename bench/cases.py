"""The benchmark rows: each case makes its own data, measures ours and its baseline in
pairs (ours first, then the baseline, `Sizes.runs` times) and returns its figures.

Timings of commands (doit, aws) are wall clock of the whole child process, start-up
included on both sides; in-process timings (resolve, fetch, publish) come from
`bench/probe.py` and start after the imports on both sides.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Figure, Target
from bench.workspace import PROBE, Sizes, Workspace

__all__ = ["Scaling", "CASES", "many_assets"]

_MIB = 1 << 20
BIG_BUCKET = "bench-big"


def _aws() -> str | None:
    """The aws CLI next to this interpreter, else on PATH."""
    local = Path(sys.executable).with_name("aws.cmd" if os.name == "nt" else "aws")
    return str(local) if local.exists() else shutil.which("aws")


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
    """No-op and cold fetch figures per asset count."""

    noop: dict[int, Figure] = field(default_factory=dict)
    cold: dict[int, Figure] = field(default_factory=dict)


def _many_project(ws: Workspace, count: int, size_kb: int) -> tuple[Path, str]:
    bucket = ws.bucket(f"bench-n{count}")
    body = os.urandom(size_kb * 1024)
    objects, lines = {}, [f"store: s3://{bucket}", "assets:"]
    for i in range(count):
        data = i.to_bytes(4, "little") + body[4:]
        objects[f"set/{i:05d}.1.0.0.bin"] = data
        lines.append(f"  set/{i:05d}.bin: 1.0.0")
    ws.put_many(bucket, objects)
    return ws.project(f"n{count}", "\n".join(lines) + "\n"), bucket


def _sync_baseline(ws: Workspace, bucket: str, dest: Path, concurrency: int) -> tuple[list[str], str]:
    """The command that copies every object of ``bucket`` into ``dest``, and its label."""
    aws = _aws()
    if aws:
        return [aws, "s3", "sync", f"s3://{bucket}", str(dest), "--only-show-errors",
                "--endpoint-url", ws.server.endpoint], "`aws s3 sync` of the bucket into an empty folder"
    code = (
        "import boto3, os, sys; from concurrent.futures import ThreadPoolExecutor as P\n"
        "c = boto3.client('s3'); b, d = sys.argv[1], sys.argv[2]\n"
        "keys = [o['Key'] for p in c.get_paginator('list_objects_v2').paginate(Bucket=b) for o in p.get('Contents', [])]\n"
        "def get(k):\n"
        "    os.makedirs(os.path.dirname(os.path.join(d, k)), exist_ok=True); c.download_file(b, k, os.path.join(d, k))\n"
        f"list(P({concurrency}).map(get, keys))\n"
    )
    return [sys.executable, "-c", code, bucket, str(dest)], (
        f"boto3, {concurrency} threads, list + download_file each (awscli not installed)"
    )


def many_assets(ws: Workspace, sizes: Sizes) -> Scaling:
    """For each asset count: cold ``doit -n 8 -P thread fetch`` against a sync of the
    bucket, then the no-op ``doit fetch`` against ``doit list``."""
    result = Scaling()
    parallel = ["-n", str(sizes.concurrency), "-P", "thread"]
    for count in sorted({*sizes.scale, sizes.many}):
        folder, bucket = _many_project(ws, count, sizes.small_kb)
        cold = None
        for run in range(sizes.runs):
            for db in folder.glob(".doit.db*"):
                db.unlink()
            cache = ws.fresh_dir(f"cache-n{count}")
            ws.server.clear()
            ours, _ = ws.doit([*parallel, "fetch"], folder, ws.env(cache))
            gets = ws.server.count("GET")
            command, label = _sync_baseline(ws, bucket, ws.fresh_dir("sync-dest"), sizes.concurrency)
            if cold is None:
                cold = result.cold[count] = Figure(
                    f"cold `doit -n {sizes.concurrency} -P thread fetch`, {count} x {sizes.small_kb} KB", label, Target(1.0),
                )
            cold.add(ours, ws.run(command, folder, ws.env()))
            cold.checks["1 GET per object"] = cold.checks.get("1 GET per object", True) and gets == count
        noop = result.noop[count] = Figure(
            f"`doit fetch`, {count} assets all up to date (immutable store)", "`doit list` on the same dodo.py",
            Target(1.5),
        )
        requests = 0
        for run in range(sizes.runs):
            ws.server.clear()
            ours, _ = ws.doit(["fetch"], folder, ws.env(cache))
            requests += len(ws.server.requests)
            noop.add(ours, ws.doit(["list"], folder, ws.env(cache))[0])
        noop.checks["0 requests"] = requests == 0
        shutil.rmtree(cache, ignore_errors=True)
    return result


def flatness(scaling: Scaling) -> list[Figure]:
    """Marginal cost per asset over the larger counts against the smaller ones (1 = flat)."""
    counts = sorted(scaling.noop)
    if len(counts) < 3:
        return []
    low, mid, high = counts[0], counts[len(counts) // 2], counts[-1]
    figures = []
    for label, by_count in (("no-op `doit fetch`", scaling.noop), ("cold fetch", scaling.cold)):
        figure = Figure(
            f"{label}: cost per extra asset from {mid} to {high}", f"the same from {low} to {mid}", Target(1.5),
        )
        for a, b, c in zip(by_count[low].ours, by_count[mid].ours, by_count[high].ours):
            # 1 us per asset is below what a child process's wall clock can resolve
            figure.add(max((c - b) / (high - mid), 1e-6), max((b - a) / (mid - low), 1e-6))
        figures.append(figure)
    return figures


# --- one big object -----------------------------------------------------------------


def big_fetch(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Cold resolve() of one big pinned object against boto3 download_file alone."""
    folder, _ = _big_project(ws, "big", {"big/data.bin": ("big.bin", sizes.big_mb)})
    figure = Figure(
        f"cold fetch of one {_mb(sizes.big_mb)} object, verification included",
        "boto3 `download_file` alone (one GET, see README)", Target(1.1),
    )
    for _ in range(sizes.runs):
        cache = ws.fresh_dir("cache-big")
        ours = ws.probe(["fetch", "big/data.bin"], folder, ws.env(cache))["seconds"]
        shutil.rmtree(cache)
        dest = ws.fresh_dir("download-big") / "data.bin"
        base = ws.probe(["download", BIG_BUCKET, "big/data.1.0.0.bin", str(dest)], folder, ws.env())["seconds"]
        shutil.rmtree(dest.parent)
        figure.add(ours, base)
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


# --- revalidation -------------------------------------------------------------------


def revalidation(ws: Workspace, sizes: Sizes) -> list[Figure]:
    """Revalidating unchanged mutable objects after the timeout against bare HEADs."""
    count, timeout = sizes.many, 0.5
    bucket = ws.bucket("bench-mutable")
    body = os.urandom(sizes.small_kb * 1024)
    keys = [f"live/{i:05d}.bin" for i in range(count)]
    ws.put_many(bucket, {key: i.to_bytes(4, "little") + body[4:] for i, key in enumerate(keys)})
    listing = "\n".join(f"  - s3://{bucket}/{key}" for key in keys)
    folder = ws.project("mutable", f"timeout: {timeout}s\nfiles:\n{listing}\n")
    keys_file = ws.root / "mutable-keys.txt"
    keys_file.write_text("\n".join(keys), encoding="utf-8")
    cache = ws.fresh_dir("cache-mutable")
    parallel = ["-n", str(sizes.concurrency), "-P", "thread", "fetch"]
    ws.doit(parallel, folder, ws.env(cache))
    figure = Figure(
        f"revalidation of {count} unchanged mutable objects after the timeout (`-n {sizes.concurrency}`)",
        f"{count} bare boto3 `head_object`, {sizes.concurrency} threads", Target(1.3),
    )
    rehashes, heads, gets = 0, [], 0
    for _ in range(sizes.runs):
        time.sleep(timeout * 1.2)
        ws.server.clear()
        ours, stats = ws.doit(parallel, folder, ws.env(cache))
        rehashes += stats["rehashes"]
        heads.append(ws.server.count("HEAD"))
        gets += ws.server.count("GET")
        base = ws.run([sys.executable, str(PROBE), "heads", bucket, str(keys_file), str(sizes.concurrency)],
                      folder, ws.env())
        figure.add(ours, base)
    figure.checks["0 re-hashes"] = rehashes == 0
    figure.checks[f"{count} HEADs and 0 GETs per run"] = set(heads) == {count} and gets == 0
    return [figure]


#: name -> case; `run.py --only NAME` runs a subset.
CASES = {
    "resolve": resolve_per_call,
    "pooch": resolve_vs_pooch,
    "big-fetch": big_fetch,
    "revalidate": revalidation,
    "memory": peak_memory,
    "publish": publish_big,
}
