"""Copy every pinned file out of the cache into a folder, as ``DEST/<name>``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from .cache import staged
from .names import check_relative_key
from .resolver import Project
from .store import CHUNK

__all__ = ["sync"]


def sync(project: Project, dest: Path) -> Iterator[tuple[str, Path]]:
    """Resolve each pinned name (downloading on a miss) and copy it to ``dest/<name>``.

    Unpublished names are skipped. Each copy is written to a temporary file and renamed
    (the cache's own `staged`), so ``dest`` never holds a partial file. Yields (name,
    copied path).
    """
    dest = dest.absolute()
    for pin in project.require_manifest().assets.values():
        if pin.version is None and pin.override is None:
            continue
        source = Path(project.resolve(pin.name))
        target = dest / check_relative_key(pin.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as data, staged(target) as out:
            shutil.copyfileobj(data, out, CHUNK)
        yield pin.name, target
