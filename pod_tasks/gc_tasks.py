"""``doit gc [--max-size SIZE] [--older-than AGE] [--dry-run]`` (exposed by `pod_tasks.tasks`).

What may go is decided in `pod_tasks.gc`; this maps it onto doit and prints one line per
file removed (or kept although chosen), per project forgotten, and a summary with the
space freed.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from .actions import current_project, guarded, options_checked, say
from .errors import PodError
from .meter import human_size

__all__ = ["task_gc"]

T = TypeVar("T")

_PARAMS = [
    {"name": "max_size", "long": "max-size", "type": str, "default": "",
     "help": "then remove the least recently used files until the cache fits (20GiB, 500MB, bytes); "
             "never one this assets.yaml pins"},
    {"name": "older_than", "long": "older-than", "type": str, "default": "",
     "help": "remove only unpinned files unused for this long (30d, 2w, 12h), and leftovers that old"},
    {"name": "dry_run", "long": "dry-run", "type": bool, "default": False,
     "help": "say what would be removed; change nothing"},
]


def _gc(max_size: str, older_than: str, dry_run: bool) -> None:
    from .gc import collect, parse_age, parse_size

    limit = _option(parse_size, max_size, "--max-size")
    age = _option(parse_age, older_than, "--older-than")
    project = current_project()
    done = collect(project, limit, age, dry_run)
    removed, forgot = ("would remove", "would forget") if dry_run else ("removed", "forgot")
    for drop in done.removed:
        say(f"{removed} {drop.file} ({human_size(drop.file.size)}): {drop.why}; from {drop.file.origin}")
    for drop, why in done.spared:
        say(f"kept {drop.file}: {why}")
    for path in done.forgotten:
        say(f"{forgot} the project {path}: its assets.yaml is gone")
    count = len(done.removed)
    if dry_run:
        say(f"gc --dry-run: would remove {count} file(s), would free {human_size(done.freed)}; "
            f"the cache would hold {done.files} file(s), {human_size(done.size)} ({project.cache.root})"
            f"{project.cache.untouched()}")
    else:
        say(f"gc: removed {count} file(s), freed {human_size(done.freed)}; "
            f"the cache holds {done.files} file(s), {human_size(done.size)} ({project.cache.root})"
            f"{project.cache.untouched()}")
    if done.over:
        pinned = project.manifest.path if project.manifest else "no project"
        say(f"gc: the cache is still {human_size(done.over)} over --max-size {max_size}: what is left is "
            f"pinned by {pinned} or in use; raise --max-size or unpin some assets")


def _option(parse: Callable[[str], T], text: str, option: str) -> T | None:
    """``text`` parsed by ``parse``; None when not given; one `PodError` line naming ``option`` when bad."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise PodError(f"gc: {option}: {exc}") from None


@options_checked
def task_gc() -> dict:
    """Remove cached files no project pins: doit gc [--max-size SIZE] [--older-than AGE] [--dry-run]."""
    return {"actions": [guarded(_gc)], "params": _PARAMS, "uptodate": [False], "verbosity": 2}
