"""``resolve()``: an asset name or an S3 URL in, a verified local path out.

The manifest comes from the ``manifest`` argument, then ``POD_ASSETS``, then the
nearest ``assets.yaml`` from the current directory upward; it is found and parsed once
per process (`Project.get`). Every answer is memoised: a warm call is a dict lookup
and one ``os.stat`` (to notice a file deleted or changed under us), plus a clock read
for mutable objects.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .cache import AssetCache, ObjectRef
from .catalog import store_versions
from .config import Settings
from .engine import interrupted
from .errors import AssetNotFound, ManifestError, PodError
from .manifest import Manifest, Pin, find_manifest, load_manifest
from .mirrors import Mirrors
from .names import name_of_key, normalise_name, versioned_key
from .store import S3Store, Store, open_store, parse_s3_url
from .versions import Version, nearest, parse_version

__all__ = ["AssetPath", "Project", "resolve"]


class AssetPath(str):
    """A local path returned by `resolve`: a ``str`` that pickles as a plain ``str``."""

    __slots__ = ()

    def __reduce__(self):
        return (str, (str(self),))


class Project:
    """A manifest (or none) with the settings, cache and stores it implies."""

    _instances: dict[str | None, "Project"] = {}
    _lock = threading.Lock()

    def __init__(self, manifest: Manifest | None, settings: Settings, searched: Path | None = None) -> None:
        self.manifest = manifest
        self.settings = settings
        #: Where assets.yaml was looked for (and from there upward), for the error when none was found.
        self.searched = searched or Path.cwd()
        self._stores: dict[tuple[str | None, str], Store] = {}
        self._memo: dict[tuple[str, str | None], tuple[AssetPath, int, int, float | None]] = {}
        self._local_overrides = frozenset(
            os.path.realpath(pin.override) for pin in (manifest.assets.values() if manifest else ())
            if pin.override is not None and not pin.override.startswith("s3://")
        )
        if manifest is not None and manifest.store:
            self.store, self.prefix = open_store(manifest.store, manifest.folder, settings.endpoint, settings.anonymous)
            if isinstance(self.store, S3Store):
                self._stores[(self.store.endpoint, self.store.bucket)] = self.store
        else:
            self.store, self.prefix = None, ""
        self.cache = AssetCache(settings, Mirrors(settings.mirrors, self.store, self.prefix),
                                project=manifest.path if manifest else None,  # remembered on first use, for gc
                                pins=self.pinned_files)

    @classmethod
    def load(cls, manifest: str | os.PathLike[str] | None = None, **overrides) -> "Project":
        """A fresh project: ``manifest`` (an assets.yaml; or a folder or any file, from
        which the nearest assets.yaml upward is taken), else ``POD_ASSETS``, else the
        nearest ``assets.yaml`` from the current directory (none found: S3 URLs still
        work). ``overrides`` are `Settings.load` call arguments (cache_dir, timeout,
        offline, immutable)."""
        if manifest is None and os.environ.get("POD_ASSETS"):
            manifest = os.environ["POD_ASSETS"]
        given = Path(manifest).absolute() if manifest is not None else Path.cwd()
        # a YAML file, or a path that does not exist, is read as named (to fail saying why)
        named = manifest is not None and (given.suffix in (".yaml", ".yml") or not given.exists())
        path = given if named else find_manifest(given)
        loaded = load_manifest(path) if path is not None else None
        try:
            settings = Settings.load(
                manifest_cache_dir=loaded.cache_dir if loaded else None,
                manifest_timeout=loaded.timeout if loaded else None,
                manifest_immutable=loaded.immutable if loaded else frozenset(),
                manifest_endpoint=loaded.endpoint if loaded else None,
                manifest_anonymous=loaded.anonymous if loaded else False,
                manifest_mirrors=loaded.mirrors if loaded else (),
                **overrides,
            )
        except ValueError as exc:
            raise ManifestError(str(exc)) from None  # a bad POD_TIMEOUT, POD_JOBS, POD_ANONYMOUS or POD_MIRRORS
        return cls(loaded, settings, given if given.is_dir() else given.parent)

    @classmethod
    def get(cls, manifest: str | os.PathLike[str] | None = None) -> "Project":
        """The process-wide project for ``manifest`` (found and parsed on first use)."""
        key = None if manifest is None else os.fspath(manifest)
        project = cls._instances.get(key)
        if project is None:
            with cls._lock:
                project = cls._instances.get(key)
                if project is None:
                    project = cls._instances[key] = cls.load(manifest)
        return project

    @classmethod
    def forget(cls) -> None:
        """Drop every process-wide project (after changing the environment or cwd)."""
        with cls._lock:
            cls._instances.clear()

    # --- naming ---------------------------------------------------------------------

    def require_manifest(self) -> Manifest:
        if self.manifest is None:
            raise ManifestError(
                f"no assets.yaml in {self.searched} or any folder above it: create one there, run from the "
                f"project's folder, or name it with POD_ASSETS=PATH (in code: resolve(..., manifest=__file__))"
            )
        return self.manifest

    def s3_store(self, bucket: str, endpoint: str | None = None) -> Store:
        """The bucket on ``endpoint`` (default: the project's endpoint)."""
        store = S3Store(bucket, endpoint or self.settings.endpoint, self.settings.anonymous)
        return self._stores.setdefault((store.endpoint, bucket), store)

    def url_ref(self, url: str, label: str = "", endpoint: str | None = None) -> ObjectRef:
        """The cache reference of any ``s3://bucket/key`` (on ``endpoint``, default the
        project's: a pack made elsewhere names its own). A `files:` entry locked with a
        sha256 carries it, and is immutable: its bytes are fixed, no check can change them."""
        try:
            bucket, key = parse_s3_url(url)
        except ValueError as exc:
            raise AssetNotFound(str(exc)) from None
        if not key.strip("/"):
            raise AssetNotFound(f"{url!r} names a bucket but no object: write s3://{bucket}/KEY")
        store = self.s3_store(bucket, endpoint)
        sha256 = self.manifest.file_sha256.get(url) if self.manifest is not None else None
        immutable = sha256 is not None or bucket in self.settings.immutable or (
            store is self.store and key.startswith(self.prefix)
        )
        return ObjectRef(store, key, immutable, sha256, label=label or url)

    def versioned_ref(self, name: str, version: Version, sha256: str | None = None,
                      size: int | None = None) -> ObjectRef:
        """The cache reference of ``name`` at ``version`` in the store (always immutable),
        with the pin's ``sha256`` and ``size`` when it has them."""
        if self.store is None:
            manifest = self.require_manifest()
            raise ManifestError(f"{manifest.path.name}:1: no `store:`: add `store: s3://bucket` to find {name}")
        key = self.prefix + versioned_key(name, version)
        return ObjectRef(self.store, key, True, sha256, label=f"{name}@{version}", size=size)

    def pin_ref(self, pin: Pin) -> ObjectRef | Path:
        """What a pin points at: a cache reference, or a local file used as is."""
        if pin.override is not None:
            if pin.override.startswith("s3://"):
                return self.url_ref(pin.override, label=pin.name)
            return Path(pin.override)
        if pin.version is None:
            raise AssetNotFound(
                f"{pin.name} is declared in {self.require_manifest().path.name} but not published: "
                f"run `doit publish:{pin.name}`"
            )
        return self.versioned_ref(pin.name, pin.version, pin.sha256, pin.size)

    def ref(self, name: str, version: str | Version | None = None) -> ObjectRef | Path:
        """The reference for a name (pinned, or at an explicit version) or an S3 URL."""
        if name.startswith("s3://"):
            return self.url_ref(name)
        if version is not None:
            parsed = version if isinstance(version, Version) else parse_version(str(version))
            clean = normalise_name(name)
            pin = self.manifest.assets.get(clean) if self.manifest else None
            if pin is not None and pin.version == parsed:
                return self.versioned_ref(clean, parsed, pin.sha256, pin.size)
            return self.versioned_ref(clean, parsed)
        return self.pin_ref(self.require_manifest().pin(name))

    def pinned_files(self) -> set[str]:
        """The cache-relative paths of everything assets.yaml pins, in this process's
        environment (its endpoint, its cache dir): versions, ``s3://`` overrides, ``files:``
        URLs, and local overrides inside the cache dir (so that gc never touches them).
        What cannot be fetched (an override outside the cache dir, no ``store:``) is left out."""
        from .prefill import manifest_items

        if self.manifest is None:
            return set()
        pins: set[str] = set()
        for item in manifest_items(self):
            try:
                target = self.ref(item)
                pins.add(self.cache.path_for(target).relative_to(self.cache.root).as_posix()
                         if isinstance(target, ObjectRef) else self.cache.relative(target))
            except PodError:
                continue
        return pins

    # --- resolving --------------------------------------------------------------------

    def resolve(self, name: str, version: str | Version | None = None) -> AssetPath:
        """See `resolve`."""
        memo_key = (name, None if version is None else str(version))
        hit = self._memo.get(memo_key)
        if hit is not None:
            path, size, mtime_ns, deadline = hit
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if (
                st is not None and st.st_size == size and st.st_mtime_ns == mtime_ns
                and (deadline is None or time.time() < deadline)
            ):
                return path
            del self._memo[memo_key]
        return self._resolve_cold(memo_key, name, version)

    def _resolve_cold(self, memo_key, name: str, version) -> AssetPath:
        if not name.startswith("s3://") and os.path.isabs(name) and version is None:
            known = self._known_path(name)
            if known is not None:
                return known
        target = self.ref(name, version)
        if isinstance(target, Path):
            if not target.is_file():
                raise AssetNotFound(f"{name}: the override {target} no longer exists: fix assets.yaml")
            return AssetPath(target)
        try:
            path = self.cache.fetch(target).path
        except AssetNotFound as exc:
            raise self.explained(target, exc) from None
        except KeyboardInterrupt:
            interrupted(f"{target} was not fetched (nothing was kept at {self.cache.path_for(target)}); "
                        f"run again to fetch it")
        record = self.cache.record(target)
        result = AssetPath(path)
        if record is not None and record.checked is not None:
            deadline = None if target.immutable or self.settings.timeout == float("inf") else (
                record.checked + self.settings.timeout
            )
            if deadline is None or deadline > time.time():
                self._memo[memo_key] = (result, record.size, record.mtime_ns, deadline)
        return result

    def explained(self, ref: ObjectRef, exc: AssetNotFound) -> AssetNotFound:
        """``exc`` (``ref`` is not in the store), naming the versions the store does
        have when ``ref`` is a version of a name (nearest first), or saying it has none."""
        parsed = name_of_key(ref.key[len(self.prefix):]) if ref.store is self.store and ref.key.startswith(self.prefix) else None
        if parsed is None:
            return exc
        name, version = parsed
        try:
            versions = store_versions(self, name)
        except PodError:  # the listing failed too: the first error says enough
            return exc
        if not versions:
            return AssetNotFound(f"{exc}; the store has no version of {name}: publish one (doit publish:{name} --patch)")
        shown = ", ".join(str(v) for v in nearest(versions, version))
        more = f" (of {len(versions)})" if len(versions) > 5 else ""
        return AssetNotFound(f"{exc}; the store has {name} {shown}{more}: pin one of them in assets.yaml")

    def _known_path(self, text: str) -> AssetPath | None:
        """``text`` itself when it is a path `resolve` returns: an existing file inside
        the cache dir, or a local override of the manifest."""
        real = os.path.realpath(text)
        inside = real.startswith(str(self.cache.root) + os.sep)
        if (inside or real in self._local_overrides) and os.path.isfile(real):
            return AssetPath(text)
        return None


def resolve(
    name: str | os.PathLike[str],
    version: str | None = None,
    *,
    manifest: str | os.PathLike[str] | None = None,
) -> AssetPath:
    """The local path of a verified copy of ``name``, downloading it on a miss.

    ``name`` is an asset name from assets.yaml (``foo/bar.csv`` or ``/foo/bar.csv``),
    an ``s3://bucket/key`` URL, or a path this function returned
    (``resolve(resolve(x)) == resolve(x)``). ``version`` picks a version other than
    the pinned one. Raises a `PodError` subclass: `AssetNotFound`, `ManifestError`,
    `IntegrityError` or `OfflineError`.
    """
    if isinstance(name, AssetPath):
        return name
    return Project.get(manifest).resolve(os.fspath(name), version)
