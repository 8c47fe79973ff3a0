"""The pytest plugin (fixture ``pod_asset``, marker ``pod_assets``, ``--pod-assets``,
``--pod-offline``, ``--pod-missing``), run as a user runs it: ``python -m pytest`` in a
subprocess, in a project with an assets.yaml, over moto's and rclone's S3 servers
(requests counted) and a directory store. Outcomes and messages come from the run's
JUnit XML report; one test runs pytest in this process (pytester), as a plugin's own
tests would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import write
from tests.doit_project import backend, dir_backend, manifest, sha256  # noqa: F401  (fixtures)

A = b"a,b\n1,2\n"
B = b"\x00\x01binary\xff" * 10
pytest_plugins = ["pytester"]

SUMMARY = re.compile(r"^pod_assets \((\d+) assets? of (\d+) tests?\): (.*); (\d+) bytes in [\d.]+s$", re.M)


def run_pytest(folder: Path, *args: str, env: dict | None = None) -> tuple[str, dict[str, tuple[str, str]]]:
    """``python -m pytest ARGS`` in ``folder`` (with ``--strict-markers``): its output,
    and each test's outcome (``passed``, ``failure``, ``error``, ``skipped``) with its message."""
    report = folder / "report.xml"
    report.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers", f"--junitxml={report}", *args],
        cwd=folder, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
    )
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        marks = [child for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = (
            (marks[0].tag, marks[0].get("message", "").removeprefix("Failed: ")) if marks else ("passed", "")
        )
    return text, outcomes


def summary(text: str) -> tuple[int, int, str, int]:
    """(assets, tests, counts, bytes) of the one ``pod_assets`` line of a run."""
    found = SUMMARY.findall(text)
    assert len(found) == 1, text
    assets, tests, counts, size = found[0]
    return int(assets), int(tests), counts, int(size)


def requests(store) -> int:
    """Requests the store's server saw (0 for a folder store: it has no server)."""
    return sum(store.s3.counts().values()) if store.s3 is not None else 0


def two_assets(store, cache_dir: Path) -> tuple[Path, Path]:
    """foo/a.csv and foo/b.bin in the store and pinned; their cache paths."""
    store.put("foo/a.1.0.0.csv", A)
    store.put("foo/b.2.0.0.bin", B)
    manifest(store, """
        assets:
          foo/a.csv: 1.0.0
          foo/b.bin: 2.0.0
          foo/c.csv: 1.0.0
    """)
    return cache_dir / store.cache_folder / "foo/a.1.0.0.csv", cache_dir / store.cache_folder / "foo/b.2.0.0.bin"


def test_marked_assets_are_fetched_once_before_the_tests(backend, cache_dir):
    cached_a, cached_b = two_assets(backend, cache_dir)
    write(backend.project / "test_data.py", f"""
        import pathlib
        import pytest

        @pytest.mark.pod_assets("foo/a.csv")
        def test_first(pod_asset):
            # foo/b.bin is marked on a later test only: fetched before this one ran
            assert pathlib.Path({str(cached_b)!r}).read_bytes() == {B!r}
            path = pod_asset("foo/a.csv")
            assert type(path) is type(pathlib.Path()) and path == pathlib.Path({str(cached_a)!r})
            assert path.read_bytes() == {A!r}

        @pytest.mark.pod_assets("foo/a.csv", "/foo/b.bin")
        def test_second(pod_asset):
            assert pod_asset("/foo/b.bin").read_bytes() == {B!r}

        def test_fixture_only(pod_asset):
            assert pod_asset("foo/a.csv") == pathlib.Path({str(cached_a)!r})

        def test_plain():
            pass
    """)
    text, outcomes = run_pytest(backend.project)
    assert outcomes == dict.fromkeys(["test_first", "test_second", "test_fixture_only", "test_plain"], ("passed", "")), text
    assert summary(text) == (2, 2, "2 fetched, 0 already cached, 0 missing", len(A) + len(B))
    assert text.index("pod_assets (") < text.index("test_data.py ")  # the line comes before the tests' results
    if backend.s3 is not None:  # one GET each, nothing else
        assert backend.gets("foo/a.1.0.0.csv") == backend.gets("foo/b.2.0.0.bin") == 1
        assert requests(backend) == 2, backend.s3.requests

        backend.s3.clear()
    text, outcomes = run_pytest(backend.project, "-q")
    assert set(outcomes.values()) == {("passed", "")}, text
    assert summary(text) == (2, 2, "0 fetched, 2 already cached, 0 missing", 0)
    assert requests(backend) == 0


def test_offline_fails_or_skips_a_missing_asset_with_its_message(backend, cache_dir, tmp_path):
    cached_a, _ = two_assets(backend, cache_dir)
    write(backend.project / "test_data.py", """
        import os
        import pytest
        from pod_tasks import OfflineError, resolve

        @pytest.mark.pod_assets("foo/a.csv")
        def test_marked():
            pass

        def test_fixture(pod_asset):
            pod_asset("foo/b.bin")

        def test_code_under_test_is_offline_too():
            assert os.environ["POD_OFFLINE"] == "1"
            with pytest.raises(OfflineError):
                resolve("foo/c.csv")

        def test_plain():
            pass
    """)
    cold = {"POD_CACHE_DIR": str(tmp_path / "cold-cache")}
    text, outcomes = run_pytest(backend.project, "--pod-offline", env=cold)
    assert requests(backend) == 0
    for test, name in (("test_marked", "foo/a.csv@1.0.0"), ("test_fixture", "foo/b.bin@2.0.0")):
        kind, message = outcomes[test]
        assert kind == "failure", text
        assert message.startswith(f"{name}: not in the cache and offline mode is on (POD_OFFLINE=1); expected "), message
        assert "\n" not in message
        assert text.count(message) >= 1  # shown as is, without a traceback
    assert outcomes["test_plain"] == outcomes["test_code_under_test_is_offline_too"] == ("passed", "")

    skipped_text, skipped = run_pytest(backend.project, "--pod-offline", "--pod-missing=skip", "-rs", env=cold)
    assert skipped["test_marked"] == ("skipped", outcomes["test_marked"][1]), skipped_text
    assert skipped["test_fixture"] == ("skipped", outcomes["test_fixture"][1]), skipped_text
    assert "test_data.py:5: foo/a.csv@1.0.0: not in the cache" in skipped_text  # reported at the test
    assert requests(backend) == 0
    assert not (tmp_path / "cold-cache" / backend.cache_folder).exists()  # nothing fetched

    run_pytest(backend.project, "-k", "marked")  # online: foo/a.csv comes into the cache
    assert cached_a.read_bytes() == A
    if backend.s3 is not None:
        backend.s3.clear()
    text, outcomes = run_pytest(backend.project, "--pod-offline", "-k", "marked")
    assert outcomes == {"test_marked": ("passed", "")}, text
    assert summary(text) == (1, 1, "0 fetched, 1 already cached, 0 missing", 0)
    assert requests(backend) == 0


def test_a_failed_asset_fails_only_the_tests_that_need_it(backend, cache_dir):
    backend.put("foo/a.1.0.0.csv", A)
    backend.put("foo/gone.0.9.0.csv", b"old")
    backend.put("foo/bad.1.0.0.csv", b"damaged")
    manifest(backend, f"""
        assets:
          foo/a.csv: 1.0.0
          foo/gone.csv: 1.0.0
          foo/bad.csv: {{version: 1.0.0, sha256: {sha256(b"intact")}}}
    """)
    write(backend.project / "test_data.py", """
        import pytest

        @pytest.mark.pod_assets("foo/a.csv")
        def test_good(pod_asset):
            assert pod_asset("foo/a.csv").read_bytes() == b"a,b\\n1,2\\n"

        @pytest.mark.pod_assets("foo/a.csv", "foo/gone.csv")
        def test_gone():
            raise AssertionError("never runs")

        def test_gone_by_fixture(pod_asset):
            pod_asset("foo/gone.csv")

        @pytest.mark.pod_assets("foo/bad.csv")
        def test_damaged():
            raise AssertionError("never runs")
    """)
    text, outcomes = run_pytest(backend.project)
    assert outcomes["test_good"] == ("passed", ""), text
    gone = outcomes["test_gone"]
    assert gone[0] == "failure" and gone == outcomes["test_gone_by_fixture"], text
    assert gone[1].startswith("foo/gone.csv@1.0.0: ") and "the store has foo/gone.csv 0.9.0: pin one of them" in gone[1]
    assert outcomes["test_damaged"][0] == "failure" and "sha256" in outcomes["test_damaged"][1], text
    assert "never runs" not in text
    assert summary(text)[2] == "1 fetched, 0 already cached, 1 missing, 1 failed"
    if backend.s3 is not None:  # the missing version was asked for once, by the prefetch
        assert backend.gets("foo/gone.1.0.0.csv") == 1
        assert backend.gets("foo/a.1.0.0.csv") == 1

    text, outcomes = run_pytest(backend.project, "--pod-missing=skip")
    assert outcomes["test_good"] == ("passed", "")
    assert outcomes["test_gone"] == outcomes["test_gone_by_fixture"] == ("skipped", gone[1]), text
    assert outcomes["test_damaged"][0] == "failure", text  # damaged bytes are never skipped


def test_pod_assets_points_elsewhere(dir_backend, cache_dir):
    store = dir_backend
    store.put("foo/a.1.0.0.csv", b"one")
    store.put("foo/a.2.0.0.csv", b"two")
    manifest(store, "assets:\n  foo/a.csv: 1.0.0\n")
    write(store.project / "elsewhere" / "assets.yaml", "store: ../store\nassets:\n  foo/a.csv: 2.0.0\n")
    write(store.project / "tests" / "test_data.py", """
        import sys

        def test_bytes(pod_asset):
            sys.stdout.write(f"BYTES={pod_asset('foo/a.csv').read_bytes()!r}\\n")
    """)

    def read(*args: str, cwd: Path = store.project, env: dict | None = None) -> str:
        text, outcomes = run_pytest(cwd, "-s", *args, env=env)
        assert outcomes == {"test_bytes": ("passed", "")}, text
        return re.findall(r"BYTES=(b'\w+')", text)[0]

    assert read() == "b'one'"  # the nearest assets.yaml from the rootdir up
    assert read(cwd=store.project / "tests") == "b'one'"  # from a subfolder too
    assert read("--pod-assets", "elsewhere/assets.yaml") == "b'two'"
    assert read("--pod-assets", "elsewhere") == "b'two'"  # a folder, as resolve(manifest=...) takes
    assert read("--pod-assets", "../elsewhere", cwd=store.project / "tests") == "b'two'"  # from where pytest runs
    assert read(env={"POD_ASSETS": str(store.project / "elsewhere")}) == "b'two'"


def test_unused_plugin_reads_nothing_and_imports_nothing(tmp_path):
    project = tmp_path / "project"
    write(project / "assets.yaml", "assets: [\n")  # invalid: never read
    write(project / "test_plain.py", """
        import sys

        def test_plain():
            assert "pod_tasks.pytest_plugin" in sys.modules
            assert not {"pod_tasks.resolver", "pod_tasks.cache", "pod_tasks.store", "yaml"} & set(sys.modules)
    """)
    text, outcomes = run_pytest(project, "--pod-offline")
    assert outcomes == {"test_plain": ("passed", "")}, text
    assert "pod_assets" not in text


def test_no_assets_yaml_and_bad_marks_are_one_line(tmp_path):
    project = tmp_path / "project"
    write(project / "test_data.py", """
        import pytest

        @pytest.mark.pod_assets("foo/a.csv")
        def test_marked():
            pass

        def test_fixture(pod_asset):
            pod_asset("foo/a.csv")
    """)
    text, outcomes = run_pytest(project, "--pod-missing=skip")
    for test in ("test_marked", "test_fixture"):  # a missing assets.yaml is a mistake: not skipped
        kind, message = outcomes[test]
        assert kind == "failure" and message.startswith(f"no assets.yaml in {project} or any folder above it"), text

    write(project / "test_data.py", """
        import pytest

        @pytest.mark.pod_assets(["foo/a.csv"])
        def test_marked():
            pass
    """)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "ERROR: test_data.py::test_marked: @pytest.mark.pod_assets takes asset names" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_in_process_runs_leave_nothing_behind(pytester, dir_backend, cache_dir):
    """pytester runs pytest inside this process: --pod-offline holds for that run only."""
    dir_backend.put("foo/a.1.0.0.csv", A)
    manifest(dir_backend, "assets:\n  foo/a.csv: 1.0.0\n")
    pytester.makepyfile(test_data=f"""
        import pytest
        from pod_tasks import resolve

        @pytest.mark.pod_assets("foo/a.csv")
        def test_marked(pod_asset):
            assert pod_asset("foo/a.csv").read_bytes() == {A!r}

        def test_code_under_test():
            assert resolve("foo/a.csv", manifest={str(dir_backend.project)!r}) is not None
    """)
    pytester.makefile(".yaml", assets=f"store: {dir_backend.project / 'store'}\nassets:\n  foo/a.csv: 1.0.0\n")
    pytester.runpytest("--pod-offline", "--pod-missing=skip").assert_outcomes(skipped=1, failed=1)
    assert "POD_OFFLINE" not in os.environ
    assert not (cache_dir / dir_backend.cache_folder).exists()
    pytester.runpytest().assert_outcomes(passed=2)
    assert (cache_dir / dir_backend.cache_folder / "foo/a.1.0.0.csv").read_bytes() == A
    pytester.runpytest("--pod-offline").assert_outcomes(passed=2)  # now cached
