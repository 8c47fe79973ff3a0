"""A bad assets.yaml, or a bad name given to pod-tasks, as a user meets it: `doit list`,
`doit fetch` and `resolve()` each in a process of their own, each printing the same
one line (``assets.yaml:LINE[:COLUMN]: what is wrong: what to do``), no traceback, the
documented exit code, and nothing written: assets.yaml and its folder as they were.

The cases are issue 21's YAML slips (item 6) and long versions (item 3), and issue 22's
bucket names (contract 7) and hostile sizes (contract 9)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pod_tasks.manifest import MAX_BYTES, MAX_ENTRIES
from pod_tasks.syntax import MAX_VALUES
from tests.conftest import run_doit, run_python, write

#: What a program does with resolve(): print the PodError's line, exit 3.
PROGRAM = """
import sys
from pod_tasks import PodError, resolve
try:
    resolve({name!r})
except PodError as exc:
    print(exc)
    sys.exit(3)
"""
RULE = "(S3 bucket names are 3 to 63 lowercase letters, digits, '.' and '-')"
LONG = "1.2." + "9" * 300
#: (id, assets.yaml, environment, the line every command prints)
CASES = [
    ("tab indent", "store: store\nassets:\n\tfoo/bar.csv: 1.2.5\n", {},
     "assets.yaml:3:1: a tab indents this line: YAML indents with spaces: replace the tab"),
    ("indented more than the key above", "store: store\nassets:\n  foo/bar.csv: 1.2.5\n    foo/baz.csv: 1.2.5\n", {},
     "assets.yaml:4:5: this line is indented more than the key above it (line 3), which has its value already: "
     "indent it as that key is (2 spaces)"),
    ("indented as no key above", "store: store\nassets:\n    foo/bar.csv: 1.2.5\n  foo/baz.csv: 1.2.5\n", {},
     "assets.yaml:4:3: this line is indented less than the line above it, but not as any key above it: "
     "line it up with line 3 (4 spaces) or line 2 (0 spaces)"),
    ("unquoted ': ' in a value", "store: store\nassets:\n  dev/x.csv: my file: v2.csv\n", {},
     "assets.yaml:3:21: ': ' in a value, which YAML reads as a key: put the value in quotes: 'my file: v2.csv'"),
    ("unquoted ' #' in a value", "store: store\nassets:\n  dev/x.csv: data/my #1.csv\n", {},
     "assets.yaml:3:22: dev/x.csv: 'data/my' is neither a version (X.Y.Z), an existing file nor an s3:// URL: "
     "fix the pin (YAML took the ' #' after it for a comment: put the value in quotes if the '#' belongs to it)"),
    ("unquoted ' #' in a flow pin", "store: store\nassets:\n  dev/x.csv: {source: my #1.csv}\n", {},
     "assets.yaml:3:26: ' #' starts a comment, which cuts this {...} short: put the value with the '#' in quotes"),
    ("no space after ':'", "store: store\nassets:\n  foo/bar.csv:1.2.5\n  foo/baz.csv: 1.2.5\n", {},
     "assets.yaml:3:14: no space after ':': write 'foo/bar.csv: 1.2.5'"),
    ("no space after ':' in the only pin", "store: store\nassets:\n  foo/bar.csv:1.2.5\n", {},
     "assets.yaml:3: assets must be a mapping of `key: value` lines; for 'foo/bar.csv:1.2.5', "
     "write 'foo/bar.csv: 1.2.5'"),
    ("no space after '-'", "store: store\nfiles:\n  -s3://my-bucket/x.json\n", {},
     "assets.yaml:3: files must be a list (`- item` lines); for '-s3://my-bucket/x.json', "
     "write '- s3://my-bucket/x.json'"),
    ("unclosed '{'", "store: store\nassets:\n  foo/bar.csv: {version: 1.2.5\n  foo/baz.csv: 1.2.5\n", {},
     "assets.yaml:3:16: this '{' is not closed on its line: end it with '}', or put a value holding '{' in quotes"),
    ("unclosed quote", "store: 'store\nassets:\n  foo/bar.csv: 1.2.5\n", {},
     "assets.yaml:1:8: this ' is not closed: end the value with ' on this line"),
    ("a version of 304 characters", f"store: store\nassets:\n  foo/bar.csv: {LONG}\n", {},
     f"assets.yaml:3: foo/bar.csv: version {LONG[:60]!r}... (304 characters) is longer than 255 characters, "
     f"the most a version may have: write MAJOR.MINOR.PATCH, e.g. 1.2.5"),
    ("a long pin of 304 characters", f"store: store\nassets:\n  foo/bar.csv: {{version: {LONG}}}\n", {},
     f"assets.yaml:3: foo/bar.csv: version {LONG[:60]!r}... (304 characters) is longer than 255 characters, "
     f"the most a version may have: write MAJOR.MINOR.PATCH, e.g. 1.2.5"),
    ("files: s3://missing_assets.yaml/x", "store: store\nfiles:\n  - s3://missing_assets.yaml/x\n", {},
     f"assets.yaml:3: a `files:` entry 's3://missing_assets.yaml/x': invalid bucket 'missing_assets.yaml': "
     f"it has '_' {RULE}: fix the URL"),
    ("store: s3://UPPER/x", "store: s3://UPPER/x\nassets:\n  foo/bar.csv: 1.2.5\n", {},
     f"assets.yaml:1: store 's3://UPPER/x': invalid bucket 'UPPER': it has capital letters {RULE}: fix the URL"),
    ("override s3://a/x", "store: store\nassets:\n  foo/bar.csv: s3://a/x\n", {},
     f"assets.yaml:3: foo/bar.csv: the override 's3://a/x': invalid bucket 'a': it is 1 character long {RULE}: "
     f"fix the URL"),
    ("files: the cache's own folder", "store: store\nfiles:\n  - {url: s3://.pod/x.json}\n", {},
     f"assets.yaml:3: a `files:` entry 's3://.pod/x.json': invalid bucket '.pod': it does not begin and end with "
     f"a letter or digit {RULE}: fix the URL"),
    ("immutable: _endpoint-x", "store: store\nimmutable: [_endpoint-x]\nassets:\n  foo/bar.csv: 1.2.5\n", {},
     f"assets.yaml:2: immutable: invalid bucket '_endpoint-x': it has '_' {RULE}: fix the name"),
    ("STATIC_CACHE_IMMUTABLE_BUCKETS with _dir-x", "store: store\nassets:\n  foo/bar.csv: 1.2.5\n",
     {"STATIC_CACHE_IMMUTABLE_BUCKETS": "frozen:_dir-x"},
     f"$STATIC_CACHE_IMMUTABLE_BUCKETS: invalid bucket '_dir-x': it has '_' {RULE}: fix the name"),
    (f"{MAX_ENTRIES + 1:,} pins", "store: store\nassets:\n" + "".join(f"  f/{i}.csv: 1.0.0\n" for i in range(MAX_ENTRIES + 1)),
     {}, f"assets.yaml:{MAX_ENTRIES + 3}: more than {MAX_ENTRIES:,} pins and `files:` entries, more than pod-tasks "
         f"reads from one manifest: split the assets over several projects, each with its own assets.yaml"),
]
COMMANDS = ["doit list", "doit fetch", "resolve()"]


def _said(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def run(command: str, folder: Path, env: dict, name: str = "foo/bar.csv"):
    """``command`` in ``folder`` in a process of its own: (exit code, its lines)."""
    if command == "resolve()":
        result = run_python(PROGRAM.format(name=name), folder, env)
    else:
        result = run_doit(command.split()[1:], folder, env)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.returncode, _said(result)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder`` but doit's own database: its bytes and mtime."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".doit.db")}


@pytest.fixture
def dodo(project) -> Path:
    (project / "dodo.py").write_text("from pod_tasks.tasks import *  # noqa: F401,F403\n")
    (project / "store").mkdir()
    return project


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("label, text, env, line", CASES, ids=[case[0] for case in CASES])
def test_a_bad_input_is_one_line_and_writes_nothing(dodo, cache_dir, label, text, env, line, command):
    (dodo / "assets.yaml").write_bytes(text.encode())
    before = snapshot(dodo)
    code, said = run(command, dodo, env)
    assert (code, said) == (3, [line if command == "resolve()" else f"ERROR: {line}"])
    assert snapshot(dodo) == before  # assets.yaml untouched, no lock or temporary file beside it
    assert not cache_dir.exists()


@pytest.mark.parametrize("url, problem", [
    ("s3://missing_assets.yaml/x", "it has '_'"),
    ("s3://UPPER/x", "it has capital letters"),
    ("s3://a/x", "it is 1 character long"),
    ("s3://_notes/x", "it has '_'"),
    ("s3://192.168.0.1/x", "it is an IP address"),
])
@pytest.mark.parametrize("how", ["resolve()", "pod-tasks path"])
def test_a_bad_bucket_given_to_resolve_is_one_line(dodo, cache_dir, url, problem, how):
    write(dodo / "assets.yaml", "store: store\nassets:\n  foo/bar.csv: 1.0.0\n")
    bucket = url[5:].split("/")[0]
    line = f"{url!r}: invalid bucket {bucket!r}: {problem} {RULE}: fix the URL"
    if how == "resolve()":
        code, said = run(how, dodo, {}, name=url)
        assert (code, said) == (3, [line])
    else:
        result = run_python(f"import sys; from pod_tasks.cli import main; sys.exit(main(['path', {url!r}]))", dodo)
        assert (result.returncode, _said(result)) == (1, [f"pod-tasks: {line}"]), result.stderr
    assert not cache_dir.exists()


def test_a_bad_bucket_under_files_sends_no_request(s3, dodo, cache_dir):
    """On a real server: the manifest is refused before any request, and nothing lands
    in the cache (a bucket named like the cache's missing list once made every download
    fail "Is a directory")."""
    write(dodo / "assets.yaml", "store: s3://assets\nfiles:\n  - s3://missing_assets.yaml/x\n  - s3://assets/y\n")
    s3.clear()
    code, said = run("doit fetch", dodo, {})
    assert code == 3 and said == [f"ERROR: assets.yaml:3: a `files:` entry 's3://missing_assets.yaml/x': invalid "
                                  f"bucket 'missing_assets.yaml': it has '_' {RULE}: fix the URL"]
    assert s3.requests == [] and not cache_dir.exists()


def _peak_rss_of(command: list[str], cwd: Path) -> tuple[int, str, int]:
    """Run ``command`` as the only child of a fresh interpreter: (exit code, its output,
    its peak RSS in bytes, from the interpreter's RUSAGE_CHILDREN)."""
    probe = (
        "import resource, subprocess, sys\n"
        f"done = subprocess.run({command!r}, capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == 'darwin' else 1024)\n"
        "print(done.returncode); print(peak); sys.stdout.write(done.stdout + done.stderr)\n"
    )
    result = run_python(probe, cwd, timeout=300)
    code, peak, output = result.stdout.split("\n", 2)
    return int(code), output, int(peak)


@pytest.mark.skipif(sys.platform == "win32", reason="the resource module is POSIX only")
def test_a_16_mib_manifest_of_699k_pins_is_refused_in_one_line_in_bounded_memory(dodo):
    """Issue 22's hostile manifest: 699,050 pins in 16 MiB took `doit list` 204 s and
    12.8 GB. It is refused once `MAX_VALUES` values are read, in a fraction of that."""
    pins = "".join(f"  f/{i:07d}.csv: 1.2.5\n" for i in range(699_050))
    text = "store: store\nassets:\n" + pins
    assert len(text) <= MAX_BYTES  # the size limit does not catch it
    (dodo / "assets.yaml").write_text(text)
    code, output, peak = _peak_rss_of([sys.executable, "-m", "doit", "list"], dodo)
    assert "Traceback" not in output
    # the root, store: and its value, assets: and its mapping are 5 values, each pin 2 more: value
    # MAX_VALUES + 1 is the version of pin (MAX_VALUES - 5) // 2 (from 0), whose line is 3 further
    line = (MAX_VALUES - 5) // 2 + 3
    assert (code, output.splitlines()) == (3, [
        f"ERROR: assets.yaml:{line}: more than {MAX_VALUES:,} YAML values (names, versions, URLs...), more than "
        f"pod-tasks reads from one file: is it the right file? If so, split it"])
    assert peak < 256 << 20, f"{peak / 2**20:.0f} MiB"
    assert (dodo / "assets.yaml").read_text() == text
