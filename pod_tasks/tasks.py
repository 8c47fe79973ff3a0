"""doit task creators. A project's ``dodo.py`` is one line::

    from pod_tasks.tasks import *  # noqa: F401,F403

These creators only map the manifest, the cache and the store onto doit (targets,
``uptodate``, ``clean``, params); the logic lives in the modules they call. Every
`PodError` becomes a failed task with one clear line, never a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from doit.exceptions import TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

from . import stdout
from .actions import (
    JOBS_PARAM, asked_names, current_project, group, guarded, jobs_of, loading, options_checked, say, subtasks,
)
from .cache import CHECKED, DOWNLOADED, FRESH, Fetched, ObjectRef
from .engine import INTERRUPTED, Batch, Cancelled, Done, interrupted
from .errors import AssetNotFound, PodError
from .export_tasks import task_export
from .fleet_tasks import task_import_manifest, task_pack, task_prefill, task_unpack
from .gc_tasks import task_gc
from .pin_tasks import task_lock, task_update
from .manifest import Manifest
from .meter import Meter, human_size
from .names import normalise_name
from .resolver import Project

__all__ = [
    "DOIT_CONFIG",
    "task_fetch",
    "task_publish",
    "task_versions",
    "task_status",
    "task_ls_remote",
    "task_sync",
    "task_cache",
    "task_prefill",
    "task_pack",
    "task_unpack",
    "task_import_manifest",
    "task_export",
    "task_update",
    "task_lock",
    "task_gc",
]


QUIET, NORMAL, VERBOSE = 0, 1, 2
#: ``doit fetch -q`` / ``-v``: how much a log shows of the fetch (`_FetchRun.level`).
LOG_PARAMS = [
    {"name": "quiet", "short": "q", "long": "quiet", "type": bool, "default": False,
     "help": "show only errors and the summary"},
    {"name": "verbose", "short": "v", "long": "verbose", "type": bool, "default": False,
     "help": "show every object, up-to-date ones included (default: those downloaded or failed)"},
]


class _FetchRun:
    """The ``fetch:NAME`` subtasks of this doit run, fetched together on the engine.

    doit runs one subtask after another; the first that runs starts one `Batch` of every
    selected object that is not up to date, and each subtask then waits for its own
    object (its action, target, ``uptodate`` and failure stay its own). Which subtasks
    doit selected is told by `PodReporter.initialize`. In a child process of
    ``doit -n N -P process`` (another pid) each subtask fetches its own object, and
    hands what it did to the parent as the task's values (`told`), which counts it.

    Ctrl-C (`stop`) stops every download at its next chunk, in every process: its
    temporary file goes, and a subtask that has not begun does not begin.
    """

    def __init__(self) -> None:
        self.refs: dict[str, ObjectRef] = {}  # every fetch subtask, by task name
        self.selected: dict[ObjectRef, None] = {}  # in doit's order
        self.jobs = 0  # --jobs as given (0: not given)
        self.pid = os.getpid()
        self.batch: Batch | None = None
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.downloaded = self.bytes = self.fresh = self.failed = 0
        self.stopped = False  # by Ctrl-C
        #: The objects whose subtask doit has set going and not yet heard the end of.
        self.under_way: set[ObjectRef] = set()
        #: A person watches: one live line, no line per task.
        self.terminal = sys.stdout.isatty()
        self.meter: Meter | None = None
        #: How much a log shows (``fetch -q``/``-v``): QUIET errors and the summary, NORMAL a
        #: line per object downloaded or failed too, VERBOSE a line per object.
        self.level = NORMAL

    def plan(self, names: Iterable[str], jobs: int) -> None:
        self.selected = dict.fromkeys(self.refs[name] for name in names if name in self.refs)
        self.jobs = jobs
        self.started = time.monotonic()

    def is_fresh(self, ref: ObjectRef) -> bool:
        """doit's ``uptodate``: the file is fresh, and not one the batch is fetching (that
        subtask still runs, to wait for it and say what it did)."""
        if self.batch is not None and ref in self.batch:
            return False
        cache = current_project().cache
        if not cache.is_fresh(ref, network=False):
            self.under_way.add(ref)  # doit runs the subtask next
            return False
        cache.used(ref)  # an up-to-date fetch is a use too (once per file per process)
        return True

    def fetch(self, ref: ObjectRef) -> Fetched:
        if self.stopped:
            raise Cancelled(f"{ref}: interrupted")
        cache = current_project().cache
        with self.lock:
            if self.batch is None and ref in self.selected and os.getpid() == self.pid:
                stale = [r for r in self.selected if not cache.is_fresh(r, network=False)]
                if self.terminal:
                    self.meter = Meter(len(stale))
                self.batch = Batch(cache, stale, jobs_of(self.jobs) or current_project().settings.jobs,
                                   on_done=self._done, on_bytes=self.meter and self.meter.add)
        if self.batch is not None and ref in self.batch:
            try:
                return self.batch.wait(ref)  # counted as the batch finished it
            except KeyboardInterrupt:
                self.batch.cancel()
                raise
        fetched = cache.fetch(ref, progress=self._going)
        if os.getpid() == self.pid:
            self.tally(fetched.action, fetched.size)
        return fetched

    def _going(self, done: int, total: int) -> None:
        """A download's progress: after Ctrl-C, it stops there (its temporary file goes)."""
        if self.stopped:
            raise Cancelled("interrupted")

    def _done(self, done: Done) -> None:
        """An object of the batch finished (in a worker thread)."""
        if done.fetched is not None:
            self.tally(done.fetched.action, done.fetched.size)
        if self.meter is not None:
            self.meter.done()

    def tally(self, action: str, size: int) -> None:
        """Count one object fetched (``action`` DOWNLOADED, ``size`` bytes) or found fresh."""
        with self.lock:
            if action == DOWNLOADED:
                self.downloaded += 1
                self.bytes += size
            else:
                self.fresh += 1

    def told(self, fetched: Fetched) -> dict | None:
        """What the subtask returns: in a child process of ``doit -P process``, what it
        did, as the task's values, which doit hands to the parent (`PodReporter.add_success`
        counts it there); None in the process that counts."""
        return None if os.getpid() == self.pid else {"fetched": fetched.action, "size": fetched.size}

    def stop(self) -> None:
        """Ctrl-C: stop the downloads at their next chunk and start no other (the batch's
        workers are waited for a moment: each removes its temporary file)."""
        self.stopped = True
        if self.meter is not None:
            self.meter.close()
        if self.batch is not None:
            self.batch.cancel()

    def stopped_line(self) -> str:
        """What a stopped run did: the files it fetched, in every process, and how many
        selected objects the cache still lacks."""
        cache = current_project().cache
        left = sum(1 for ref in self.selected if not cache.is_fresh(ref, network=False))
        return (f"fetched {self.downloaded} file(s), {human_size(self.bytes)}; {left} not fetched "
                f"(nothing partial was kept in place): run doit fetch again to continue")

    def summary(self) -> str:
        """``fetched N files, X MiB in T s; M up to date; K failed`` (the live line goes)."""
        if self.meter is not None:
            self.meter.close()
        seconds = time.monotonic() - self.started
        return (f"fetched {self.downloaded} file{'s' if self.downloaded != 1 else ''}, {human_size(self.bytes)} "
                f"in {seconds:.1f} s; {self.fresh} up to date; {self.failed} failed")


