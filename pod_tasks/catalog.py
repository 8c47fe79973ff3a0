"""What the store holds: the versions of a name, and every name. Reads only.

Keys are filtered as they are read: a key that is not a safe relative path (a hostile
listing's ``../../x.1.0.0.csv``) is skipped, so nothing built on these answers can
reach outside its folder.
"""

from __future__ import annotations

import posixpath
from typing import Protocol

from .errors import ManifestError, UnsafePathError
from .manifest import Manifest
from .names import check_relative_key, name_of_key, version_of_key
from .store import Store
from .versions import Version

__all__ = ["Project", "store_versions", "latest_version", "store_names"]


class Project(Protocol):
    """What the catalog reads of a project (`pod_tasks.resolver.Project` is one): its
    store and the prefix of its keys there."""

    store: Store | None
    prefix: str

    def require_manifest(self) -> Manifest: ...


def _safe_keys(project: Project, prefix: str):
    store = project.store
    if store is None:
        manifest = project.require_manifest()
        raise ManifestError(
            f"{manifest.path.name}:1: no `store:`: add `store: s3://bucket` or `store: path/to/folder`"
        )
    for key in store.list_keys(project.prefix + prefix):
        rel = key[len(project.prefix):]
        try:
            yield check_relative_key(rel, "store key")
        except UnsafePathError:
            continue


def store_versions(project: Project, name: str) -> list[Version]:
    """The versions of ``name`` present in the store, oldest first (semver order)."""
    folder, base = posixpath.split(name)
    stem = posixpath.splitext(base)[0]
    prefix = posixpath.join(folder, stem + ".")
    found = {v for key in _safe_keys(project, prefix) if (v := version_of_key(name, key)) is not None}
    return sorted(found)


def latest_version(project: Project, name: str) -> Version | None:
    """The highest version of ``name`` in the store, or None when it has none."""
    versions = store_versions(project, name)
    return versions[-1] if versions else None


def store_names(project: Project) -> dict[str, list[Version]]:
    """Every versioned name in the store with its versions, names sorted."""
    names: dict[str, list[Version]] = {}
    for key in _safe_keys(project, ""):
        parsed = name_of_key(key)
        if parsed is not None:
            names.setdefault(parsed[0], []).append(parsed[1])
    return {name: sorted(names[name]) for name in sorted(names)}

