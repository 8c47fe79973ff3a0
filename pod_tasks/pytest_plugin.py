"""The pytest plugin (a ``pytest11`` entry point: installing pod-tasks registers it).

- ``pod_asset``, a fixture: ``pod_asset("foo/bar.csv")`` (or ``pod_asset(NAME, VERSION)``,
  or an ``s3://`` URL) is the `pathlib.Path` of the verified local copy, fetched if needed
  (`resolve`), from ``--pod-assets PATH`` (an assets.yaml, or a folder or file searched
  upward from), else ``POD_ASSETS``, else the assets.yaml nearest the rootdir, upward.
- ``@pytest.mark.pod_assets("a", "b")``: the assets of every collected test's marks are
  fetched together, once, on the fetch engine (`pod_tasks.prefill`), before the first
  test runs, and one line says what was done. A test whose asset could not be had fails
  with that asset's one-line message instead of running its body; the other tests run.
- ``--pod-offline``: ``POD_OFFLINE=1`` for the session (for the code under test and its
  subprocesses too): cached files are served, a missing one is not fetched.
- ``--pod-missing=fail|skip`` (default ``fail``): ``skip`` skips, with the same message,
  a test whose asset is missing (not in the cache and out of reach, or not in the store
  or in assets.yaml); an asset that is damaged or an assets.yaml that is invalid always
  fails.

pytest loads this module in every run of every project where pod-tasks is installed: it
imports nothing of pod-tasks until a test uses the fixture or the marker, and reads no
assets.yaml and makes no request before then.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NoReturn

import pytest

if TYPE_CHECKING:
    from .errors import PodError
    from .resolver import Project

__all__ = ["pod_asset"]

MARK = "pod_assets"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pod-tasks", "pod-tasks assets (fixture pod_asset, marker pod_assets)")
    group.addoption(
        "--pod-assets", metavar="PATH", default=None,
        help="the assets.yaml to use (or a folder or file to search upward from); default: POD_ASSETS, "
             "else the nearest assets.yaml from the rootdir upward",
    )
    group.addoption(
        "--pod-offline", action="store_true", default=False,
        help="no network (POD_OFFLINE=1 for this session): only cached assets are served",
    )
    group.addoption(
        "--pod-missing", choices=("fail", "skip"), default="fail",
        help="what happens to a test whose asset is missing: fail it (default) or skip it",
    )


class _Assets:
    """The plugin's state for one session: where assets.yaml is, what to do with a
    missing asset, and the assets the marks asked for that could not be had."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.skip_missing = config.getoption("pod_missing") == "skip"
        #: name -> why it could not be fetched, for the marked assets of the session
        self.failures: dict[str, PodError] = {}
        self.offline = bool(config.getoption("pod_offline"))
        self._project: Project | None = None
        self._undo = pytest.MonkeyPatch()
        if self.offline:
            self._undo.setenv("POD_OFFLINE", "1")
            _forget_projects()

    def close(self) -> None:
        self._undo.undo()
        if self.offline:
            _forget_projects()

    def project(self) -> "Project":
        """The session's project (loaded on first use): of ``--pod-assets``, else of
        ``POD_ASSETS``, else of the rootdir."""
        if self._project is None:
            from .resolver import Project

            given = self.config.getoption("pod_assets")
            manifest = (
                str(Path(self.config.invocation_params.dir, given)) if given
                else None if os.environ.get("POD_ASSETS") else str(self.config.rootpath)
            )
            self._project = Project.load(manifest, offline=self.offline or None)
        return self._project

    def path(self, name: str | os.PathLike[str], version: str | None = None) -> Path:
        """The local path of ``name``, or the test fails (or skips) with why not."""
        from .errors import PodError

        error = self.failures.get(_key(name)) if version is None else None
        if error is None:
            try:
                return Path(self.project().resolve(os.fspath(name), version))
            except PodError as exc:
                error = exc
        self.give_up(error)

    def skips(self, error: "PodError") -> bool:
        """Whether ``error`` skips the test (``--pod-missing=skip`` and the asset is missing)."""
        from .errors import AssetNotFound, OfflineError

        return self.skip_missing and isinstance(error, (AssetNotFound, OfflineError))

    def give_up(self, error: "PodError", more: int = 0) -> NoReturn:
        """Skip or fail the running test with ``error``'s one line (``more``: how many of
        its other assets failed too)."""
        message = str(error)
        if more:
            message += f" (and {more} more of this test's assets)"
        if self.skips(error):
            skipped = pytest.skip.Exception(message)
            skipped._use_item_location = True  # reported at the test, as pytest's own skip marks are
            raise skipped
        pytest.fail(message, pytrace=False)

    def prefetch(self, names: list[str], tests: int) -> str:
        """Fetch ``names`` on the engine, remembering what failed; the line to show."""
        from .errors import AssetNotFound, PodError
        from .prefill import prefill

        label = f"pod_assets ({len(names)} asset{'s' if len(names) != 1 else ''} of {tests} test{'s' if tests != 1 else ''})"
        try:
            project = self.project()
            summary = prefill(project, names)
        except PodError as exc:  # no usable assets.yaml, a bad setting: every name fails with it
            self.failures = dict.fromkeys(names, exc)
            return f"{label}: {exc}"
        self.failures = {
            # a version not in the store is told as resolve() tells it (the versions there are)
            _key(o.item): project.explained(o.ref, o.error) if o.ref is not None and isinstance(o.error, AssetNotFound)
            else o.error
            for o in summary.outcomes if o.error is not None
        }
        return f"{label}: {summary.line()}"

    def check(self, item: pytest.Item, running: bool) -> None:
        """Give up on ``item`` when one of its marked assets failed: skip it before its
        fixtures run (when that is the rule), else fail it when it runs."""
        if not self.failures:
            return
        errors = [self.failures[name] for name in _marked(item) if name in self.failures]
        if errors and (running or self.skips(errors[0])):
            self.give_up(errors[0], len(errors) - 1)


