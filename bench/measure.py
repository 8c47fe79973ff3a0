"""Figures and their table: paired samples, ratios, medians, and peak memory.

A `Figure` holds the samples of one row. Ours and the baseline are measured in pairs,
one right after the other, so a ratio is taken within a pair and the noise of the
machine (another process, the page cache) hits both sides alike. The row shows the
median ratio with its min and max, the medians of the two sides for context, and
whether the target is met.

A row may have several peers (other clients doing the same copy) instead of one
baseline: each run measures ours and then every peer; the baseline is the fastest
peer (lowest median) of the run, ratios pair ours with it run by run, and the other
peers' medians are shown beside it.

Each sample may carry the CPU time (user+sys) it took: `cpu_seconds` reads it from
``getrusage``, of the finished children or of this process. The row shows the median
CPU per object of ours and of its baseline beside the wall times.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Figure", "Sample", "Target", "cpu_seconds", "timed", "peak_rss_bytes", "markdown", "human_seconds"]


@dataclass(frozen=True)
class Target:
    """``ratio <= limit`` (``at_most``) or ``ratio >= limit``; ``unit`` is how the ratio reads."""

    limit: float
    at_most: bool = True
    unit: str = "x"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def __str__(self) -> str:
        return f"{'<=' if self.at_most else '>='} {_number(self.limit)}{self.unit}"


@dataclass(frozen=True)
class Sample:
    """One measurement: ``wall`` (seconds, or the row's unit) and the ``cpu`` seconds
    (user+sys) it took, None where unknown."""

    wall: float
    cpu: float | None = None


#: The key of `Figure.cpu` for ours, and for a baseline given to `Figure.add`.
OURS, BASE = "ours", "base"


@dataclass
class Figure:
    """One row. ``speedup`` rows report baseline/ours (higher is better), the others
    ours/baseline (lower is better); ``absolute`` rows (no baseline) report ours itself.
    ``checks`` are extra conditions shown in the notes column (e.g. "0 requests");
    ``peers`` the samples of each peer by name (`add_run`), ``server`` the S3 server
    the row ran against; ``cpu`` the CPU seconds of each side's samples (ours, the
    baseline, each peer), shown per one of ``objects`` ``per`` (e.g. 1000 objects)."""

    what: str
    baseline: str
    target: Target
    ours: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    peers: dict[str, list[float]] = field(default_factory=dict)
    server: str = ""
    speedup: bool = False
    absolute: bool = False
    unit: str = "s"
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, list[float | None]] = field(default_factory=dict)
    objects: int = 1
    per: str = "object"

    def add(self, ours: Sample, base: Sample | None = None) -> None:
        self._keep(OURS, ours, self.ours)
        if base is not None:
            self._keep(BASE, base, self.base)

    def add_run(self, ours: Sample, peers: dict[str, Sample]) -> None:
        """One run: ours, then each peer's sample by name."""
        self._keep(OURS, ours, self.ours)
        for name, sample in peers.items():
            self._keep(name, sample, self.peers.setdefault(name, []))

    def _keep(self, side: str, sample: Sample, walls: list[float]) -> None:
        walls.append(sample.wall)
        self.cpu.setdefault(side, []).append(sample.cpu)

    def cpu_per_object(self, side: str = OURS) -> float | None:
        """The median CPU seconds per object of ``side`` (`OURS`, `BASE` or a peer's
        name), None unless every one of its samples has it."""
        samples = self.cpu.get(side, [])
        if not samples or None in samples:
            return None
        return statistics.median(samples) / self.objects

    @property
    def fastest(self) -> str | None:
        """The peer with the lowest median, None without peers."""
        return min(self.peers, key=lambda name: statistics.median(self.peers[name]), default=None)

    @property
    def baseline_samples(self) -> list[float]:
        """The fastest peer's samples, else those given to `add`."""
        fastest = self.fastest
        return self.peers[fastest] if fastest else self.base

    @property
    def ratios(self) -> list[float]:
        if self.absolute:
            return list(self.ours)
        pairs = zip(self.ours, self.baseline_samples)
        return [b / o if self.speedup else o / b for o, b in pairs if o > 0 and b > 0]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def met(self) -> bool:
        return bool(self.ratios) and self.target.met(self.ratio) and all(self.checks.values())

    def cells(self) -> list[str]:
        ratios = self.ratios
        baseline = f"fastest peer: {self.fastest}" if self.peers else self.baseline
        if not ratios:
            return [self.what, self.server, baseline, "n/a", "", str(self.target), "skipped", "; ".join(self.notes)]
        unit = self.target.unit
        sides = (
            f"{_show(statistics.median(self.ours), self.unit)}"
            if self.absolute
            else f"{_show(statistics.median(self.ours), self.unit)} / "
                 f"{_show(statistics.median(self.baseline_samples), self.unit)}"
        )
        if self.unit == "s":
            sides = f"wall {sides}"
        checks = [f"{name}: {'yes' if ok else 'NO'}" for name, ok in self.checks.items()]
        cpu = self._cpu_cell()
        return [
            self.what,
            self.server,
            baseline,
            f"**{_number(self.ratio)}{unit}**",
            f"{_number(min(ratios))}-{_number(max(ratios))}{unit}",
            str(self.target),
            "yes" if self.met else "NO",
            "; ".join([f"{sides} (n={len(ratios)})", *cpu, *self._peer_medians(), *checks, *self.notes]),
        ]

    def _cpu_cell(self) -> list[str]:
        """``CPU (user+sys) per object: OURS / BASELINE`` (medians), if ours has it."""
        ours = self.cpu_per_object()
        if ours is None:
            return []
        base = None if self.absolute else self.cpu_per_object(self.fastest or BASE)
        shown = _show(ours, "s") + ("" if base is None else f" / {_show(base, 's')}")
        return [f"CPU (user+sys) per {self.per}: {shown}"]

    def _peer_medians(self) -> list[str]:
        """``peers: NAME TIME, ...`` (every peer's median, fastest first), if any."""
        if not self.peers:
            return []
        medians = sorted((statistics.median(samples), name) for name, samples in self.peers.items())
        return ["peers: " + ", ".join(f"{name} {_show(median, self.unit)}" for median, name in medians)]


