"""The store out of reach, over time, as a user meets it: `resolve()` and `doit` in
subprocesses against moto's and rclone's S3 servers (behind the fault proxy, which
refuses every connection while the store is "down" and counts each attempt) and a
folder store taken away; ``STATIC_CACHE_TIMEOUT`` read as the old tool read it; and
``missing_assets.yaml`` keeping only what is still missing."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.conftest import REPO, cache_folder, run_doit, run_python, write
from tests.doit_project import backend, doit, manifest, output, s3_backend  # noqa: F401  (fixtures)
from tests.faults import Rule, assert_clean, proxy  # noqa: F401  (fixture)

RESOLVE = """
import json, sys
from pod_tasks import resolve
for name in sys.argv[1:]:
    for _ in range(3):  # a program asks again and again
        path = resolve(name)
    print(json.dumps([name, open(path, "rb").read().decode()]))
"""
BYTES = {"a.csv": "a\n", "b.csv": "b\n", "c.csv": "c\n", "s3://data/x.json": "x\n", "s3://data/y.json": "y\n"}
WARNING = "serving the cached copy unchecked"


def resolve_each(project, names, env=None) -> tuple[dict[str, str], list[str]]:
    """``resolve()`` of each name (three times) in a new process: {name: its bytes} and
    the warning lines it printed."""
    result = run_python(RESOLVE.replace("sys.argv[1:]", repr(list(names))), project, env)
    assert_clean(result)
    assert result.returncode == 0, result.stderr
    return dict(map(json.loads, result.stdout.splitlines())), [l for l in result.stderr.splitlines() if WARNING in l]


def notes(cache_dir) -> list[dict]:
    folder = cache_dir / ".pod" / "_unreachable"
    return sorted((json.loads(p.read_bytes()) for p in folder.glob("*.json")), key=lambda n: n["store"]) \
        if folder.is_dir() else []


def test_an_unreachable_store_costs_one_attempt_per_store_then_nothing(s3, client, proxy, project, cache_dir):
    client.create_bucket(Bucket="assets")
    client.create_bucket(Bucket="data")
    for key, body in (("a.1.0.0.csv", "a\n"), ("b.1.0.0.csv", "b\n"), ("c.1.0.0.csv", "c\n"), ("d.2.0.0.csv", "d\n")):
        client.put_object(Bucket="assets", Key=key, Body=body.encode())
    for key in ("x.json", "y.json"):
        client.put_object(Bucket="data", Key=key, Body=f"{key[0]}\n".encode())
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", """
        store: s3://assets
        timeout: 0                 # mutable files: a check every time
        assets:
          a.csv: 1.0.0
          b.csv: 1.0.0
          c.csv: 1.0.0
          d.csv: 2.0.0             # never fetched here
        files:
          - s3://data/x.json
          - s3://data/y.json
    """)
    assert resolve_each(project, BYTES) == (BYTES, [])
    assert run_doit(["cache", "--invalidate"], project).returncode == 0  # the versioned files are due a check too
    down = [proxy.add(Rule("*", rf"^/{bucket}/", "refuse", times=None)) for bucket in ("assets", "data")]
    s3.clear()

    # A cold process, five cached files due a check, each resolved three times: one check
    # per store (its tries of one request), one warning per store, the cached bytes.
    served, warnings = resolve_each(project, BYTES)
    assert served == BYTES
    attempts = [rule.injected for rule in down]
    assert attempts == [6, 6]  # one HEAD per store: its first try and the S3 client's 5 retries
    assert sorted(w.split(":")[0] for w in warnings) == ["a.csv@1.0.0", "s3"], warnings
    assert all("cannot reach the store" in w and "it is tried again after" in w for w in warnings), warnings
    assert [n["store"].split()[1] for n in notes(cache_dir)] == ["assets", "data"]
    assert s3.requests == []

    # The next processes make no attempt at all, and still warn once per store.
    for _ in range(2):
        served, warnings = resolve_each(project, reversed(list(BYTES)))
        assert served == BYTES and len(warnings) == 2, warnings
    fetched = run_doit(["fetch"], project)
    said = output(fetched)
    assert fetched.returncode == 1, said
    for name in ("a.csv@1.0.0", "b.csv@1.0.0", "c.csv@1.0.0", "s3://data/x.json", "s3://data/y.json"):
        assert f"{name}: using the cached copy, not checked with the store" in said, said
    assert [line.split()[1] for line in said.splitlines() if line.startswith("ERROR")] == ["fetch:d.csv:"], said
    assert sum(WARNING in line for line in said.splitlines()) == 2, said
    # d.csv is not cached: it is still asked for (one request and its retries), and listed
    assert [rule.injected for rule in down] == [12, 6]
    assert yaml.safe_load((cache_dir / "missing_assets.yaml").read_text()) == ["s3://assets/d.2.0.0.csv"]

    # The store is back: d.csv is fetched (which clears the note of the store, and its
    # entry in missing_assets.yaml); data's note still spares its files a check.
    for rule in down:
        proxy.rules.remove(rule)
    fetched = run_doit(["fetch"], project)
    assert fetched.returncode == 0, output(fetched)
    assert (cache_dir / cache_folder("assets") / "d.2.0.0.csv").read_bytes() == b"d\n"
    assert not (cache_dir / "missing_assets.yaml").exists()
    assert [n["store"].split()[1] for n in notes(cache_dir)] == ["data"]
    s3.clear()
    served, warnings = resolve_each(project, BYTES)
    assert served == BYTES and len(warnings) == 1 and warnings[0].startswith("s3://data/"), warnings
    assert sorted(s3.requests) == sorted(("HEAD", f"/{key}") for key in ("assets/a.1.0.0.csv", "assets/b.1.0.0.csv",
                                                                         "assets/c.1.0.0.csv"))
    # `doit cache --invalidate` tries every store again at once
    assert run_doit(["cache", "--invalidate"], project).returncode == 0 and notes(cache_dir) == []
    s3.clear()
    assert resolve_each(project, BYTES) == (BYTES, [])
    assert s3.count("HEAD") == 3 + 2 * 3 and s3.count("GET") == 0  # a, b, c once; x, y at every call (timeout: 0)


def test_an_unmounted_folder_store_is_remembered(project, cache_dir):
    store = project / "store"
    store.mkdir()
    for name in ("a", "b", "c"):
        (store / f"{name}.1.0.0.csv").write_text(f"{name}\n")
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", "store: store\nassets:\n  a.csv: 1.0.0\n  b.csv: 1.0.0\n  c.csv: 1.0.0\n")
    names = ["a.csv", "b.csv", "c.csv"]
    assert resolve_each(project, names)[1] == []
    assert run_doit(["cache", "--invalidate"], project).returncode == 0
    store.rename(project / "unmounted")

    served, warnings = resolve_each(project, names)
    assert served == {n: f"{n[0]}\n" for n in names}
    [warning] = warnings
    assert warning.startswith("a.csv@1.0.0: serving the cached copy unchecked: cannot reach ") and "mount it" in warning
    [note] = notes(cache_dir)
    served, warnings = resolve_each(project, names)  # no new attempt: the note is as it was
    assert len(warnings) == 1 and notes(cache_dir) == [note]
    fetched = run_doit(["fetch"], project)
    assert fetched.returncode == 0 and sum(WARNING in l for l in output(fetched).splitlines()) == 1, output(fetched)
    assert notes(cache_dir) == [note]

    (project / "unmounted").rename(store)
    assert run_doit(["cache", "--invalidate"], project).returncode == 0
    assert resolve_each(project, names) == ({n: f"{n[0]}\n" for n in names}, [])
    assert notes(cache_dir) == []


def test_offline_mode_warns_once_for_files_due_a_check(s3, client, project, cache_dir):
    client.create_bucket(Bucket="data")
    client.put_object(Bucket="data", Key="x.json", Body=b"x\n")
    client.put_object(Bucket="data", Key="y.json", Body=b"y\n")
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", "timeout: 0\nfiles:\n  - s3://data/x.json\n  - s3://data/y.json\n")
    names = ["s3://data/x.json", "s3://data/y.json"]
    assert resolve_each(project, names)[1] == []
    s3.clear()
    served, warnings = resolve_each(project, names, {"POD_OFFLINE": "1"})
    assert served == {"s3://data/x.json": "x\n", "s3://data/y.json": "y\n"}
    assert warnings == ["s3://data/x.json: serving the cached copy unchecked: offline mode is on (POD_OFFLINE=1); "
                        "other files of s3://data/ due for a check are served unchecked too, with no further warning"]
    fetched = run_doit(["fetch"], project, {"POD_OFFLINE": "1"})
    said = output(fetched)
    assert fetched.returncode == 0, said
    assert said.count("using the cached copy, not checked with the store") == 2
    assert sum(WARNING in line for line in said.splitlines()) == 1, said
    assert s3.requests == []


@pytest.mark.parametrize("env, checks", [
    ({"STATIC_CACHE_TIMEOUT": "0"}, False),                        # the old tool's "never check"
    ({"STATIC_CACHE_TIMEOUT": "none"}, False),                     # not a whole number: never check
    ({"STATIC_CACHE_TIMEOUT": "86400"}, False),
    ({"STATIC_CACHE_TIMEOUT": "-1"}, True),                        # always past: every time
    ({"POD_TIMEOUT": "0", "STATIC_CACHE_TIMEOUT": "0"}, True),     # POD_TIMEOUT wins
    ({}, True),                                                    # assets.yaml's timeout: 0
])
def test_static_cache_timeout_keeps_its_old_meaning(s3_backend, env, checks):
    s3_backend.client.create_bucket(Bucket="data")
    s3_backend.client.put_object(Bucket="data", Key="x.json", Body=b"x\n")
    manifest(s3_backend, "timeout: 0\nfiles:\n  - s3://data/x.json\n")
    assert doit(s3_backend, "fetch").returncode == 0
    s3_backend.s3.clear()
    fetched = doit(s3_backend, "fetch", "-v", env=env)
    assert fetched.returncode == 0, output(fetched)
    assert ("-- fetch:s3://data/x.json" in fetched.stdout) != checks, fetched.stdout
    assert resolve_each(s3_backend.project, ["s3://data/x.json"], env) == ({"s3://data/x.json": "x\n"}, [])
    # a check: one HEAD for doit fetch, one for each of the three resolve() calls
    assert s3_backend.s3.requests == [("HEAD", "/data/x.json")] * (4 if checks else 0)


def test_missing_assets_keeps_only_what_is_still_missing(backend, tmp_path):
    """Listed while offline; gone once prefetched or unpacked; no file once nothing is missing."""
    for name in ("a", "b", "c"):
        backend.put(f"{name}.1.0.0.csv", f"{name}\n".encode())
    manifest(backend, "assets:\n  a.csv: 1.0.0\n  b.csv: 1.0.0\n  c.csv: 1.0.0\n")
    elsewhere = {"POD_CACHE_DIR": str(tmp_path / "elsewhere")}
    write(backend.project / "only-c.yaml", "- c.csv\n")
    packed = doit(backend, "pack", "--list", "only-c.yaml", "--out", "c.zip", env=elsewhere)  # from another machine
    assert packed.returncode == 0, output(packed)
    pinned = ["a.csv", "b.csv", "c.csv"]
    here = tmp_path / "cache"
    listed = here / "missing_assets.yaml"

    offline = doit(backend, "fetch", env={"POD_OFFLINE": "1"})
    assert offline.returncode == 1, output(offline)
    assert yaml.safe_load(listed.read_text()) == [backend.url(f"{n[0]}.1.0.0.csv") for n in pinned]

    write(backend.project / "needed.yaml", "- a.csv\n")
    assert doit(backend, "prefill", "--list", "needed.yaml").returncode == 0
    assert yaml.safe_load(listed.read_text()) == [backend.url("b.1.0.0.csv"), backend.url("c.1.0.0.csv")]
    unpacked = doit(backend, "unpack", "c.zip")
    assert unpacked.returncode == 0, output(unpacked)
    assert yaml.safe_load(listed.read_text()) == [backend.url("b.1.0.0.csv")]
    assert doit(backend, "fetch").returncode == 0
    assert not listed.exists()
    assert resolve_each(backend.project, pinned)[0] == {n: f"{n[0]}\n" for n in pinned}
