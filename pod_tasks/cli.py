"""``pod-tasks`` (also ``python -m pod_tasks``): shell commands that print only what they say.

``path NAME [VERSION]``, ``cat NAME [VERSION]``, ``path-remote NAME [VERSION]``, ``loc``.
A failure prints one line to stderr and exits 1 (a usage mistake: argparse's usage
text and exit 2); nothing but the answer ever goes to stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Sequence

from .engine import INTERRUPTED
from .errors import PodError
from .resolver import Project

__all__ = ["main", "console"]


def _parser(prog: str) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
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
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m pod_tasks") -> int:
    args = _parser(prog).parse_args(argv)
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
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (PodError, OSError) as exc:
        print(f"pod-tasks: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside a download (one inside says more, in `resolve`)
        print("interrupted: nothing was fetched or changed", file=sys.stderr)
        return INTERRUPTED
    return 0


def console() -> None:
    """The ``pod-tasks`` console command (a ``[project.scripts]`` entry point)."""
    sys.exit(main(prog="pod-tasks"))
