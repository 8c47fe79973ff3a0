"""publish() in-process, for what a subprocess cannot stage: assets.yaml failing to be
rewritten after the upload went through, and a pin that cannot be rewritten at all."""

from __future__ import annotations

import hashlib

import pytest

import pod_tasks.publish as publish_module
from pod_tasks.errors import ManifestError, PodError
from pod_tasks.resolver import Project
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
        f"pin it by hand as {{version: 1.0.1, sha256: {sha}}}"
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
