"""Settings and where they come from: call arguments > environment > assets.yaml > defaults.

Environment: ``POD_CACHE_DIR``, ``POD_TIMEOUT``, ``POD_OFFLINE``, ``POD_ASSETS``,
``POD_ANONYMOUS``, ``POD_JOBS``, ``POD_MIRRORS`` (space-separated; set, even to nothing, it
replaces ``mirrors:``), ``POD_MAX_SIZE`` and ``POD_MIN_RATE`` (the bounds of a download,
`pod_tasks.bounds`), boto3's ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (then assets.yaml's
``endpoint:``, then the AWS profile's ``endpoint_url``; which of them may get credentials,
``POD_TRUSTED_ENDPOINTS`` included, is `pod_tasks.endpoints`'), and the old
tool's ``STATIC_CACHE_DIR``, ``STATIC_CACHE_TIMEOUT``,
``STATIC_CACHE_IMMUTABLE_BUCKETS`` (colon-separated), which the ``POD_`` names beat.
``STATIC_CACHE_TIMEOUT`` keeps the old tool's meaning (`parse_old_timeout`: ``0``, or
anything that is not a whole number, is "never check"); ``POD_TIMEOUT`` is read by
`parse_timeout` (``0`` is "always check") and wins when both are set.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from .bounds import DEFAULT_MAX_SIZE, DEFAULT_MIN_RATE, Limits
from .endpoints import profile_endpoint, redact, server_of
from .errors import UnsafePathError, shown
from .names import check_bucket

__all__ = [
    "Settings", "parse_timeout", "parse_old_timeout", "format_timeout", "parse_flag", "parse_jobs", "default_jobs",
    "parse_mirror", "parse_size", "parse_limits", "NEVER", "DEFAULT_TIMEOUT",
]

NEVER = math.inf
DEFAULT_TIMEOUT = 86400.0
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_timeout(text: str | float | int) -> float:
    """Seconds from ``3600``, ``90s``, ``15m``, ``12h``, ``1d``, ``2w`` or ``never``.

    ``0`` means "check every time"; ``never`` (returned as `NEVER`) means "never check".
    Raises ValueError for anything else.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not text >= 0:  # negative, or NaN
            raise ValueError(f"timeout {shown(str(text))} is not a duration: give seconds >= 0, or 'never'")
        return float(text)
    value = str(text).strip().lower()
    if value in ("never", "inf", "infinity"):
        return NEVER
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"timeout {shown(str(text))} is not a duration: write e.g. 0, 3600, 15m, 12h, 1d or never")
    return float(match[1]) * _UNITS[match[2]]


def parse_old_timeout(text: str) -> float:
    """Seconds from ``STATIC_CACHE_TIMEOUT``, read as the old tool read it: a whole number
    of seconds, where ``0`` and anything that is not a whole number (``none``, ``1d``)
    mean "never check" (`NEVER`), and a negative number "check every time". Never raises.
    """
    try:
        seconds = int(text.strip())
    except ValueError:
        return NEVER
    return NEVER if seconds == 0 else float(max(seconds, 0))


def parse_size(text: str) -> int:
    """Bytes from ``20GiB``, ``500MB``, ``1.5TiB`` or ``1000000``: binary units (KiB, MiB,
    GiB, TiB), decimal ones (KB, MB, GB, TB), in any case; a plain number is bytes.
    Raises ValueError for anything else."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size: write e.g. 20GiB, 500MB or 1000000 (bytes)")
    return int(float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])


def parse_limits(env: Mapping[str, str]) -> Limits:
    """The bounds of a download from ``POD_MAX_SIZE`` (a size, from 1 byte) and
    ``POD_MIN_RATE`` (a size per second, from 1 byte); the defaults for those unset.
    Raises ValueError naming the variable."""
    values = {}
    for var, default in (("POD_MAX_SIZE", DEFAULT_MAX_SIZE), ("POD_MIN_RATE", DEFAULT_MIN_RATE)):
        text = env.get(var, "").strip()
        try:
            values[var] = parse_size(text) if text else default
        except ValueError:
            values[var] = 0
        if values[var] < 1:
            raise ValueError(f"${var}: {shown(text)} is not a size: write e.g. 64KiB, 500MB or 1000000 (bytes)")
    return Limits(max_size=values["POD_MAX_SIZE"], min_rate=float(values["POD_MIN_RATE"]))


def format_timeout(seconds: float) -> str:
    """Inverse of `parse_timeout` for display."""
    if seconds == NEVER:
        return "never"
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def default_jobs() -> int:
    """Requests in flight when nothing says otherwise: enough to hide the round trips of
    small objects, few enough to spare a laptop's uplink and the GIL."""
    return min(32, 8 * (os.cpu_count() or 1))


