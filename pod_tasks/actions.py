"""What every doit task action shares: the project it acts on, how it prints a line,
how a failure becomes one clean line, and the ``--jobs`` option. `pod_tasks.tasks` and
`pod_tasks.fleet_tasks` both build on it (neither imports the other's internals)."""

from __future__ import annotations

import difflib
import functools
import sys
from typing import Callable, Iterable, Iterator, Sequence

from doit.exceptions import InvalidTask, TaskFailed

from .config import parse_jobs
from .errors import PodError
from .meter import Meter
from .resolver import Project

__all__ = ["current_project", "say", "guarded", "JOBS_PARAM", "jobs_of", "options_checked", "unknown_option"]


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


def unknown_option(basename: str, params: Sequence[dict], argv: Sequence[str]) -> str | None:
    """The line that refuses the first option after ``basename`` or ``basename:NAME`` in
    ``argv`` that ``params`` (doit's param dicts) does not define, naming the nearest known
    one; None when every option is known. Options are read as doit reads them (getopt):
    up to the first argument that is not one, ``--opt=value`` or ``--opt value``, a unique
    prefix of a long option standing for it."""
    longs = {f"--{p['long']}": p for p in params if "long" in p}
    longs.update({f"--{p['inverse']}": p for p in params if "inverse" in p})
    shorts = {f"-{p['short']}": p for p in params if "short" in p}
    for at, arg in enumerate(argv):
        if arg != basename and not arg.startswith(f"{basename}:"):
            continue
        rest = iter(argv[at + 1:])
        for option in rest:
            if not option.startswith("-") or option in ("-", "--"):
                break
            given = option.split("=", 1)[0]
            known = [given] if given in longs or given in shorts else [o for o in longs if o.startswith(given) and given.startswith("--")]
            if len(known) != 1:
                return _refusal(arg, given, sorted(longs) + sorted(shorts), known)
            param = longs.get(known[0]) or shorts[known[0]]
            if param.get("type", str) is not bool and "=" not in option:
                next(rest, None)  # its value
    return None


def _refusal(task: str, given: str, options: list[str], ambiguous: list[str]) -> str:
    if ambiguous:
        return f"{task}: option {given} is ambiguous ({', '.join(ambiguous)}): write it in full"
    nearest = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
    basename = task.split(":", 1)[0]
    if nearest:
        return f"{task}: unknown option {given}: did you mean {nearest[0]}? (doit help {basename} lists its options)"
    takes = f"it takes {', '.join(options)}" if options else "it takes no options"
    return f"{task}: unknown option {given}: {takes}; doit's own options go before the task name (doit -n 4 {basename})"


def options_checked(creator: Callable[[], dict | Iterable[dict]]) -> Callable[[], dict | Iterator[dict]]:
    """Wrap a doit task creator so that an option its task does not take is refused while
    doit loads the tasks, with one line naming the nearest known option (exit code 3),
    rather than doit's dump of its option table. The task's name and params are read from
    the dict it returns, or from the first dict of a generator (the group task)."""
    default = creator.__name__.removeprefix("task_")

    def refuse(task: dict) -> None:
        line = unknown_option(task.get("basename", default), task.get("params", ()), sys.argv[1:])
        if line is not None:
            raise InvalidTask(line)

    @functools.wraps(creator)
    def create():
        made = creator()
        if isinstance(made, dict):
            refuse(made)
            return made
        return _first_checked(made, refuse)

    return create


def _first_checked(tasks: Iterable[dict], refuse: Callable[[dict], None]) -> Iterator[dict]:
    for index, task in enumerate(tasks):
        if index == 0:
            refuse(task)
        yield task
