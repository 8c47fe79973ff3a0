"""YAML typed by people: composed within bounds, its syntax errors told in our words.

`compose_yaml` is how pod-tasks turns the text of a manifest (or of a list) into YAML
nodes. Its cost is linear in the text: a document of more than `MAX_VALUES` values is
refused once that many are read, before any tree is built, and the garbage collector
is paused while the tree is built (it would rescan the growing tree over and over:
16 s instead of 3 s for 700,000 pins). A syntax error is a `ManifestError`
``FILE:LINE:COLUMN: what is wrong: what to do``, in our words for the common slips (a
tab, a line indented too far or not far enough, an unquoted ``: `` or `` #`` in a value,
no space after ``:``, an unclosed quote or bracket), else in PyYAML's.
"""

from __future__ import annotations

import contextlib
import gc
import re
from pathlib import Path
from typing import Iterator

import yaml

from .errors import ManifestError, shown

__all__ = ["MAX_VALUES", "compose_yaml", "paused_gc", "missing_space", "cut_by_comment"]

#: The most values (each name, version, URL, list and mapping counts one) a document may
#: hold: composing them takes about 0.6 s and 120 MB. A manifest holds fewer still
#: (`pod_tasks.manifest.MAX_ENTRIES`).
MAX_VALUES = 300_000
#: libyaml's loader when PyYAML has it (ten times faster, and it bounds nesting); its
#: marks give the same lines and character offsets as the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_VALUES = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)
#: ``key:value`` with no space after the colon (and not a URL's ``scheme://``).
_NO_SPACE = re.compile(r"^([^\s:#'\"{}\[\],][^\s:]*):(?!//)(\S.*)$")
#: A comment that follows a value without a space after its ``#`` (``my #1.csv``): most
#: likely part of the value, cut off by YAML.
_CLINGING_COMMENT = re.compile(r"[ \t]+#\S")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for the block (back on after it if it was on).
    Building and reading a tree of many objects, none of them in cycles, is linear
    then; with the collector on it is not."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def compose_yaml(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of ``text`` (the contents of ``path``), with marks. More than
    `MAX_VALUES` values, or invalid YAML, raises `ManifestError` with the line (and, for
    YAML, the column) of the problem."""
    try:
        with paused_gc():
            _count_values(text, path)
            return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        message = _diagnose(text, exc)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        message = f"{line}: character {chr(exc.character)!r} is not allowed (write it as an escape in double quotes)"
    except yaml.YAMLError as exc:
        message = f"1: not valid YAML: {exc}"
    except RecursionError:  # PyYAML composes recursively
        message = "1: not valid YAML: nested too deeply"
    raise ManifestError(f"{path.name}:{' '.join(message.split())}")


def _count_values(text: str, path: Path) -> None:
    """Refuse ``text`` once more than `MAX_VALUES` values are read (streaming: no tree)."""
    count = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, _VALUES):
            count += 1
            if count > MAX_VALUES:
                raise ManifestError(
                    f"{path.name}:{event.start_mark.line + 1}: more than {MAX_VALUES:,} YAML values (names, versions, "
                    f"URLs...), more than pod-tasks reads from one file: is it the right file? If so, split it"
                )


def missing_space(value: str) -> str | None:
    """``value`` as it was meant, when it reads as a ``key:value`` or ``-item`` typed
    without the space YAML needs after ``:`` or ``-`` (``foo/bar.csv:1.2.3`` ->
    ``foo/bar.csv: 1.2.3``); else None."""
    match = _NO_SPACE.match(value)
    if match:
        return f"{match[1]}: {match[2]}"
    if len(value) > 1 and value[0] == "-" and not value[1].isspace() and not value[1].isdigit():
        return f"- {value[1:]}"
    return None


def cut_by_comment(text: str, node: yaml.Node) -> int | None:
    """The column (from 0) of the ``#`` that follows the scalar ``node`` of ``text`` on
    its line and clings to the next word (``data/my #1.csv``), which YAML took for the
    start of a comment; else None."""
    found = _CLINGING_COMMENT.match(text, node.end_mark.index) if isinstance(node, yaml.ScalarNode) else None
    return node.end_mark.column + found.end() - 2 - node.end_mark.index if found else None


# --- syntax errors in our words ----------------------------------------------------------

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _spaces(count: int) -> str:
    return f"{count} space{'s' * (count != 1)}"


def _content(line: str) -> str:
    """A line without its indentation and list dashes."""
    return re.sub(r"^(?:[ \t]*-[ \t]+)*[ \t]*", "", line)


def _unclosed(text: str) -> int | None:
    """The index of the first ``{`` or ``[`` of ``text`` that is not closed in it (quoted
    parts skipped), or None."""
    opened: list[int] = []
    quote = ""
    for at, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and (at == 0 or text[at - 1] in " \t,[{:"):
            quote = char
        elif char in "{[":
            opened.append(at)
        elif char in "}]" and opened:
            opened.pop()
    return opened[0] if opened else None


def _quoted(value: str) -> str:
    """``value`` single-quoted as YAML reads it back, or a shortened view of it when long."""
    return "'" + value.replace("'", "''") + "'" if len(value) <= 60 else shown(value)


class _Text:
    """The lines of a document that failed, and the rules that explain where it failed."""

    def __init__(self, text: str, exc: yaml.MarkedYAMLError) -> None:
        # YAML's line breaks are splitlines' once the reader has let the text through
        self.lines = text.splitlines() or [""]
        self.problem = exc.problem_mark or exc.context_mark
        self.context = exc.context_mark
        self.words = " ".join((exc.problem or str(exc)).split())
        self.at_end = self.problem is not None and self.problem.index >= len(text.rstrip())

    def line(self, number: int) -> str:
        return self.lines[number] if 0 <= number < len(self.lines) else ""

    def char(self, mark: yaml.Mark | None) -> str:
        return self.line(mark.line)[mark.column:mark.column + 1] if mark is not None else ""

    def above(self, number: int) -> int | None:
        """The line before ``number`` that holds more than a comment or spaces."""
        for at in range(number - 1, -1, -1):
            stripped = self.lines[at].strip()
            if stripped and not stripped.startswith("#"):
                return at
        return None

    def explain(self) -> str:
        """``LINE:COLUMN: what is wrong: what to do``."""
        if self.problem is None:
            return f"1: not valid YAML: {self.words}"
        for rule in (self.tab, self.quote, self.bracket, self.no_space, self.colon, self.deeper, self.indentation):
            found = rule()
            if found:
                line, column, message = found
                return f"{line + 1}:{column + 1}: {message}"
        return f"{self.problem.line + 1}:{self.problem.column + 1}: not valid YAML: {self.words}"

    def tab(self) -> tuple[int, int, str] | None:
        number = self.problem.line
        text = self.line(number)
        lead = text[:len(text) - len(text.lstrip(" \t"))]
        if "\t" in lead:
            return number, lead.index("\t"), "a tab indents this line: YAML indents with spaces: replace the tab"
        if self.char(self.problem) == "\t":
            return number, self.problem.column, "a tab where YAML wants a space: replace it with spaces"
        return None

    def quote(self) -> tuple[int, int, str] | None:
        mark, quote = self.context, self.char(self.context)
        if quote in ("'", '"') and self.at_end and quote not in self.line(mark.line)[mark.column + 1:]:
            return mark.line, mark.column, f"this {quote} is not closed: end the value with {quote} on this line"
        return None

    def bracket(self) -> tuple[int, int, str] | None:
        """A ``{`` or ``[`` left open on its line, or cut short by a comment."""
        if self.char(self.context) in ("{", "["):
            number, start = self.context.line, self.context.column
        elif self.at_end and self.above(len(self.lines)) is not None:
            number, start = self.above(len(self.lines)), 0
        else:
            return None
        rest = self.line(number)[start:]
        comment = re.search(r"[ \t]#", rest)
        cut = comment.start() if comment and _unclosed(rest[:comment.start()]) is not None else None
        opened = _unclosed(rest if cut is None else rest[:cut])
        if opened is None:
            return None
        pair = rest[opened] + ("}" if rest[opened] == "{" else "]")
        if cut is not None:
            return (number, start + cut + 1,
                    f"' #' starts a comment, which cuts this {pair[0]}...{pair[1]} short: "
                    f"put the value with the '#' in quotes")
        return (number, start + opened, f"this {pair[0]!r} is not closed on its line: "
                f"end it with {pair[1]!r}, or put a value holding {pair[0]!r} in quotes")

    def no_space(self) -> tuple[int, int, str] | None:
        above = self.above(self.problem.line)
        numbers = [self.problem.line, self.context.line if self.context else None, above]
        for number in dict.fromkeys(n for n in numbers if n is not None):
            content = _content(self.line(number))
            fixed = missing_space(content) if ": " not in content else None
            if fixed and not fixed.startswith("- "):
                column = len(self.line(number)) - len(content) + content.index(":")
                return number, column, f"no space after ':': write {_quoted(fixed)}"
        return None

    def colon(self) -> tuple[int, int, str] | None:
        """A ``: `` in a value, which YAML took for the end of a key."""
        number, column = self.problem.line, self.problem.column
        text = self.line(number)
        start = text.rfind(": ", 0, column)
        if self.char(self.problem) != ":" or start < 0:
            return None
        ends = r"[,}\]]| #" if self.char(self.context) in ("{", "[") else r" #"
        value = re.split(ends, text[start + 2:])[0].strip()
        return number, column, f"': ' in a value, which YAML reads as a key: put the value in quotes: {_quoted(value)}"

    def deeper(self) -> tuple[int, int, str] | None:
        """A line indented more than the key above it, which has its value already."""
        number = self.problem.line
        text = self.line(number)
        above = self.above(number)
        if above is None or _content(self.line(above)).split(" #")[0].rstrip().endswith(":"):
            return None
        if not text.strip() or _indent(text) <= _indent(self.line(above)):
            return None
        return (number, _indent(text), f"this line is indented more than the key above it (line {above + 1}), "
                f"which has its value already: indent it as that key is ({_spaces(_indent(self.line(above)))})")

    def indentation(self) -> tuple[int, int, str] | None:
        """A line whose indentation matches none of the keys it could belong to."""
        number = self.problem.line
        text = self.line(number)
        above = self.above(number)
        if above is None or not text.strip() or _indent(text) >= _indent(self.line(above)):
            return None
        candidates = []  # (line, indent) of the keys this line could line up with, nearest first
        at: int | None = above
        while at is not None:
            if not candidates or _indent(self.line(at)) < candidates[-1][1]:
                candidates.append((at, _indent(self.line(at))))
            at = self.above(at)
        if any(indent == _indent(text) for _, indent in candidates):
            return None
        options = " or ".join(f"line {line + 1} ({_spaces(indent)})" for line, indent in candidates[:2])
        return (number, _indent(text), f"this line is indented less than the line above it, but not as any key "
                f"above it: line it up with {options}")


def _diagnose(text: str, exc: yaml.MarkedYAMLError) -> str:
    return _Text(text, exc).explain()
