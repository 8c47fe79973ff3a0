"""Making a mirror: versions of the store written into a folder in the store's own key
layout (``DIR/foo/bar.1.2.5.csv``, without the store's prefix), for any static web
server, S3 website bucket or CDN origin to serve as a mirror (`pod_tasks.mirrors`).

Contracts: every file written is whole and verified (its bytes come through the cache,
checked as any fetch is, and are renamed into place); a file already in the folder is
left as it is and not fetched again, so a second run copies only what is new; nothing
is written outside the folder (every key is checked) nor through a symlink inside it (a
version whose way there holds one is named and not written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .cache import ObjectRef
from .catalog import store_names
from .engine import Batch
from .errors import PodError, UnsafePathError
from .names import check_relative_key
from .resolver import Project
from .sync import copy_into

__all__ = ["Exported", "export", "versions_to_export"]


@dataclass
class Exported:
    """What `export` did: the keys it wrote (with their sizes), how many were already
    there, and the objects it could not fetch (label, one-line reason)."""

    copied: list[tuple[str, int]] = field(default_factory=list)
    present: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def versions_to_export(project: Project, all_versions: bool = False) -> list[ObjectRef]:
    """Every pinned version (local overrides, ``s3://`` overrides and unpublished names
    have none), and with ``all_versions`` every version of every name in the store
    (with its pinned sha256, when it is the pinned one); each once, pins first."""
    manifest = project.require_manifest()
    refs = [project.versioned_ref(p.name, p.version, p.sha256, p.size)
            for p in manifest.assets.values() if p.version is not None]
    if all_versions:
        for name, versions in store_names(project).items():
            refs += [project.ref(name, version) for version in versions]
    by_key: dict[str, ObjectRef] = {}
    for ref in refs:
        by_key.setdefault(ref.key, ref)  # a pin's own (with its sha256) comes first
    return list(by_key.values())


def export(
    project: Project, dest: Path, all_versions: bool = False, jobs: int | None = None,
    on_copied: Callable[[str, int], None] | None = None,
) -> Exported:
    """Write `versions_to_export` into ``dest`` (created if needed) as ``dest/<key>``,
    fetching the ones not there yet on the fetch engine (``jobs`` at once); calls
    ``on_copied(key, size)`` after each file written."""
    dest = dest.absolute()
    result = Exported()
    wanted: dict[ObjectRef, Path] = {}
    for ref in versions_to_export(project, all_versions):
        target = dest / check_relative_key(ref.key[len(project.prefix):], "store key")
        try:
            _no_link_on_the_way(dest, target)
        except UnsafePathError as exc:
            result.failed.append((str(ref), str(exc)))
            continue
        if target.is_file():
            result.present += 1
        else:
            wanted[ref] = target
    with Batch(project.cache, wanted, jobs or project.settings.jobs) as batch:
        for done in batch:
            if isinstance(done.error, PodError):
                result.failed.append((str(done.ref), str(done.error)))
                continue
            if done.error is not None:
                raise done.error  # a bug, not a failure of this object
            target = wanted[done.ref]
            copy_into(done.fetched.path, target)
            key = target.relative_to(dest).as_posix()
            result.copied.append((key, target.stat().st_size))
            if on_copied is not None:
                on_copied(key, target.stat().st_size)
    return result


def _no_link_on_the_way(dest: Path, target: Path) -> None:
    """Raise `UnsafePathError` when a folder between ``dest`` and ``target``, or
    ``target`` itself, is a symlink (``dest`` itself is the user's to choose)."""
    current = dest
    for part in target.relative_to(dest).parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(f"{current} is a symlink: export writes nothing through links: remove it, "
                                  f"or export into another folder")
