"""`pod_tasks.runner.translate`: the ``pod-tasks`` command line read as doit's, a table."""

from __future__ import annotations

import pytest

from pod_tasks.runner import UsageError, translate

TASKS = {"fetch", "publish", "versions", "update", "status", "gc", "cache", "unpack", "import-manifest", "lock"}

CASES = [
    (["fetch"], ["fetch"]),
    (["fetch", "a.csv", "b/c.json"], ["fetch:a.csv", "fetch:b/c.json"]),
    (["fetch:a.csv"], ["fetch:a.csv"]),
    (["publish", "labels.csv", "--patch"], ["publish:labels.csv", "--patch"]),
    (["publish", "--minor", "labels.csv"], ["publish:labels.csv", "--minor"]),
    (["publish", "labels.csv", "-m", "fix typo", "--minor"], ["publish:labels.csv", "-m", "fix typo", "--minor"]),
    (["publish", "labels.csv", "--message", "status"], ["publish:labels.csv", "--message", "status"]),
    (["publish", "x.csv", "--version", "2.0.0"], ["publish:x.csv", "--version", "2.0.0"]),
    (["versions", "foo/bar.csv"], ["versions:foo/bar.csv"]),
    (["fetch", "a.csv", "status"], ["fetch:a.csv", "status"]),
    (["status", "gc", "--dry-run"], ["status", "gc", "--dry-run"]),
    (["-n", "4", "-P", "process", "fetch"], ["-n", "4", "-P", "process", "fetch"]),
    (["fetch", "--jobs", "3", "a.csv"], ["fetch:a.csv", "--jobs", "3"]),
    (["list", "--all"], ["list", "--all"]),
    (["clean", "fetch"], ["clean", "fetch"]),
    (["help", "publish"], ["help", "publish"]),
    (["unpack", "a.zip", "b.zip"], ["unpack", "a.zip", "b.zip"]),
    (["cache", "--delete", "s3://b/k"], ["cache", "--delete", "s3://b/k"]),
    (["fetch", "POD_X=1"], ["fetch", "POD_X=1"]),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_translate(argv, expected):
    assert translate(argv, TASKS) == expected


@pytest.mark.parametrize(("argv", "hint"), [
    (["fetc"], "did you mean fetch?"),
    (["publsh", "x.csv"], "did you mean publish?"),
    (["status", "labels.csv"], "'labels.csv' is not a task of this project: `pod-tasks list` shows the tasks"),
])
def test_a_word_that_is_no_task_names_the_nearest(argv, hint):
    with pytest.raises(UsageError) as caught:
        translate(argv, TASKS)
    assert str(caught.value).endswith(hint)
