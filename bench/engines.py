"""Which I/O library fetches many small objects fastest, from one Python process?

    python bench/engines.py                    # 1000 x 10 KB, 3 rounds
    python bench/engines.py --objects 200 --rounds 1 --clients boto3,obstore

Starts ``rclone serve s3`` on 127.0.0.1 (`tests.servers.RcloneServer`, reached on its
own port, no proxy), puts ``--objects`` objects of ``--kb`` KB in one bucket, then, in
each round, has every client copy every object into an empty folder, and prints a
markdown table of seconds per client and round with the median. A client that leaves
other than one file per object fails the script.

What is timed is transfer and write only: the library's imports and long-lived
objects (a boto3 client, a pool, a store) are made before the clock starts; an event
loop and an aiohttp session are made inside it. ``s5cmd cp`` is a whole process, its
start-up (about 10 ms) included: the bench's fastest peer, for scale. Clients whose
library (or binary) is missing are skipped with a note; ``pip install -e ".[bench]"``
installs them all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # import `bench` as a package

from bench.peers import S5CMD, Copy, available  # noqa: E402
from bench.workspace import Workspace  # noqa: E402
from tests.servers import CREDENTIALS  # noqa: E402

#: Copies the given keys of the bucket into a folder (what is timed).
Fetch = Callable[[list[str], Path], None]

_KEY, _SECRET, _REGION = (CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"))
_BUCKET = "engines"


class Missing(Exception):
    """A client's library or binary is not installed (the message says which)."""


@dataclass(frozen=True)
class Bucket:
    """Where the objects are: ``ws`` serves them at ``ws.server.direct_endpoint``."""

    ws: Workspace
    name: str

    @property
    def endpoint(self) -> str:
        return self.ws.server.direct_endpoint

    def url(self, key: str) -> str:
        return f"{self.endpoint}/{self.name}/{key}"


def _need(module: str):
    """Import ``module``, or `Missing`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise Missing(f"{module.split('.')[0]} is not installed") from error


def _threads(count: int, get: Callable[[str, Path], None]) -> Fetch:
    """A fetch running ``get(key, dest)`` for every key on ``count`` threads."""

    def fetch(keys: list[str], dest: Path) -> None:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda key: get(key, dest), keys))

    return fetch


def _in_flight(count: int, get: Callable[[str, Path], object]) -> Fetch:
    """A fetch awaiting ``get(key, dest)`` for every key, ``count`` at a time, in a new event loop."""

    async def all_of(keys: list[str], dest: Path) -> None:
        gate = asyncio.Semaphore(count)

        async def one(key: str) -> None:
            async with gate:
                await get(key, dest)

        await asyncio.gather(*(one(key) for key in keys))

    return lambda keys, dest: asyncio.run(all_of(keys, dest))


def _signer() -> Callable[[str], dict[str, str]]:
    """The SigV4 headers of an unsigned-payload GET of a URL, signed by botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = SigV4Auth(Credentials(_KEY, _SECRET), "s3", _REGION)

    def headers(url: str) -> dict[str, str]:
        request = AWSRequest("GET", url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        auth.add_auth(request)
        return dict(request.headers.items())

    return headers


# --- the clients: each makes its long-lived objects, then returns the timed fetch ---


def s5cmd(bucket: Bucket) -> Fetch:
    """``s5cmd cp 's3://BUCKET/*' DEST/`` (every object, whatever ``keys``)."""
    peer = next((p for p in available(bucket.ws.root, one=False)[0] if p.name == S5CMD), None)
    if peer is None:
        raise Missing("s5cmd is not installed")

    def fetch(keys: list[str], dest: Path) -> None:
        argv = peer.argv(Copy(bucket.endpoint, bucket.name, None, dest, CREDENTIALS))
        bucket.ws.run(argv, dest, bucket.ws.env(**peer.env))

    return fetch


def boto3_threads(bucket: Bucket, threads: int = 16) -> Fetch:
    """boto3 ``get_object`` on ``threads`` threads, one client."""
    boto3 = _need("boto3")
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=bucket.endpoint, region_name=_REGION, aws_access_key_id=_KEY,
                          aws_secret_access_key=_SECRET, config=Config(max_pool_connections=threads))

    def get(key: str, dest: Path) -> None:
        (dest / key).write_bytes(client.get_object(Bucket=bucket.name, Key=key)["Body"].read())

    return _threads(threads, get)


def urllib3_threads(bucket: Bucket, threads: int) -> Fetch:
    """urllib3 ``PoolManager`` GETs signed by botocore's ``SigV4Auth``, on ``threads`` threads."""
    urllib3 = _need("urllib3")
    pool, sign = urllib3.PoolManager(maxsize=threads), _signer()

    def get(key: str, dest: Path) -> None:
        url = bucket.url(key)
        reply = pool.request("GET", url, headers=sign(url), preload_content=False)
        if reply.status != 200:
            raise RuntimeError(f"GET {url}: {reply.status}")
        with open(dest / key, "wb") as out:
            for chunk in reply.stream(1 << 20):
                out.write(chunk)
        reply.release_conn()

    return _threads(threads, get)


def obstore_async(bucket: Bucket, in_flight: int = 16) -> Fetch:
    """obstore's ``get_async`` on asyncio, ``in_flight`` at a time."""
    obstore = _need("obstore")
    from obstore.store import S3Store

    store = S3Store(bucket.name, endpoint=bucket.endpoint, allow_http=True, region=_REGION,
                    access_key_id=_KEY, secret_access_key=_SECRET)

    async def get(key: str, dest: Path) -> None:
        reply = await obstore.get_async(store, key)
        with open(dest / key, "wb") as out:
            async for chunk in reply.stream():
                out.write(chunk)

    return _in_flight(in_flight, get)


