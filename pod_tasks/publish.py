"""Publishing: upload a new version of a name and pin it in assets.yaml.

The sequence is what makes it safe: choose the version from the store's versions
(`pod_tasks.versions.next_version`), hash the file (sha256 and MD5 in one pass), refuse
bytes identical to the version it follows (unless forced), append it to the store without ever replacing an object, on
any server (`pod_tasks.append`: a racing publisher of the same version gets
`PublishConflict`; an upload whose replies were lost is settled by asking the store),
with its sha256, publisher and message for the store to keep (`pod_tasks.provenance`),
and only then rewrite the one pin in assets.yaml; last, the file goes into the cache,
so that the next fetch downloads nothing. A failed upload leaves assets.yaml untouched.

The version a new one follows is the highest below it in the store: the latest, unless
the new one stays below a pre-release (1.2.7 after 1.2.6, with 2.0.0-rc.1 there too).
Whether the file is identical to it is told without a download: the
sizes first, then the sha256 a pin of that version carries, the store's checksum, MD5
ETag or sha256 metadata, the cache's record of it, and, for a folder store, its bytes
read in place. A remote version that none of these can tell about counts as different.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from .append import append
from .catalog import store_versions
from .digests import Digester
from .errors import PodError, PublishConflict, VersionError
from .manifest import Pin, pinned_text, set_pin
from .names import check_versioned, versioned_key
from .provenance import proves, publisher, stamp
from .resolver import Project
from .versions import Bump, Version, next_version

__all__ = ["Published", "publish"]

log = logging.getLogger("pod_tasks")


@dataclass(frozen=True)
class Published:
    """What a publish did (or, with ``dry_run``, would do). With ``identical``, nothing:
    the file is ``previous``'s bytes (``version`` and ``url`` are then ``previous``'s)."""

    name: str
    version: Version
    previous: Version | None
    url: str
    size: int
    sha256: str
    dry_run: bool
    identical: bool = False
    #: The file could not be compared with ``previous`` (the store keeps no hash of it
    #: that this machine can compare), so it was published as different.
    uncompared: bool = False
    #: The upload's replies were lost: the store was asked, and holds these bytes.
    recovered: bool = False
    #: With ``identical``: the pin was another version, and now is ``version``
    #: (with ``dry_run``: would be).
    repinned: bool = False


def publish(
    project: Project,
    name: str,
    *,
    file: str | Path | None = None,
    bump: Bump | None = None,
    version: str | None = None,
    min_version: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    message: str | None = None,
) -> Published:
    """Publish ``file`` (default: the pin's ``source:`` or local override) as the next
    version of ``name``, with ``message`` and who published it, then pin it as
    ``{version, sha256, size}`` and put it into the cache.

    Bytes identical to the version it follows (the highest below it in the store: the
    latest, unless it stays below a pre-release) are not published (the result says
    ``identical``) unless ``force``; the pin becomes that version when it is another
    (a publish whose replies were lost, killed after its upload: the next one ends pinned).

    Raises `AssetNotFound` (name not in assets.yaml), `VersionError` (no bump, or a
    version not above every release, or already in the store), `PublishConflict` (lost a race), `PodError`
    (no file, a message too long to keep; the upload failed, saying whether anything
    was published; or the upload went through but assets.yaml could not be rewritten:
    the message gives the pin to write by hand).
    """
    manifest = project.require_manifest()
    pin = manifest.pin(name)
    if file is not None:
        source = Path(file)
    elif pin.source is not None:
        source = pin.source
    elif pin.override is not None and not pin.override.startswith("s3://"):
        source = Path(pin.override)
    else:
        raise PodError(f"publish:{pin.name}: which file? give --file PATH, or add `source: PATH` to its pin")
    if not source.is_file():
        raise PodError(f"publish:{pin.name}: {source} is not a file: fix --file or `source:`")
    versions = store_versions(project, pin.name)
    try:
        new = next_version(versions, bump, version, min_version)
        key = project.prefix + check_versioned(pin.name, new)
    except VersionError as exc:
        raise VersionError(f"publish:{pin.name}: {exc}") from None
    previous = max((v for v in versions if v < new), default=None)  # what the new version follows
    hashed = os.stat(source)  # the cached copy is trusted only if the file still has this size and mtime
    digest = Digester.of_file(source, sha256=True)
    sha256 = digest.sha256.hexdigest()
    metadata = stamp(sha256, publisher(), message)
    assert project.store is not None
    same = None if previous is None or force else _identical(project, pin, previous, source, digest)
    if same:
        url = project.store.url(project.prefix + versioned_key(pin.name, previous))
        repinned = pin.version != previous
        if repinned and not dry_run:
            _pin(manifest.path, pin.name, previous, sha256, digest.size, url)
        return Published(pin.name, previous, previous, url, digest.size, sha256, dry_run, identical=True,
                         repinned=repinned)
    result = Published(pin.name, new, previous, project.store.url(key), digest.size, sha256, dry_run,
                       uncompared=previous is not None and same is None and not force)
    pinned_text(manifest.path, pin.name, new, sha256, digest.size)  # a pin that cannot be rewritten stops us here
    if dry_run:
        return result
    try:
        appended = append(project.store, key, source, digest, project.cache, project.prefix, metadata)
    except PublishConflict as exc:
        raise PublishConflict(
            f"publish:{pin.name}: {new} was not published: {exc}; {manifest.path.name} is unchanged: "
            f"run the publish again for the next version"
        ) from None
    _pin(manifest.path, pin.name, new, sha256, digest.size, result.url)
    try:
        project.cache.adopt_upload(project.versioned_ref(pin.name, new, sha256), source, appended.head, digest,
                                   hashed)
    except (PodError, OSError) as exc:  # published and pinned all the same: the next fetch downloads it
        log.warning("%s: %s is published and pinned, but was not put into the cache (%s): the next fetch "
                    "downloads it", pin.name, new, exc)
    return replace(result, recovered=appended.recovered)


def _identical(project: Project, pin: Pin, version: Version, source: Path, digest: Digester) -> bool | None:
    """Whether the file at ``source`` (hashed in ``digest``) holds the bytes of ``version``
    of the pin's name in the store, told without a download (see the module's text);
    None when nothing can tell."""
    store = project.store
    assert store is not None
    ref = project.versioned_ref(pin.name, version)
    head = store.head(ref.key)
    if head.size != digest.size:
        return False
    if pin.version == version and pin.sha256:
        return pin.sha256 == digest.sha256.hexdigest()
    verdict = proves(head, digest, source)
    if verdict is not None:
        return verdict
    record = project.cache.record(ref)
    if record is not None and record.url == ref.url and record.size == head.size:
        return record.sha256 == digest.sha256.hexdigest() if record.sha256 else record.md5 == digest.md5.hexdigest()
    if store.remote:
        return None
    theirs = Digester()
    store.download_to(ref.key, lambda _head: theirs.update)  # a folder: read in place
    return theirs.md5.digest() == digest.md5.digest()


def _pin(manifest: Path, name: str, version: Version, sha256: str, size: int, url: str) -> None:
    """Pin ``name`` to ``version`` (in the store at ``url``); a failure says the pin to
    write by hand."""
    try:
        set_pin(manifest, name, version, sha256, size)
    except (PodError, OSError) as exc:
        raise PodError(
            f"publish:{name}: {version} is in the store ({url}) but {manifest.name} was not "
            f"updated ({exc}): pin it by hand as {{version: {version}, sha256: {sha256}, size: {size}}}"
        ) from None
