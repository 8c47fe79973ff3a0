"""The bench's world: one S3 server on 127.0.0.1 (``rclone serve s3`` or moto's), a
folder, generated data, project folders with an assets.yaml and the one-line dodo.py,
and child processes.

Everything measured runs in a child process (doit, a peer client, or
`bench/probe.py`), so the measured code never shares an interpreter (or its GIL) with
the server. Children reach the server directly (rclone's own port) unless asked for
a ``counted`` run: then through the server's counting endpoint (for rclone, a Python
proxy, too slow to time), whose requests `Workspace.server` counts. A child's CPU time
(user+sys, its own descendants included) comes from ``getrusage`` of the finished
children (the bench runs one child at a time; the servers are not waited for until
they stop); an untimed run may go under ``strace -f -c`` (`bench.syscalls`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import syscalls  # noqa: E402
from bench.measure import Sample, cpu_seconds  # noqa: E402
from tests.servers import CREDENTIALS, MotoServer, RcloneServer, S3Endpoint  # noqa: E402  (the tests' servers)

__all__ = ["Workspace", "Sizes", "SERVERS", "REPO", "PROBE"]

PROBE = Path(__file__).resolve().parent / "probe.py"
_MIB = 1 << 20
#: Dropped from a child's environment: settings of this shell, not of a user's (an
#: unbuffered stdout makes doit's one line per task a system call each).
_ISOLATE = ("POD_", "STATIC_CACHE_", "AWS_", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")


#: The servers the bench runs against, by name, in the order of its rows. rclone keeps
#: its folder listings for an hour (the bench writes objects through S3 only): with
#: the tests' 1 ms, every GET lists its folder, quadratic in the objects of a bucket.
SERVERS: dict[str, Callable[[], S3Endpoint]] = {
    "rclone": lambda: RcloneServer(dir_cache_time="1h"),
    "moto": MotoServer,
}


@dataclass(frozen=True)
class Sizes:
    """How big everything is. `quick` shrinks it to a smoke test of a few seconds."""

    runs: int = 5
    many: int = 1000            # objects in the revalidation row
    small_kb: int = 10          # size of each small object
    cold: tuple[int, ...] = (1000, 10000)       # objects in the cold `doit fetch` rows
    noop: tuple[int, ...] = (1000, 5000, 20000)  # assets in the no-op `doit fetch` rows
    calls: int = 100_000        # resolve() calls per timed sample
    pooch_mb: int = 200
    big_mb: int = 512           # cold fetch and publish
    huge_mb: int = 1024         # peak memory
    concurrency: int = 8

    @classmethod
    def quick(cls) -> "Sizes":
        return cls(runs=2, many=20, small_kb=2, cold=(5, 10, 20), noop=(5, 10, 20), calls=2000, pooch_mb=2,
                   big_mb=2, huge_mb=4)


class ChildFailed(RuntimeError):
    """A measured command failed: the bench stops rather than report a wrong figure."""


class Workspace:
    """A running server (``server``, a name in `SERVERS`), a folder of its own under
    ``base`` (generated data files are shared under ``base / "data"``), and helpers to
    fill buckets and run children. `close` stops the server; ``base`` is the caller's."""

    def __init__(self, server: str, base: Path) -> None:
        self.data = base.resolve() / "data"
        self.root = base.resolve() / server
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = SERVERS[server]().start()
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3", endpoint_url=self.server.direct_endpoint, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(max_pool_connections=32, signature_version="s3v4"),  # presigned URLs: rclone has no SigV2
        )

    def close(self) -> None:
        self.server.stop()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- data ---------------------------------------------------------------------

    def bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Upload every ``key: bytes`` (8 at a time)."""
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda kv: self.client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        """One PUT (a single-part ETag, as `doit publish` makes)."""
        with open(path, "rb") as body:
            self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def big_file(self, name: str, megabytes: int) -> tuple[Path, str]:
        """A file of random bytes in the shared data folder, and its sha256 (made once
        per name and size, then reused by every server's workspace)."""
        path = self.data / f"{megabytes}MB-{name}"
        known = path.with_name(path.name + ".sha256")
        if path.exists() and known.exists():
            return path, known.read_text(encoding="ascii")
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        block = os.urandom(_MIB)
        with open(path, "wb") as out:
            for i in range(megabytes):
                chunk = i.to_bytes(8, "little") + block[8:]  # every MiB differs
                digest.update(chunk)
                out.write(chunk)
        known.write_text(digest.hexdigest(), encoding="ascii")
        return path, digest.hexdigest()

    def project(self, name: str, assets_yaml: str) -> Path:
        """A project folder with ``assets_yaml`` and the one-line dodo.py."""
        folder = self.root / "projects" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "assets.yaml").write_text(assets_yaml, encoding="utf-8")
        (folder / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n", encoding="utf-8")
        return folder

    def fresh_dir(self, name: str) -> Path:
        """An empty folder ``name`` under the root (emptied if it was there)."""
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    # --- children -----------------------------------------------------------------

    def env(self, cache: Path | None = None, counted: bool = False, **extra: str) -> dict[str, str]:
        """The environment of a child: this server (reached directly, or through its
        counting endpoint if ``counted``), no real AWS config, ``cache``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE)}
        env.update(self.server.env(direct=not counted))
        env.update(
            AWS_CONFIG_FILE=str(self.root / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.root / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            POD_CACHE_DIR=str(cache or self.root / "cache"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        env.update(extra)
        return env

    def trace_file(self) -> Path | None:
        """Where a traced run's strace table goes (emptied), None if strace is not `syscalls.available`."""
        if not syscalls.available():
            return None
        path = self.root / "strace.txt"
        path.unlink(missing_ok=True)
        return path

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 3600,
            trace: Path | None = None) -> Sample:
        """Run ``args`` (under strace writing to ``trace``, if given) and return its
        wall-clock seconds and CPU seconds; `ChildFailed` if it fails."""
        return self._child(args, cwd, env, timeout, trace)[0]

    def _child(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float,
               trace: Path | None) -> tuple[Sample, str]:
        """`run`, and what the child printed."""
        argv = syscalls.traced(args, trace) if trace else args
        cpu, start = cpu_seconds(children=True), time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        seconds, cpu_after = time.perf_counter() - start, cpu_seconds(children=True)
        if done.returncode != 0:
            raise ChildFailed(f"{' '.join(argv)} (in {cwd}) exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return Sample(seconds, None if cpu is None or cpu_after is None else cpu_after - cpu), done.stdout

    def doit(self, args: list[str], cwd: Path, env: dict[str, str], trace: Path | None = None) -> tuple[Sample, dict]:
        """``doit ARGS`` through the probe (which counts re-hashes): (its sample, stats)."""
        stats = self.root / "stats.json"
        stats.unlink(missing_ok=True)
        sample = self.run([sys.executable, str(PROBE), "doit", *args], cwd, {**env, "BENCH_STATS": str(stats)}, trace=trace)
        return sample, json.loads(stats.read_text())

    def probe(self, args: list[str], cwd: Path, env: dict[str, str], trace: Path | None = None) -> dict:
        """``bench/probe.py ARGS`` (under strace, if ``trace``): the JSON it prints last."""
        _, out = self._child([sys.executable, str(PROBE), *args], cwd, env, 3600, trace)
        return json.loads(out.strip().splitlines()[-1])
