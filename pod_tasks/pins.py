"""Pins over time: ``doit update`` moves them to the store's latest version, ``doit
lock`` gives each its sha256 and size.

Both take a sha256 (and a size) from verified bytes only: the version (or the `files:` object) is
fetched into the cache, verified by the strongest check the store allows, and hashed
there (`AssetCache.verified_sha256`), never copied from the store's word. Both rewrite
only the entries they change, as publish does (`pod_tasks.manifest.set_pins`: one
atomic replacement of assets.yaml, every other byte kept), and a dry run changes
nothing, in assets.yaml or in the cache. Which version a pin moves to is the pure rule
`pod_tasks.versions.update_target`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cache import ObjectRef
from .catalog import store_versions
from .errors import AssetNotFound, IntegrityError, PodError
from .manifest import set_pins
from .prefill import CACHED, FETCHED, prefill
from .resolver import Project
from .versions import Version, update_target

__all__ = ["Update", "update", "Lock", "lock"]


@dataclass(frozen=True)
class Update:
    """What ``update`` did (or, with ``dry_run``, would do) to the pin of ``name``:
    ``pinned`` -> ``to`` (None: it stays), with the sha256 of ``to``'s bytes (None on a
    dry run); ``newest`` is the highest version in the store, whatever its major."""

    name: str
    pinned: Version
    to: Version | None
    newest: Version | None
    sha256: str | None = None


def update(project: Project, name: str, *, major: bool = False, dry_run: bool = False) -> Update | None:
    """Move the pin of ``name`` to its `update_target` among the store's versions and pin
    it as ``{version, sha256, size}``; None when the pin names no version (an override, or not
    published yet). Raises `AssetNotFound` (not in assets.yaml, no version in the store,
    or the new version cannot be fetched), `IntegrityError`, `OfflineError`."""
    manifest = project.require_manifest()
    pin = manifest.pin(name)
    if pin.version is None:
        return None
    versions = store_versions(project, pin.name)
    if not versions:
        raise AssetNotFound(f"{pin.name}: the store has no version of it (pinned {pin.version}): check `store:`")
    to = update_target(pin.version, versions, major)
    result = Update(pin.name, pin.version, to, max(versions, default=None))
    if to is None or dry_run:
        return result
    sha256, size = _verified(project, project.versioned_ref(pin.name, to))
    set_pins(manifest.path, {pin.name: (to, sha256, size)})
    return Update(pin.name, pin.version, to, result.newest, sha256)


def _verified(project: Project, ref: ObjectRef, check: bool = False) -> tuple[str, int]:
    """The sha256 and size of ``ref``'s verified bytes in the cache (see
    `AssetCache.verified_sha256`, which ``check`` is passed to)."""
    sha256 = project.cache.verified_sha256(ref, check=check)
    record = project.cache.record(ref)
    if record is None or record.sha256 != sha256:
        raise IntegrityError(f"{ref}: the cached file changed while it was read: run again")
    return sha256, record.size


@dataclass
class Lock:
    """What ``lock`` did: the pins and `files:` URLs it gave a sha256 (``locked``: name or
    URL -> sha256; a pin gets its size too), how many had them already, what it left alone (overrides, names not
    published), and the entries it could not lock (one line each)."""

    locked: dict[str, str] = field(default_factory=dict)
    already: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def lock(project: Project, jobs: int | None = None) -> Lock:
    """Give every pin that names a version its sha256 and size (a pin with its sha256
    but no size gets the size of bytes that match it), and every `files:` entry its sha256, fetching
    what is not cached on the fetch engine (``jobs`` requests in flight). A `files:`
    object (mutable) is checked with the store first, so its current bytes are locked.
    What could be locked is written even when other entries failed (listed in ``failed``;
    running it again finishes the job)."""
    manifest = project.require_manifest()
    result = Lock()
    names = []
    for pin in manifest.assets.values():
        if pin.version is None:
            result.skipped += 1
        elif pin.sha256 is not None and pin.size is not None:
            result.already += 1
        else:
            names.append(pin.name)
    urls = {url: None for url in manifest.files if url not in manifest.file_sha256}
    result.already += len(manifest.file_sha256)
    pins: dict[str, tuple[Version, str, int]] = {}
    files: dict[str, str] = {}
    for outcome in prefill(project, [*names, *urls], jobs).outcomes:
        if outcome.status not in (FETCHED, CACHED):
            result.failed.append(outcome.message)
            continue
        assert outcome.ref is not None
        is_url = outcome.item in urls
        try:
            sha256, size = _verified(project, outcome.ref, check=is_url and outcome.status == CACHED)
        except PodError as exc:
            result.failed.append(str(exc))
            continue
        if is_url:
            files[outcome.item] = sha256
        else:
            pin = manifest.assets[outcome.item]
            assert pin.version is not None
            pins[outcome.item] = (pin.version, sha256, size)
        result.locked[outcome.item] = sha256
    if pins or files:
        set_pins(manifest.path, pins, files)
    return result
