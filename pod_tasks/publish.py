"""Publishing: upload a new version of a name and pin it in assets.yaml.

The sequence is what makes it safe: choose the version from the store's latest,
hash the file (sha256 and MD5 in one pass), append it to the store without ever
replacing an object, on any server (`pod_tasks.append`: a racing publisher of the same
version gets `PublishConflict`), with its sha256 for the store to keep, and only then
rewrite the one pin in assets.yaml. A failed upload leaves assets.yaml untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .append import append
from .catalog import latest_version
from .digests import Digester
from .errors import PodError, PublishConflict, VersionError
from .manifest import pinned_text, set_pin
from .names import versioned_key
from .resolver import Project
from .versions import Bump, Version, next_version

__all__ = ["Published", "publish"]


@dataclass(frozen=True)
class Published:
    """What a publish did (or, with ``dry_run``, would do)."""

    name: str
    version: Version
    previous: Version | None
    url: str
    size: int
    sha256: str
    dry_run: bool


def publish(
    project: Project,
    name: str,
    *,
    file: str | Path | None = None,
    bump: Bump | None = None,
    version: str | None = None,
    min_version: str | None = None,
    dry_run: bool = False,
) -> Published:
    """Publish ``file`` (default: the pin's ``source:`` or local override) as the next
    version of ``name``, then pin it as ``{version, sha256}``.

    Raises `AssetNotFound` (name not in assets.yaml), `VersionError` (no bump, or a
    version that does not increase), `PublishConflict` (lost a race), `PodError`
    (no file; or the upload went through but assets.yaml could not be rewritten: the
    message gives the pin to write by hand).
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
    previous = latest_version(project, pin.name)
    try:
        new = next_version(previous, bump, version, min_version)
    except VersionError as exc:
        raise VersionError(f"publish:{pin.name}: {exc}") from None
    digest = Digester.of_file(source, sha256=True)
    sha256 = digest.sha256.hexdigest()
    assert project.store is not None
    key = project.prefix + versioned_key(pin.name, new)
    result = Published(pin.name, new, previous, project.store.url(key), digest.size, sha256, dry_run)
    pinned_text(manifest.path, pin.name, new, sha256)  # a pin that cannot be rewritten stops us here
    if dry_run:
        return result
    try:
        append(project.store, key, source, digest, project.cache, project.prefix)
    except PublishConflict as exc:
        raise PublishConflict(
            f"publish:{pin.name}: {new} was not published: {exc}; {manifest.path.name} is unchanged: "
            f"run the publish again for the next version"
        ) from None
    try:
        set_pin(manifest.path, pin.name, new, sha256)
    except (PodError, OSError) as exc:
        raise PodError(
            f"publish:{pin.name}: {new} is in the store ({result.url}) but {manifest.path.name} was not "
            f"updated ({exc}): pin it by hand as {{version: {new}, sha256: {sha256}}}"
        ) from None
    return result
