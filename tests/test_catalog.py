"""catalog: what the store holds (versions of a name, every name), for a folder store
and an S3 store with a key prefix; hostile or unversioned keys are skipped."""

from __future__ import annotations

import pytest

from pod_tasks.catalog import latest_version, store_names, store_versions
from pod_tasks.errors import ManifestError, OfflineError
from pod_tasks.resolver import Project
from pod_tasks.versions import Version
from tests.conftest import s3_client, serve, write
from tests.servers import SERVERS

KEYS = [
    "foo/bar.1.2.5.csv",
    "foo/bar.1.10.0.csv",
    "foo/bar.1.9.0.csv",
    "foo/bar.2.0.0.json",        # another extension: another name
    "foo/barn.3.0.0.csv",        # another stem
    "foo/bar.01.2.0.csv",        # not a version
    "foo/sub/bar.9.0.0.csv",     # another folder
    "dots.in.filename.0.14.6.ext",
    "file_with_no_ext.10.1.6",
    "notes/readme.txt",          # no version: not a name
]


@pytest.fixture(params=["dir", *(pytest.param(kind, id=f"{kind}-prefix") for kind in SERVERS)])
def catalog_project(request, project):
    """A project whose store holds `KEYS`: a folder, or a bucket under a key prefix on
    each S3 server in turn."""
    if request.param == "dir":
        for key in KEYS:
            write(project / "store" / key, key)
        spec = "store"
    else:
        client = s3_client(serve(request, request.param))
        client.create_bucket(Bucket="assets")
        for key in KEYS:
            client.put_object(Bucket="assets", Key=f"team/{key}", Body=key.encode())
        client.put_object(Bucket="assets", Key="elsewhere/foo/bar.7.0.0.csv", Body=b"outside the prefix")
        spec = "s3://assets/team"
    write(project / "assets.yaml", f"store: {spec}\nassets:\n  foo/bar.csv: 1.2.5\n")
    return Project.load(project / "assets.yaml")


def test_versions_of_a_name_in_semver_order(catalog_project):
    assert store_versions(catalog_project, "foo/bar.csv") == [Version(1, 2, 5), Version(1, 9, 0), Version(1, 10, 0)]
    assert latest_version(catalog_project, "foo/bar.csv") == Version(1, 10, 0)
    assert store_versions(catalog_project, "foo/bar.json") == [Version(2, 0, 0)]
    assert store_versions(catalog_project, "file_with_no_ext") == [Version(10, 1, 6)]
    assert latest_version(catalog_project, "foo/new.csv") is None


def test_every_name(catalog_project):
    assert store_names(catalog_project) == {
        "dots.in.filename.ext": [Version(0, 14, 6)],
        "file_with_no_ext": [Version(10, 1, 6)],
        "foo/bar.csv": [Version(1, 2, 5), Version(1, 9, 0), Version(1, 10, 0)],
        "foo/bar.json": [Version(2, 0, 0)],
        "foo/barn.csv": [Version(3, 0, 0)],
        "foo/sub/bar.csv": [Version(9, 0, 0)],
    }


class HostileStore:
    """A store whose listing holds keys that would leave any folder they are joined to."""

    name = "hostile"

    def list_keys(self, prefix: str):
        yield from ["../../x.1.0.0.csv", "/abs/x.1.0.0.csv", "x.2.0.0.csv", "a/../x.3.0.0.csv", "x\\..\\y.4.0.0.csv"]


def test_hostile_keys_are_skipped(project):
    write(project / "assets.yaml", "store: store\nassets: {}\n")
    (project / "store").mkdir()
    loaded = Project.load(project / "assets.yaml")
    loaded.store = HostileStore()
    assert store_names(loaded) == {"x.csv": [Version(2, 0, 0)]}
    assert store_versions(loaded, "x.csv") == [Version(2, 0, 0)]


def test_no_store(project):
    write(project / "assets.yaml", "assets:\n  foo/bar.csv: try.csv\n")
    write(project / "try.csv", "x")
    with pytest.raises(ManifestError, match=r"^assets.yaml:1: no `store:`"):
        store_names(Project.load(project / "assets.yaml"))


def test_missing_store_folder(project):
    write(project / "assets.yaml", "store: gone\nassets: {}\n")
    with pytest.raises(OfflineError, match="gone: it is not there"):
        store_names(Project.load(project / "assets.yaml"))
