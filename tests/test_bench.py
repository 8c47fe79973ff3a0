"""The benchmark script keeps working: `bench/run.py --quick` end to end, in a subprocess.

Benchmarks are not tests: nothing here asserts a time. What is asserted is that every
row is produced with a finite positive ratio (or says why it was skipped), that the
request and re-hash counts the bench checks come out right, and that the results file
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

pytestmark = pytest.mark.slow

ROWS = [
    "warm `resolve()` of an immutable asset, per call",
    "warm `resolve()` of a 2 MB asset",
    "`doit fetch`, 20 assets all up to date (immutable store)",
    "cold `doit -n 8 -P thread fetch`, 20 x 2 KB",
    "cold fetch of one 2 MB object, verification included",
    "revalidation of 20 unchanged mutable objects after the timeout (`-n 8`)",
    "peak memory fetching a 4 MB object",
    "publish of a 2 MB file (hash + upload)",
]
SCALING = [
    "`doit fetch`, 5 assets all up to date (immutable store)",
    "cold `doit -n 8 -P thread fetch`, 10 x 2 KB",
    "no-op `doit fetch`: cost per extra asset from 10 to 20",
    "cold fetch: cost per extra asset from 10 to 20",
]


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| what"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_quick_bench_prints_every_row_with_a_sane_ratio(quick):
    out, stdout = quick
    rows = _rows(stdout)
    assert set(ROWS + SCALING) <= set(rows), sorted(set(ROWS + SCALING) - set(rows))
    pooch = importlib.util.find_spec("pooch") is not None
    for name in ROWS + SCALING:
        cells = rows[name]
        if not pooch and name.startswith("warm `resolve()` of a 2 MB"):
            assert cells[2] == "n/a" and "pooch is not installed" in cells[6]
            continue
        ratio = float(re.match(r"\*\*([\d,.]+)", cells[2])[1].replace(",", ""))
        low, high = (float(x.replace(",", "")) for x in re.match(r"([\d,.]+)-([\d,.]+)", cells[3]).groups())
        # a cost per extra asset is a difference of two noisy times, clamped at 1 us: ~0 is sane
        floor = 0 if "cost per extra asset" in name else 1e-9
        assert math.isfinite(ratio) and floor <= low <= ratio <= high and high > 0, (name, cells)
        assert cells[5] in ("yes", "NO")
    assert (out / "results.md").read_text(encoding="utf-8") == stdout


def test_quick_bench_counts_requests_and_rehashes(quick):
    _, stdout = quick
    rows = _rows(stdout)
    assert "0 requests: yes" in rows["`doit fetch`, 20 assets all up to date (immutable store)"][6]
    assert "1 GET per object: yes" in rows["cold `doit -n 8 -P thread fetch`, 20 x 2 KB"][6]
    checks = rows["revalidation of 20 unchanged mutable objects after the timeout (`-n 8`)"][6]
    assert "0 re-hashes: yes" in checks and "20 HEADs and 0 GETs per run: yes" in checks


def test_quick_bench_draws_the_scaling_plot(quick):
    out, stdout = quick
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib is not installed" in stdout
        return
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
