"""What every doit task action shares: the project it acts on, how it prints a line,
how a failure becomes one clean line, and sizes for people. `pod_tasks.tasks` and
`pod_tasks.fleet_tasks` both build on it (neither imports the other's internals)."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from doit.exceptions import TaskFailed

from .errors import PodError
from .resolver import Project

__all__ = ["current_project", "say", "guarded", "human_size"]


def current_project() -> Project:
    return Project.get()


def say(line: str) -> None:
    """Print one line in one write, so lines from ``doit -n 8 -P thread`` never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def guarded(action: Callable[..., object]) -> Callable[..., object]:
    """Turn a `PodError` (or an OSError, e.g. an unwritable folder) raised by ``action``
    into a clean doit failure: one line, no traceback."""

    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            result = action(*args, **kwargs)
        except (PodError, OSError) as exc:
            return TaskFailed(str(exc))
        return None if result is None or result is True else result

    return run


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
