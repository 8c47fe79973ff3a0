"""``assets.yaml``: parse once, validate everything up front, edit one pin in place.

Every problem is a `ManifestError` whose message starts ``assets.yaml:LINE:`` and says
what to do. `set_pin` (one pin) and `set_pins` (pins and ``files:`` entries at once)
rewrite the text of those entries only: every other byte of the file (comments,
order, quoting, blank lines) survives, and the file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from .config import parse_flag, parse_mirror, parse_timeout
from .endpoints import redact, server_of
from .errors import AssetNotFound, ManifestError, PodError, UnsafePathError, VersionError, shown
from .names import check_bucket, check_relative_key, normalise_name, versioned_key
from .store import parse_s3_url
from .syntax import MAX_VALUES, compose_yaml, cut_by_comment, missing_space, paused_gc
from .versions import VERSION_PATTERN, Version, parse_version

__all__ = [
    "Pin", "Manifest", "load_manifest", "parse_manifest", "set_pin", "pinned_text", "set_pins", "pins_text",
    "find_manifest", "FILENAME", "MAX_BYTES", "MAX_ENTRIES", "MAX_VALUES",
    # the text-level pieces that import-manifest and prefill lists share
    "VERSION_RE", "compose_yaml", "read_manifest_text", "replace_text", "span_end", "edit_lock",
]

FILENAME = "assets.yaml"
_TOP_KEYS = ("store", "endpoint", "anonymous", "mirrors", "cache_dir", "timeout", "immutable", "assets", "files")
_PIN_KEYS = ("version", "sha256", "size", "source")
_FILE_KEYS = ("url", "sha256")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_SIZE = re.compile(r"^[0-9]{1,20}$")
#: The most pins and `files:` entries a manifest may hold. Each is a few doit tasks: at
#: 30,000 short pins `doit list` takes about 10 s of CPU and 0.6 GB, nearly all of it in
#: doit's tasks, and both grow with the count.
MAX_ENTRIES = 30_000
VERSION_RE = re.compile(rf"^{VERSION_PATTERN}$")


@dataclass(frozen=True)
class Pin:
    """What ``assets.yaml`` says of one name.

    Exactly one of: ``version`` (with an optional ``sha256`` and ``size``), ``override`` (an
    absolute local path or an ``s3://`` URL used as is), or only ``source`` (declared,
    not yet published). ``source`` is the file ``publish`` uploads by default.
    """

    name: str
    line: int
    version: Version | None = None
    sha256: str | None = None
    source: Path | None = None
    override: str | None = None
    #: The version's size in bytes: a download writes no more (`pod_tasks.bounds`).
    size: int | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated ``assets.yaml``."""

    path: Path
    store: str | None = None
    cache_dir: Path | None = None
    timeout: float | None = None
    immutable: frozenset[str] = frozenset()
    endpoint: str | None = None
    anonymous: bool = False
    #: Base URLs that serve the store's keys, tried in order before it (`pod_tasks.mirrors`).
    mirrors: tuple[str, ...] = ()
    assets: dict[str, Pin] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    #: The sha256 pinned for a `files:` URL (``- {url: s3://b/k, sha256: ...}``), by URL.
    file_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def pin(self, name: str) -> Pin:
        """The pin for ``name`` (a leading ``/`` allowed); `AssetNotFound` if absent."""
        try:
            key = normalise_name(name)
        except UnsafePathError as exc:
            raise AssetNotFound(f"{exc}; asset names look like foo/bar.csv") from None
        try:
            return self.assets[key]
        except KeyError:
            raise AssetNotFound(
                f"{name!r} is not in {self.path}: add it under `assets:` (`doit status` lists the names)"
            ) from None


def find_manifest(start: Path | None = None) -> Path | None:
    """The manifest ``start`` names: itself when it is a YAML file, else the nearest
    ``assets.yaml`` in its folder (``start`` itself, or a file's folder, so that a library
    can pass its ``__file__``) or above. Default: the current directory."""
    folder = (start or Path.cwd()).absolute()
    if folder.is_file():
        if folder.suffix in (".yaml", ".yml"):
            return folder
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        path = candidate / FILENAME
        if path.is_file():
            return path
    return None


