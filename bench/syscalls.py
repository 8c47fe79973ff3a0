"""Syscall counts of a child process: ``strace -f -c`` (Linux), where strace is on PATH.

`traced` wraps a command line so that strace writes its summary (every thread and
child process counted) to a file; `summary` turns that file into the note a row shows,
or says n/a where strace is missing or could not trace (ptrace not permitted). A traced
run is never a timed one: strace slows every system call.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["available", "traced", "counts", "summary"]

_TOP = 6


@functools.cache
def available() -> bool:
    """strace is on PATH and may trace here (ptrace can be forbidden, e.g. in containers)."""
    if shutil.which("strace") is None:
        return False
    trial = subprocess.run(traced([sys.executable, "-c", "pass"], Path(os.devnull)), capture_output=True)
    return trial.returncode == 0


def traced(argv: list[str], out: Path) -> list[str]:
    """``argv`` run under ``strace -f -c`` writing its table to ``out``."""
    return [shutil.which("strace") or "strace", "-f", "-c", "-o", str(out), *argv]


def counts(out: Path) -> Counter:
    """Calls by syscall from strace's ``-c`` table in ``out`` (its ``total`` line left out).

    A row of the table reads ``% time, seconds, usecs/call, calls, [errors], syscall``."""
    found: Counter = Counter()
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = line.split()
        if len(cells) in (5, 6) and cells[0].replace(".", "", 1).isdigit() and cells[-1] != "total":
            found[cells[-1]] += int(cells[3])
    return found


def summary(out: Path | None, objects: int, per: str = "object") -> str:
    """``syscalls per object (strace -f -c): N; futex A, read B, ...`` from the table in
    ``out`` (None: strace is not `available`), divided by ``objects`` (1: the whole
    process's counts, start-up included)."""
    label = f"syscalls per {per} (strace -f -c)" if objects > 1 else "syscalls of the whole process (strace -f -c)"
    if out is None:
        return f"{label}: n/a (strace is not on PATH or may not trace here)"
    found = counts(out) if out.is_file() else Counter()
    if not found:
        return f"{label}: n/a (strace could not trace)"
    top = ", ".join(f"{name} {_per(calls, objects)}" for name, calls in found.most_common(_TOP))
    return f"{label}: {_per(sum(found.values()), objects)}; {top}"


def _per(calls: int, objects: int) -> str:
    value = calls / objects
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