_RUN = _FetchRun()


def _selected(tasks: dict, names: Iterable[str]) -> list[str]:
    """``names`` and every task they depend on (``task_dep``), each once, depth first in
    the order given (the order doit runs them in, so the batch fetches them in it too)."""
    seen: dict[str, None] = {}
    todo = list(reversed(list(names)))
    while todo:
        name = todo.pop()
        if name in seen or name not in tasks:
            continue
        seen[name] = None
        todo.extend(reversed(tasks[name].task_dep))
    return list(seen)


class PodReporter(ConsoleReporter):
    """doit's console reporter, with a failure shown as one line (``ERROR task:
    message``) and, after a run that fetched, one summary line. It also tells
    `_FetchRun` which fetch subtasks doit selected (doit tells nobody else)."""

    desc = "pod-tasks: one line per failure, one summary line"

    def _quiet(self, task) -> bool:
        """doit's own line of a fetch subtask (``.  fetch:NAME``, ``-- fetch:NAME``) shows
        only in a verbose log: on a terminal the live line stands for them, in a log the
        download's line (up-to-date ones are counted in the summary); after Ctrl-C, none
        for those doit still hands out (each ends at once, fetching nothing)."""
        return (_RUN.terminal or _RUN.stopped or _RUN.level < VERBOSE) and task.name in _RUN.refs

    def execute_task(self, task):
        self.running = task.name
        if not self._quiet(task):
            super().execute_task(task)

    def _interrupt(self, signum, frame) -> None:
        """Ctrl-C: stop the downloads at their next chunk and end the run with one line
        and exit code 130 (doit still closes its database). A second Ctrl-C ends it at once.

        Under ``doit -P process`` the children (which get it too, from the terminal, or
        from here) stop their downloads and say nothing; the run ends once every subtask
        under way has told how it ended (`_ended`), so that the line counts what every
        process fetched and no child is killed while it removes a temporary file."""
        if os.getpid() != _RUN.pid:  # a child of doit -P process: the parent speaks
            if not self.fetching:
                raise KeyboardInterrupt  # the task's own Ctrl-C handling, then the child ends
            _RUN.stop()
            return
        signal.signal(signal.SIGINT, lambda *_: os._exit(INTERRUPTED))
        if not self.fetching:
            where = f"{self.running} stopped" if self.running else "stopped before any task ran"
            interrupted(f"{where}; nothing half-done was kept (assets.yaml is only ever replaced whole): run it again")
        _RUN.stop()
        for child in multiprocessing.active_children() if os.name != "nt" else ():
            os.kill(child.pid, signal.SIGINT)  # sent to doit alone (kill -INT), not to its group
        self.awaited = set() if _RUN.batch is not None else set(_RUN.under_way)
        self._ended(None)

    def _ended(self, task) -> None:
        """The fetch subtask ``task`` ended (None: none did); after Ctrl-C, the last one
        awaited ends the run."""
        if task is not None:
            _RUN.under_way.discard(_RUN.refs[task.name])
            self.awaited.discard(_RUN.refs[task.name])
        if _RUN.stopped and not self.awaited:
            interrupted(_RUN.stopped_line())

    def write(self, text):
        if Meter.active is not None:
            Meter.active.write(text)
        else:
            stdout.write(text, self.outstream)  # quiet once the reader has gone (`| head`)

    def initialize(self, tasks, selected_tasks):
        super().initialize(tasks, selected_tasks)
        selected = _selected(tasks, selected_tasks)
        names = [n for n in selected if n in _RUN.refs]
        given = [tasks[n].options for n in (*selected, "fetch") if n in tasks and tasks[n].options
                 and n.split(":", 1)[0] == "fetch"]  # `fetch:/NAME -v`: its alias's options count too
        _RUN.plan(names, max((j for o in given if (j := o.get("jobs"))), default=0))
        _RUN.level = QUIET if any(o.get("quiet") for o in given) else \
            VERBOSE if any(o.get("verbose") for o in given) else NORMAL
        self.fetching = bool(names)
        self.running: str | None = None
        self.awaited: set[ObjectRef] = set()  # after Ctrl-C: the subtasks under way
        stdout.quiet_on_closed_pipe()  # a closed stdout silences the run, which goes on to its end
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._interrupt)

    def skip_uptodate(self, task):
        if not self._quiet(task):
            super().skip_uptodate(task)
        if task.name in _RUN.refs:
            _RUN.fresh += 1

    def add_success(self, task):
        super().add_success(task)
        if task.name in _RUN.refs:
            if "fetched" in task.values:  # fetched in a child process (`_FetchRun.told`)
                _RUN.tally(task.values["fetched"], task.values["size"])
            self._ended(task)

    def add_failure(self, task, fail):
        if isinstance(fail, UnmetDependency):  # its failed subtask has said why already
            # doit exits 2 for a task whose dependency failed (`doit fetch`, the group) but
            # 1 for the failed task itself (`doit fetch:NAME`): one failure, one exit code.
            # The runner reads the class right after this call.
            fail.__class__ = TaskFailed
            return
        if fail.report:  # not a download stopped by Ctrl-C (the run's last line tells)
            self._show_failure(task, fail)
        if task.name in _RUN.refs:
            self._ended(task)

    def _show_failure(self, task, fail) -> None:
        message = fail.message if isinstance(fail, TaskFailed) else fail.get_msg()
        self.failures.append({"task": task, "exception": fail})
        if task.name in _RUN.refs:
            _RUN.failed += 1
        message = message.strip()
        if not message.startswith(task.name):
            message = f"{task.name}: {message}"
        self.write(f"ERROR {message}\n")

    def complete_run(self):
        self.failures = []  # already shown, one line each
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.fetching and not _RUN.stopped:
            self.write(_RUN.summary() + "\n")
        super().complete_run()


