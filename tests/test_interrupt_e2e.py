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
    assert seconds < 1.5, seconds
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
    assert seconds < 1.5, seconds
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
    assert seconds < 1.5, seconds
    assert "publish:data/new.bin stopped" in result.stderr
    assert (project / "assets.yaml").read_bytes() == before
