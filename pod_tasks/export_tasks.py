"""The doit task that makes a mirror (exposed by `pod_tasks.tasks`):
``doit export --dest DIR [--all-versions] [--jobs N]``. The logic lives in
`pod_tasks.export`; this maps it onto doit and prints what happened."""

from __future__ import annotations

from pathlib import Path

from doit.exceptions import TaskFailed

from .actions import JOBS_PARAM, current_project, guarded, jobs_of, options_checked, say
from .errors import PodError
from .meter import human_size

__all__ = ["task_export"]


def _export(dest: str, all_versions: bool, jobs: int) -> TaskFailed | None:
    from .export import export

    if not dest:
        raise PodError("export: name the folder to write the mirror into: doit export --dest DIR")
    folder = Path(dest)
    result = export(current_project(), folder, all_versions, jobs_of(jobs),
                    lambda key, size: say(f"exported {key} ({human_size(size)})"))
    for label, message in result.failed:
        say(f"failed {label}: {message}")
    size = human_size(sum(size for _, size in result.copied))
    failed = f"; {len(result.failed)} failed" if result.failed else ""
    say(f"exported {len(result.copied)} file(s), {size} into {folder}; {result.present} already there{failed}")
    if result.failed:
        return TaskFailed(f"{len(result.failed)} version(s) could not be exported: {result.failed[0][1]}")
    return None


@options_checked
def task_export() -> dict:
    """Write every pinned version (--all-versions: every version in the store) into a folder to serve as a mirror."""
    return {
        "actions": [guarded(_export)],
        "params": [
            {"name": "dest", "long": "dest", "type": str, "default": "",
             "help": "the folder to write into, as DIR/<key in the store> (a web server or CDN then serves it)"},
            {"name": "all_versions", "long": "all-versions", "type": bool, "default": False,
             "help": "every version of every name in the store, not only the pinned ones"},
            JOBS_PARAM,
        ],
        "uptodate": [False],
        "verbosity": 2,
    }