DOIT_CONFIG = {
    "default_tasks": ["fetch"],
    "continue": True,  # fetch every asset it can, and name every one it cannot
    "reporter": PodReporter,
    "backend": "sqlite3",
    "dep_file": ".doit.db",
}


def _fetch(ref: ObjectRef) -> TaskFailed | dict | None:
    try:
        fetched = _RUN.fetch(ref)
    except AssetNotFound as exc:
        raise current_project().explained(ref, exc) from None
    except Cancelled as exc:  # Ctrl-C: not a failure to show, one line ends the run
        return TaskFailed(str(exc), report=False)
    if not _RUN.terminal:
        _say_fetched(ref, fetched)
    return _RUN.told(fetched)


def _say_fetched(ref: ObjectRef, fetched: Fetched) -> None:
    """The log's line of one fetched object: a download's, or a cached copy's that could
    not be checked (not with ``-q``); with ``-v`` every object's."""
    if _RUN.level == QUIET or (_RUN.level == NORMAL and fetched.action in (CHECKED, FRESH)):
        return
    if fetched.action == DOWNLOADED:
        seconds = max(fetched.seconds, 1e-6)
        say(f"{ref}: {human_size(fetched.size)} in {seconds:.2f}s ({human_size(fetched.size / seconds)}/s) "
            f"-> {fetched.path}")
    elif fetched.action == CHECKED:
        say(f"{ref}: checked with the store, unchanged")
    elif fetched.action == FRESH:
        say(f"{ref}: up to date -> {fetched.path}")
    else:  # the store could not be asked (offline, no credentials): the warning says why
        say(f"{ref}: using the cached copy, not checked with the store")


