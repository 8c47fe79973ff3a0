"""Moving over from baiji-pod: its JSON manifest into ``assets.yaml``.

The old manifest maps names to versions, local paths or ``s3://`` URLs::

    {"/foo/bar.csv": "1.2.5", "/dev/try.obj": "scratch/try.obj", "/x.bin": "s3://b/x.bin"}

`import_manifest` appends the new names under ``assets:`` of an existing
``assets.yaml`` as a text edit, so every other byte (comments, order, quoting) stays;
it creates the file when there is none. A name already pinned to the same thing is
left alone; pinned to something else, it is reported as a conflict and never
overwritten. The result is validated before the file is replaced atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ManifestError, PodError, UnsafePathError
from .manifest import (
    VERSION_RE, FILENAME, Pin, compose_yaml, read_manifest_text, replace_text, span_end, edit_lock, parse_manifest,
)
from .names import normalise_name
from .store import parse_s3_url

__all__ = ["read_old_manifest", "convert", "ImportResult", "import_manifest"]


def read_old_manifest(path: str | os.PathLike[str]) -> dict[str, str]:
    """The old JSON manifest at ``path``: a mapping of names to strings.

    Raises `ManifestError` (``FILE:LINE: ...``) when it cannot be read or is not one.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path.name}:1: {path} does not exist: give the old versioned_assets.json") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path.name}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path.name}:1: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f'{path.name}:1: the old manifest is a JSON object: {{"/foo/bar.csv": "1.2.5", ...}}')
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise ManifestError(f"{path.name}:1: the value of {bad[0]!r} must be a string: a version, a path or an s3:// URL")
    return data


def convert(old: dict[str, str], json_folder: Path, yaml_folder: Path) -> tuple[dict[str, str], list[str]]:
    """Old entries as ``assets.yaml`` pins: ({name: pin text}, [problems]).

    A version stays a version; an ``s3://`` URL stays a URL; a local path (relative to
    the old manifest's folder) must be an existing file and is written relative to
    ``yaml_folder`` when inside it, else absolute.
    """
    entries: dict[str, str] = {}
    problems: list[str] = []
    for raw, value in old.items():
        try:
            name = normalise_name(raw)
        except UnsafePathError as exc:
            problems.append(f"{raw!r}: {exc}: fix the name by hand")
            continue
        value = value.strip()
        if VERSION_RE.match(value):
            entries[name] = value
        elif value.startswith("s3://"):
            try:
                _, key = parse_s3_url(value)
            except ValueError:
                key = ""
            if not key:
                problems.append(f"{raw!r}: {value!r} is not an s3://bucket/key URL")
            else:
                entries[name] = value
        else:
            local = (json_folder / Path(value).expanduser()).absolute()
            if not local.is_file():
                problems.append(f"{raw!r}: {value!r} is neither a version (X.Y.Z), an s3:// URL nor an existing file")
                continue
            try:
                entries[name] = local.relative_to(yaml_folder.absolute()).as_posix()
            except ValueError:
                entries[name] = str(local)
    return entries, problems


@dataclass
class ImportResult:
    """What an import did: names added, names already pinned the same way, conflicts
    and problems (one line each), and whether assets.yaml was created."""

    path: Path
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    created: bool = False


def _same(pin: Pin, wanted: Pin) -> bool:
    """Both pin the same version, or override with the same file or URL."""
    return (pin.version, pin.override) == (wanted.version, wanted.override)


def _line(name: str, value: str, flow: bool) -> str:
    text = yaml.safe_dump({name: value}, default_flow_style=flow, width=1 << 30, allow_unicode=True).strip()
    return text[1:-1] if flow else text


def _insert_lines(text: str, index: int, lines: str) -> str:
    """``text`` with ``lines`` inserted after the line that holds ``index``."""
    newline = text.find("\n", index)
    at = len(text) if newline < 0 else newline + 1
    head = text[:at] if text[:at].endswith("\n") or not at else text[:at] + "\n"
    return head + lines + text[at:]


