"""``doit prefill --list needed.yaml``, run as a user runs it, against moto's S3 server
(requests counted) and a directory store."""

from __future__ import annotations

import re

from tests.conftest import REPO, cache_folder, run_doit, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)

SUMMARY = re.compile(
    r"prefill needed\.yaml: (\d+) fetched, (\d+) already cached(?:, \d+ local overrides?)?, (\d+) missing(?:, (\d+) failed)?; "
    r"(\d+) bytes in [\d.]+s"
)


def at(bucket: str, rel: str) -> str:
    """The cache-relative path of ``rel`` in ``bucket`` on the server the environment names."""
    return f"{cache_folder(bucket)}/{rel}"


def summary(text: str) -> tuple[int, int, int, int, int]:
    """(fetched, already cached, missing, failed, bytes) from the summary line."""
    found = SUMMARY.findall(text)
    assert len(found) == 1, text
    fetched, cached, missing, failed, size = found[0]
    return int(fetched), int(cached), int(missing), int(failed or 0), int(size)


def test_prefill_counts_fetched_cached_and_missing(s3_backend, client, cache_dir):
    store = s3_backend
    client.create_bucket(Bucket="raw")
    client.put_object(Bucket="raw", Key="x.json", Body=b"{}\n")
    store.put("foo/a.1.0.0.csv", b"a" * 100)
    store.put("foo/b.2.0.0.bin", b"b" * 250)
    manifest(store, """
        assets:
          foo/a.csv: 1.0.0
          foo/b.bin: 2.0.0
          foo/gone.csv: 3.0.0
    """)
    write(store.project / "needed.yaml", """
        - /foo/a.csv
        - foo/b.bin
        - foo/a.csv            # the same name again: fetched once
        - s3://raw/x.json
        - foo/gone.csv         # pinned, but not in the store
        - not/in/manifest.csv  # not in assets.yaml
        - s3://raw/nope.json   # not in the bucket
    """)
    first = doit(store, "prefill", "--list", "needed.yaml", "--jobs", "3")
    text = output(first)
    assert first.returncode == 0, text
    assert summary(text) == (3, 0, 3, 0, 100 + 250 + 3)
    for name in ("foo/gone.csv", "not/in/manifest.csv", "s3://raw/nope.json"):
        assert sum(1 for line in text.splitlines() if line.startswith(f"missing {name}: ")) == 1, text
    assert (cache_dir / at("assets", "foo/a.1.0.0.csv")).read_bytes() == b"a" * 100
    assert (cache_dir / at("assets", "foo/b.2.0.0.bin")).read_bytes() == b"b" * 250
    assert (cache_dir / at("raw", "x.json")).read_bytes() == b"{}\n"
    assert store.s3.count("GET", "/assets/foo/a.1.0.0.csv") == 1
    assert store.s3.count("GET", "/raw/x.json") == 1

    store.s3.clear()
    second = doit(store, "prefill", "--list", "needed.yaml")
    assert second.returncode == 0, output(second)
    assert summary(output(second)) == (0, 3, 3, 0, 0)
    # nothing cached is downloaded again; only the two missing objects are asked for again
    assert sorted(path for method, path in store.s3.requests if method == "GET") == [
        "/assets/foo/gone.3.0.0.csv", "/raw/nope.json",
    ]


def test_prefill_integrity_failure_is_an_error(backend, cache_dir):
    backend.put("foo/a.1.0.0.csv", b"right bytes")
    backend.put("foo/b.1.0.0.csv", b"other")
    manifest(backend, f"""
        assets:
          foo/a.csv: {{version: 1.0.0, sha256: {sha256(b"wrong bytes")}}}
          foo/b.csv: 1.0.0
    """)
    write(backend.project / "needed.yaml", "- foo/a.csv\n- foo/b.csv\n")
    result = doit(backend, "prefill", "--list", "needed.yaml")
    text = output(result)
    assert summary(text) == (1, 0, 0, 1, 5)
    assert_clean_failure(result, "1 item(s) could not be fetched", "sha256")
    folder = cache_dir / backend.cache_folder / "foo"
    assert sorted(p.name for p in folder.iterdir()) == ["b.1.0.0.csv"]  # no file, no temp file for a


def test_prefill_bad_list_is_one_line(backend):
    manifest(backend, "assets:\n")
    write(backend.project / "needed.yaml", "foo/a.csv: 1.0.0\n")
    assert_clean_failure(doit(backend, "prefill", "--list", "needed.yaml"), "needed.yaml:1:", "YAML list")
    assert_clean_failure(doit(backend, "prefill"), "--list needed.yaml")


def test_prefill_of_urls_needs_no_assets_yaml(s3, client, project, cache_dir):
    client.create_bucket(Bucket="raw")
    client.put_object(Bucket="raw", Key="x.json", Body=b"{}\n")
    (project / "dodo.py").write_text((REPO / "dodo.py").read_text())
    write(project / "needed.yaml", "- s3://raw/x.json\n- foo/a.csv\n")
    result = run_doit(["prefill", "--list", "needed.yaml"], project)
    text = output(result)
    assert result.returncode == 1 and "Traceback" not in text, text
    assert summary(text) == (1, 0, 0, 1, 3)  # a name needs assets.yaml: a failure that says so
    assert "failed foo/a.csv: no assets.yaml in " in text
    assert (cache_dir / at("raw", "x.json")).read_bytes() == b"{}\n"
