"""``python -m pod_tasks path|cat|path-remote|loc``, run as a shell would run them:
stdout holds exactly what the command says (a path and a newline, or the bytes),
and a failure is one line on stderr with exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cache_folder, write
from tests.doit_project import backend, manifest, s3_backend  # noqa: F401  (fixtures)

BYTES = b"a,b\r\n\x00\xff\n"  # not text: cat must pass bytes through untouched
OLDER = b"older\n"


def line(text: object) -> bytes:
    """What print() writes for ``text``: the text and the platform's line end."""
    return f"{text}{os.linesep}".encode()


def pod(store, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pod_tasks", *args], cwd=store.project,
        env={**os.environ, **(env or {})}, capture_output=True, timeout=120,
    )


def setup(store) -> None:
    store.put("foo/bar.1.2.5.csv", OLDER)
    store.put("foo/bar.1.2.6.csv", BYTES)
    write(store.project / "try" / "local.obj", "v 1 2 3\n")
    manifest(store, """
        assets:
          foo/bar.csv: 1.2.6
          dev/mesh.obj: try/local.obj
    """)


def test_path_cat_and_path_remote(backend, cache_dir):
    setup(backend)
    folder = cache_dir / backend.cache_folder / "foo"
    cases = [
        (["path", "foo/bar.csv"], line(folder / "bar.1.2.6.csv")),
        (["path", "/foo/bar.csv"], line(folder / "bar.1.2.6.csv")),
        (["path", "foo/bar.csv", "1.2.5"], line(folder / 'bar.1.2.5.csv')),
        (["cat", "foo/bar.csv"], BYTES),
        (["cat", "foo/bar.csv", "1.2.5"], OLDER),
        (["path-remote", "foo/bar.csv"], line(backend.url('foo/bar.1.2.6.csv'))),
        (["path-remote", "foo/bar.csv", "1.2.5"], line(backend.url('foo/bar.1.2.5.csv'))),
        (["path", "dev/mesh.obj"], line(backend.project / 'try' / 'local.obj')),
        (["path-remote", "dev/mesh.obj"], line(backend.project / 'try' / 'local.obj')),
        (["cat", "dev/mesh.obj"], b"v 1 2 3\n"),
        (["loc"], line(cache_dir)),
    ]
    for args, expected in cases:
        result = pod(backend, *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, expected, b""), args
    assert (folder / "bar.1.2.6.csv").read_bytes() == BYTES
    if backend.s3:
        assert backend.gets("foo/bar.1.2.6.csv") == 1 and backend.gets("foo/bar.1.2.5.csv") == 1


def test_path_of_any_s3_url_and_warm_calls_make_no_request(s3_backend, cache_dir):
    setup(s3_backend)
    first = pod(s3_backend, "path", "s3://assets/foo/bar.1.2.5.csv")
    assert first.stdout == line(cache_dir / cache_folder('assets') / 'foo' / 'bar.1.2.5.csv')
    assert s3_backend.gets() == 1
    s3_backend.s3.clear()
    assert pod(s3_backend, "path", "foo/bar.csv").returncode == 0
    s3_backend.s3.clear()
    again = pod(s3_backend, "cat", "foo/bar.csv")
    assert again.stdout == BYTES and s3_backend.s3.requests == []


FAILURES = [
    (["path", "no/such.csv"], {}, "'no/such.csv' is not in"),
    (["cat", "foo/bar.csv", "9.9.9"], {}, "does not exist in the store"),
    (["path", "foo/bar.csv", "1.2.9"], {}, "; the store has foo/bar.csv 1.2.6, 1.2.5: pin one of them in assets.yaml"),
    (["path", "new/thing.csv", "1.0.0"], {}, "; the store has no version of new/thing.csv: publish one"),
    (["path", "foo/bar.csv", "1.x"], {}, "'1.x' is not a version"),
    (["path-remote", "../up.csv"], {}, "invalid name '../up.csv'"),
    (["cat", "foo/bar.csv"], {"POD_OFFLINE": "1"}, "offline mode is on"),
    (["path", "s3://"], {}, "not an s3://bucket/key URL"),
]


@pytest.mark.parametrize("args, env, says", FAILURES, ids=[" ".join(f[0]) for f in FAILURES])
def test_failures_are_one_line_on_stderr(backend, cache_dir, args, env, says):
    setup(backend)
    result = pod(backend, *args, env=env)
    err = result.stderr.decode()
    assert (result.returncode, result.stdout) == (1, b""), err
    assert err.startswith("pod-tasks: ") and err.count("\n") == 1 and says in err, err
    assert "Traceback" not in err


def test_invalid_manifest(backend):
    setup(backend)
    (backend.project / "assets.yaml").write_text(f"store: {backend.spec}\nassets:\n  foo/bar.csv: 01.2.6\n")
    result = pod(backend, "path", "foo/bar.csv")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode().startswith("pod-tasks: assets.yaml:3: foo/bar.csv: '01.2.6'")
    assert result.stderr.count(b"\n") == 1


def test_usage_errors_print_nothing_on_stdout(backend):
    setup(backend)
    result = pod(backend, "path")
    assert result.returncode == 2 and result.stdout == b"" and b"usage:" in result.stderr


def test_cat_into_a_closed_pipe_is_quiet(backend):
    setup(backend)
    backend.put("big/blob.1.0.0.bin", b"x" * (4 << 20))
    (backend.project / "assets.yaml").write_text(f"store: {backend.spec}\nassets:\n  big/blob.bin: 1.0.0\n")
    run = subprocess.Popen([sys.executable, "-m", "pod_tasks", "cat", "big/blob.bin"], cwd=backend.project,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert run.stdout.read(10) == b"x" * 10
    run.stdout.close()  # like `| head -c 10`
    err = run.stderr.read().decode()
    run.wait(timeout=60)
    assert "Traceback" not in err and "Error" not in err, err


def test_console_command_and_version(tmp_path):
    """`pod-tasks` is `python -m pod_tasks`; both print the installed version."""
    import importlib.metadata

    import pod_tasks

    expected = importlib.metadata.version("pod-tasks")
    assert pod_tasks.__version__ == expected
    command = Path(sys.executable).with_name("pod-tasks.exe" if os.name == "nt" else "pod-tasks")
    for argv, prog in (([str(command)], "pod-tasks"), ([sys.executable, "-m", "pod_tasks"], "python -m pod_tasks")):
        done = subprocess.run([*argv, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"{prog} {expected}\n", "")
        helped = subprocess.run([*argv, "path", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {prog} path [-h] name [version]")
