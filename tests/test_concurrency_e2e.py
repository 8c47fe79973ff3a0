"""Races between processes on one cache and one store.

16 processes call resolve() on the same 20 missing assets while two
``doit -n 4 -P thread fetch`` run on the same cache: each object is downloaded once
(GETs counted at the server) and every process reads the same complete bytes. Two
publishes of one name at once: one wins, the other fails with one clean line, and
the store and assets.yaml agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pod_tasks.manifest import load_manifest
from tests.conftest import cache_folder, write
from tests.faults import Rule, assert_clean, proxy, record  # noqa: F401 - proxy is a fixture

RESOLVERS = 16
FETCHERS = 2
ASSETS = {f"set/part{i:02d}.bin": os.urandom(20_000 + 997 * i) for i in range(20)}
DODO = "from pod_tasks.tasks import *  # noqa: F401,F403\n"

RESOLVER = textwrap.dedent("""
    import hashlib, json, os, random, sys, time
    from pod_tasks import resolve
    names = json.loads(sys.argv[1])
    random.Random(int(sys.argv[2])).shuffle(names)
    while not os.path.exists("go"):  # start together, imports done
        time.sleep(0.005)
    print(json.dumps({n: hashlib.sha256(open(resolve(n), "rb").read()).hexdigest() for n in names}))
""")


def _run_all(procs: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


@pytest.mark.slow
def test_racing_processes_download_each_object_once(s3, client, proxy, project, cache_dir):
    client.create_bucket(Bucket="assets")
    lines = ["store: s3://assets", "assets:"]
    for name, body in ASSETS.items():
        client.put_object(Bucket="assets", Key=name.replace(".bin", ".1.0.0.bin"), Body=body)
        lines.append(f"  {name}: 1.0.0")
    write(project / "assets.yaml", "\n".join(lines) + "\n")
    (project / "dodo.py").write_text(DODO)
    expected = {name: hashlib.sha256(body).hexdigest() for name, body in ASSETS.items()}
    proxy.add(Rule("GET", r"^/assets/set/", "delay", times=None, seconds=0.05))  # widen each window
    s3.clear()
    popen = dict(cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    resolvers = [
        subprocess.Popen([sys.executable, "-c", RESOLVER, json.dumps(list(ASSETS)), str(seed)], **popen)
        for seed in random.sample(range(1000), RESOLVERS)
    ]
    fetchers = [subprocess.Popen([sys.executable, "-m", "doit", "-n", "4", "-P", "thread", "fetch"], **popen)
                for _ in range(FETCHERS)]
    (project / "go").write_text("")
    results = _run_all(resolvers + fetchers)
    for result in results:
        assert_clean(result)
        assert result.returncode == 0, result.stdout + result.stderr
    for result in results[:RESOLVERS]:
        assert json.loads(result.stdout) == expected
    for name, body in ASSETS.items():
        key = name.replace(".bin", ".1.0.0.bin")
        assert s3.count("GET", f"/assets/{key}") == 1, key
        assert (cache_dir / cache_folder("assets") / key).read_bytes() == body
    assert s3.count("HEAD") == 0
    assert [p for p in cache_dir.rglob("*.part")] == []
    record("processes raced", RESOLVERS + FETCHERS)


def _two_publishers(project: Path, store: str) -> None:
    write(project / "assets.yaml", f"""
        store: {store}
        assets:
          foo/bar.csv: 1.0.0
          other.txt: 3.1.4
    """)
    (project / "dodo.py").write_text(DODO)
    (project / "a.csv").write_bytes(b"from a\n" * 1000)
    (project / "b.csv").write_bytes(b"from b\n" * 1000)


def _publish_race(project: Path, flags: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen([sys.executable, "-m", "doit", "publish:foo/bar.csv", *flags, "--file", f"{who}.csv"],
                         cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in "ab"
    ]
    return _run_all(procs)


def _one_winner(project: Path, results: list[subprocess.CompletedProcess], stored: bytes) -> None:
    """One publisher won, the other failed in one line; store and assets.yaml agree."""
    for result in results:
        assert_clean(result)
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, [r.stdout for r in results]
    errors = [line for line in lost[0].stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith("ERROR publish:foo/bar.csv: ") and "1.1.0" in errors[0]
    winner = won[0].args[-1]
    assert stored == (project / winner).read_bytes()
    pin = load_manifest(project / "assets.yaml").assets["foo/bar.csv"]
    assert (str(pin.version), pin.sha256) == ("1.1.0", hashlib.sha256(stored).hexdigest())


def test_two_publishes_to_s3_one_wins(s3, client, proxy, project):
    """On moto the conditional PUT decides; rclone ignores the condition, and publish's
    claims decide (the loser never uploads)."""
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"first\n")
    _two_publishers(project, "s3://assets")
    # Both list the store before either uploads (so both choose 1.1.0); one PUT then lags.
    listing = proxy.add(Rule("GET", r"^/assets/?\?.*list-type=2", "delay", times=2, gather=2, seconds=20))
    late = proxy.add(Rule("PUT", r"^/assets/foo/bar\.1\.1\.0\.csv", "delay", times=1, seconds=1))
    results = _publish_race(project, ["--minor"])
    assert (listing.injected, late.injected) == (2, 1)
    assert s3.count("PUT", "/assets/foo/bar.1.1.0.csv") == (2 if s3.kind == "moto" else 1)
    _one_winner(project, results, client.get_object(Bucket="assets", Key="foo/bar.1.1.0.csv")["Body"].read())
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="assets")["Contents"]]
    assert keys == ["foo/bar.1.0.0.csv", "foo/bar.1.1.0.csv"]
    record("processes raced", 2)


def test_two_publishes_to_a_folder_store_one_wins(project):
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"first\n")
    _two_publishers(project, "store")
    results = _publish_race(project, ["--version", "1.1.0"])
    _one_winner(project, results, (project / "store" / "foo" / "bar.1.1.0.csv").read_bytes())
    assert sorted(p.name for p in (project / "store" / "foo").iterdir()) == ["bar.1.0.0.csv", "bar.1.1.0.csv"]
    record("processes raced", 2)


MISSING = textwrap.dedent("""
    import os, sys, time
    from pod_tasks import OfflineError, resolve
    while not os.path.exists("go"):
        time.sleep(0.005)
    for name in sys.argv[1:]:
        try:
            resolve(name)
        except OfflineError as exc:
            assert exc.no_credentials, exc
""")


def test_racing_processes_without_credentials_keep_missing_assets_sorted_and_unique(s3, project, cache_dir):
    """Four processes, no credentials, overlapping missing assets: every URL listed once."""
    names = [f"m/{letter}.csv" for letter in "qwertyuiop"]
    write(project / "assets.yaml", "store: s3://assets\nassets:\n" + "".join(f"  {n}: 1.0.0\n" for n in names))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    rng = random.Random(len(names))
    procs = [subprocess.Popen([sys.executable, "-c", MISSING, *rng.sample(names, 4)], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    (project / "go").write_text("")
    asked = {arg for proc in procs for arg in proc.args[3:]}
    for result in _run_all(procs):
        assert_clean(result)
        assert result.returncode == 0, result.stderr
    listed = yaml.safe_load((cache_dir / "missing_assets.yaml").read_text())
    assert listed == sorted(f"s3://assets/{n.replace('.csv', '.1.0.0.csv')}" for n in asked)
    assert set(s3.counts()) == {"GET"}  # reads tried unsigned, refused: no such bucket for a stranger
    record("processes raced", len(procs))
