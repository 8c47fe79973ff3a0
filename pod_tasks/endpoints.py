"""Which server an S3 endpoint URL names, which cache folder is its own, and whether it
may receive the user's credentials. Pure rules (the environment and two small files
read, nothing sent), tested as tables.

Contracts:

- **Identity is the server, exactly** (`Server`): scheme, host (lowercased, IDNA, a
  trailing dot dropped, an IP address in its one canonical spelling), port (the
  scheme's default when none is written) and path (without a trailing ``/``); userinfo
  is never part of it. Names are never resolved: ``localhost`` and ``127.0.0.1`` are
  two servers, since what a name resolves to differs between machines and over time.
- **AWS's own folder** (`endpoint_folder` ``""``, the old ``<bucket>/<key>`` layout) is
  only for no endpoint, or ``https://`` on port 443 with no path to one of the S3 hosts
  AWS documents for its global partition (`aws_s3_host`): ``s3.amazonaws.com``,
  ``s3.REGION``, ``s3-REGION``, FIPS, dualstack, accelerate, ``s3-external-1``. Every
  other server has a folder of its own (`_folder_label`), the same one old caches used
  for the spellings they shared: ``https://HOST`` and ``http://HOST:PORT``.
- **Credentials go only where the user sent them** (`signing_refusal`): to AWS's own
  S3 hosts (any partition) over https, and to servers the user's own configuration
  names: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, the AWS profile's
  ``endpoint_url`` (`profile_endpoint`), ``POD_TRUSTED_ENDPOINTS`` (comma-separated),
  or ``trusted_endpoints:`` in `config_file`. A trusted URL trusts its origin
  (scheme, host, port). Never over plain ``http://`` but to a loopback address.
- **Userinfo is never shown** (`redact`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ManifestError, shown

__all__ = [
    "Server", "server_of", "endpoint_folder", "aws_s3_host", "is_loopback", "redact", "strip_userinfo",
    "profile_endpoint", "configured_endpoint", "config_file", "trusted_origins", "signing_refusal",
    "TRUST_VARIABLE", "TRUST_KEY",
]

#: The environment variable of the user's trusted endpoints (comma-separated URLs).
TRUST_VARIABLE = "POD_TRUSTED_ENDPOINTS"
#: The key of `config_file` that lists them.
TRUST_KEY = "trusted_endpoints"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
#: What comes before ``.amazonaws.com`` (``.amazonaws.com.cn``) in an S3 host of AWS's:
#: no bucket label (``BUCKET.s3...``: the bucket of an endpoint is not the bucket asked
#: for), no website, access point or control host.
_AWS_S3_SERVICE = re.compile(
    rf"s3(?:-fips)?(?:\.dualstack)?(?:[.-]{_REGION})?|s3-accelerate(?:\.dualstack)?|s3-external-1"
)
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


@dataclass(frozen=True)
class Server:
    """One S3 server, as its URL names it exactly (see the module's contracts)."""

    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def origin(self) -> tuple[str, str, int]:
        """What credentials are trusted to: scheme, host and port."""
        return self.scheme, self.host, self.port


def _canonical_host(host: str) -> str:
    host = host.lower().rstrip(".")
    address, percent, zone = host.partition("%")  # an IPv6 zone: fe80::1%eth0
    try:
        return ipaddress.ip_address(address).compressed + percent + zone
    except ValueError:
        pass
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def server_of(url: str) -> Server:
    """The server ``url`` names; raises ValueError (its text: ``'URL' is not a server URL:
    write ...``) when it names none: no ``http://`` or ``https://``, no host, a bad port,
    spaces or control characters."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    clean = url == url.strip() and url.isprintable() and "://" in url
    if not clean or scheme not in _DEFAULT_PORTS or not parts.hostname or port is not None and port <= 0:
        raise ValueError(f"{shown(redact(url))} is not a server URL: write e.g. https://minio.example.com:9000")
    return Server(scheme, _canonical_host(parts.hostname), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


def aws_s3_host(host: str) -> str | None:
    """The AWS partition (``aws``, ``aws-us-gov``, ``aws-cn``) whose documented S3
    service host ``host`` is; None for any other host (API Gateway, ELB, S3 websites,
    virtual-hosted ``BUCKET.s3...`` names: anyone can own those)."""
    for suffix in _AWS_SUFFIXES:
        if host.endswith(suffix) and _AWS_S3_SERVICE.fullmatch(host[: -len(suffix)]):
            return "aws-cn" if suffix.endswith(".cn") else "aws-us-gov" if "us-gov-" in host else "aws"
    return None


def _aws_own(server: Server, partition: str | None = None) -> bool:
    """``server`` is AWS's S3 (of ``partition``, when given) over https, as itself."""
    found = aws_s3_host(server.host)
    return (server.scheme == "https" and server.port == 443 and not server.path and found is not None
            and (partition is None or found == partition))


def _folder_label(server: Server) -> str:
    """``HOST[-PORT][-PATHHASH]`` (PORT when not the scheme's default), then ``+SCHEME``
    unless the pair is one old caches named the same way: https on 443, or http on any
    port but 80 and 443. ``+`` is in no host name and in no folder an old cache made."""
    host = _UNSAFE.sub("_", server.host)
    if host != server.host and ":" not in server.host:  # a host no folder name spells: keep two apart
        host += "-" + hashlib.sha1(server.host.encode()).hexdigest()[:8]
    port = f"-{server.port}" if server.port != _DEFAULT_PORTS[server.scheme] else ""
    path = f"-{hashlib.sha1(server.path.encode()).hexdigest()[:8]}" if server.path.strip("/") else ""
    unmarked = (server.scheme, server.port) == ("https", 443) or (server.scheme == "http" and server.port not in (80, 443))
    return f"{host}{port}{path}" + ("" if unmarked else f"+{server.scheme}")


def endpoint_folder(endpoint: str | None) -> str:
    """The cache folder of ``endpoint``'s objects: "" for AWS's own (``<bucket>/<key>``,
    the old layout), else ``_endpoint-LABEL/`` (no bucket name starts with ``_``).
    Raises ValueError for a URL that names no server."""
    if not endpoint:
        return ""
    server = server_of(endpoint)
    return "" if _aws_own(server, "aws") else f"_endpoint-{_folder_label(server)}/"


def is_loopback(host: str) -> bool:
    """``host`` (canonical, `server_of`'s) is this machine by its address, or ``localhost``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it (``user:password@``) shown as ``***@``."""
    return _USERINFO.sub("***@", text)


def strip_userinfo(url: str) -> str:
    """``url`` without its userinfo (S3 never uses it; only botocore's signature is sent)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# --- the user's own configuration ----------------------------------------------------


@functools.lru_cache(maxsize=8)
def _profile_endpoint(key: tuple) -> str | None:
    try:
        import botocore.session
        from botocore.configprovider import ConfiguredEndpointProvider
        from botocore.exceptions import BotoCoreError

        session = botocore.session.Session()
        if str(session.get_config_variable("ignore_configured_endpoint_urls") or "").lower() == "true":
            return None
        provider = ConfiguredEndpointProvider(session.full_config, session.get_scoped_config(), "s3", environ={})
        return provider.provide() or None
    except (ImportError, BotoCoreError, ValueError, OSError):
        return None  # an older botocore, or a config file boto3 itself will refuse with its own words


def profile_endpoint() -> str | None:
    """The S3 endpoint the AWS config file names for the profile in use (``endpoint_url``,
    or ``services`` -> ``s3`` -> ``endpoint_url``), as botocore reads it; None when it names
    none or ``ignore_configured_endpoint_urls`` is set."""
    names = ("AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
    path = Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return _profile_endpoint(tuple(os.environ.get(name) for name in names) + (stamp,))


def configured_endpoint() -> str | None:
    """The S3 endpoint the user's own configuration names, as boto3 picks it:
    ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else `profile_endpoint`."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or profile_endpoint()


def config_file() -> Path:
    """The user's pod-tasks settings: ``config.yaml`` in the platform's user config dir
    (``~/.config/pod-tasks/config.yaml`` on Linux, ``$XDG_CONFIG_HOME`` honoured)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("pod-tasks", appauthor=False)) / "config.yaml"


def _listed(path: Path) -> list[str]:
    """The URLs `config_file` trusts; raises ManifestError naming the file when it is unreadable."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeError) as exc:
        raise ManifestError(f"{path}: cannot read it ({type(exc).__name__}): fix it or remove it") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ManifestError(f"{path}: not valid YAML: write `{TRUST_KEY}: [https://host:port, ...]`") from None
    urls = (data or {}).get(TRUST_KEY, []) if isinstance(data, dict) or data is None else None
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ManifestError(f"{path}: `{TRUST_KEY}:` must be a list of URLs: write `{TRUST_KEY}: [https://host:port, ...]`")
    return urls


def trusted_origins() -> frozenset[tuple[str, str, int]]:
    """The origins the user's own configuration trusts with credentials (see the module's
    contracts). Raises ManifestError naming the variable or file of an entry that is not
    a server URL."""
    origins = set()
    for url in filter(None, (os.environ.get("AWS_ENDPOINT_URL_S3"), os.environ.get("AWS_ENDPOINT_URL"), profile_endpoint())):
        try:
            origins.add(server_of(url).origin)
        except ValueError:
            pass  # boto3 refuses it with its own message
    entries = [(f"${TRUST_VARIABLE}", url) for url in os.environ.get(TRUST_VARIABLE, "").split(",")]
    path = config_file()
    entries += [(str(path), url) for url in _listed(path)]
    for where, url in entries:
        if url.strip():
            try:
                origins.add(server_of(url.strip()).origin)
            except ValueError as exc:
                raise ManifestError(f"{where}: {exc}") from None
    return frozenset(origins)


def signing_refusal(endpoint: str | None) -> str | None:
    """None when requests to ``endpoint`` (None: AWS's own) may be signed with the user's
    credentials; else why not and what to do, as a clause of a one-line message."""
    if not endpoint:
        return None
    server = server_of(endpoint)
    if server.scheme == "http" and not is_loopback(server.host):
        return ("it is plain http://, and credentials go over plain http only to this machine (loopback): "
                "use the server's https:// URL")
    if _aws_own(server) or server.origin in trusted_origins():
        return None
    origin = f"{server.scheme}://{server.host if ':' not in server.host else f'[{server.host}]'}"
    origin += f":{server.port}" if server.port != _DEFAULT_PORTS[server.scheme] else ""
    return (f"pod-tasks signs requests only to servers you trust, and {origin} is named only by assets.yaml "
            f"(or a pack): if it is yours, trust it with {TRUST_VARIABLE}={origin} or `{TRUST_KEY}: [{origin}]` "
            f"in {config_file()} (or set AWS_ENDPOINT_URL)")
