"""prefill.py: reading the old list format, and the summary line."""

from __future__ import annotations

import pytest

from pod_tasks.errors import ManifestError
from pod_tasks.prefill import CACHED, FAILED, FETCHED, LOCAL, MISSING, Outcome, Summary, read_list
from tests.conftest import write


@pytest.mark.parametrize("text, items", [
    ("- /foo/bar.csv\n- s3://bkt/x.json\n", ["/foo/bar.csv", "s3://bkt/x.json"]),
    ("- foo/a.csv\n- /foo/a.csv\n- foo/a.csv  # again\n", ["foo/a.csv"]),   # one name, once
    ("- s3://bkt/x\n- s3://bkt/x\n- b/x\n", ["s3://bkt/x", "b/x"]),            # a URL is not a name
    ("# nothing yet\n", []),
    ("[a.csv, 'b c.csv']\n", ["a.csv", "b c.csv"]),
])
def test_read_list(tmp_path, text, items):
    assert read_list(write(tmp_path / "needed.yaml", text)) == items


@pytest.mark.parametrize("text, message", [
    ("foo/a.csv: 1.0.0\n", r"needed.yaml:1: a prefill list is a YAML list"),
    ("- a.csv\n- {b: 1}\n", r"needed.yaml:2: each item is an asset name or an s3:// URL"),
    ("- a.csv\n- ''\n", r"needed.yaml:2: each item"),
    ("- a.csv\n- [\n", r"needed.yaml:2:3: this '\[' is not closed on its line"),
])
def test_bad_list_is_one_located_line(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message):
        read_list(write(tmp_path / "needed.yaml", text))


def test_missing_list_file(tmp_path):
    with pytest.raises(ManifestError, match=r"needed.yaml:1: cannot read the list"):
        read_list(tmp_path / "needed.yaml")


def test_summary_line_counts_and_bytes():
    summary = Summary((
        Outcome("a", FETCHED, size=100), Outcome("b", FETCHED, size=23), Outcome("c", CACHED),
        Outcome("d", LOCAL), Outcome("e", MISSING), Outcome("f", FAILED),
    ), 1.234)
    assert summary.line() == "2 fetched, 1 already cached, 1 local override, 1 missing, 1 failed; 123 bytes in 1.23s"
    assert Summary((Outcome("a", MISSING),), 0.5).line() == "0 fetched, 0 already cached, 1 missing; 0 bytes in 0.50s"


def test_a_local_override_is_reported_as_such(project, tmp_path):
    """An override is neither fetched nor cached: the outcome and the summary say so."""
    from pod_tasks.prefill import prefill
    from pod_tasks.resolver import Project
    from tests.conftest import write

    local = tmp_path / "mine.csv"
    local.write_text("a,b\n")
    (project / "store").mkdir()
    write(project / "assets.yaml", f"""
        store: store
        assets:
          data/mine.csv: {local.as_posix()}
    """)
    summary = prefill(Project.load(project / "assets.yaml"), ["data/mine.csv", "data/nope.csv"])
    assert [(o.item, o.status) for o in summary.outcomes] == [("data/mine.csv", LOCAL), ("data/nope.csv", MISSING)]
    assert summary.outcomes[0].message == f"local override {local}"
    assert summary.line().startswith("0 fetched, 0 already cached, 1 local override, 1 missing; 0 bytes in ")