def _append(text: str, root: yaml.Node | None, entries: dict[str, str], store: str | None) -> str:
    """``text`` with ``entries`` added under ``assets:`` (and ``store:`` when given)."""
    block = "".join(f"  {_line(n, v, False)}\n" for n, v in entries.items())
    if root is None or not isinstance(root, yaml.MappingNode) or not root.value:
        head = text if not text or text.endswith("\n") else text + "\n"
        return head + (f"store: {store}\n" if store else "") + "assets:\n" + block
    assets = next((v for k, v in root.value if k.value == "assets"), None)
    if assets is None:
        new = _insert_lines(text, span_end(root), "assets:\n" + block)
    elif isinstance(assets, yaml.MappingNode) and assets.flow_style:
        close = assets.end_mark.index - 1
        joined = ", ".join(_line(n, v, True) for n, v in entries.items())
        new = text[:close] + (", " if assets.value else "") + joined + text[close:]
    elif isinstance(assets, yaml.MappingNode) and assets.value:
        indent = " " * assets.value[0][0].start_mark.column
        lines = "".join(f"{indent}{_line(n, v, False)}\n" for n, v in entries.items())
        new = _insert_lines(text, span_end(assets.value[-1][1]), lines)
    else:  # `assets:` with nothing (or ~) after it
        start = assets.start_mark.index
        new = _insert_lines(text[:start] + text[assets.end_mark.index:], start, block)
    if store:
        first = root.start_mark.index
        new = new[:first] + f"store: {store}\n" + new[first:]
    return new


def import_manifest(
    json_path: str | os.PathLike[str],
    yaml_path: str | os.PathLike[str] = FILENAME,
    store: str | None = None,
) -> ImportResult:
    """Merge the old manifest at ``json_path`` into ``yaml_path`` (created if absent).

    ``store`` is written as ``store:`` when the file has none; naming a different
    store than the file's is an error. Raises `ManifestError` for unreadable input and
    `PodError` when nothing can be written; per-entry trouble is in the result.
    """
    json_path, path = Path(json_path), Path(yaml_path).absolute()
    old = read_old_manifest(json_path)
    entries, problems = convert(old, json_path.absolute().parent, path.parent)
    result = ImportResult(path, problems=problems)
    with edit_lock(path):
        exists = path.exists()
        text = read_manifest_text(path) if exists else ""
        crlf = "\r\n" in text and text.count("\n") == text.count("\r\n")  # a Windows file stays one
        base = text.replace("\r\n", "\n") if crlf else text
        root = compose_yaml(base, path) if exists else None
        current = parse_manifest(text, path) if root is not None else None
        known = current.assets if current else {}
        if store is not None and current is not None and current.store and current.store.rstrip("/") != store.rstrip("/"):
            raise PodError(
                f"{path.name} already has store: {current.store}, not {store}: the imported versions "
                "would point at it; drop --store, or import into another file"
            )
        # The entries as the parser reads them (this also checks --store).
        preview = parse_manifest(_append("", None, entries, store or "s3://placeholder"), path).assets
        new: dict[str, str] = {}
        for name, value in entries.items():
            if name in known:
                if _same(known[name], preview[name]):
                    result.unchanged.append(name)
                else:
                    result.conflicts.append(f"{name}: {path.name} line {known[name].line} pins it differently; "
                                            f"the old manifest says {value!r} (kept as it was)")
            else:
                new[name] = value
        add_store = store if (current is None or not current.store) and store else None
        needs_store = any(VERSION_RE.match(v) for v in new.values())
        if needs_store and not add_store and not (current and current.store):
            raise PodError(f"{path.name} has no store: give --store s3://bucket (where the versions live)")
        if not new:
            return result
        new_text = _append(base, root, new, add_store)
        new_text = new_text.replace("\n", "\r\n") if crlf else new_text
        manifest = parse_manifest(new_text, path)
        for name in new:
            if name not in manifest.assets:
                raise PodError(f"{path}: adding {name} went wrong; the file was left as it was")
        replace_text(path, new_text)
        result.added = list(new)
        result.created = not exists
    return result
