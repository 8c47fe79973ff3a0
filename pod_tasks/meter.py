"""What a person watching a run of downloads sees: one live line (tqdm), on a terminal only.

The line counts files done out of the total, with the bytes so far, the rate and the
time left; a run of one object counts its bytes instead. Lines the run prints while
the meter shows go above it (`Meter.write`). Sizes are in binary units named as such
(KiB, MiB, GiB). Off a terminal there is no meter: logs get the caller's lines only.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

__all__ = ["Meter", "human_size"]


def human_size(n: float) -> str:
    """``n`` bytes in binary units named as such: ``512 B``, ``10.0 KiB``, ``1.5 GiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units[:-1]:
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"


class Meter:
    """The live line of ``files`` downloads on ``stream`` (a terminal). Thread-safe:
    workers call `add` and `done` as bytes and files arrive."""

    REFRESH = 0.2  # seconds between redraws
    #: The meter on screen in this process, if any (`pod_tasks.actions.say` prints above it).
    active: "Meter | None" = None

    def __init__(self, files: int, stream: TextIO | None = None, label: str = "fetch") -> None:
        from tqdm import tqdm

        self.stream = stream or sys.stdout
        self.label = label
        self.files = files
        self.bytes = 0
        self.finished = 0
        self._by_bytes = files == 1
        self._start = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()
        self._bar = tqdm(
            total=None if self._by_bytes else files, desc=f"{label}:", file=self.stream, leave=False,
            mininterval=self.REFRESH,
            # the terminal's size, or 80x24 when it says none (tqdm would then draw nothing)
            ncols=shutil.get_terminal_size().columns, nrows=shutil.get_terminal_size().lines,
            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]" if self._by_bytes
            else "{desc} {n_fmt}/{total_fmt} files |{bar}| [{elapsed}<{remaining}]",
        )
        Meter.active = self

    def add(self, count: int, total: int | None = None) -> None:
        """``count`` more bytes arrived (``total``: the size of the object, when known)."""
        with self._lock:
            self.bytes += count
            if self._by_bytes:
                if total is not None and self._bar.total != total:
                    self._bar.total = total
                self._bar.n += count
            if time.monotonic() - self._drawn >= self.REFRESH:
                self._redraw()

    def done(self) -> None:
        """One more file finished (downloaded, found fresh, or failed)."""
        with self._lock:
            self.finished += 1
            if not self._by_bytes:
                self._bar.update(1)
                self._redraw()

    def _redraw(self) -> None:
        seconds = max(time.monotonic() - self._start, 1e-6)
        of = f" of {human_size(self._bar.total)}" if self._by_bytes and self._bar.total else ""
        self._bar.set_description_str(
            f"{self.label}: {human_size(self.bytes)}{of}, {human_size(self.bytes / seconds)}/s", refresh=True)
        self._drawn = time.monotonic()

    def write(self, line: str) -> None:
        """Print ``line`` above the live line."""
        from tqdm import tqdm

        with self._lock:
            tqdm.write(line.rstrip("\n"), file=self.stream)

    def close(self) -> None:
        """Take the live line off the screen."""
        with self._lock:
            self._bar.close()
            if Meter.active is self:
                Meter.active = None