def cpu_seconds(children: bool) -> float | None:
    """User+sys CPU seconds so far of this process's finished (and waited-for)
    children and their descendants (``children``), or of this process and its threads;
    None where ``resource`` is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.01 or value <= 0:
        return f"{value:.2f}"
    return f"{value:.{1 - math.floor(math.log10(value))}f}"  # two significant digits, no exponent


def _show(value: float, unit: str) -> str:
    if unit == "s":
        return human_seconds(value)
    return f"{_number(value)} {unit}"


def human_seconds(seconds: float) -> str:
    for scale, name in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {name}"
    return f"{seconds * 1e9:.3g} ns"


HEADER = ["what", "server", "baseline (same run)", "ratio (median)", "min-max", "target", "met", "ours / baseline (median), checks"]


def markdown(figures: list[Figure]) -> str:
    """The markdown table of ``figures``."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for figure in figures:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in figure.cells()) + " |")
    return "\n".join(lines)


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size, or None where it cannot be read.

    Linux: ``VmHWM`` in /proc/self/status; other POSIX systems: ``getrusage``
    (kilobytes, bytes on macOS); Windows: ``PeakWorkingSetSize`` through psapi.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return _windows_peak()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _windows_peak() -> int | None:
    if os.name != "nt":
        return None
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [
            ("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t), ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t), ("PeakPagefileUsage", ctypes.c_size_t),
        ]

    counters = Counters()
    counters.cb = ctypes.sizeof(Counters)
    process = ctypes.windll.kernel32.GetCurrentProcess()
    if not ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
        return None
    return int(counters.PeakWorkingSetSize)