class _Reader:
    """Turns composed YAML nodes into a `Manifest`, raising located errors."""

    def __init__(self, path: Path, label: str, text: str) -> None:
        self.path = path
        self.label = label
        self.text = text

    def fail(self, node: yaml.Node | None, message: str) -> ManifestError:
        """The error at ``node``'s line; a value that YAML cut short at a ``#`` says so,
        with the column of the ``#``."""
        line = node.start_mark.line + 1 if node is not None else 1
        column = cut_by_comment(self.text, node) if node is not None else None
        if column is None:
            return ManifestError(f"{self.label}:{line}: {message}")
        return ManifestError(f"{self.label}:{line}:{column + 1}: {message} (YAML took the ' #' after it for a "
                             f"comment: put the value in quotes if the '#' belongs to it)")

    def unspaced(self, node: yaml.Node, message: str) -> ManifestError:
        """`fail`, saying how to write a scalar typed without the space after ``:`` or ``-``."""
        fixed = missing_space(node.value) if isinstance(node, yaml.ScalarNode) else None
        return self.fail(node, f"{message}; for {shown(node.value)}, write {shown(fixed)}" if fixed else message)

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, f"{what} must be a single value")
        return node.value

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.unspaced(node, f"{what} must be a mapping of `key: value` lines")
        return [(self.scalar(k, f"a key in {what}"), k, v) for k, v in node.value]

    def items(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.unspaced(node, f"{what} must be a list (`- item` lines)")
        return node.value

    def sequence(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        return [(self.scalar(item, f"an item of {what}"), item) for item in self.items(node, what)]

    def sha256(self, node: yaml.Node, what: str) -> str:
        text = self.scalar(node, f"{what}: sha256")
        if not _SHA256.match(text):
            raise self.fail(node, f"{what}: sha256 must be 64 hex digits")
        return text.lower()

    def file_entry(self, node: yaml.Node) -> tuple[str, str | None]:
        """A `files:` entry: a URL, or ``{url: URL, sha256: HEX}``."""
        if not isinstance(node, yaml.MappingNode):
            return self.s3_url(node, self.scalar(node, "an item of files"), "a `files:` entry"), None
        items: dict[str, yaml.Node] = {}
        for key, k, v in self.mapping(node, "a `files:` entry"):
            if key not in _FILE_KEYS:
                raise self.unspaced(k, f"a `files:` entry: unknown key {shown(key)}: an entry has "
                                       f"{', '.join(_FILE_KEYS)}")
            if key in items:
                raise self.fail(k, f"a `files:` entry: {shown(key)} appears twice: keep one")
            items[key] = v
        if "url" not in items:
            raise self.fail(node, "a `files:` entry needs `url:` (write `- {url: s3://bucket/key, sha256: ...}`)")
        url = self.s3_url(items["url"], self.scalar(items["url"], "a `files:` entry: url"), "a `files:` entry")
        return url, self.sha256(items["sha256"], url) if "sha256" in items else None

    def read(self, root: yaml.Node | None) -> Manifest:
        if root is None:
            raise self.fail(None, "the file is empty: it needs at least `store:` and `assets:`")
        top = {}
        for key, knode, value in self.mapping(root, "the file"):
            if key not in _TOP_KEYS:
                raise self.unspaced(knode, f"unknown key {shown(key)}: the keys are {', '.join(_TOP_KEYS)}")
            if key in top:
                raise self.fail(knode, f"{shown(key)} appears twice: keep one")
            top[key] = value
        self.bounded(top)
        fields: dict[str, Any] = {}
        if "store" in top:
            fields["store"] = self.store(top["store"])
        if "cache_dir" in top:
            fields["cache_dir"] = self.local(top["cache_dir"], self.scalar(top["cache_dir"], "cache_dir"), "cache_dir")
        if "timeout" in top:
            try:
                fields["timeout"] = parse_timeout(self.scalar(top["timeout"], "timeout"))
            except ValueError as exc:
                raise self.fail(top["timeout"], str(exc)) from None
        if "endpoint" in top:
            fields["endpoint"] = self.endpoint(top["endpoint"])
        if "anonymous" in top:
            try:
                fields["anonymous"] = parse_flag(self.scalar(top["anonymous"], "anonymous"))
            except ValueError as exc:
                raise self.fail(top["anonymous"], f"anonymous: {exc}: write true or false") from None
        if "mirrors" in top:
            fields["mirrors"] = self.mirrors(top["mirrors"])
        if "immutable" in top:
            buckets = self.sequence(top["immutable"], "immutable")
            fields["immutable"] = frozenset(self.bucket(b, item) for b, item in buckets)
        assets: dict[str, Pin] = {}
        if "assets" in top and top["assets"].tag != "tag:yaml.org,2002:null":
            for raw, knode, value in self.mapping(top["assets"], "assets"):
                try:
                    name = normalise_name(raw)
                except UnsafePathError as exc:
                    raise self.fail(knode, f"{exc}: write names like foo/bar.csv") from None
                if name in assets:
                    raise self.fail(knode, f"{shown(raw)} is listed twice (line {assets[name].line}): keep one")
                assets[name] = self.pin(name, knode, value)
        files: dict[str, yaml.Node] = {}
        file_sha256: dict[str, str] = {}
        for node in self.items(top.get("files", yaml.ScalarNode("tag:yaml.org,2002:null", "")), "files"):
            url, sha = self.file_entry(node)
            if url in files:
                first = files[url].start_mark.line + 1
                raise self.fail(node, f"{url} is listed twice under `files:` (line {first}): keep one")
            files[url] = node
            if sha is not None:
                file_sha256[url] = sha
        needs_store = any(p.version is not None or (p.source and p.override is None) for p in assets.values())
        if needs_store and "store" not in fields:
            raise self.fail(root, "no `store:`: add `store: s3://bucket` or `store: path/to/folder`")
        return Manifest(path=self.path, assets=assets, files=tuple(files), file_sha256=file_sha256, **fields)

    def bounded(self, top: dict[str, yaml.Node]) -> None:
        """Refuse more than `MAX_ENTRIES` pins and `files:` entries, at the first one too many."""
        assets, files = top.get("assets"), top.get("files")
        entries = [k for k, _ in assets.value] if isinstance(assets, yaml.MappingNode) else []
        entries += files.value if isinstance(files, yaml.SequenceNode) else []
        if len(entries) > MAX_ENTRIES:
            raise self.fail(entries[MAX_ENTRIES], f"more than {MAX_ENTRIES:,} pins and `files:` entries, more than "
                            f"pod-tasks reads from one manifest: split the assets over several projects, each "
                            f"with its own {self.label}")

    def bucket(self, name: str, node: yaml.Node) -> str:
        try:
            return check_bucket(name)
        except UnsafePathError as exc:
            raise self.fail(node, f"immutable: {exc}: fix the name") from None

    def store(self, node: yaml.Node) -> str:
        spec = self.scalar(node, "store")
        if spec.lower().startswith("s3:") and not spec.startswith("s3://"):
            fixed = "s3://" + spec[3:].lstrip("/")
            raise self.fail(node, f"store {shown(spec)} looks like an S3 URL with a slash missing: write `store: {shown(fixed)[1:-1]}`")
        if spec.startswith("s3://"):
            self.s3_url(node, spec, "store", key_required=False)
        elif "://" in spec and not spec.startswith("file://"):
            raise self.fail(node, f"store {shown(spec)}: use s3://bucket[/prefix], file:///path or a folder path")
        elif "://" not in spec:
            self.local(node, spec, "store")
        return spec

    def endpoint(self, node: yaml.Node) -> str:
        url = self.scalar(node, "endpoint")
        try:
            server_of(url)
        except ValueError as exc:
            raise self.fail(node, f"endpoint {exc}") from None
        return url

    def mirrors(self, node: yaml.Node) -> tuple[str, ...]:
        bases: dict[str, yaml.Node] = {}
        for url, item in self.sequence(node, "mirrors"):
            try:
                base = parse_mirror(url)
            except ValueError as exc:
                raise self.fail(item, str(exc)) from None
            if base in bases:
                raise self.fail(item, f"mirror {shown(redact(url))} is listed twice (line {bases[base].start_mark.line + 1}): keep one")
            bases[base] = item
        return tuple(bases)

    def local(self, node: yaml.Node, text: str, what: str) -> Path:
        """``text`` as a path relative to assets.yaml's folder, ``~`` expanded."""
        try:
            return self.path.parent / Path(text).expanduser()
        except RuntimeError:  # ~user with no such user, or no home directory at all
            raise self.fail(node, f"{what} {shown(text)}: cannot expand its ~ (no such home directory): write the full path") from None

    def s3_url(self, node: yaml.Node, url: str, what: str, key_required: bool = True) -> str:
        try:
            _, key = parse_s3_url(url)
        except ValueError as exc:
            raise self.fail(node, f"{what} {exc}") from None
        if key_required and not key:
            raise self.fail(node, f"{what} {shown(url)} names a bucket but no object")
        checked = key if key_required else key.strip("/")  # a store's prefix may end with /
        if checked:
            try:
                check_relative_key(checked, "object key" if key_required else "prefix")
            except UnsafePathError as exc:
                raise self.fail(node, f"{what} {shown(url)}: {exc}") from None
        return url

    def version(self, node: yaml.Node, name: str, text: str) -> Version:
        """``text`` (a version in form) as the version of ``name``, whose store key must be
        a valid one (so a version of thousands of digits is refused here, with its line)."""
        try:
            version = parse_version(text)
            check_relative_key(versioned_key(name, text), "store key")
        except VersionError as exc:
            raise self.fail(node, f"{name}: {exc}") from None
        except UnsafePathError as exc:
            raise self.fail(node, f"{name}: version {shown(text)}: {exc}") from None
        return version

    def pin(self, name: str, knode: yaml.Node, node: yaml.Node) -> Pin:
        line = knode.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            items = {}
            for key, k, v in self.mapping(node, f"the pin of {name}"):
                if key not in _PIN_KEYS:
                    raise self.unspaced(k, f"{name}: unknown key {shown(key)}: a pin has {', '.join(_PIN_KEYS)}")
                if key in items:
                    raise self.fail(k, f"{name}: {shown(key)} appears twice in its pin: keep one")
                items[key] = (self.scalar(v, f"{name}: {key}"), v)
            version = sha = source = None
            if "version" in items:
                text, vnode = items["version"]
                if not VERSION_RE.match(text):
                    raise self.fail(vnode, f"{name}: {shown(text)} is not a version: write MAJOR.MINOR.PATCH, e.g. 1.2.5 "
                                           f"(or a pre-release, e.g. 2.0.0-rc.1)")
                version = self.version(vnode, name, text)
            if "sha256" in items:
                sha = self.sha256(items["sha256"][1], name)
            size = None
            if "size" in items:
                if not _SIZE.match(items["size"][0]) or version is None:
                    raise self.fail(items["size"][1], f"{name}: size is the version's bytes: a whole number, "
                                                      f"with a `version:`")
                size = int(items["size"][0])
            if "source" in items:
                source = self.local(items["source"][1], items["source"][0], f"{name}: source")
            if version is None and source is None:
                raise self.fail(knode, f"{name}: a pin needs `version:` (published) or `source:` (to publish)")
            if version is None and sha is not None:
                raise self.fail(knode, f"{name}: `sha256:` goes with a `version:`")
            return Pin(name, line, version=version, sha256=sha, source=source, size=size)
        text = self.scalar(node, f"the pin of {name}")
        if VERSION_RE.match(text):
            return Pin(name, line, version=self.version(node, name, text))
        if text.startswith("s3://"):
            return Pin(name, line, override=self.s3_url(node, text, f"{name}: the override"))
        local = self.local(node, text, f"{name}: the pin")
        try:
            exists = local.is_file()
        except OSError:  # e.g. a name longer than the file system allows: no such file
            exists = False
        if exists:
            return Pin(name, line, override=str(local.absolute()))
        raise self.fail(
            node,
            f"{name}: {shown(text)} is neither a version (X.Y.Z), an existing file nor an s3:// URL: fix the pin",
        )


#: A manifest larger than this is refused before it is parsed (and one of more than
#: `MAX_VALUES` values once that many are read).
MAX_BYTES = 16 << 20


def parse_manifest(text: str, path: Path) -> Manifest:
    """Validate ``text`` as the contents of ``path`` (in time and memory linear in its
    length, `MAX_VALUES` values at most)."""
    root = compose_yaml(text, path)
    with paused_gc():
        return _Reader(path.absolute(), path.name, text).read(root)


def read_manifest_text(path: Path) -> str:
    """The text of the manifest at ``path``; unreadable, not UTF-8 or larger than
    `MAX_BYTES` raises `ManifestError`."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(f"{path.name}:1: {path} does not exist: create it, or set POD_ASSETS") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path.name}:1: cannot read {path}: {exc}") from None
    if len(text) > MAX_BYTES:
        raise ManifestError(f"{path.name}:1: {path} is larger than {MAX_BYTES >> 20} MiB, far more than any "
                            f"manifest needs: is it the right file? (POD_ASSETS names the one to use)")
    return text


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate the manifest at ``path``."""
    path = Path(path)
    return parse_manifest(read_manifest_text(path), path)


def _entry_nodes(root: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The key and value nodes of each pin under ``assets:``, by name."""
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, value in root.value:
        if knode.value == "assets" and isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                try:
                    entries.setdefault(normalise_name(k.value), (k, v))
                except UnsafePathError:
                    continue
    return entries


def span_end(node: yaml.Node) -> int:
    """End of a node's own text (a block mapping's mark runs on to the next key)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return span_end(node.value[-1][1])
    return node.end_mark.index


@contextlib.contextmanager
def edit_lock(path: Path) -> Iterator[None]:
    """Hold the lock every edit of the manifest at the absolute ``path`` holds (edits by
    `set_pin` and `pod_tasks.migrate` are serialised across processes): a file beside
    it, ``.assets.yaml.lock``, where the edit writes its temporary copy too, created
    with the umask's permissions (any user who may edit the manifest may take it).
    It is removed while still held, so nothing is left behind; a process that was
    waiting on the removed file finds it gone and takes a new one (filelock checks).
    A symlinked manifest is locked beside the file it points to (`_edited`), which every
    path to it shares."""
    from filelock import FileLock

    target = _edited(path)
    lock_path = target.with_name(f".{target.name}.lock")
    with FileLock(str(lock_path)):
        try:
            yield
        finally:
            with contextlib.suppress(OSError):  # Windows removes it on release instead
                lock_path.unlink()


def pinned_text(path: str | os.PathLike[str], name: str, version: Version, sha256: str,
                size: int | None = None) -> tuple[str, Manifest]:
    """The text of the file at ``path`` with ``name`` pinned to ``{version, sha256, size}``,
    and the manifest it gives; the file itself is not touched (see `pins_text`).
    ``publish`` calls this before uploading, so a pin that cannot be rewritten is found
    before anything reaches the store.
    """
    return pins_text(path, {name: (version, sha256, size)})


#: A pin to write: (version, sha256) or (version, sha256, size); a size None is not written.
NewPin = tuple[Version, str] | tuple[Version, str, int | None]


def pins_text(
    path: str | os.PathLike[str], pins: Mapping[str, NewPin], files: Mapping[str, str] | None = None,
) -> tuple[str, Manifest]:
    """The text of the file at ``path`` with each name of ``pins`` pinned to its
    ``{version, sha256[, size]}`` and each URL of ``files`` written ``{url: URL, sha256: HEX}``
    under ``files:``, and the manifest it gives; the file itself is not touched.

    Only the text of those entries' values changes (a ``source:`` in a pin is kept); the
    new text must read back as the same manifest but for them, else `PodError`. A pin
    or entry written as a YAML alias or anchor is a `ManifestError`.
    """
    path = Path(path).absolute()
    text = read_manifest_text(path)
    root = compose_yaml(text, path)
    before = parse_manifest(text, path)
    files = dict(files or {})
    edits: list[tuple[int, int, str]] = []
    entries, file_nodes = _entry_nodes(root), _file_nodes(root)
    for name, (version, sha256, *size) in pins.items():
        if name not in entries:
            raise AssetNotFound(f"{name!r} is not under `assets:`: add it first")
        key, value = entries[name]
        _not_aliased(text, path, value, key.end_mark.index, key.start_mark.line, f"{name}: its pin", "the pins")
        parts = [f"version: {version}", f"sha256: {sha256}", *(f"size: {s}" for s in size if s is not None)]
        if isinstance(value, yaml.MappingNode):
            parts += [f"source: {_flow_text(text, v)}" for k, v in value.value if k.value == "source"]
        edits.append((value.start_mark.index, span_end(value), "{" + ", ".join(parts) + "}"))
    for url, sha256 in files.items():
        if url not in file_nodes:
            raise AssetNotFound(f"{url} is not under `files:`")
        sequence, node = file_nodes[url]
        _not_aliased(text, path, node, sequence.start_mark.index, node.start_mark.line, f"{url}: its entry", "the entries")
        scalar = node if isinstance(node, yaml.ScalarNode) else next(v for k, v in node.value if k.value == "url")
        edits.append((node.start_mark.index, span_end(node), f"{{url: {_flow_text(text, scalar)}, sha256: {sha256}}}"))
    pieces, done = [], 0
    for start, end, replacement in sorted(edits):
        pieces += [text[done:start], replacement]
        done = end
    new_text = "".join([*pieces, text[done:]])
    wanted = replace(before, assets=_unplaced(before, pins), file_sha256={**before.file_sha256, **files})
    try:
        manifest = parse_manifest(new_text, path)
    except ManifestError as exc:
        problem: str | None = str(exc)
    else:
        problem = (
            "a new pin reads differently" if any(
                name not in manifest.assets or _written(manifest.assets[name])[:len(pin)] != tuple(pin)
                for name, pin in pins.items())
            else "another entry changed" if replace(manifest, assets=_unplaced(manifest, pins)) != wanted
            else None
        )
    if problem:
        changed = ", ".join([*pins, *files])
        raise PodError(f"{path}: rewriting the pin of {changed} went wrong ({problem}); the file was left as it was")
    return new_text, manifest


def set_pin(path: str | os.PathLike[str], name: str, version: Version, sha256: str,
            size: int | None = None) -> Manifest:
    """Pin ``name`` to ``{version, sha256, size}`` in the file at ``path`` (see `pins_text`);
    return the new manifest. The file is replaced atomically; concurrent edits of the
    same file are serialised."""
    return set_pins(path, {name: (version, sha256, size)})


def set_pins(
    path: str | os.PathLike[str], pins: Mapping[str, NewPin], files: Mapping[str, str] | None = None,
) -> Manifest:
    """Rewrite ``pins`` and ``files`` entries in the file at ``path`` (see `pins_text`),
    all at once; return the new manifest. The file is replaced atomically; concurrent
    edits of the same file are serialised."""
    path = Path(path).absolute()
    with edit_lock(path):
        new_text, manifest = pins_text(path, pins, files)
        replace_text(path, new_text)
        return manifest


def _not_aliased(text: str, path: Path, node: yaml.Node, after: int, line: int, what: str, which: str) -> None:
    """Refuse to rewrite ``node`` when it is an alias (its marks are its anchor's, before
    ``after``) or carries an anchor."""
    if node.start_mark.index < after or text[node.start_mark.index] == "&":
        raise ManifestError(
            f"{path.name}:{line + 1}: {what} is a YAML alias or anchor (*x, &x): write {which} out in full first"
        )


def _file_nodes(root: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The ``files:`` sequence and its entry, by each entry's URL."""
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, value in root.value:
        if knode.value == "files" and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                scalar = item if isinstance(item, yaml.ScalarNode) else next(
                    (v for k, v in item.value if k.value == "url"), None) if isinstance(item, yaml.MappingNode) else None
                if scalar is not None:
                    entries.setdefault(scalar.value, (value, item))
    return entries


#: Characters that a plain scalar may hold in a block but not inside ``{...}``.
_FLOW_UNSAFE = re.compile(r"[,\[\]{}]|: | #")


def _flow_text(text: str, node: yaml.Node) -> str:
    """A scalar's text as written, fit to go inside ``{...}``: a plain one holding a
    flow indicator (``a,b.csv``) is written double-quoted instead."""
    written = text[node.start_mark.index:span_end(node)]
    if isinstance(node, yaml.ScalarNode) and not node.style and _FLOW_UNSAFE.search(written):  # plain: None or ""
        return json.dumps(node.value, ensure_ascii=False)
    return written


def _written(pin: Pin) -> tuple[Version | None, str | None, int | None]:
    """What a rewritten pin must read back as (compared with a `NewPin`)."""
    return pin.version, pin.sha256, pin.size


def _unplaced(manifest: Manifest, skip: Mapping[str, object]) -> dict[str, Pin]:
    """Every pin but those named in ``skip``, without line numbers (an edit may move them)."""
    return {name: replace(pin, line=0) for name, pin in manifest.assets.items() if name not in skip}


def _edited(path: Path) -> Path:
    """The file an edit of the manifest at ``path`` replaces: ``path``, or the file a
    symlink there points to (through any chain of links), so that the link is kept."""
    return Path(os.path.realpath(path))


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, keeping the file's permissions; a symlink
    at ``path`` stays, and the file it points to is replaced (`_edited`). Called under
    `edit_lock`: a temporary copy beside the file is then a killed edit's, removed first."""
    path = _edited(path)
    left = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}\.tmp")
    for entry in os.scandir(path.parent):
        if left.fullmatch(entry.name):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "x", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.chmod(temp, path.stat().st_mode & 0o7777)
        except OSError:
            pass
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