def parse_jobs(text: str | int, where: str) -> int:
    """A ``--jobs``/``POD_JOBS`` value: a whole number from 1 up (``where`` names it in
    the ValueError)."""
    try:
        jobs = int(str(text).strip())
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ValueError(f"{where}: {shown(str(text))} is not a number of parallel requests: give a whole number from 1 up")
    return jobs


def parse_mirror(url: str) -> str:
    """A mirror's base URL (``https://host[:port]/path``, ``http://...`` or
    ``file:///absolute/path``), without its trailing ``/``; raises ValueError saying
    what to write instead. A mirror serves the store's keys at ``<base>/<key>``, so a
    query or fragment (which would end up before the key) is refused."""
    parsed = urlparse(url)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    clean = url == url.strip() and not any(ord(c) < 32 or ord(c) == 127 for c in url)
    web = parsed.scheme in ("http", "https") and bool(parsed.hostname) and port_ok
    local = parsed.scheme == "file" and parsed.netloc in ("", "localhost") and parsed.path.startswith("/")
    if not clean or not (web or local) or parsed.query or parsed.fragment or url.endswith(("?", "#")):
        raise ValueError(
            f"mirror {shown(redact(url))} is not a base URL: write https://host/path, http://host:port/path "
            f"or file:///absolute/path (the mirror serves the store's keys under it)"
        )
    return url.rstrip("/")


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("pod-tasks", appauthor=False))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def parse_flag(text: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0); raises ValueError for anything else."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{shown(str(text))} is not true or false")


