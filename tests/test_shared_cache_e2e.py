"""A cache dir shared by a group: every file, record, lock and folder pod-tasks creates
gets its permissions from the user's umask (so ``umask 002`` makes them group-writable),
checked from a real process fetching from moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from pod_tasks.layout import Layout
from tests.conftest import cache_folder, run_python, write

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


@pytest.mark.parametrize("umask, file_mode, dir_mode", [
    (0o002, 0o664, 0o775),  # a shared cache: the group may write
    (0o022, 0o644, 0o755),  # the usual default: the group may read
    (0o077, 0o600, 0o700),  # private
], ids=["umask-002", "umask-022", "umask-077"])
def test_created_files_follow_the_umask(s3, client, project, cache_dir, umask, file_mode, dir_mode):
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=b"a,b\n")
    write(project / "assets.yaml", "store: s3://assets\nassets:\n  foo/bar.csv: 1.0.0\n")
    result = run_python(f"import os; os.umask({umask}); from pod_tasks import resolve; print(resolve('foo/bar.csv'))",
                        project)
    assert result.returncode == 0, result.stderr
    folder = cache_folder("assets")
    created = {
        f"{folder}/foo/bar.1.0.0.csv": file_mode,
        f".pod/{folder}/foo/bar.1.0.0.csv.json": file_mode,
        Layout(cache_dir).lock(f"{folder}/foo/bar.1.0.0.csv").relative_to(cache_dir).as_posix(): file_mode,
        "CACHEDIR.TAG": file_mode,
        f"{folder}/foo": dir_mode,
        f".pod/{folder}/foo": dir_mode,
        ".pod/_locks": dir_mode,
        ".pod/_tmp": dir_mode,
    }
    modes = {rel: stat.S_IMODE(os.stat(cache_dir / rel).st_mode) for rel in created}
    assert modes == created