def _clean(name: str, path: Path) -> None:
    say(f"{name}: removed {current_project().cache.delete(path)} cached file(s)")


def _fetch_task(name: str, ref: ObjectRef) -> dict:
    cache = current_project().cache
    path = cache.located(ref)  # a read-only tier's file is the target while the cache has none
    _RUN.refs[f"fetch:{name}"] = ref
    return {
        "name": name,
        "params": [JOBS_PARAM, *LOG_PARAMS],
        "actions": [(guarded(_fetch), [ref])],
        "targets": [str(path)],
        "uptodate": [lambda: _RUN.is_fresh(ref)],
        "clean": [(guarded(_clean), [name, path])],
        "doc": f"fetch {ref.url}",
        "verbosity": 2,
    }


def _report_task(name: str, line: str, doc: str) -> dict:
    """A subtask that has nothing to fetch and says so."""
    return {"name": name, "actions": [(say, [line])], "doc": doc, "verbosity": 2}


def _fetch_subtasks(project: Project, manifest: Manifest) -> Iterator[dict]:
    for pin in manifest.assets.values():
        if pin.override is not None and not pin.override.startswith("s3://"):
            yield _report_task(pin.name, f"{pin.name}: local override {pin.override} (nothing to fetch)",
                               f"local override {pin.override}")
        elif pin.version is None and pin.override is None:
            yield _report_task(pin.name, f"{pin.name}: not published yet (run doit publish:{pin.name})",
                               "declared, not published yet")
        else:
            ref = project.pin_ref(pin)
            assert isinstance(ref, ObjectRef)
            yield _fetch_task(pin.name, ref)
    for url in manifest.files:
        yield _fetch_task(url, project.url_ref(url))


