"""``pod-tasks TASK ...``: every pod-tasks doit task from any folder of a project.

The project is the nearest ``assets.yaml`` at or above the current folder. Its tasks are
the ``dodo.py`` beside it when there is one (its own tasks included), else pod-tasks'
own (`pod_tasks.tasks`): a project needs no ``dodo.py``. doit's state stays in the
project's folder (``.doit.db`` beside ``assets.yaml``, as ``doit`` run there keeps it),
the current folder is left as it is (so relative paths typed in options mean what they
say where they were typed), and the options, output and exit codes are doit's.

Two forms doit itself does not take are read here:

- ``pod-tasks publish NAME --minor`` is ``doit publish:NAME --minor``: a word after a
  task that has one subtask per asset (fetch, publish, versions, update) that is neither
  an option nor a task names an asset of it;
- a task name that is not one gets the nearest names (``did you mean fetch?``) and
  exit code 3, as doit's own refusals do.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator, Sequence

from .errors import PodError
from .manifest import FILENAME, find_manifest

__all__ = ["run_tasks", "GROUPS", "UsageError"]

#: The tasks with one subtask per asset: ``TASK NAME`` is ``TASK:NAME``.
GROUPS = ("fetch", "publish", "versions", "update")
#: doit's own commands (``pod-tasks list``, ``pod-tasks clean fetch``, ...).
COMMANDS = ("run", "list", "info", "clean", "forget", "ignore", "dumpdb", "strace", "reset-dep", "help",
            "tabcompletion")
#: The tasks whose every later word is theirs (doit's ``pos_arg``).
POSITIONAL = ("unpack", "import-manifest", "cache")
DODO = "dodo.py"
#: doit's exit code for a mistake found before any task runs.
USAGE = 3


class UsageError(PodError):
    """A command line that names no task of the project (the message says the nearest)."""


def _load_dodo(path: Path) -> ModuleType:
    """``path`` imported as doit imports a dodo file (its folder first on ``sys.path``)."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("dodo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _namespace(folder: Path) -> dict[str, object]:
    """The project's tasks and DOIT_CONFIG, its ``dep_file`` anchored in ``folder``."""
    dodo = folder / DODO
    if dodo.is_file():
        module = _load_dodo(dodo)
    else:
        from . import tasks as module
    namespace = {name: getattr(module, name) for name in dir(module)}
    config = dict(namespace.get("DOIT_CONFIG") or {})
    dep_file = Path(str(config.get("dep_file", ".doit.db")))
    config["dep_file"] = str(dep_file if dep_file.is_absolute() else folder / dep_file)
    namespace["DOIT_CONFIG"] = config
    return namespace


def _task_names(namespace: dict[str, object]) -> set[str]:
    """The basenames of the task creators in ``namespace`` (``task_ls_remote`` is
    ``ls-remote``, as its creator's ``basename`` says)."""
    from .tasks import __all__ as ours

    names = {name[5:] for name in namespace if name.startswith("task_")}
    renamed = {name[5:] for name in ours if name.startswith("task_") and "_" in name[5:]}
    return (names - renamed) | {name.replace("_", "-") for name in names & renamed}


def valued_options() -> set[str]:
    """The options that take the next word as their value: doit's own (``-n 4``) and
    those of the group tasks (``--message TEXT``, ``-m TEXT``)."""
    from doit.cmd_run import Run

    from .actions import JOBS_PARAM
    from .pin_tasks import UPDATE_PARAMS
    from .tasks import PUBLISH_PARAMS

    options = [*Run.base_options, *Run.cmd_options, *PUBLISH_PARAMS, *UPDATE_PARAMS, JOBS_PARAM]
    valued = [o for o in options if o.get("type", str) is not bool]
    return {f"--{o['long']}" for o in valued if o.get("long")} | {f"-{o['short']}" for o in valued if o.get("short")}


def translate(argv: Sequence[str], tasks: set[str]) -> list[str]:
    """doit's command line for ``argv``: ``TASK NAME...`` becomes ``TASK:NAME...`` (the
    bare group gives way to its subtasks: ``publish --minor x`` is ``publish:x --minor``). A word that is none of an option, its value, a task, ``NAME=VALUE``, or a
    doit command raises `UsageError` naming the nearest task. After a doit command other
    than ``run``, or a task that takes positional arguments, words pass as they are."""
    valued = valued_options()
    out: list[str] = []
    group: str | None = None
    group_at: int | None = None  # where the group's bare name stands, until a NAME takes it
    verbatim = False
    for word in argv:
        if verbatim or word.startswith("-") or (out and out[-1] in valued):
            out.append(word)
            continue
        base = word.split(":", 1)[0]
        verbatim = (not out and word in COMMANDS[1:]) or base in POSITIONAL
        if base in tasks or (not out and word in COMMANDS) or ("=" in word and ":" not in word):
            out.append(word)
            group = base if base in GROUPS and ":" not in word else None
            group_at = len(out) - 1 if group else None
        elif group is not None and group_at is not None:
            out[group_at], group_at = f"{group}:{word}", None  # its options stay after it
        elif group is not None:
            out.append(f"{group}:{word}")
        else:
            near = _nearest(base, sorted(tasks)) or _nearest(base, COMMANDS)
            hint = f": did you mean {' or '.join(near)}?" if near else ": `pod-tasks list` shows the tasks"
            raise UsageError(f"{word!r} is not a task of this project{hint}")
    return out


def _nearest(word: str, names: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(word, names, n=3, cutoff=0.6)


@contextmanager
def _argv(args: list[str]) -> Iterator[None]:
    """``sys.argv`` as doit's own command line would be (the tasks read their options
    from it while they load)."""
    saved = sys.argv
    sys.argv = ["doit", *args]
    try:
        yield
    finally:
        sys.argv = saved


def run_tasks(argv: Sequence[str], start: Path | None = None) -> int:
    """Run doit on the project at or above ``start`` (default: the current folder) with
    ``argv`` (a `UsageError` or `PodError` is raised before any task runs); doit's exit code."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    manifest = find_manifest(start)
    if manifest is None:
        folder = (start or Path.cwd()).absolute()
        raise PodError(f"no {FILENAME} in {folder} or any folder above it: run `pod-tasks init` to start a project")
    namespace = _namespace(manifest.parent)
    args = translate(list(argv), _task_names(namespace))
    with _argv(args):
        return DoitMain(ModuleTaskLoader(namespace), config_filenames=()).run(args)
