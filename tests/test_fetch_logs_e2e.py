"""What ``doit fetch`` writes to a log (not a terminal), as a CI job shows it: one line
per object downloaded or failed, then the summary; ``-q`` errors and the summary only;
``-v`` a line per object, up-to-date ones included (moto, rclone, a folder store)."""

from __future__ import annotations

from tests.doit_project import backend, doit, manifest, output  # noqa: F401  (fixtures)

NAMES = ["a/one.csv", "a/two.csv", "b/three.csv"]


def three_assets(backend, missing: bool = False) -> None:
    for name in NAMES:
        backend.put(name.replace(".csv", ".1.0.0.csv"), name.encode())
    pins = "".join(f"  {name}: 1.0.0\n" for name in NAMES) + ("  gone.csv: 9.9.9\n" if missing else "")
    manifest(backend, "assets:\n" + pins)


def test_a_cold_fetch_writes_a_line_per_download_then_the_summary(backend):
    three_assets(backend)
    cold = doit(backend, "fetch")
    assert cold.returncode == 0, output(cold)
    lines = cold.stdout.splitlines()
    assert len(lines) == 4, lines
    assert [line.split(":", 1)[0] for line in sorted(lines[:3])] == [f"{name}@1.0.0" for name in NAMES]
    assert lines[-1].startswith("fetched 3 files, ") and lines[-1].endswith("; 0 up to date; 0 failed")
    warm = doit(backend, "fetch")
    assert warm.stdout.splitlines() == [warm.stdout.splitlines()[-1]]  # up-to-date objects are counted
    assert warm.stdout.splitlines()[-1].endswith("; 3 up to date; 0 failed")
    verbose = doit(backend, "fetch", "-v")
    assert sorted(verbose.stdout.splitlines()[:3]) == [f"-- fetch:{name}" for name in NAMES]


def test_quiet_shows_errors_and_the_summary_only(backend, cache_dir):
    three_assets(backend, missing=True)
    quiet = doit(backend, "fetch", "-q")
    assert quiet.returncode == 1, output(quiet)
    lines = quiet.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("ERROR fetch:gone.csv: ")
    assert lines[1].startswith("fetched 3 files, ") and lines[1].endswith("; 0 up to date; 1 failed")
    for name in NAMES:  # fetched all the same
        assert (cache_dir / backend.cache_folder / name.replace(".csv", ".1.0.0.csv")).read_bytes() == name.encode()