@options_checked
def task_fetch() -> Iterator[dict]:
    """Fetch every pinned asset and `files:` object into the cache."""
    with loading():
        manifest, grouped = group("fetch", "Fetch every pinned asset and `files:` object into the cache: "
                                 "doit fetch [--jobs N] [-q|-v].", params=[JOBS_PARAM, *LOG_PARAMS])
        yield grouped
        if manifest is not None:
            yield from subtasks("fetch", manifest, _fetch_subtasks(current_project(), manifest))


PUBLISH_PARAMS = [
    {"name": "major", "long": "major", "type": bool, "default": False, "help": "bump the major version of the latest in the store"},
    {"name": "minor", "long": "minor", "type": bool, "default": False, "help": "bump the minor version of the latest in the store"},
    {"name": "patch", "long": "patch", "type": bool, "default": False, "help": "bump the patch version of the latest in the store"},
    {"name": "version", "long": "version", "type": str, "default": "", "help": "publish exactly this version X.Y.Z (wins over the bump flags)"},
    {"name": "min_version", "long": "min-version", "type": str, "default": "", "help": "the new version is at least this (X, X.Y or X.Y.Z)"},
    {"name": "file", "long": "file", "type": str, "default": "", "help": "the file to upload (default: the pin's `source:`)"},
    {"name": "dry_run", "long": "dry-run", "type": bool, "default": False, "help": "say what would be published; change nothing"},
    {"name": "force", "long": "force", "type": bool, "default": False,
     "help": "publish even when the file is identical to the latest version in the store"},
    {"name": "message", "short": "m", "long": "message", "type": str, "default": "",
     "help": "a note kept with the version (shown by doit versions:NAME)"},
]


def _publish(name: str, asked: bool, major: bool, minor: bool, patch: bool, version: str, min_version: str,
             file: str, dry_run: bool, force: bool, message: str) -> None:
    from .publish import publish

    if not asked:  # `doit publish` alone runs every subtask: never publish by accident
        raise PodError(f"publish:{name}: publish one asset at a time, options after its name: doit publish:{name} --patch")
    bumps = [b for b, on in (("major", major), ("minor", minor), ("patch", patch)) if on]
    if len(bumps) > 1:
        raise PodError(f"publish:{name}: give one of --major, --minor, --patch (got {', '.join(bumps)})")
    result = publish(
        current_project(), name, file=file or None, bump=bumps[0] if bumps else None,
        version=version or None, min_version=min_version or None, dry_run=dry_run, force=force, message=message or None,
    )
    if result.identical:  # not a failure: a CI job that publishes on every run goes on
        say(f"{result.name}: identical to {result.version} in the store; nothing published")
        if result.repinned:  # e.g. the replies of the publish that put it there were lost
            say(f"{result.name}: {'would pin' if dry_run else 'pinned'} {result.version}, which holds these bytes")
        return
    was = f" (was {result.previous})" if result.previous else " (new)"
    verb = "would publish" if dry_run else "published"
    notes = "".join(note for note, on in (
        (f"; could not compare it with {result.previous} (the store keeps no hash of it to compare)", result.uncompared),
        ("; the store's replies were lost, so it was asked: it holds these bytes", result.recovered),
    ) if on)
    say(f"{result.name}: {verb} {result.version}{was}, {human_size(result.size)} -> {result.url}{notes}")