def aiohttp_async(bucket: Bucket, in_flight: int = 16) -> Fetch:
    """aiohttp GETs signed by botocore's ``SigV4Auth``, ``in_flight`` at a time on one session."""
    aiohttp = _need("aiohttp")
    sign = _signer()

    async def all_of(keys: list[str], dest: Path) -> None:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def get(key: str) -> None:
                url = bucket.url(key)
                async with session.get(url, headers=sign(url)) as reply:
                    reply.raise_for_status()
                    with open(dest / key, "wb") as out:
                        async for chunk in reply.content.iter_chunked(1 << 20):
                            out.write(chunk)

            await asyncio.gather(*(get(key) for key in keys))

    return lambda keys, dest: asyncio.run(all_of(keys, dest))


def awscrt_client(bucket: Bucket, in_flight: int = 64) -> Fetch:
    """awscrt's ``S3Client`` (TLS disabled), each GET written by the CRT to its file,
    at most ``in_flight`` requests queued at a time."""
    s3 = _need("awscrt.s3")
    from awscrt.auth import AwsCredentialsProvider, AwsSignatureType, AwsSigningAlgorithm, AwsSigningConfig
    from awscrt.http import HttpHeaders, HttpRequest
    from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup

    loops = EventLoopGroup()
    signing = AwsSigningConfig(
        algorithm=AwsSigningAlgorithm.V4, signature_type=AwsSignatureType.HTTP_REQUEST_HEADERS, service="s3",
        region=_REGION, credentials_provider=AwsCredentialsProvider.new_static(_KEY, _SECRET),
    )
    client = s3.S3Client(bootstrap=ClientBootstrap(loops, DefaultHostResolver(loops)), region=_REGION,
                         signing_config=signing, tls_mode=s3.S3RequestTlsMode.DISABLED)
    host = bucket.endpoint.removeprefix("http://")

    def fetch(keys: list[str], dest: Path) -> None:
        gate, done = threading.Semaphore(in_flight), []
        for key in keys:
            gate.acquire()
            request = HttpRequest("GET", f"/{bucket.name}/{key}", HttpHeaders([("Host", host)]))
            done.append(client.make_request(type=s3.S3RequestType.GET_OBJECT, request=request,
                                            recv_filepath=str(dest / key), on_done=lambda **_: gate.release()))
        for request in done:
            request.finished_future.result()

    return fetch


#: name -> (what the table shows, how to make the fetch)
CLIENTS: dict[str, tuple[str, Callable[[Bucket], Fetch]]] = {
    "s5cmd": ("`s5cmd cp` (a process)", s5cmd),
    "boto3": ("boto3 `get_object`, 16 threads", boto3_threads),
    "urllib3-8": ("urllib3 + SigV4Auth, 8 threads", lambda bucket: urllib3_threads(bucket, 8)),
    "urllib3-16": ("urllib3 + SigV4Auth, 16 threads", lambda bucket: urllib3_threads(bucket, 16)),
    "obstore": ("obstore, asyncio, 16 in flight", obstore_async),
    "awscrt": ("awscrt `S3Client`, TLS disabled", awscrt_client),
    "aiohttp": ("aiohttp + SigV4Auth, 16 in flight", aiohttp_async),
}


def _round(fetch: Fetch, keys: list[str], folder: Path) -> float:
    """Seconds ``fetch`` takes to copy ``keys`` into the emptied ``folder``; RuntimeError
    unless it wrote one file per key."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    fetch(keys, folder)
    seconds = time.perf_counter() - start
    written = sum(1 for path in folder.iterdir() if path.is_file())
    if written != len(keys):
        raise RuntimeError(f"{written} files written for {len(keys)} objects")
    return seconds


def _table(seconds: dict[str, list[float]], rounds: int) -> str:
    header = ["client", *(f"round {i + 1}" for i in range(rounds)), "median (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, samples in sorted(seconds.items(), key=lambda item: statistics.median(item[1])):
        cells = [CLIENTS[name][0], *(f"{s:.2f}" for s in samples), f"**{statistics.median(samples):.2f}**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compare I/O libraries fetching many small objects from rclone serve s3.")
    parser.add_argument("--objects", type=int, default=1000, help="objects in the bucket (default 1000)")
    parser.add_argument("--kb", type=int, default=10, help="size of each object in KB (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every client (default 3)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"comma-separated, of: {','.join(CLIENTS)}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    names = args.clients.split(",")
    unknown = set(names) - set(CLIENTS)
    if unknown:
        print(f"--clients: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CLIENTS)}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="pod-engines-"))
    try:
        with Workspace("rclone", base) as ws:
            body = os.urandom(args.kb * 1024)
            keys = [f"o{i:05d}.bin" for i in range(args.objects)]
            ws.bucket(_BUCKET)
            ws.put_many(_BUCKET, {key: i.to_bytes(4, "little") + body[4:] for i, key in enumerate(keys)})
            bucket, fetches, notes = Bucket(ws, _BUCKET), {}, []
            for name in names:
                try:
                    fetches[name] = CLIENTS[name][1](bucket)
                except Missing as missing:
                    notes.append(f"- skipped {CLIENTS[name][0]}: {missing}")
            seconds: dict[str, list[float]] = {name: [] for name in fetches}
            for _ in range(args.rounds):
                for name, fetch in fetches.items():
                    seconds[name].append(_round(fetch, keys, base / "dest"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{args.objects} x {args.kb} KB from `rclone serve s3` on 127.0.0.1, {os.cpu_count()} CPUs, "
          f"seconds per round (fastest first):\n")
    print("\n".join([_table(seconds, args.rounds), *([""] + notes if notes else [])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
