"""resolve() from real processes against moto's S3 server over HTTP and the directory store."""

from __future__ import annotations

import hashlib
import sys

from tests.conftest import run_python, write


def test_resolve_miss_then_hit_counts_requests(s3, client, project):
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.2.5.csv", Body=b"a,b\n1,2\n")
    write(project / "assets.yaml", """
        store: s3://assets
        assets:
          foo/bar.csv: 1.2.5
    """)
    s3.clear()
    code = "from pod_tasks import resolve; p = resolve('foo/bar.csv'); print(p); print(open(p,'rb').read())"
    first = run_python(code, project)
    assert first.returncode == 0, first.stderr
    path, body = first.stdout.splitlines()
    assert path.endswith("assets/foo/bar.1.2.5.csv")
    assert body == repr(b"a,b\n1,2\n")
    assert s3.count("GET", "/assets/foo/bar.1.2.5.csv") == 1
    s3.clear()
    second = run_python(code, project)
    assert second.stdout.splitlines()[0] == path
    assert s3.requests == []  # immutable store: no request at all


def test_resolve_directory_store(project):
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"x" * 1000)
    write(project / "assets.yaml", """
        store: store
        assets:
          /foo/bar.csv: 1.0.0
    """)
    result = run_python(
        "from pod_tasks import resolve; import hashlib; p = resolve('/foo/bar.csv');"
        "print(hashlib.md5(open(p,'rb').read()).hexdigest(), resolve(p) == p)", project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [hashlib.md5(b"x" * 1000).hexdigest(), "True"]
