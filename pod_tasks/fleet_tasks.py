"""doit tasks for fleets and for moving over from baiji-pod (exposed by `pod_tasks.tasks`).

``doit prefill --list needed.yaml [--jobs N]``, ``doit pack [--list needed.yaml] --out
assets.zip [--max-size MB]``, ``doit unpack ZIP...`` and ``doit import-manifest
versioned_assets.json [--store s3://bucket]``. The logic lives in `prefill`, `packs`
and `migrate`; these only map it onto doit and print what happened.
"""

from __future__ import annotations

import getopt
import os
import sys
from pathlib import Path

from doit.exceptions import TaskFailed

from .errors import PodError
from .prefill import FAILED, FETCHED, LOCAL, MISSING, Outcome, prefill, read_list
from .actions import JOBS_PARAM, current_project, guarded, jobs_of, options_checked, say
from .meter import Meter, human_size

__all__ = ["task_prefill", "task_pack", "task_unpack", "task_import_manifest"]

_LIST = {"name": "list_file", "long": "list", "type": str, "default": "",
         "help": "a YAML list of asset names and s3:// URLs (the old prefill format)"}


def _show(outcome: Outcome) -> None:
    if outcome.status == FETCHED:
        say(f"fetched {outcome.item} ({human_size(outcome.size)})")
    elif outcome.status == LOCAL:
        say(f"local {outcome.item}: {outcome.message} (nothing to fetch)")
    elif outcome.status in (MISSING, FAILED):
        say(f"{outcome.status} {outcome.item}: {outcome.message}")


def _prefill(list_file: str, jobs: int) -> TaskFailed | None:
    if not list_file:
        raise PodError("prefill: give the list to fetch: doit prefill --list needed.yaml")
    summary = prefill(current_project(), read_list(list_file), jobs_of(jobs), _show)
    say(f"prefill {list_file}: {summary.line()}")
    failed = [o for o in summary.outcomes if o.status == FAILED]
    if failed:
        return TaskFailed(f"{len(failed)} item(s) could not be fetched: {failed[0].message}")
    return None


@options_checked
def task_prefill() -> dict:
    """Fetch a list of names and s3:// URLs in parallel: doit prefill --list needed.yaml [--jobs N]."""
    return {"actions": [guarded(_prefill)], "params": [_LIST, JOBS_PARAM], "uptodate": [False], "verbosity": 2}


def _pack(list_file: str, out: str, max_size: float, jobs: int) -> None:
    from .packs import collect, part_paths, write_packs

    project = current_project()
    items = read_list(list_file) if list_file else None
    files = collect(project, items, jobs_of(jobs), _show)
    meter = Meter(len(files), label="pack") if sys.stdout.isatty() and files else None
    try:
        written = write_packs(files, Path(out), max_size or None,
                              meter and (lambda f: (meter.add(f.size, f.size), meter.done())))
    finally:
        if meter is not None:
            meter.close()
    for path, group in written:
        say(f"{path}: {len(group)} file(s), {human_size(sum(f.size for f in group))}")
        for f in group:
            say(f"  {f.rel}")
    stale = part_paths(Path(out), len(written) + 1, bool(max_size))[-1]
    if max_size and stale.exists():
        say(f"warning: {stale} is left from an earlier pack, not this one: delete it before shipping the parts")


@options_checked
def task_pack() -> dict:
    """Zip cached files and records for offline machines: doit pack [--list L.yaml] --out assets.zip [--max-size MB]."""
    return {
        "actions": [guarded(_pack)],
        "params": [
            _LIST,
            {"name": "out", "long": "out", "type": str, "default": "assets.zip",
             "help": "the zip to write (with --max-size: OUT-1.zip, OUT-2.zip, ...)"},
            {"name": "max_size", "long": "max-size", "type": float, "default": 0,
             "help": "split into zips of at most this many MB of files, largest first"},
            JOBS_PARAM,
        ],
        "uptodate": [False],
        "verbosity": 2,
    }


def _unpack(zips: list[str]) -> None:
    from .packs import unpack

    if not zips:
        raise PodError("unpack: name the zips to load: doit unpack assets.zip [more.zip ...]")
    project = current_project()
    entries = unpack(project, [Path(z) for z in zips])
    old = sum(1 for e in entries if e.record is None)
    note = f" ({old} without records, from an old pack: checked with the store on first use)" if old else ""
    total = sum(e.info.file_size for e in entries)
    say(f"unpacked {len(entries)} file(s), {human_size(total)}, into {project.cache.root}{note}")


@options_checked
def task_unpack() -> dict:
    """Load asset packs into the cache, verified, for use with no network: doit unpack ZIP..."""
    return {"actions": [guarded(_unpack)], "pos_arg": "zips", "uptodate": [False], "verbosity": 2}


def _import_manifest(paths: list[str], store: str, manifest: str) -> TaskFailed | None:
    from .migrate import import_manifest

    try:  # doit stops reading options at the first path: read the ones after it
        late, paths = getopt.gnu_getopt(paths, "", ["store=", "manifest="])
    except getopt.GetoptError as exc:
        raise PodError(f"import-manifest: {exc}") from None
    for option, value in late:
        store, manifest = (value, manifest) if option == "--store" else (store, value)
    if len(paths) != 1:
        raise PodError("import-manifest: name one old manifest: doit import-manifest versioned_assets.json")
    result = import_manifest(paths[0], manifest or _manifest_path(), store or None)
    verb = "created" if result.created else "updated"
    if result.added:
        say(f"{result.path}: {verb}, {len(result.added)} name(s) added")
    for line in result.conflicts + result.problems:
        say(f"not imported: {line}")
    left = len(result.conflicts) + len(result.problems)
    say(f"{len(result.added)} added, {len(result.unchanged)} already pinned the same, {left} not imported")
    if left:
        return TaskFailed(f"{left} entr{'y' if left == 1 else 'ies'} not imported (listed above): fix them by hand")
    return None


def _manifest_path() -> str:
    """The assets.yaml in use (POD_ASSETS or the nearest one), else ./assets.yaml."""
    from .manifest import FILENAME, find_manifest

    found = os.environ.get("POD_ASSETS") or find_manifest()
    return str(found or FILENAME)


@options_checked
def task_import_manifest() -> dict:
    """Merge baiji-pod's versioned_assets.json into assets.yaml: doit import-manifest FILE.json [--store s3://b]."""
    return {
        "basename": "import-manifest",
        "actions": [guarded(_import_manifest)],
        "params": [
            {"name": "store", "long": "store", "type": str, "default": "",
             "help": "the store of the versions (written as `store:` when assets.yaml has none)"},
            {"name": "manifest", "long": "manifest", "type": str, "default": "",
             "help": "the assets.yaml to merge into (default: the one in use, else ./assets.yaml)"},
        ],
        "pos_arg": "paths",
        "uptodate": [False],
        "verbosity": 2,
    }