def _endpoint(env: Mapping[str, str], manifest_endpoint: str | None) -> str | None:
    """The S3 server to use: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (ValueError
    naming the variable when it is no server URL), else assets.yaml's, else the AWS
    profile's; None for AWS's own."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if env.get(name):
            try:
                server_of(env[name])
            except ValueError as exc:
                raise ValueError(f"${name}: {exc}") from None
            return env[name]
    return manifest_endpoint or profile_endpoint()


def writable(folder: Path) -> bool:
    """This process may create files in ``folder`` (or create it: its nearest existing
    parent is a folder it may write), and nobody made it read-only (no write bit at all,
    ``chmod a-w``: read-only even for root, as a cache baked into an image often is)."""
    current = folder
    while not current.exists():
        if current.parent == current:
            return False
        current = current.parent
    try:
        mode = current.stat().st_mode
    except OSError:
        return False
    return current.is_dir() and bool(mode & 0o222) and os.access(current, os.W_OK | os.X_OK)


def split_tiers(spec: str) -> tuple[Path, tuple[Path, ...]]:
    """The writable cache dir and the read-only tiers (in order) that ``spec`` names: its
    folders (``os.pathsep``-separated, ``~`` expanded, made absolute), the first one this
    process may write being the cache dir; when none may be written, the first (writes
    then fail with one line saying why)."""
    folders = list(dict.fromkeys(Path(part).expanduser().absolute() for part in spec.split(os.pathsep) if part))
    if not folders:
        raise ValueError("names no folder")
    main = next((folder for folder in folders if writable(folder)), folders[0])
    return main, tuple(folder for folder in folders if folder != main)


@dataclass(frozen=True)
class Settings:
    """How the cache behaves. Build one with `Settings.load`."""

    #: Where downloads go (the first writable folder of ``POD_CACHE_DIR`` / ``cache_dir:``).
    cache_dir: Path
    timeout: float = DEFAULT_TIMEOUT
    offline: bool = False
    immutable: frozenset[str] = field(default_factory=frozenset)
    #: The S3-compatible server to use; None for AWS's own endpoint.
    endpoint: str | None = None
    #: Read S3 unsigned (public buckets, no AWS account).
    anonymous: bool = False
    #: Requests in flight when fetching many objects (``--jobs``, ``POD_JOBS``).
    jobs: int = field(default_factory=lambda: default_jobs())
    #: Base URLs (`parse_mirror`) tried in order before the store (``mirrors:``, ``POD_MIRRORS``).
    mirrors: tuple[str, ...] = ()
    #: What one download may write and how long it may take (``POD_MAX_SIZE``, ``POD_MIN_RATE``).
    limits: Limits = field(default_factory=Limits)
    #: The other folders named with the cache dir: read-only tiers, in order (`pod_tasks.tiers`).
    tiers: tuple[Path, ...] = ()

    @classmethod
    def load(
        cls,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: str | float | None = None,
        offline: bool | None = None,
        immutable: frozenset[str] | set[str] | None = None,
        manifest_cache_dir: Path | None = None,
        manifest_timeout: float | None = None,
        manifest_immutable: frozenset[str] = frozenset(),
        manifest_endpoint: str | None = None,
        manifest_anonymous: bool = False,
        manifest_mirrors: tuple[str, ...] = (),
        environ: Mapping[str, str] | None = None,
    ) -> "Settings":
        """Merge call arguments, the environment, manifest values and defaults.

        Immutable buckets are the union of every source; ``POD_MIRRORS``, when set (even
        to nothing), replaces the manifest's mirrors. Raises ValueError naming the
        variable when an environment value is malformed (a bucket name included).
        """
        env = os.environ if environ is None else environ
        env_dir = env.get("POD_CACHE_DIR") or env.get("STATIC_CACHE_DIR")
        if cache_dir is not None:
            folder = Path(cache_dir)
        elif env_dir:
            folder = Path(env_dir)
        elif manifest_cache_dir is not None:
            folder = manifest_cache_dir
        else:
            folder = _default_cache_dir()
        try:
            folder, tiers = split_tiers(str(folder))
        except ValueError as exc:
            raise ValueError(f"the cache dir {shown(str(folder))} {exc}") from None

        if timeout is None and env.get("POD_TIMEOUT"):
            try:
                timeout = parse_timeout(env["POD_TIMEOUT"])
            except ValueError as exc:
                raise ValueError(f"$POD_TIMEOUT: {exc}") from None
        elif timeout is None and env.get("STATIC_CACHE_TIMEOUT"):
            timeout = parse_old_timeout(env["STATIC_CACHE_TIMEOUT"])
        seconds = (
            parse_timeout(timeout) if timeout is not None
            else manifest_timeout if manifest_timeout is not None
            else DEFAULT_TIMEOUT
        )
        try:
            env_immutable = {check_bucket(b) for b in env.get("STATIC_CACHE_IMMUTABLE_BUCKETS", "").split(":") if b}
        except UnsafePathError as exc:
            raise ValueError(f"$STATIC_CACHE_IMMUTABLE_BUCKETS: {exc}: fix the name") from None
        anonymous = manifest_anonymous
        if env.get("POD_ANONYMOUS", "").strip():
            try:
                anonymous = parse_flag(env["POD_ANONYMOUS"])
            except ValueError as exc:
                raise ValueError(f"$POD_ANONYMOUS: {exc}: write 1 or 0") from None
        jobs = parse_jobs(env["POD_JOBS"], "$POD_JOBS") if env.get("POD_JOBS", "").strip() else default_jobs()
        mirrors = manifest_mirrors
        if "POD_MIRRORS" in env:
            try:
                mirrors = tuple(dict.fromkeys(parse_mirror(url) for url in env["POD_MIRRORS"].split()))
            except ValueError as exc:
                raise ValueError(f"$POD_MIRRORS: {exc}") from None
        return cls(
            cache_dir=folder,
            tiers=tiers,
            timeout=seconds,
            offline=_truthy(env.get("POD_OFFLINE")) if offline is None else offline,
            immutable=frozenset(immutable or ()) | env_immutable | manifest_immutable,
            endpoint=_endpoint(env, manifest_endpoint),
            anonymous=anonymous,
            jobs=jobs,
            mirrors=mirrors,
            limits=parse_limits(env),
        )
