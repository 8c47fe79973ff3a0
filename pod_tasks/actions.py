"""What every doit task shares: the project it acts on, how it prints a line, how a
failure becomes one clean line, the ``--jobs`` option, and how a task creator makes a
group of ``basename:NAME`` subtasks. `pod_tasks.tasks`, `pod_tasks.fleet_tasks` and
`pod_tasks.pin_tasks` all build on it (none imports another's internals)."""

from __future__ import annotations

import contextlib
import difflib
import functools
import getopt
import sys
from typing import Callable, Iterable, Iterator, Sequence

from doit.exceptions import InvalidTask, TaskFailed

from . import stdout
from .config import parse_jobs
from .errors import AssetNotFound, PodError
from .manifest import Manifest
from .meter import Meter
from .resolver import Project

__all__ = [
    "current_project", "say", "guarded", "JOBS_PARAM", "jobs_of", "options_checked", "unknown_option",
    "loading", "group", "asked_names", "subtasks", "group_options",
]


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
    (above the live progress line, when one shows); nothing once stdout's reader has
    gone (`pod_tasks.stdout`)."""
    if Meter.active is not None:
        Meter.active.write(line)
        return
    stdout.write(line + "\n")


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


# --- groups of subtasks ---------------------------------------------------------------

@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Wrap a task creator: a `PodError` while doit loads the tasks (assets.yaml
    unreadable or invalid, an unusable name) stops every doit command, ``list`` and ``help``
    included, before anything runs: the one ``assets.yaml:LINE:`` line on stderr and
    exit code 3, no traceback. (`InvalidTask` rather than `InvalidDodoFile`: ``doit
    help`` hides the latter behind its general usage text.) Until a run of tasks begins,
    a closed stdout ends doit at once and silently (`stdout.end_on_closed_pipe`): what
    prints then is doit's own ``list``, ``help`` or ``info``."""
    stdout.end_on_closed_pipe()
    try:
        yield
    except PodError as exc:
        raise InvalidTask(str(exc)) from None


def _require_manifest() -> None:
    current_project().require_manifest()


def group(basename: str, doc: str, **extra: object) -> tuple[Manifest | None, dict]:
    """The manifest and the group task ``basename`` of its subtasks (call inside `loading`).

    With no assets.yaml at all the manifest is None and the task fails when run, saying
    to create one, while ``doit list`` and tasks that need none (``doit import-manifest``,
    ``doit cache``) still work. An invalid assets.yaml raises.
    """
    manifest = current_project().manifest
    if manifest is None:
        return None, {"basename": basename, "doc": doc, "actions": [guarded(_require_manifest)], "verbosity": 2, **extra}
    return manifest, {"basename": basename, "name": None, "doc": doc, **extra}



def asked_names(basename: str) -> set[str]:
    """The NAMEs of the ``basename:NAME`` arguments on doit's command line."""
    return {arg.split(":", 1)[1] for arg in sys.argv[1:] if arg.startswith(f"{basename}:") and "*" not in arg}


def subtasks(basename: str, manifest: Manifest, subtasks: Iterable[dict]) -> Iterator[dict]:
    """``subtasks`` as they are, and for the ``basename:NAME`` arguments on the command line:

    - ``basename:/NAME`` (a leading ``/`` is optional in names, as everywhere else) gets
      an alias; only the names asked for, so ``doit list --all`` shows each name once.
      An alias of a task with targets depends on it (two tasks cannot share a target);
      any other alias is a copy, so that its options (``publish``) reach it.
    - a NAME that assets.yaml does not declare raises `AssetNotFound`, one line naming
      it and what to do (instead of doit's "Invalid parameter" text).
    """
    asked = asked_names(basename)
    made: set[str] = set()
    for task in subtasks:
        name = task["name"]  # read before doit takes the dict over
        copy = {**task, "name": "/" + name}
        made.update((name, copy["name"]))
        yield task
        if copy["name"] in asked:
            if "targets" in copy:
                yield {"name": copy["name"], "actions": None, "task_dep": [f"{basename}:{name}"], "doc": copy["doc"],
                       "params": copy.get("params", [])}
            else:
                yield copy
    for name in sorted(asked - made):
        if name.startswith("s3://") and name in manifest.files:
            raise AssetNotFound(f"{basename}:{name}: an object under `files:` is used as it is, not versioned: "
                                f"{basename} takes a name under `assets:` (e.g. doit {basename}:foo/bar.csv)")
        if name.startswith("s3://"):
            raise AssetNotFound(f"{basename}:{name}: not under `files:` in {manifest.path}: add it there first")
        try:
            manifest.pin(name)
        except AssetNotFound as exc:
            raise AssetNotFound(f"{basename}:{name}: {exc}") from None


def group_options(basename: str, params: Sequence[dict], argv: Sequence[str]) -> dict[str, object]:
    """The options ``argv`` (doit's command line) gives to the group task ``basename``
    itself (``doit update --major``): doit gives them to the group, which runs no action,
    and each subtask gets its defaults, so a subtask reads them here. Read as doit reads
    them (getopt: up to the first argument that is not an option); long options only."""
    if basename not in argv:
        return {}
    longs = {p["long"]: p for p in params if "long" in p}
    spec = [name if p.get("type", str) is bool else f"{name}=" for name, p in longs.items()]
    try:
        given, _ = getopt.getopt(list(argv[list(argv).index(basename) + 1:]), "", spec)
    except getopt.GetoptError:  # refused while doit loaded the tasks (`options_checked`)
        return {}
    return {longs[o[2:]]["name"]: True if longs[o[2:]].get("type", str) is bool else v for o, v in given}
