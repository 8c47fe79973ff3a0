"""YAML slips in our words (`pod_tasks.syntax`), with libyaml's loader and PyYAML's own,
and the bound on how much YAML is read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pod_tasks import syntax
from pod_tasks.errors import ManifestError
from pod_tasks.manifest import parse_manifest
from pod_tasks.syntax import MAX_VALUES, compose_yaml, missing_space

PATH = Path("/project/assets.yaml")


@pytest.fixture(params=["libyaml", "python"], autouse=True)
def loader(request, monkeypatch):
    """Each test with libyaml's loader (when PyYAML has it) and with the pure-Python one,
    whose messages differ but whose marks are the same."""
    if request.param == "python":
        monkeypatch.setattr(syntax, "_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return request.param


SLIPS = [
    ("tab indents a key", "store: s3://bkt\nassets:\n\tfoo/bar.csv: 1.2.5\n",
     "3:1: a tab indents this line: YAML indents with spaces: replace the tab"),
    ("tab after spaces", "store: s3://bkt\nassets:\n  \tfoo/bar.csv: 1.2.5\n",
     "3:3: a tab indents this line: YAML indents with spaces: replace the tab"),
    ("tab indents a second key", "store: s3://bkt\nassets:\n  a.csv: 1.2.5\n\tb.csv: 1.2.5\n",
     "4:1: a tab indents this line: YAML indents with spaces: replace the tab"),
    ("tab indents a list item", "store: s3://bkt\nfiles:\n\t- s3://bkt/x\n",
     "3:1: a tab indents this line: YAML indents with spaces: replace the tab"),
    ("indented more than a key with a value", "store: s3://bkt\nassets:\n  foo/bar.csv: 1.2.5\n    foo/baz.csv: 1.2.5\n",
     "4:5: this line is indented more than the key above it (line 3), which has its value already: indent it as "
     "that key is (2 spaces)"),
    ("a top key indented", "store: s3://bkt\n  assets:\n  foo/bar.csv: 1.2.5\n",
     "2:3: this line is indented more than the key above it (line 1), which has its value already: indent it as "
     "that key is (0 spaces)"),
    ("comments between are skipped", "store: s3://bkt\nassets:\n  foo/bar.csv: 1.2.5\n\n  # note\n    x.csv: 1.0.0\n",
     "6:5: this line is indented more than the key above it (line 3), which has its value already: indent it as "
     "that key is (2 spaces)"),
    ("indented as no key above", "store: s3://bkt\nassets:\n    foo/bar.csv: 1.2.5\n  foo/baz.csv: 1.2.5\n",
     "4:3: this line is indented less than the line above it, but not as any key above it: line it up with "
     "line 3 (4 spaces) or line 2 (0 spaces)"),
    ("a list item indented as nothing above", "store: s3://bkt\nfiles:\n    - s3://bkt/a\n  - s3://bkt/b\n",
     "4:3: this line is indented less than the line above it, but not as any key above it: line it up with "
     "line 3 (4 spaces) or line 2 (0 spaces)"),
    ("': ' in a value", "store: s3://bkt\nassets:\n  dev/x.csv: my file: v2.csv\n",
     "3:21: ': ' in a value, which YAML reads as a key: put the value in quotes: 'my file: v2.csv'"),
    ("': ' in a value with a comment", "store: s3://bkt\nassets:\n  dev/x.csv: C:/data: x  # mine\n",
     "3:21: ': ' in a value, which YAML reads as a key: put the value in quotes: 'C:/data: x'"),
    ("': ' in a value holding a quote", "store: s3://bkt\nassets:\n  dev/x.csv: it's: here\n",
     "3:18: ': ' in a value, which YAML reads as a key: put the value in quotes: 'it''s: here'"),
    ("': ' in a flow value", "store: s3://bkt\nassets:\n  a.csv: {version: 1.2.3, source: a: b}\n",
     "3:36: ': ' in a value, which YAML reads as a key: put the value in quotes: 'a: b'"),
    ("' #' in a flow value", "store: s3://bkt\nassets:\n  dev/x.csv: {source: my #1.csv}\n",
     "3:26: ' #' starts a comment, which cuts this {...} short: put the value with the '#' in quotes"),
    ("' #' in a flow list", "store: s3://bkt\nimmutable: [abc #1, def]\n",
     "2:17: ' #' starts a comment, which cuts this [...] short: put the value with the '#' in quotes"),
    ("no space after ':' before another key", "store: s3://bkt\nassets:\n  foo/bar.csv:1.2.5\n  foo/baz.csv: 1.2.5\n",
     "3:14: no space after ':': write 'foo/bar.csv: 1.2.5'"),
    ("no space after ':' in the last key", "store: s3://bkt\nassets:\n  foo/baz.csv: 1.2.5\n  foo/bar.csv:1.2.5\n",
     "4:14: no space after ':': write 'foo/bar.csv: 1.2.5'"),
    ("no space after a top key", "store:s3://bkt\nassets:\n  foo/bar.csv: 1.2.5\n",
     "1:6: no space after ':': write 'store: s3://bkt'"),
    ("an unclosed '{'", "store: s3://bkt\nassets:\n  a.csv: {version: 1.2.3\n  b.csv: 1.0.0\n",
     "3:10: this '{' is not closed on its line: end it with '}', or put a value holding '{' in quotes"),
    ("an unclosed '[' at the end", "store: s3://bkt\nimmutable: [abc\n",
     "2:12: this '[' is not closed on its line: end it with ']', or put a value holding '[' in quotes"),
    ("an unclosed quote", "store: 's3://bkt\nassets:\n  a.csv: 1.2.3\n",
     "1:8: this ' is not closed: end the value with ' on this line"),
    ("an unclosed double quote", 'store: s3://bkt\nassets:\n  "a.csv: 1.2.3\n',
     '3:3: this " is not closed: end the value with " on this line'),
    # slips YAML reads, but that pod-tasks refuses: the line says how to write them
    ("no space after ':' in the only pin", "store: s3://bkt\nassets:\n  foo/bar.csv:1.2.5\n",
     "3: assets must be a mapping of `key: value` lines; for 'foo/bar.csv:1.2.5', write 'foo/bar.csv: 1.2.5'"),
    ("no space after ':' in a flow pin", "store: s3://bkt\nassets:\n  a.csv: {version:1.2.5}\n",
     "3: a.csv: unknown key 'version:1.2.5': a pin has version, sha256, size, source; for 'version:1.2.5', "
     "write 'version: 1.2.5'"),
    ("no space after ':' in a one-line file", "store:s3://bkt\n",
     "1: the file must be a mapping of `key: value` lines; for 'store:s3://bkt', write 'store: s3://bkt'"),
    ("no space after '-'", "store: s3://bkt\nfiles:\n  -s3://bkt/x\n",
     "3: files must be a list (`- item` lines); for '-s3://bkt/x', write '- s3://bkt/x'"),
    ("a value cut at '#'", "store: s3://bkt\nassets:\n  dev/x.csv: data/my #1.csv\n",
     "3:22: dev/x.csv: 'data/my' is neither a version (X.Y.Z), an existing file nor an s3:// URL: fix "
     "the pin (YAML took the ' #' after it for a comment: put the value in quotes if the '#' belongs to it)"),
    ("a value all cut at '#'", "store: s3://bkt\nassets:\n  dev/x.csv: #1.csv\n",
     "3:14: the pin of dev/x.csv must be a single value (YAML took the ' #' after it for a comment: "
     "put the value in quotes if the '#' belongs to it)"),
    ("a comment after a space is a comment", "store: s3://bkt\nassets:\n  dev/x.csv: data/my # note\n",
     "3: dev/x.csv: 'data/my' is neither a version (X.Y.Z), an existing file nor an s3:// URL: fix the pin"),
]


@pytest.mark.parametrize("text, message", [s[1:] for s in SLIPS], ids=[s[0] for s in SLIPS])
def test_a_yaml_slip_is_told_in_our_words(text, message):
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, PATH)
    assert str(info.value) == f"assets.yaml:{message}"


@pytest.mark.parametrize("value, meant", [
    ("foo/bar.csv:1.2.5", "foo/bar.csv: 1.2.5"), ("store:s3://bkt", "store: s3://bkt"), ("-s3://b/x", "- s3://b/x"),
    ("s3://bkt/x", None), ("http://h:80/x", None), ("-1", None), ("a: b", None), ("plain", None), ("-", None),
])
def test_missing_space(value, meant):
    assert missing_space(value) == meant


def test_anything_else_is_pyyamls_words_at_its_line_and_column():
    with pytest.raises(ManifestError, match=r"^assets\.yaml:1:1[56]: not valid YAML: found unknown escape character"):
        parse_manifest('store: "s3://b\\qkt"\n', PATH)




def test_at_most_max_values_are_read(monkeypatch):
    """A document of `MAX_VALUES` values composes; one more is refused at its line, before
    any tree is built (the bound made small here: the real one is met end to end)."""
    monkeypatch.setattr(syntax, "MAX_VALUES", 1000)
    items = 1000 - 3  # the root mapping, `l:` and its sequence are three values
    text = "l:\n" + "- x\n" * items
    assert len(compose_yaml(text, PATH).value[0][1].value) == items
    with pytest.raises(ManifestError) as info:
        compose_yaml(text + "- x\n", PATH)
    assert str(info.value) == ("assets.yaml:999: more than 1,000 YAML values (names, versions, URLs...), more than "
                               "pod-tasks reads from one file: is it the right file? If so, split it")


def test_the_garbage_collector_is_back_on_after_composing():
    import gc

    compose_yaml("a: [b]\n", PATH)
    with pytest.raises(ManifestError):
        compose_yaml("a: [b\n", PATH)
    assert gc.isenabled()


LINE_PARTS = st.sampled_from(["  ", "    ", "\t", "- ", "-", "a", "foo/bar.csv", ":", ": ", ":1", " #", "#x", "{", "}",
                              "[", "]", "'", '"', ",", "1.2.5", "s3://bkt/x", "store", "assets", "files", " "])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(LINE_PARTS, max_size=8).map("".join), min_size=1, max_size=8).map("\n".join))
def test_any_slip_is_a_manifest_or_one_located_line(text):
    """Whatever the slips, a manifest loads or fails with one ``assets.yaml:LINE[:COL]: ``
    line: the rules that explain an error never fail themselves."""
    try:
        parse_manifest(text, PATH)
    except ManifestError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 600
        head = message.split(": ", 1)[0].split(":")
        assert head[0] == "assets.yaml" and all(part.isdigit() for part in head[1:]) and 2 <= len(head) <= 3, message
