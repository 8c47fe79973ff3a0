"""pod-tasks: pin data files to code.

``assets.yaml`` pins every asset name to one version in an append-only store (an S3
bucket or a folder); `resolve` turns a name into the local path of verified bytes, and
the doit tasks in `pod_tasks.tasks` fetch and publish them.

Importing the package is cheap (the errors only): `resolve` and `AssetPath` load the
resolver on first use, because pytest imports `pod_tasks.pytest_plugin` (and so this
package) in every test run of every project where pod-tasks is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AssetNotFound,
    CacheError,
    IntegrityError,
    ManifestError,
    OfflineError,
    PodError,
    PublishConflict,
    StoreError,
    TransferError,
    UnsafePathError,
    VersionError,
)

if TYPE_CHECKING:
    from .resolver import AssetPath, resolve

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("pod-tasks")  # the one place it is written is pyproject.toml
except PackageNotFoundError:  # not installed (a source tree on sys.path)
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "resolve",
    "AssetPath",
    "PodError",
    "AssetNotFound",
    "CacheError",
    "IntegrityError",
    "ManifestError",
    "OfflineError",
    "PublishConflict",
    "StoreError",
    "TransferError",
    "UnsafePathError",
    "VersionError",
]


def __getattr__(name: str) -> object:
    """``resolve`` and ``AssetPath``, imported on first use (see the module docstring)."""
    if name in ("resolve", "AssetPath"):
        from . import resolver

        return getattr(resolver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
