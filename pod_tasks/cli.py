"""``pod-tasks`` (also ``python -m pod_tasks``): the project's one command, from any folder.

``path NAME [VERSION]``, ``cat NAME [VERSION]``, ``path-remote NAME [VERSION]``, ``loc``
print only what they say: a failure prints one line to stderr and exits 1 (a usage
mistake: argparse's usage text and exit 2); nothing but the answer goes to stdout. When
the reader of stdout goes away before the answer is all out (``pod-tasks cat NAME | head
-c 10``), the command stops there silently with exit code 141, as a shell reports a
writer ended by SIGPIPE (the file itself was fetched whole, or not at all).
``init [--store URL]`` starts a project. Any other first word is a pod-tasks doit task,
run on the project at or above the current folder (`pod_tasks.runner`): ``pod-tasks
fetch``, ``pod-tasks publish NAME --minor``, with doit's output and exit codes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Sequence

from . import stdout
from .engine import INTERRUPTED
from .errors import PodError
from .resolver import Project

__all__ = ["main", "console"]


def _parser(prog: str) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog=prog, description="pod-tasks: the project's one command, from any folder of it.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("path", "fetch if needed, then print the local path"),
        ("cat", "fetch if needed, then write the bytes to stdout"),
        ("path-remote", "print the remote URL"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("name", help="an asset name from assets.yaml, or an s3:// URL")
        command.add_argument("version", nargs="?", help="a version other than the pinned one")
    commands.add_parser("loc", help="print the cache dir")
    init = commands.add_parser("init", help="start a project here: assets.yaml, dodo.py, .gitignore (never overwritten)")
    init.add_argument("--store", help="where versions live: s3://bucket[/prefix] or a folder (default: ./versioned-assets)")
    parser.epilog = ("any other COMMAND is a task, run on the project at or above this folder, with doit's options: "
                     "fetch, publish NAME --minor, versions NAME, status, update, lock, gc, cache, ... "
                     "(pod-tasks list shows them all)")
    return parser


#: The words that are this command's own; any other first word is a doit task or command.
OWN = ("path", "cat", "path-remote", "loc", "init")


def main(argv: Sequence[str] | None = None, prog: str = "python -m pod_tasks") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in OWN and not argv[0].startswith("-"):
        return _tasks(argv)
    args = _parser(prog).parse_args(argv)
    if args.command == "init":
        return _init(args.store)
    try:
        project = Project.get()
        if args.command == "loc":
            print(project.cache.root)
        elif args.command == "path-remote":
            target = project.ref(args.name, args.version)
            print(getattr(target, "url", target))
        elif args.command == "path":
            print(project.resolve(args.name, args.version))
        elif args.command == "cat":
            with open(project.resolve(args.name, args.version), "rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
        sys.stdout.flush()  # here, where a closed stdout is caught, not at exit
    except (PodError, OSError) as exc:
        if stdout.reader_gone(exc):  # `| head`: the reader has all it wanted
            stdout.silence()
            return stdout.CLOSED
        print(f"pod-tasks: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside a download (one inside says more, in `resolve`)
        print("interrupted: nothing was fetched or changed", file=sys.stderr)
        return INTERRUPTED
    return 0


def _tasks(argv: list[str]) -> int:
    from .runner import USAGE, run_tasks

    try:
        return run_tasks(argv)
    except PodError as exc:  # before any task ran, as doit's own refusals
        print(f"pod-tasks: {exc}", file=sys.stderr)
        return USAGE


def _init(store: str | None) -> int:
    from .init import init_project

    folder = Path.cwd()
    try:
        done = init_project(folder, store)
    except (PodError, OSError) as exc:
        print(f"pod-tasks: {exc}", file=sys.stderr)
        return 1
    print(f"init: wrote {', '.join(done.written)} in {folder}" + (f" (kept {', '.join(done.kept)})" if done.kept else ""))
    for line in done.advice:
        print(f"init: {line}")
    print("init: next, `pod-tasks publish NAME --minor` once NAME is under `assets:` (see assets.yaml)")
    return 0


def console() -> None:
    """The ``pod-tasks`` console command (a ``[project.scripts]`` entry point)."""
    sys.exit(main(prog="pod-tasks"))