_STATE = pytest.StashKey[_Assets]()


def _forget_projects() -> None:
    """Drop the process's projects, if any were loaded (a run inside a test process), so
    that the code under test sees ``POD_OFFLINE`` as the session sets it."""
    resolver = sys.modules.get("pod_tasks.resolver")
    if resolver is not None:
        resolver.Project.forget()


def _key(name: str | os.PathLike[str]) -> str:
    """``name`` as the marks' failures are keyed (a leading ``/`` of a name is optional)."""
    text = os.fspath(name)
    return text if text.startswith("s3://") else text.lstrip("/")


def _marked(item: pytest.Item) -> Iterable[str]:
    """The asset names of ``item``'s ``pod_assets`` marks."""
    for mark in item.iter_markers(MARK):
        if mark.kwargs or not all(isinstance(arg, (str, os.PathLike)) for arg in mark.args):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.{MARK} takes asset names, e.g. @pytest.mark.{MARK}(\"foo/bar.csv\"), "
                f"not {', '.join(map(repr, (*mark.args, *mark.kwargs.items())))}"
            )
        yield from map(_key, mark.args)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}(*names): assets (names in assets.yaml, or s3:// URLs) fetched together before the session's tests; "
        "a test whose asset cannot be had fails, or is skipped with --pod-missing=skip",
    )
    config.stash[_STATE] = _Assets(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first test: fetch every marked asset of the session, together."""
    option = session.config.option
    if option.collectonly or (session.testsfailed and not option.continue_on_collection_errors):
        return  # no test will run
    names: dict[str, None] = {}
    tests = 0
    for item in session.items:
        marked = list(_marked(item))
        tests += bool(marked)
        names.update(dict.fromkeys(marked))
    if not names:
        return
    line = session.config.stash[_STATE].prefetch(list(names), tests)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_STATE].check(item, running=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    item.config.stash[_STATE].check(item, running=True)


@pytest.fixture
def pod_asset(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``pod_asset(NAME, VERSION=None)``: the `pathlib.Path` of the verified local copy of
    an asset of assets.yaml (or an ``s3://`` URL), fetched if needed; a test whose asset
    cannot be had fails with its one-line message (or is skipped: ``--pod-missing=skip``)."""
    state = request.config.stash[_STATE]

    def pod_asset(name: str | os.PathLike[str], version: str | None = None) -> Path:
        return state.path(name, version)

    return pod_asset
