"""Copy every pinned file out of the cache into a folder, as ``DEST/<name>``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from .cache import ObjectRef
from .records import staged
from .engine import Batch
from .names import check_relative_key
from .resolver import Project
from .store import CHUNK

__all__ = ["sync", "copy_into"]


def sync(project: Project, dest: Path) -> Iterator[tuple[str, Path]]:
    """Resolve each pinned name (fetching every miss at once, on the fetch engine) and
    copy it to ``dest/<name>``.

    Unpublished names are skipped. Each copy is written to a temporary file and renamed
    (the cache's own `staged`), so ``dest`` never holds a partial file. Yields (name,
    copied path).
    """
    dest = dest.absolute()
    pins = [p for p in project.require_manifest().assets.values() if p.version is not None or p.override is not None]
    targets = {pin.name: project.pin_ref(pin) for pin in pins}
    with Batch(project.cache, [t for t in targets.values() if isinstance(t, ObjectRef)], project.settings.jobs) as batch:
        for name, target in targets.items():
            source = batch.wait(target).path if isinstance(target, ObjectRef) else Path(project.resolve(name))
            copy = dest / check_relative_key(name)
            copy_into(source, copy)
            yield name, copy


def copy_into(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (its folder created): through a temporary file in
    that folder, renamed into place (the cache's own `staged`), so ``target`` is never
    partial."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as data, staged(target) as out:
        shutil.copyfileobj(data, out, CHUNK)
