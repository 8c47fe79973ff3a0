"""What every doit task action shares: the project it acts on, how it prints a line,
how a failure becomes one clean line, and the ``--jobs`` option. `pod_tasks.tasks` and
`pod_tasks.fleet_tasks` both build on it (neither imports the other's internals)."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from doit.exceptions import TaskFailed

from .config import parse_jobs
from .errors import PodError
from .meter import Meter
from .resolver import Project

__all__ = ["current_project", "say", "guarded", "JOBS_PARAM", "jobs_of"]


#: ``--jobs N``, of every task that fetches many objects (0: the settings' number).
JOBS_PARAM = {"name": "jobs", "long": "jobs", "type": int, "default": 0,
              "help": "requests in flight (default: POD_JOBS, else 8 per CPU, at most 32)"}


def jobs_of(value: int) -> int | None:
    """The number ``--jobs`` asks for; None when not given (the settings decide)."""
    if not value:
        return None
    try:
        return parse_jobs(value, "--jobs")
    except ValueError as exc:
        raise PodError(str(exc)) from None


def current_project() -> Project:
    return Project.get()


def say(line: str) -> None:
    """Print one line in one write, so lines from ``doit -n 8 -P thread`` never interleave
    (above the live progress line, when one shows)."""
    if Meter.active is not None:
        Meter.active.write(line)
        return
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
