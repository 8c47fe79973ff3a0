"""Prefill lists: fetch many assets into the cache at once, in parallel.

A list file is the old tool's prefill format: a YAML list whose items are asset names
from assets.yaml (``foo/bar.csv`` or ``/foo/bar.csv``) or ``s3://bucket/key`` URLs::

    - /foo/bar.csv
    - s3://example-bucket/example.json

`prefill` fetches them on the fetch engine (`pod_tasks.engine`: one download per
object, verified, as everywhere else). A name that is not in assets.yaml or an object
that is not in the store is *missing*: reported and counted, not fatal. Anything else
that goes wrong (damaged bytes, no network, no credentials) is a *failure*.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import yaml

from .cache import DOWNLOADED, ObjectRef
from .engine import Batch, Done
from .errors import AssetNotFound, ManifestError, PodError
from .manifest import compose_yaml
from .resolver import Project

__all__ = ["Outcome", "Summary", "read_list", "prefill", "manifest_items"]

FETCHED, CACHED, LOCAL, MISSING, FAILED = "fetched", "already cached", "local", "missing", "failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one item of a list. ``ref`` is None for local overrides and
    for items that could not be named; ``size`` is the bytes downloaded; ``error`` is
    what made a missing or failed item so (its message is ``message``)."""

    item: str
    status: str
    ref: ObjectRef | None = None
    size: int = 0
    message: str = ""
    error: PodError | None = None


@dataclass(frozen=True)
class Summary:
    """Every outcome, in the order of the list, and the wall time taken."""

    outcomes: tuple[Outcome, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def bytes(self) -> int:
        """Bytes downloaded (files already cached count nothing)."""
        return sum(o.size for o in self.outcomes)

    def line(self) -> str:
        """One line: ``N fetched, N already cached[, N local overrides], N missing[, N
        failed], BYTES bytes in S s``."""
        parts = [f"{self.count(FETCHED)} fetched", f"{self.count(CACHED)} already cached"]
        if self.count(LOCAL):
            parts.append(f"{self.count(LOCAL)} local override{'s' if self.count(LOCAL) != 1 else ''}")
        parts.append(f"{self.count(MISSING)} missing")
        if self.count(FAILED):
            parts.append(f"{self.count(FAILED)} failed")
        return f"{', '.join(parts)}; {self.bytes} bytes in {self.seconds:.2f}s"


def read_list(path: str | os.PathLike[str]) -> list[str]:
    """The items of a prefill list file, in order, without repeats.

    Raises `ManifestError` (``FILE:LINE: ...``) when the file cannot be read or is not a
    YAML list of names and ``s3://`` URLs.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path.name}:1: cannot read the list {path}: {exc}") from None
    root = compose_yaml(text, path)
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise ManifestError(
            f"{path.name}:{root.start_mark.line + 1}: a prefill list is a YAML list (`- foo/bar.csv` lines)"
        )
    items: list[str] = []
    seen: set[str] = set()
    for node in root.value:
        if not isinstance(node, yaml.ScalarNode) or not node.value.strip():
            raise ManifestError(
                f"{path.name}:{node.start_mark.line + 1}: each item is an asset name or an s3:// URL"
            )
        item = node.value.strip()
        key = item if item.startswith("s3://") else item.lstrip("/")
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


def manifest_items(project: Project) -> list[str]:
    """Every name pinned in assets.yaml (published or overridden) and every `files:` URL."""
    manifest = project.require_manifest()
    names = [p.name for p in manifest.assets.values() if p.version is not None or p.override is not None]
    return names + list(manifest.files)


def _named(project: Project, item: str) -> Outcome | ObjectRef:
    """What ``item`` names: an object to fetch, or already its outcome (not declared,
    unusable, or a local override)."""
    try:
        target = project.ref(item)
    except AssetNotFound as exc:
        return Outcome(item, MISSING, message=str(exc), error=exc)
    except PodError as exc:
        return Outcome(item, FAILED, message=str(exc), error=exc)
    if isinstance(target, Path):
        if target.is_file():
            return Outcome(item, LOCAL, message=f"local override {target}")
        gone = AssetNotFound(f"{item}: the override {target} does not exist")
        return Outcome(item, MISSING, message=str(gone), error=gone)
    return target


def _outcome(item: str, done: Done) -> Outcome:
    if isinstance(done.error, AssetNotFound):
        return Outcome(item, MISSING, done.ref, message=str(done.error), error=done.error)
    if isinstance(done.error, PodError):
        return Outcome(item, FAILED, done.ref, message=str(done.error), error=done.error)
    if done.error is not None:
        raise done.error
    assert done.fetched is not None
    if done.fetched.action == DOWNLOADED:
        return Outcome(item, FETCHED, done.ref, size=done.fetched.size)
    return Outcome(item, CACHED, done.ref)


def prefill(
    project: Project,
    items: Iterable[str],
    jobs: int | None = None,
    report: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Fetch every item into the cache on the fetch engine, ``jobs`` requests in flight
    (default: the settings', ``POD_JOBS`` or the machine's).

    ``report`` is called (in the calling thread) with each outcome as it completes.
    Never raises for one item: its outcome says what happened.
    """
    items = list(items)
    start = time.monotonic()
    outcomes: list[Outcome | None] = [None] * len(items)
    wanted: dict[ObjectRef, list[int]] = {}
    for index, item in enumerate(items):
        named = _named(project, item)
        if isinstance(named, Outcome):
            outcomes[index] = named
            if report is not None:
                report(named)
        else:
            wanted.setdefault(named, []).append(index)
    with Batch(project.cache, wanted, jobs or project.settings.jobs) as batch:
        for done in batch:
            for index in wanted[done.ref]:
                outcome = outcomes[index] = _outcome(items[index], done)
                if report is not None:
                    report(outcome)
    return Summary(tuple(o for o in outcomes if o is not None), time.monotonic() - start)
