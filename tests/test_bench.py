"""The benchmark script keeps working: `bench/run.py --quick` end to end, in a subprocess.

Benchmarks are not tests: nothing here asserts a time. What is asserted is that every
row is produced with a finite positive ratio (or says why it was skipped), that the
request and re-hash counts the bench checks come out right on both servers, that
every installed peer is measured (and a missing one named), and that the results file
and the plot are written where `--out` says.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers import find_tool

pytestmark = pytest.mark.slow

SERVERS = ["rclone", "moto"]
ROWS = [
    "warm `resolve()` of an immutable asset, per call",
    "warm `resolve()` of a 2 MB asset",
    "no-op `doit fetch`, 5 assets all up to date (immutable store)",
    "no-op `doit fetch`, 20 assets all up to date (immutable store)",
    "cold `doit fetch`, 10 x 2 KB",
    "cold `doit fetch`, 20 x 2 KB",
    "cold `doit fetch` of one 2 MB object, verified",
    "revalidation of 20 unchanged mutable objects after the timeout",
    "peak memory fetching a 4 MB object",
    "publish of a 2 MB file (hash + upload)",
    "`doit pack` of one cached 2 MB file that does not compress",
    "no-op `doit fetch`: cost per extra asset from 10 to 20",
    "cold `doit fetch`: cost per extra asset from 10 to 20",
]
PEER_ROWS = ["cold `doit fetch`, 20 x 2 KB", "cold `doit fetch` of one 2 MB object, verified"]


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    """The table rows by (what, server)."""
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| what"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0], cells[1]] = cells
    return rows


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, _rows(done.stdout), done.stdout


def test_quick_bench_prints_every_row_on_every_server_with_a_sane_ratio(quick):
    out, rows, stdout = quick
    wanted = {(name, server) for name in ROWS for server in SERVERS}
    assert wanted <= set(rows), sorted(wanted - set(rows))
    pooch = importlib.util.find_spec("pooch") is not None
    for name, server in sorted(wanted):
        cells = rows[name, server]
        if not pooch and name.startswith("warm `resolve()` of a 2 MB"):
            assert cells[3] == "n/a" and "pooch is not installed" in cells[7]
            continue
        ratio = float(re.match(r"\*\*([\d,.]+)", cells[3])[1].replace(",", ""))
        low, high = (float(x.replace(",", "")) for x in re.match(r"([\d,.]+)-([\d,.]+)", cells[4]).groups())
        # a cost per extra asset is a difference of two noisy times, clamped at 1 us: ~0 is sane
        floor = 0 if "cost per extra asset" in name else 1e-9
        assert math.isfinite(ratio) and floor <= low <= ratio <= high and high > 0, (name, server, cells)
        assert cells[6] in ("yes", "NO")
    assert (out / "results.md").read_text(encoding="utf-8") == stdout


def test_quick_bench_measures_every_installed_peer_and_names_the_missing_ones(quick):
    _, rows, _ = quick
    for name in PEER_ROWS:
        for server in SERVERS:
            cells = rows[name, server]
            fastest = re.fullmatch(r"fastest peer: (.+)", cells[2])[1]
            peers = re.search(r"peers: ([^;]+)", cells[7])[1]
            assert peers.startswith(fastest), cells
            for tool, label in (("s5cmd", "`s5cmd cp`"), ("rclone", "`rclone copy`")):
                assert (label in peers) == (find_tool(tool) is not None), (tool, cells)
                assert (f"{tool}: not installed" in cells[7]) == (find_tool(tool) is None), (tool, cells)
            assert ("`aws s3" in peers) == (find_tool("aws") is not None)
            assert ("boto3 `download_file`" in peers) == (find_tool("aws") is None)


def test_quick_bench_counts_requests_and_rehashes(quick):
    _, rows, _ = quick
    for server in SERVERS:
        assert "0 requests: yes" in rows["no-op `doit fetch`, 20 assets all up to date (immutable store)", server][7]
        assert "1 GET per object: yes" in rows["cold `doit fetch`, 20 x 2 KB", server][7]
        checks = rows["revalidation of 20 unchanged mutable objects after the timeout", server][7]
        assert "0 re-hashes: yes" in checks and "20 HEADs and 0 GETs: yes" in checks


def test_quick_bench_draws_the_scaling_plot(quick):
    out, _, stdout = quick
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed" in stdout
        return
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_engines_script_prints_a_row_per_installed_client_and_skips_the_others():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "engines.py"), "--objects", "5", "--rounds", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| client")]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("- skipped ")]
    assert len(rows) + len(skipped) == 7 and len(rows) >= 3, done.stdout  # boto3 and urllib3 are always there
    for row in rows:
        seconds = [float(cell.strip(" *")) for cell in row.split("|")[2:-1]]
        assert len(seconds) == 3 and all(math.isfinite(s) and s >= 0 for s in seconds), row
