"""doit tasks that move pins and lock them (exposed by `pod_tasks.tasks`).

``doit update[:NAME] [--major] [--dry-run]`` and ``doit lock [--jobs N]``. The logic
lives in `pod_tasks.pins`; these only map it onto doit and print what happened.
"""

from __future__ import annotations

import sys
import threading
from typing import Iterator

from doit.exceptions import TaskFailed

from .actions import (
    JOBS_PARAM, asked_names, current_project, group, group_options, guarded, jobs_of, loading, options_checked, say,
    subtasks,
)
from .names import normalise_name

__all__ = ["task_update", "task_lock"]

UPDATE_PARAMS = [
    {"name": "major", "long": "major", "type": bool, "default": False,
     "help": "move to the latest version of any major (default: the latest of the pinned major)"},
    {"name": "dry_run", "long": "dry-run", "type": bool, "default": False,
     "help": "say what would change; change nothing"},
]


class _Tally:
    """What the subtasks of one ``doit update`` (every pin, none named) did, for its last
    line: the subtask that completes the count says it."""

    def __init__(self, total: int) -> None:
        self.total, self.moved, self.done = total, 0, 0
        self._lock = threading.Lock()

    def add(self, moved: bool, dry_run: bool) -> None:
        with self._lock:
            self.moved += moved
            self.done += 1
            if self.done != self.total:
                return
        if not self.moved:
            say("update: every pin is already the latest in the store")
        else:
            say(f"update: {self.moved} pin(s) {'would move' if dry_run else 'moved'}, "
                f"{self.total - self.moved} already the latest")


def _update(name: str, asked: bool, tally: _Tally, major: bool, dry_run: bool) -> None:
    from .pins import update

    given = group_options("update", UPDATE_PARAMS, sys.argv[1:])  # `doit update --major`: given to the group
    major, dry_run = major or bool(given.get("major")), dry_run or bool(given.get("dry_run"))
    result = update(current_project(), name, major=major, dry_run=dry_run)
    tally.add(result is not None and result.to is not None, dry_run)
    if result is None:
        if asked:
            say(f"{name}: not pinned to a version (an override, or not published yet): nothing to update")
    elif result.to is not None:
        say(f"{name}: {result.pinned} -> {result.to}" + (" (dry run: assets.yaml unchanged)" if dry_run else ""))
    elif result.newest is not None and result.newest > result.pinned and not major:
        say(f"{name}: {result.pinned} is the latest {result.pinned.major}.x; {result.newest} is in the store "
            f"(doit update:{name} --major)")
    elif asked:
        say(f"{name}: {result.pinned} is the latest")


@options_checked
def task_update() -> Iterator[dict]:
    """Move pins to the latest version in the store: doit update[:NAME] [--major] [--dry-run]."""
    with loading():
        manifest, grouped = group("update", "Move pins to the latest version in the store (within their major; "
                                  "--major: any): doit update[:NAME] [--major] [--dry-run].", params=UPDATE_PARAMS)
        yield grouped
        if manifest is not None:
            asked = {normalise_name(n) for n in asked_names("update") if not n.startswith("s3://")}
            tally = _Tally(0 if asked else len(manifest.assets))  # NAMEs asked each say their own line
            yield from subtasks("update", manifest, ({
                "name": name,
                "actions": [(guarded(_update), [name, name in asked, tally])],
                "params": UPDATE_PARAMS,
                "uptodate": [False],
                "doc": f"move {name} to the latest version in the store",
                "verbosity": 2,
            } for name in manifest.assets))


def _lock(jobs: int) -> TaskFailed | None:
    from .pins import lock

    project = current_project()
    result = lock(project, jobs_of(jobs))
    for item, sha256 in result.locked.items():
        say(f"{item}: sha256 {sha256}")
    for line in result.failed:
        say(f"not locked: {line}")
    left = f", {result.skipped} override(s) or unpublished name(s) left as they are" if result.skipped else ""
    say(f"lock: {len(result.locked)} locked, {result.already} already locked, {len(result.failed)} failed{left}"
        + (f"; {project.require_manifest().path.name} updated" if result.locked else ""))
    if result.failed:
        return TaskFailed(f"{len(result.failed)} entr{'y' if len(result.failed) == 1 else 'ies'} could not be "
                          f"locked (listed above): {result.failed[0]}")
    return None


@options_checked
def task_lock() -> dict:
    """Give every pin its sha256 and size, and every `files:` entry its sha256, from verified
    bytes: doit lock [--jobs N]."""
    with loading():
        current_project()
        return {"actions": [guarded(_lock)], "params": [JOBS_PARAM], "uptodate": [False], "verbosity": 2}