@options_checked
def task_publish() -> Iterator[dict]:
    """Publish a new version: doit publish:NAME --major|--minor|--patch|--version X.Y.Z."""
    with loading():
        manifest, grouped = group(
            "publish", "Publish a new version: doit publish:NAME --major|--minor|--patch|--version X.Y.Z.",
            params=PUBLISH_PARAMS,
        )
        yield grouped
        if manifest is not None:
            asked = {normalise_name(n) for n in asked_names("publish") if not n.startswith("s3://")}
            yield from subtasks("publish", manifest, ({
                "name": name,
                "actions": [(guarded(_publish), [name, name in asked])],
                "params": PUBLISH_PARAMS,
                "uptodate": [False],
                "doc": f"publish a new version of {name}",
                "verbosity": 2,
            } for name in manifest.assets))


def _versions(name: str) -> None:
    from .provenance import history
    from .versions import latest_release

    project = current_project()
    pin = project.require_manifest().pin(name)
    versions = history(project, name)  # in semver precedence
    if not versions:
        say(f"{name}: no version in the store yet (publish one: doit publish:{name})")
        return
    latest = latest_release(info.version for info in versions)  # a pre-release is never "latest"
    rows = [("asset", "version", "published", "size", "publisher", "message")]
    for info in versions:
        v = info.version
        marks = [m for m, on in (("pinned", v == pin.version), ("latest", v == latest)) if on]
        when = "-" if info.modified is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(info.modified))
        message = " ".join((info.provenance.message or "-").split())  # one row: newlines and tabs as spaces
        rows.append((name, f"{v}" + (f" ({', '.join(marks)})" if marks else ""), when, human_size(info.size),
                     info.provenance.publisher or "-", message))
    _table(rows)


@options_checked
def task_versions() -> Iterator[dict]:
    """List the versions of a name in the store (date, size, publisher, message): doit versions:NAME."""
    with loading():
        manifest, grouped = group("versions", "List the versions of a name in the store, with their date, size, "
                                 "publisher and message: doit versions:NAME.")
        yield grouped
        if manifest is not None:
            yield from subtasks("versions", manifest, ({
                "name": name, "actions": [(guarded(_versions), [name])], "uptodate": [False],
                "doc": f"versions of {name} in the store", "verbosity": 2,
            } for name in manifest.assets))


def _status_row(project: Project, name: str, label: str, target: ObjectRef) -> tuple[str, ...]:
    cache = project.cache
    path = cache.path_for(target)
    if not path.is_file():
        tiered = cache.located(target)
        if tiered != path:  # a read-only tier vouches for it: used as it is, nothing due
            return (name, label, "read-only tier", human_size(tiered.stat().st_size), "-", "no", "-")
        return (name, label, "no", "-", "-", "-", "-")
    record = cache.record(target)
    age = "-" if record is None or record.checked is None else _age(time.time() - record.checked)
    due = "no" if cache.is_fresh(target, network=False) else "yes"
    verified = record.verified if record is not None and record.verified else "-"
    return (name, label, "yes", human_size(path.stat().st_size), age, due, verified)


