"""``doit publish`` when the store's replies are lost (issue 21), run as a user runs it,
through the fault proxy in front of moto and of ``rclone serve s3``.

The proxy forwards the PUT of the version, or of publish's claim on it, and drops the
reply: boto3 retries, and a retry meets the object this very publish wrote. That is
this publish's success, never a rival's: the first run exits 0, exactly one new version
lands, and assets.yaml pins it. A claim that never gets an answer stops the publish
before its upload (one ERROR line, assets.yaml byte for byte as it was, no claim left
behind), and a store that goes silent once the version's PUT reached it leaves the
version in the store, unpinned, for the next run to find.
"""

from __future__ import annotations

import hashlib

import pytest

from pod_tasks.cache import AssetCache
from pod_tasks.config import Settings
from pod_tasks.manifest import load_manifest
from tests.conftest import run_doit
from tests.faults import Rule, assert_clean, proxy, record  # noqa: F401 - proxy is a fixture
from tests.test_faults_e2e import NEW, _publish_project, _stored

VERSION = "/assets/foo/bar.1.1.0.csv"
CLAIMS = "/assets/.pod-claims/foo/bar.1.1.0.csv/"
TARGETS = {"version": rf"^{VERSION}$", "claim": rf"^{CLAIMS}"}
PUBLISH = ["publish:foo/bar.csv", "--minor", "--file", "new.csv"]


def _puts(s3, prefix: str) -> int:
    """PUTs that reached the server for keys starting with ``prefix``."""
    return sum(1 for method, path in s3.requests if method == "PUT" and path.startswith(prefix))


def _errors(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("ERROR")]


def _learnt(cache_dir, proxy) -> object:
    """What publish noted of the server behind ``proxy``: does it honour If-None-Match?"""
    return AssetCache(Settings(cache_dir=cache_dir)).noted("conditional-writes", f"{proxy.endpoint} assets")


def _assert_pinned(project, version: str, data: bytes) -> None:
    pin = load_manifest(project / "assets.yaml").assets["foo/bar.csv"]
    assert (str(pin.version), pin.sha256) == (version, hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("times", [1, 3, 5])
@pytest.mark.parametrize("target", list(TARGETS))
def test_a_publish_whose_replies_are_lost_publishes_once(s3, client, proxy, project, cache_dir, target, times):
    """The first run exits 0 with one new version, pinned {version, sha256}; the server's
    verdict on conditional writes is still right (moto honours them, rclone ignores them)."""
    _publish_project(project, client)
    lost = proxy.add(Rule("PUT", TARGETS[target], "lost", times=times))
    result = run_doit(PUBLISH, project)
    assert_clean(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "foo/bar.csv: published 1.1.0 (was 1.0.0), 13 B -> s3://assets/foo/bar.1.1.0.csv" in result.stdout
    assert lost.injected == times
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n", "foo/bar.1.1.0.csv": NEW}  # no claim left either
    _assert_pinned(project, "1.1.0", NEW)
    # the version went up once (and again only as the client's retries of that one upload)
    assert _puts(s3, VERSION) == (times + 1 if target == "version" else 1)
    assert _learnt(cache_dir, proxy) is (s3.kind == "moto")
    record("faults injected", proxy.injected)


def test_a_claim_that_never_gets_an_answer_publishes_nothing(s3, client, proxy, project, cache_dir):
    """Every reply to the claim's writes lost: one ERROR line, assets.yaml untouched, no
    claim left in the store, nothing learnt about the server; the next run publishes."""
    _publish_project(project, client)
    before = (project / "assets.yaml").read_bytes()
    lost = proxy.add(Rule("PUT", TARGETS["claim"], "lost", times=None))
    result = run_doit(PUBLISH, project)
    assert_clean(result)
    assert result.returncode == 1
    errors = _errors(result)
    assert len(errors) == 1 and errors[0].startswith("ERROR publish:foo/bar.csv: ") and \
        errors[0].endswith("this was publish's claim on the version, before its upload: nothing was published"), errors
    assert (project / "assets.yaml").read_bytes() == before
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n"}
    assert lost.injected == _puts(s3, CLAIMS) == 6  # one claim write: botocore's 1 + 5 retries, each reached it
    assert _puts(s3, VERSION) == 0
    assert _learnt(cache_dir, proxy) is None  # a lost reply is no evidence either way
    proxy.clear()
    again = run_doit(PUBLISH, project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n", "foo/bar.1.1.0.csv": NEW}
    _assert_pinned(project, "1.1.0", NEW)
    assert _learnt(cache_dir, proxy) is (s3.kind == "moto")
    record("faults injected", lost.injected)


def test_a_store_silent_after_the_upload_leaves_the_version_for_the_next_run(s3, client, proxy, project):
    """The version's PUT reaches the store, then every reply to anything is lost: publish
    cannot tell what happened and says so in one ERROR line, assets.yaml untouched. The
    version stays in the store: the next run finds these bytes there (identical) and
    pins it, and --force takes the version after it and pins it."""
    _publish_project(project, client)
    before = (project / "assets.yaml").read_bytes()
    silent = proxy.add(Rule("PUT", TARGETS["version"], "lost", times=1, mute=True))
    result = run_doit(PUBLISH, project)
    assert_clean(result)
    assert result.returncode == 1
    errors = _errors(result)
    assert len(errors) == 1 and "whether s3://assets/foo/bar.1.1.0.csv was written is not known" in errors[0] and \
        errors[0].endswith("look for it in the store once it answers"), errors
    assert (project / "assets.yaml").read_bytes() == before
    assert silent.injected >= 2  # the PUT and, at least, the HEAD that asked what happened
    proxy.clear()
    assert _stored(client) == {"foo/bar.1.0.0.csv": b"old\n", "foo/bar.1.1.0.csv": NEW}
    again = run_doit(PUBLISH, project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-2:] == [
        "foo/bar.csv: identical to 1.1.0 in the store; nothing published",
        "foo/bar.csv: pinned 1.1.0, which holds these bytes",
    ]
    _assert_pinned(project, "1.1.0", NEW)
    forced = run_doit([*PUBLISH, "--force"], project)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert sorted(_stored(client)) == ["foo/bar.1.0.0.csv", "foo/bar.1.1.0.csv", "foo/bar.1.2.0.csv"]
    _assert_pinned(project, "1.2.0", NEW)
    record("faults injected", silent.injected)
