"""The option check every task creator gets: a pure function of argv, as a table."""

from __future__ import annotations

import signal
import sys

import pytest

from pod_tasks.actions import group_options, unknown_option
from tests.conftest import write

PARAMS = [
    {"name": "major", "long": "major", "type": bool, "default": False},
    {"name": "minor", "long": "minor", "type": bool, "default": False},
    {"name": "version", "long": "version", "type": str, "default": ""},
    {"name": "min_version", "long": "min-version", "type": str, "default": ""},
    {"name": "verbose", "short": "v", "long": "verbose", "type": bool, "default": False},
    {"name": "check", "long": "check", "inverse": "no-check", "type": bool, "default": True},
]

TABLE = [
    # argv, the refusal (None: every option is known)
    ("publish:a.csv --minor", None),
    ("publish:a.csv --version 2.0.0 --major", None),
    ("publish:a.csv --version=2.0.0", None),
    ("publish:a.csv --version --minr", None),  # --minr is --version's value
    ("publish:a.csv --maj", None),  # a unique prefix, as getopt takes it
    ("publish:a.csv -v --no-check", None),
    ("publish:a.csv other --minr", None),  # options end at the first argument that is not one
    ("-n 4 --minr publish:a.csv", None),  # before the task: doit's own options
    ("publish:a.csv --minr", "publish:a.csv: unknown option --minr: did you mean --minor? "
                             "(doit help publish lists its options)"),
    ("publish --minr", "publish: unknown option --minr: did you mean --minor?"),
    ("publish:a.csv --min 2", "publish:a.csv: option --min is ambiguous (--minor, --min-version): write it in full"),
    ("publish:a.csv --minor -x", "publish:a.csv: unknown option -x: it takes --check, --major, --min-version, "
                                 "--minor, --no-check, --verbose, --version, -v; doit's own options go before "
                                 "the task name (doit -n 4 publish)"),
    ("fetch:a.csv publish:b.csv --zzz", "publish:b.csv: unknown option --zzz:"),
    ("publishing --zzz", None),  # another task
]


@pytest.mark.parametrize("argv, refusal", TABLE, ids=[a for a, _ in TABLE])
def test_unknown_option(argv, refusal):
    line = unknown_option("publish", PARAMS, argv.split())
    if refusal is None:
        assert line is None
    else:
        assert line is not None and line.startswith(refusal), line


def test_a_task_with_no_options():
    assert unknown_option("status", [], ["status", "--all"]) == (
        "status: unknown option --all: it takes no options; doit's own options go before the task name "
        "(doit -n 4 status)")


@pytest.mark.parametrize("argv, given", [
    ("publish --major --version 2.0.0", {"major": True, "version": "2.0.0"}),
    ("publish --maj --version=2.0.0-rc.1", {"major": True, "version": "2.0.0-rc.1"}),
    ("-n 2 publish --minor other --major", {"minor": True}),    # options end at the first argument that is not one
    ("publish:a.csv --major", {}),                               # given to a subtask, not to the group
    ("fetch --major", {}),
    ("publish --min 2", {}),                                     # ambiguous: refused while doit loads
])
def test_group_options(argv, given):
    assert group_options("publish", PARAMS, argv.split()) == given


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="no SIGPIPE on this platform")
def test_loading_tasks_in_a_process_that_is_not_doit_keeps_its_sigpipe(project, monkeypatch):
    """A program (or a test) that loads the tasks keeps its own SIGPIPE: with the default
    action, its next write to a closed socket would end it."""
    from pod_tasks import tasks

    write(project / "assets.yaml", "store: store\nassets:\n  a.csv: 1.0.0\n")
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/python3", "-c"])
    before = signal.getsignal(signal.SIGPIPE)
    list(tasks.task_fetch())
    assert signal.getsignal(signal.SIGPIPE) == before
