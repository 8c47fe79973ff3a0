"""The many-small-assets rows: a cold ``doit fetch`` of N objects against every peer
copying the bucket, a no-op one against ``doit list``, for each count of `Sizes.cold`
and `Sizes.noop`, and how their cost grows with N (`flatness`).

Measured as every row of `bench.cases` is (paired runs, a counted and traced run);
the cold rows also check the issue's limit of CPU per object.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import syscalls
from bench.cases import FASTEST, cold_cache, counted_fetch, peer_times, requests_note
from bench.measure import Figure, Sample, Target
from bench.peers import available
from bench.workspace import Sizes, Workspace

__all__ = ["Scaling", "many_assets", "flatness"]

#: The cold fetch rows' limit of CPU seconds (user+sys) per object (issue 24).
_CPU_PER_OBJECT = 1e-3


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


def _cpu_check(figure: Figure, limit: float) -> None:
    """Check that ours took at most ``limit`` CPU seconds per object (a note where unknown)."""
    cpu = figure.cpu_per_object()
    if cpu is None:
        figure.notes.append("CPU per object: n/a (no `resource` module here)")
    else:
        figure.checks[f"CPU per {figure.per} <= {limit * 1e3:g} ms"] = cpu <= limit


def _cold(ws: Workspace, sizes: Sizes, folder: Path, bucket: str, count: int) -> Figure:
    """Cold ``doit fetch`` of the project against every peer copying the bucket."""
    peers, missing = available(ws.root, one=False)
    figure = Figure(f"cold `doit fetch`, {count} x {sizes.small_kb} KB", FASTEST, Target(1.0), notes=missing,
                    objects=count)
    trace = ws.trace_file()
    _, requests, _ = counted_fetch(ws, folder, cold_cache(ws, folder, f"n{count}"), trace)
    figure.checks["1 GET per object"] = requests["GET"] == count
    for _ in range(sizes.runs):
        ours, _ = ws.doit(["fetch"], folder, ws.env(cold_cache(ws, folder, f"n{count}")))
        figure.add_run(ours, peer_times(ws, peers, bucket, None, folder, count))
    _cpu_check(figure, _CPU_PER_OBJECT)
    figure.notes += [requests_note(requests), syscalls.summary(trace, count)]
    shutil.rmtree(ws.root / f"cache-n{count}")
    return figure


def _noop(ws: Workspace, sizes: Sizes, folder: Path, count: int) -> Figure:
    """``doit fetch`` with every asset cached (by an untimed fetch) against ``doit list``."""
    figure = Figure(
        f"no-op `doit fetch`, {count} assets all up to date (immutable store)", "`doit list` on the same dodo.py",
        Target(1.2), objects=count, per="asset",
    )
    cache = cold_cache(ws, folder, f"n{count}")
    ws.doit(["fetch"], folder, ws.env(cache, counted=True))
    requests, trace = Counter(), ws.trace_file()
    if trace:
        requests += counted_fetch(ws, folder, cache, trace)[1]
    for _ in range(sizes.runs):
        ours, made, _ = counted_fetch(ws, folder, cache)
        requests += made
        figure.add(ours, ws.doit(["list"], folder, ws.env(cache))[0])
    figure.checks["0 requests"] = sum(requests.values()) == 0
    figure.notes.append(syscalls.summary(trace, count, "asset"))
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
        figure.add(Sample(max((c - b) / (high - mid), 1e-6)), Sample(max((b - a) / (mid - low), 1e-6)))
    return figure
