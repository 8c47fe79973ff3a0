"""pod_tasks.layout: which folder is a cache, where each file of it goes, whose files are whose."""

from __future__ import annotations

import pytest

from pod_tasks.errors import CacheError
from pod_tasks.layout import SIGNATURE, Layout, object_id


def test_a_new_or_empty_folder_is_claimed_and_tagged(tmp_path):
    for folder in (tmp_path / "new" / "cache", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        Layout(folder).claim()
        lines = (folder / "CACHEDIR.TAG").read_text().splitlines()
        assert lines[0] == SIGNATURE and lines[1].startswith("#") and (folder / ".pod").is_dir()
        assert Layout(folder).is_cache()


@pytest.mark.parametrize("old", [".pod", ".timestamps"])
def test_an_old_cache_is_adopted_and_tagged_as_it_is(tmp_path, old):
    (tmp_path / old).mkdir()
    (tmp_path / "bucket" / "key.csv").parent.mkdir()
    (tmp_path / "bucket" / "key.csv").write_bytes(b"cached")
    Layout(tmp_path).claim()
    assert (tmp_path / "CACHEDIR.TAG").read_text().startswith(SIGNATURE + "\n")
    assert (tmp_path / "bucket" / "key.csv").read_bytes() == b"cached"


def test_a_folder_of_other_files_is_refused_in_one_line_even_with_another_tools_tag(tmp_path):
    (tmp_path / "src.py").write_text("print(1)\n")
    (tmp_path / "CACHEDIR.TAG").write_text(SIGNATURE + "\n# This file is a cache directory tag created by cargo.\n")
    with pytest.raises(CacheError) as caught:
        Layout(tmp_path).claim()
    assert str(caught.value) == (
        f"cache dir {tmp_path} is not a pod-tasks cache: it holds other files ('src.py') and no .pod/ or "
        f"CACHEDIR.TAG; pod-tasks starts a cache only in a new or empty folder: set cache_dir (assets.yaml) or "
        f"POD_CACHE_DIR to one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CACHEDIR.TAG", "src.py"]


def test_a_folder_holding_only_the_old_missing_list_is_claimed(tmp_path):
    (tmp_path / "missing_assets.yaml").write_text("- s3://a/b\n")
    Layout(tmp_path).claim()
    assert Layout(tmp_path).is_cache() and (tmp_path / "missing_assets.yaml").read_text() == "- s3://a/b\n"


def test_records_stay_beside_while_the_name_leaves_room_and_go_to_long_after(tmp_path):
    layout = Layout(tmp_path)
    fits, long = "b/k/" + "n" * (layout.name_max - 5), "b/k/" + "n" * (layout.name_max - 4)
    assert layout.record("b/k/x.csv") == tmp_path / ".pod" / "b/k/x.csv.json"  # where older versions put it
    assert layout.record(fits) == tmp_path / ".pod" / f"{fits}.json"
    assert layout.record(long) == tmp_path / ".pod" / "_long" / f"{object_id(long)}.json"
    assert len(layout.partial(long).name) == len(layout.lock(long).name) + 3 == 32 + len(".partial")
    assert layout.too_long(long) is None and layout.too_long("b/" + "n" * (layout.name_max + 1)) == (
        f"its file name {'n' * 20!r}... ({layout.name_max + 1} characters) is {layout.name_max + 1} bytes long, "
        f"over the limit of this file system ({layout.name_max} bytes a name)")


def test_only_files_with_a_record_or_an_old_mark_are_the_caches_own(tmp_path):
    layout = Layout(tmp_path)
    layout.claim()
    for rel in ("b/recorded.csv", "b/marked.csv", "b/stranger.csv", "b/.x.csv.0123abcd.part"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    layout.record("b/recorded.csv").parent.mkdir(parents=True)
    layout.record("b/recorded.csv").write_text("{}")
    layout.old_mark("b/marked.csv").parent.mkdir(parents=True)
    layout.old_mark("b/marked.csv").touch()
    assert list(layout.own_files()) == ["b/marked.csv", "b/recorded.csv"]
    assert list(layout.own_files("b/recorded.csv")) == ["b/recorded.csv"]
