"""``pod-tasks init [--store URL]``: start a project in a folder.

Writes a commented ``assets.yaml`` naming the store (by default a folder beside it,
created empty), a one-line ``dodo.py`` (so that
plain ``doit fetch`` works too), and the ignore line for doit's state in ``.gitignore``.
Contract: no file is ever overwritten: an existing ``assets.yaml`` refuses the command
before anything is written; an existing ``dodo.py`` is left as it is (the result says
the line to add when it lacks it); ``.gitignore`` only gains the lines it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import PodError
from .manifest import FILENAME, parse_manifest

__all__ = ["init_project", "Initialised", "DODO_LINE", "IGNORED"]

DODO_LINE = "from pod_tasks.tasks import *  # noqa: F401,F403  (every pod-tasks doit task)"
#: What doit keeps beside dodo.py (its state of the tasks): never committed.
IGNORED = (".doit.db*",)
#: A folder store beside the project when no store is given: works with no cloud account.
DEFAULT_STORE = "versioned-assets"

_MANIFEST = """\
# The data files this code needs, each pinned to one version in the store.
#   pod-tasks publish NAME --minor   upload a new version of a file and pin it here
#   pod-tasks fetch                  put every pinned version in the local cache
#   resolve("NAME")                  (from pod_tasks import resolve) its local path, in code
store: {store}   # s3://bucket[/prefix], or a folder (a path or file:// URL)
# endpoint: https://minio.example:9000   # an S3-compatible server other than AWS
# cache_dir: ~/.cache/pod-tasks          # where fetched files live (POD_CACHE_DIR wins)
assets:
  # data/labels.csv: {{source: data/labels.csv}}   # declared: the first publish pins it
"""


@dataclass
class Initialised:
    """What `init_project` did, file by file (paths relative to the folder)."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def init_project(folder: Path, store: str | None = None) -> Initialised:
    """Start a project in ``folder`` (see the module's contract). Raises `PodError`
    when ``folder`` already has an ``assets.yaml`` or ``store`` is not a store URL."""
    manifest = folder / FILENAME
    if manifest.exists() or manifest.is_symlink():
        raise PodError(f"{manifest} already exists: this folder is a project; nothing was written "
                       "(`pod-tasks status` shows its assets)")
    text = _MANIFEST.format(store=store or DEFAULT_STORE)
    parse_manifest(text, manifest)  # a store URL that is not one is refused before any write
    done = Initialised()
    _create(manifest, text)
    done.written.append(FILENAME)
    if store is None:  # the default folder store, empty, so that the first publish has its store
        (folder / DEFAULT_STORE).mkdir(exist_ok=True)
        done.written.append(DEFAULT_STORE + "/")
    _dodo(folder / "dodo.py", done)
    _ignore(folder / ".gitignore", done)
    return done


def _create(path: Path, text: str) -> None:
    """Write ``path``, which must not exist (never replaces a file, even in a race)."""
    with open(path, "x", encoding="utf-8", newline="\n") as out:
        out.write(text)


def _dodo(path: Path, done: Initialised) -> None:
    if not path.exists():
        _create(path, DODO_LINE + "\n")
        done.written.append(path.name)
        return
    done.kept.append(path.name)
    if "pod_tasks.tasks" not in path.read_text(encoding="utf-8", errors="replace"):
        done.advice.append(f"add this line to {path.name} for `doit fetch` and the other tasks: {DODO_LINE}")


def _ignore(path: Path, done: Initialised) -> None:
    present = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    missing = [line for line in IGNORED if line not in present.splitlines()]
    if not missing:
        done.kept.append(path.name)
        return
    with open(path, "a", encoding="utf-8", newline="\n") as out:
        out.write(("\n" if present and not present.endswith("\n") else "") + "\n".join(missing) + "\n")
    done.written.append(path.name)