def _status() -> None:
    project = current_project()
    manifest = project.require_manifest()
    rows = [("asset", "pin", "cached", "size", "age", "check due", "verified by")]
    for pin in manifest.assets.values():
        if pin.version is None and pin.override is None:
            rows.append((pin.name, "unpublished", "-", "-", "-", "-", "-"))
            continue
        target = project.pin_ref(pin)
        if isinstance(target, Path):
            size = human_size(target.stat().st_size) if target.is_file() else "missing"
            rows.append((pin.name, f"override {target}", "local", size, "-", "-", "-"))
        elif pin.override is not None:
            rows.append(_status_row(project, pin.name, f"override {pin.override}", target))
        else:
            rows.append(_status_row(project, pin.name, f"{pin.version}" + (" +sha256" if pin.sha256 else ""), target))
    for url in manifest.files:
        rows.append(_status_row(project, url, "file", project.url_ref(url)))
    _table(rows)
    _totals(project)


def _totals(project: Project) -> None:
    from .gc import totals

    say(totals(project))


def _table(rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` as columns two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    for row in rows:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@options_checked
def task_status() -> dict:
    """Show each asset: pin, cached or not, size, age, whether a check is due, overrides."""
    with loading():
        current_project()
        return {"actions": [guarded(_status)], "uptodate": [False], "verbosity": 2}


def _ls_remote() -> None:
    from .catalog import store_names

    _table([
        (name, str(versions[-1]), f"({len(versions)} version{'s' if len(versions) != 1 else ''})")
        for name, versions in store_names(current_project()).items()
    ])


@options_checked
def task_ls_remote() -> dict:
    """List every name in the store with its latest version."""
    with loading():
        current_project()
        return {"basename": "ls-remote", "actions": [guarded(_ls_remote)], "uptodate": [False], "verbosity": 2}


def _sync(dest: str) -> None:
    from .sync import sync

    for name, path in sync(current_project(), Path(dest)):
        say(f"{name} -> {path}")


@options_checked
def task_sync() -> dict:
    """Copy every pinned file into a folder (default ./versioned_assets): doit sync --dest DIR."""
    with loading():
        current_project()
        return {
            "actions": [guarded(_sync)],
            "params": [{"name": "dest", "long": "dest", "type": str, "default": "versioned_assets",
                        "help": "folder to copy into, as DEST/<name> (default ./versioned_assets)"}],
            "uptodate": [False],
            "verbosity": 2,
        }


def _cache(invalidate: bool, delete: bool, location: bool, paths: list[str]) -> None:
    cache = current_project().cache
    if location:
        say(str(cache.root))
    elif invalidate:
        count = cache.invalidate(None) if not paths else sum(cache.invalidate(p) for p in paths)
        say(f"invalidated {count} cached file(s): each is checked with the store on next use{cache.untouched()}")
    elif delete:
        if not paths:
            raise PodError("cache --delete: name the URLs or paths to delete (e.g. s3://bucket/key)")
        say(f"deleted {sum(cache.delete(p) for p in paths)} cached file(s){cache.untouched()}")
    else:
        now = time.time()
        _table([("object", "size", "checked", "status", "path")] + [
            (
                str(entry.url or entry.path), human_size(entry.size),
                "never" if entry.checked is None else f"{_age(now - entry.checked)} ago",
                "due" if entry.due else "fresh", str(entry.path),
            )
            for entry in cache.entries()
        ])
        _totals(current_project())


@options_checked
def task_cache() -> dict:
    """Cache housekeeping: list (default), --invalidate [URL...], --delete URL..., --location."""
    with loading():
        current_project()
        return {
            "actions": [guarded(_cache)],
            "params": [
                {"name": "invalidate", "long": "invalidate", "type": bool, "default": False,
                 "help": "force a check with the store on next use (the URLs/paths given, or everything)"},
                {"name": "delete", "long": "delete", "type": bool, "default": False,
                 "help": "delete the cached files or trees given"},
                {"name": "location", "long": "location", "type": bool, "default": False,
                 "help": "print the cache dir"},
            ],
            "pos_arg": "paths",
            "uptodate": [False],
            "verbosity": 2,
        }

