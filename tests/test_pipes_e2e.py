"""Output piped into a reader that stops early (``doit status | head -1``), run as a shell
runs it: a real pipe whose reader takes one line and closes it while the command still
has far more to print. The command ends quietly: no traceback, nothing on stderr, exit
code 0 for a run of doit tasks (which does all it was asked, unseen), 141 (as a shell
reports SIGPIPE) for ``pod-tasks cat`` and doit's own listings; a fetch leaves complete,
verified files only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_doit
from tests.doit_project import backend, dir_backend, manifest  # noqa: F401  (fixtures)

#: What a shell reports for a writer ended by SIGPIPE, and how Popen reports it.
CLOSED = (141, -getattr(signal, "SIGPIPE", 13))
#: More than any pipe holds (Linux: 64 KiB), so the command writes after the reader left.
PLENTY = 64 << 10


def _read_one_line(args: list[str], cwd: Path) -> tuple[int, bytes, str]:
    """Run ``args`` with stdout into a pipe whose reader reads one line and closes it
    (``| head -1``); (exit code, the line, stderr). The pipe is made small where the
    platform allows, so that even a short answer outruns it."""
    read, write = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    except (ImportError, AttributeError, OSError):
        pass
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=cwd, stdout=write, stderr=err)
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            line = reader.readline()
        code = proc.wait(timeout=300)
        err.seek(0)
        return code, line, err.read().decode()


def _doit(args: list[str], cwd: Path) -> tuple[int, bytes, str]:
    return _read_one_line([sys.executable, "-m", "doit", *args], cwd)


def _full_output(args: list[str], cwd: Path) -> bytes:
    """What ``doit ARGS`` prints when all of it is read (to show the test outran the pipe)."""
    result = run_doit(args, cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.encode()


NAMES = [f"data/an-asset-with-a-name-long-enough-to-fill-pipes-{i:04d}.csv" for i in range(250)]


def _pinned(store, count: int = len(NAMES)) -> dict[str, bytes]:
    """``count`` small assets in the store, pinned; their bytes by name."""
    bodies = {name: f"{name}\n".encode() for name in NAMES[:count]}
    for name, body in bodies.items():
        store.put(name.replace(".csv", ".1.0.0.csv"), body)
    manifest(store, "assets:\n" + "".join(f"  {name}: 1.0.0\n" for name in bodies))
    return bodies


def _cache_holds(store, cache_dir: Path, bodies: dict[str, bytes]) -> None:
    """The cache holds every asset whole (the bytes of the store), no temporary file, and
    a record for each that vouches for it: the next fetch finds all up to date."""
    folder = cache_dir / store.cache_folder
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert files == {n.replace(".csv", ".1.0.0.csv"): b for n, b in bodies.items()}
    temporary = cache_dir / ".pod" / "_tmp"  # downloads in flight, small files on their way
    assert [p for p in cache_dir.rglob("*") if p.name.endswith((".part", ".partial", ".tmp"))] == []
    assert not temporary.exists() or list(temporary.iterdir()) == []
    again = run_doit(["fetch"], store.project)
    assert again.returncode == 0 and "fetched 0 files" in again.stdout and f"{len(bodies)} up to date" in again.stdout, \
        again.stdout + again.stderr


def test_fetch_cache_and_cat_into_a_closed_pipe(backend, cache_dir):
    """``doit fetch | head -1`` fetches everything (verified, nothing temporary left);
    ``doit cache | head -1`` lists quietly; ``pod-tasks cat NAME | head -1`` stops at 141."""
    bodies = _pinned(backend)
    code, line, err = _doit(["fetch", "-v"], backend.project)
    assert (code, err) == (0, ""), err
    assert line.startswith(b".  fetch:data/an-asset-with-a-name-long-enough-to-fill-pipes-0000.csv"), line
    _cache_holds(backend, cache_dir, bodies)

    code, line, err = _doit(["cache"], backend.project)
    assert (code, err) == (0, ""), err
    assert line.split() == [b".", b"cache"]
    assert len(_full_output(["cache"], backend.project)) > PLENTY

    big = bytes(range(256)) * 4096 + b"\nend\n"  # 1 MiB, one line break near its end
    backend.put("data/big.1.0.0.bin", big)
    manifest(backend, "assets:\n  data/big.bin: 1.0.0\n")
    code, line, err = _read_one_line([sys.executable, "-m", "pod_tasks", "cat", "data/big.bin"], backend.project)
    assert code in CLOSED and err == "", (code, err)
    assert line == big[:big.index(b"\n") + 1]
    assert (cache_dir / backend.cache_folder / "data" / "big.1.0.0.bin").read_bytes() == big


def test_status_versions_and_list_into_a_closed_pipe(dir_backend, cache_dir):
    names = [name.replace("data/", folder) for folder in ("data/", "more/", "other/") for name in NAMES]
    manifest(dir_backend, "assets:\n" + "".join(f"  {name}: 1.0.0\n" for name in names))
    code, line, err = _doit(["status"], dir_backend.project)
    assert (code, err) == (0, ""), err
    assert line.split() == [b".", b"status"]
    assert len(_full_output(["status"], dir_backend.project)) > PLENTY

    for patch in range(1500):
        dir_backend.put(f"data/an-asset-with-a-name-long-enough-to-fill-pipes-0000.1.0.{patch}.csv", b"x\n")
    code, line, err = _doit(["versions:data/an-asset-with-a-name-long-enough-to-fill-pipes-0000.csv"], dir_backend.project)
    assert (code, err) == (0, ""), err
    assert line.split() == [b".", b"versions:data/an-asset-with-a-name-long-enough-to-fill-pipes-0000.csv"]
    assert len(_full_output(["versions:data/an-asset-with-a-name-long-enough-to-fill-pipes-0000.csv"], dir_backend.project)) > PLENTY

    code, line, err = _doit(["list", "--all"], dir_backend.project)  # doit's own listing
    assert code in (0, *CLOSED) and err == "", (code, err)
    assert line.split()[0] == b"cache"
    assert len(_full_output(["list", "--all"], dir_backend.project)) > PLENTY


@pytest.mark.skipif(os.name == "nt", reason="doit -P process forks")
def test_fetch_under_doit_n_4_parallel_into_a_closed_pipe(dir_backend, cache_dir):
    """``doit -n 4 -P process fetch | head -1``: every child process goes quiet on its
    own, and the fetch still ends complete."""
    bodies = _pinned(dir_backend)
    code, line, err = _doit(["-n", "4", "-P", "process", "fetch"], dir_backend.project)
    assert (code, err) == (0, ""), err
    assert b"fetch:data/" in line or line.startswith(b"data/"), line  # the parent's line or a child's
    _cache_holds(dir_backend, cache_dir, bodies)
