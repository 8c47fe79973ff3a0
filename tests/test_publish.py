"""publish() in-process, for what a subprocess cannot stage: assets.yaml failing to be
rewritten after the upload went through, a pin that cannot be rewritten at all, each
way of telling that a file is the latest version's bytes, and every outcome of an
upload whose replies were lost."""

from __future__ import annotations

import hashlib

import pytest

import pod_tasks.publish as publish_module
from pod_tasks.errors import ManifestError, OfflineError, PodError, PublishConflict
from pod_tasks.resolver import Project
from pod_tasks.store import DirStore
from tests.conftest import write


def test_a_failed_rewrite_after_the_upload_says_what_to_pin(project, monkeypatch):
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"old\n")
    write(project / "new.csv", "new\n")
    manifest = write(project / "assets.yaml", "store: store\nassets:\n  foo/bar.csv: 1.0.0\n")
    before = manifest.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module, "set_pin", full_disk)
    with pytest.raises(PodError) as caught:
        publish_module.publish(Project.load(manifest), "foo/bar.csv", file=project / "new.csv", bump="patch")
    sha = hashlib.sha256(b"new\n").hexdigest()
    assert str(caught.value) == (
        f"publish:foo/bar.csv: 1.0.1 is in the store ({(project / 'store' / 'foo' / 'bar.1.0.1.csv').as_uri()}) "
        f"but assets.yaml was not updated ([Errno 28] No space left on device): "
        f"pin it by hand as {{version: 1.0.1, sha256: {sha}, size: 4}}"
    )
    assert (project / "store" / "foo" / "bar.1.0.1.csv").read_bytes() == b"new\n"
    assert manifest.read_bytes() == before


def test_a_pin_that_cannot_be_rewritten_stops_before_the_upload(project):
    """An aliased pin cannot be rewritten in place: nothing reaches the store."""
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"old\n")
    write(project / "new.csv", "new\n")
    text = "store: store\nassets:\n  foo/bar.csv: &v 1.0.0\n  foo/baz.csv: *v\n"
    manifest = write(project / "assets.yaml", text)
    with pytest.raises(ManifestError, match=r"^assets.yaml:3: foo/bar.csv: its pin is a YAML alias or anchor"):
        publish_module.publish(Project.load(manifest), "foo/bar.csv", file=project / "new.csv", bump="patch")
    assert sorted(p.name for p in (project / "store" / "foo").iterdir()) == ["bar.1.0.0.csv"]
    assert manifest.read_text() == text


# --- identical bytes -------------------------------------------------------------------------


def _dir_project(project, pin: str = "1.0.0"):
    (project / "store" / "foo").mkdir(parents=True)
    (project / "store" / "foo" / "bar.1.0.0.csv").write_bytes(b"old\n")
    write(project / "same.csv", "old\n")
    write(project / "other.csv", "oth\n")  # the same size, other bytes
    return write(project / "assets.yaml", f"store: store\nassets:\n  foo/bar.csv: {pin}\n")


@pytest.mark.parametrize("file, identical", [("same.csv", True), ("other.csv", False)])
def test_a_folder_store_is_compared_in_place(project, file, identical):
    manifest = _dir_project(project)
    before = manifest.read_bytes()
    result = publish_module.publish(Project.load(manifest), "foo/bar.csv", file=project / file, bump="patch")
    assert (result.identical, str(result.version), result.uncompared) == (identical, "1.0.0" if identical else "1.0.1", False)
    assert (project / "store" / "foo" / "bar.1.0.1.csv").exists() is not identical
    assert (manifest.read_bytes() == before) is identical


