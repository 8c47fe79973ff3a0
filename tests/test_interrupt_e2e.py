"""Ctrl-C (SIGINT) in the middle of a download, as a user presses it: ``doit fetch``,
``python -m pod_tasks path`` and ``doit publish`` stop within a second with one line on
stderr and exit code 130; no traceback, no lock held, nothing at a final path that is
not complete and verified, assets.yaml as it was."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cache_folder, run_doit, write
from tests.faults import Rule, proxy  # noqa: F401 - proxy is a fixture

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX")

MIB = 1 << 20


#: Seconds from Ctrl-C to the exit: the downloads stop within a second (the contract); the
#: rest is the interpreter ending while the suite runs on every core (xdist) beside it.
STOPS_WITHIN = 3.0


def _interrupt(args: list[str], cwd: Path, started, proxy_rule: Rule) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``args``, press Ctrl-C once ``started()`` holds (mid-download), and return the
    result and the seconds from the signal to the exit."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.01)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, out, err), time.monotonic() - sent


@pytest.fixture
def slow_project(s3, client, proxy, project, tmp_path):
    """A project pinning one 8 MiB object (sha256-pinned) and 20 small ones, all served
    through the proxy with the big one slowed down."""
    client.create_bucket(Bucket="assets")
    body = os.urandom(8 * MIB)
    client.put_object(Bucket="assets", Key="data/big.1.0.0.bin", Body=body)
    lines = [f"  data/big.bin: {{version: 1.0.0, sha256: {hashlib.sha256(body).hexdigest()}}}"]
    for i in range(20):
        client.put_object(Bucket="assets", Key=f"small/{i:02d}.1.0.0.txt", Body=b"x%d\n" % i)
        lines.append(f"  small/{i:02d}.txt: 1.0.0")
    write(project / "assets.yaml", "store: s3://assets\nassets:\n" + "\n".join(lines) + "\n")
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    rule = proxy.add(Rule("GET", r"/assets/data/big\.1\.0\.0\.bin", "slow", times=None, seconds=0.01))
    return project, body, rule


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 130, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    # the one line, last (after any warning printed before the Ctrl-C)
    assert lines[-1].startswith("interrupted: ") and result.stderr.count("interrupted: ") == 1, result.stderr


def test_ctrl_c_during_doit_fetch(slow_project, cache_dir):
    project, body, rule = slow_project
    final = cache_dir / cache_folder("assets") / "data" / "big.1.0.0.bin"
    result, seconds = _interrupt([sys.executable, "-m", "doit", "fetch"], project, rule.hit.is_set, rule)
    _no_traceback(result)
    assert seconds < STOPS_WITHIN, seconds
    assert "run doit fetch again to continue" in result.stderr and "not fetched" in result.stderr
    assert not final.exists()  # never a partial file at the final path
    assert not list((cache_dir / ".pod" / "_tmp").iterdir())
    rule.times = 0  # the next run goes at full speed
    again = run_doit(["fetch"], project)  # no lock left held: the next run finishes the job
    assert again.returncode == 0, again.stdout + again.stderr
    assert final.read_bytes() == body
    assert "0 failed" in again.stdout


def test_ctrl_c_during_python_m_pod_tasks_path(slow_project, cache_dir):
    project, body, rule = slow_project
    final = cache_dir / cache_folder("assets") / "data" / "big.1.0.0.bin"
    result, seconds = _interrupt([sys.executable, "-m", "pod_tasks", "path", "data/big.bin"], project,
                                 rule.hit.is_set, rule)
    _no_traceback(result)
    assert seconds < STOPS_WITHIN, seconds
    assert result.stdout == "" and "data/big.bin@1.0.0 was not fetched" in result.stderr
    assert not final.exists() and not list((cache_dir / ".pod" / "_tmp").iterdir())


def test_ctrl_c_during_doit_publish_leaves_assets_yaml_as_it_was(s3, client, proxy, project, tmp_path):
    client.create_bucket(Bucket="assets")
    source = tmp_path / "new.bin"
    source.write_bytes(os.urandom(8 * MIB))
    write(project / "assets.yaml", f"""
        store: s3://assets
        assets:
          data/new.bin: {{source: {source.as_posix()}}}
    """)
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    before = (project / "assets.yaml").read_bytes()
    rule = proxy.add(Rule("PUT", r"/assets/data/new\.1\.0\.0\.bin", "delay", times=None, seconds=30))
    result, seconds = _interrupt([sys.executable, "-m", "doit", "publish:data/new.bin", "--version", "1.0.0"],
                                 project, rule.hit.is_set, rule)
    _no_traceback(result)
    assert seconds < STOPS_WITHIN, seconds
    assert "publish:data/new.bin stopped" in result.stderr
    assert (project / "assets.yaml").read_bytes() == before


def _cached_files(cache_dir: Path, folder: Path) -> tuple[list[Path], list[Path]]:
    """(the files in the cache under ``folder``, every temporary file in the cache: the
    bytes of a download in ``.pod/_tmp/``, a writer's ``.part``)."""
    temporary = [p for p in cache_dir.rglob("*") if p.is_file() and (
        p.relative_to(cache_dir).parts[:2] == (".pod", "_tmp") or p.name.endswith((".part", ".partial", ".tmp")))]
    return [p for p in folder.rglob("*") if p.is_file()], temporary


@pytest.mark.parametrize("parallel", ["process", "thread"])
def test_ctrl_c_under_doit_n_4_parallel_fetch(s3, client, proxy, project, cache_dir, parallel):
    """Ctrl-C as a terminal sends it (to the whole process group) under ``doit -n 4 -P
    process|thread fetch``: one ``interrupted:`` line whose count is what the cache
    holds, no temporary file left; the next run fetches the rest."""
    client.create_bucket(Bucket="assets")
    bodies = {f"data/{i:02d}.bin": os.urandom(256 << 10) for i in range(24)}
    for name, body in bodies.items():
        client.put_object(Bucket="assets", Key=name.replace(".bin", ".1.0.0.bin"), Body=body)
    write(project / "assets.yaml", "store: s3://assets\nassets:\n"
          + "".join(f"  {name}: 1.0.0\n" for name in bodies))
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    # the first 8 come at once; the rest trickle in, so that Ctrl-C finds downloads under way
    rule = proxy.add(Rule("GET", r"/assets/data/(0[89]|1\d|2\d)\.1\.0\.0\.bin", "slow", times=None, seconds=0.25))
    folder = cache_dir / cache_folder("assets") / "data"
    args = [sys.executable, "-m", "doit", "-n", "4", "-P", parallel, "fetch"]
    proc = subprocess.Popen(args, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (rule.hit.is_set() and len(list(folder.glob("*.bin"))) >= 8):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the downloads never started"
        time.sleep(0.01)
    time.sleep(0.3)  # slow downloads under way in every worker
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    result = subprocess.CompletedProcess(args, proc.returncode, out, err)
    _no_traceback(result)
    complete, temporary = _cached_files(cache_dir, folder)
    assert temporary == [], temporary
    line = next(l for l in err.splitlines() if l.startswith("interrupted: "))
    assert line.startswith(f"interrupted: fetched {len(complete)} file(s)"), (line, complete)
    assert f"{len(bodies) - len(complete)} not fetched" in line, line
    assert 8 <= len(complete) < len(bodies), complete
    for path in complete:
        assert path.read_bytes() == bodies["data/" + path.name.replace(".1.0.0", "")]
    rule.times = 0
    again = run_doit(args[3:], project)  # the same command: its summary counts every process's downloads
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"fetched {len(bodies) - len(complete)} files" in again.stdout, again.stdout
    assert sorted(p.name for p in _cached_files(cache_dir, folder)[0]) == sorted(
        n.replace("data/", "").replace(".bin", ".1.0.0.bin") for n in bodies)