def test_a_remote_version_with_no_hash_is_compared_by_the_cache_record_or_not_at_all(project):
    """A store that keeps no hash of a version (an opaque ETag, no checksum): the cache's
    record of it tells, when it was fetched; else the file counts as different."""
    manifest = _dir_project(project)
    project_ = Project.load(manifest)
    project_.store.remote = True  # no reading it in place: as a bucket with SHA1 ETags
    unknown = publish_module.publish(project_, "foo/bar.csv", file=project / "same.csv", bump="patch", dry_run=True)
    assert (unknown.identical, unknown.uncompared) == (False, True)
    project_.resolve("foo/bar.csv")  # now cached, with its record
    known = publish_module.publish(project_, "foo/bar.csv", file=project / "same.csv", bump="patch", dry_run=True)
    assert (known.identical, str(known.version)) == (True, "1.0.0")


def test_the_pin_sha256_tells_and_force_publishes_anyway(project):
    sha = hashlib.sha256(b"old\n").hexdigest()
    manifest = _dir_project(project, f"{{version: 1.0.0, sha256: {sha}}}")
    project_ = Project.load(manifest)
    project_.store.remote = True
    assert publish_module.publish(project_, "foo/bar.csv", file=project / "same.csv", bump="patch").identical
    forced = publish_module.publish(project_, "foo/bar.csv", file=project / "same.csv", bump="patch", force=True)
    assert (forced.identical, str(forced.version)) == (False, "1.0.1")
    assert (project / "store" / "foo" / "bar.1.0.1.csv").read_bytes() == b"old\n"


# --- an upload whose outcome is unknown ------------------------------------------------------

LOST = "cannot reach the store for the upload: check the network"


def _lost(written: bytes | None, asking_fails: bool = False, no_credentials: bool = False):
    """A DirStore.put_if_absent whose outcome is not told: ``written`` (or nothing) lands
    at the key, then the call fails as a lost reply would."""
    original = DirStore.put_if_absent

    def put(self, key, path, md5=b"", sha256=b"", metadata=None):
        if written is not None:
            other = path.with_name("written")
            other.write_bytes(written)
            original(self, key, other, metadata=metadata)
        if asking_fails:
            def head(self, key):
                raise OfflineError("cannot reach the store to ask")
            DirStore.head = head
        raise OfflineError(LOST, no_credentials=no_credentials)

    return put


OUTCOMES = [
    # (id, what landed, asking fails, no credentials, error class, the error says)
    ("written", b"new\n", False, False, None, None),
    ("absent", None, False, False, OfflineError, "asked afterwards, the store does not hold {url}: nothing was published"),
    ("other bytes", b"not ours\n", False, False, PublishConflict, "holds other bytes than the ones uploaded"),
    ("asking fails", None, True, False, OfflineError, "whether {url} was written is not known"),
    ("refused", None, False, True, OfflineError, None),
]


@pytest.mark.parametrize("written, asking_fails, no_credentials, error, says", [o[1:] for o in OUTCOMES],
                         ids=[o[0] for o in OUTCOMES])
def test_publish_asks_the_store_what_happened(project, monkeypatch, written, asking_fails, no_credentials, error, says):
    manifest = _dir_project(project)
    write(project / "new.csv", "new\n")
    before = manifest.read_bytes()
    monkeypatch.setattr(DirStore, "head", DirStore.head)  # undone after the test, whatever put() sets
    monkeypatch.setattr(DirStore, "put_if_absent", _lost(written, asking_fails, no_credentials))
    stored = project / "store" / "foo" / "bar.1.0.1.csv"
    if error is None:
        result = publish_module.publish(Project.load(manifest), "foo/bar.csv", file=project / "new.csv", bump="patch")
        assert (result.recovered, str(result.version)) == (True, "1.0.1")
        assert stored.read_bytes() == b"new\n"
        assert "1.0.1" in manifest.read_text()
        return
    with pytest.raises(error) as caught:
        publish_module.publish(Project.load(manifest), "foo/bar.csv", file=project / "new.csv", bump="patch")
    message = str(caught.value)
    assert LOST in message
    if says is not None:
        assert says.format(url=stored.as_uri()) in message
    else:
        assert "asked" not in message  # refused: nothing to ask about
    assert manifest.read_bytes() == before
    assert stored.exists() is (written is not None)
