"""Every command the docs show is one the product accepts: each ``doit ...``,
``pod-tasks ...`` and ``python -m pod_tasks ...`` in README.md and docs/ (inline code
and shell blocks) names a task, doit command or pod-tasks command that exists, and
only options that it takes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pod_tasks.runner import valued_options
from tests.conftest import REPO, write

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: A command as the docs write it: inline code, or a line of a shell block.
_INLINE = re.compile(r"`((?:\.venv/bin/)?(?:doit|pod-tasks|python -m pod_tasks)(?: [^`]*)?)`")
_SHELL = ("sh", "bash", "console", "shell")
_PROGRAM = re.compile(r"^(?:\S*/)?(doit|pod-tasks|python -m pod_tasks)\b")


def documented() -> list[tuple[str, str]]:
    """(where, command) for every command line the docs show."""
    found = []
    for path in DOCS:
        fence = None  # the language of the code block we are in
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence = None if fence is not None else line.strip()[3:] or "sh"
                continue
            where = f"{path.name}:{number}"
            if fence is None:
                found.extend((where, m.group(1)) for m in _INLINE.finditer(line))
            elif fence in _SHELL:
                for part in re.split(r"&&|;|\|\s|\$\(", line.split(" #")[0]):
                    part = part.strip().strip(")\"'")
                    if _PROGRAM.match(part):
                        found.append((where, part))
    return found


def _options(params) -> set[str]:
    names = set()
    for p in params:
        names.update(f"--{p[k]}" for k in ("long", "inverse") if p.get(k))
        if p.get("short"):
            names.add(f"-{p['short']}")
    return names


@pytest.fixture(scope="module")
def accepted(tmp_path_factory) -> dict[str, set[str]]:
    """Every task's basename -> the options it takes, as loaded in a project; plus doit's
    own commands, and pod-tasks' (argparse)."""
    from doit.cmd_base import DodoTaskLoader
    from doit.cmd_run import Run
    from doit.doit_cmd import DoitMain

    from pod_tasks import cli, tasks
    from pod_tasks.resolver import Project

    project = tmp_path_factory.mktemp("docs-project")
    write(project / "assets.yaml", "store: store\nassets:\n  a.csv: 1.0.0\n")
    saved = sys.argv
    sys.argv = ["python"]  # not doit: loading the tasks here must leave SIGPIPE as it is (`stdout.end_on_closed_pipe`)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        Project.forget()
        table: dict[str, set[str]] = {}
        for creator in (name for name in tasks.__all__ if name.startswith("task_")):
            made = getattr(tasks, creator)()
            dicts = [made] if isinstance(made, dict) else list(made)
            basename = dicts[0].get("basename", creator[5:])
            table[basename] = _options(p for d in dicts for p in d.get("params", ()))
        Project.forget()
    sys.argv = saved
    run = _options([*Run.base_options, *Run.cmd_options, *DodoTaskLoader.cmd_options])
    table[""] = run  # options before the first task: doit run's own
    for command in DoitMain().get_cmds().to_dict():
        table.setdefault(command, run | {"--all", "-s", "--status", "--private", "-p", "--deps"})
    for command in cli.OWN:
        table.setdefault(command, {"--store", "--help", "-h"})
    return table


def check(command: str, table: dict[str, set[str]]) -> str | None:
    """What is wrong with ``command`` as the docs write it (placeholders, ``[...]``
    optional parts and ``a|b`` alternatives read as such); None when it is accepted."""
    program = _PROGRAM.match(command).group(1)
    words = command[_PROGRAM.match(command).end():].split()
    task = ""
    valued = valued_options()
    previous = ""
    for raw in words:
        is_value = previous in valued
        previous = raw.strip("[]().,").split("=", 1)[0]
        if is_value:
            continue
        for word in (w.strip("[]().,").split("=", 1)[0] for w in re.split(r"\\?\|", raw)):
            if not word or word == "..." or (word.startswith("-") and not word[1:2].isalpha() and word[1:2] != "-"):
                continue
            if word.startswith("-"):
                known = (table.get(task, set()) if task else set()) | table[""]
                if word not in known | {"--help", "--version"}:
                    return f"{word} is not an option of {task or program}"
            elif not task:
                base = word.split(":", 1)[0].split("[", 1)[0]
                if base.isupper():  # a placeholder (`doit TASK`)
                    task = "*"
                    continue
                if base not in table:
                    return f"{base} is not a task or command"
                task = base
                if program == "doit" and task in ("help", "clean", "list", "info", "forget", "ignore"):
                    return None  # what follows is task names
    return None


def test_the_docs_show_commands():
    assert len(documented()) > 60  # the scan itself works


@pytest.mark.parametrize(("where", "command"), documented(), ids=[w for w, _ in documented()])
def test_a_documented_command_is_accepted(where, command, accepted):
    table = {**accepted, "*": set().union(*accepted.values())}
    assert check(command, table) is None, f"{where}: `{command}`: {check(command, table)}"


@pytest.mark.parametrize(("command", "wrong"), [
    ("doit fetc", "fetc is not a task or command"),
    ("doit publish:NAME --minr", "--minr is not an option of publish"),
    ("pod-tasks bogus x", "bogus is not a task or command"),
    ("doit gc --max-size 1G --dryrun", "--dryrun is not an option of gc"),
    ("python -m pod_tasks init --stor s3://b", "--stor is not an option of init"),
])
def test_a_command_the_product_does_not_take_is_caught(command, wrong, accepted):
    assert check(command, {**accepted, "*": set()}) == wrong


def test_the_docs_build_as_a_site_with_no_broken_link(tmp_path):
    """mkdocs.yml renders docs/ (strict: a link to a page or anchor that is not there fails)."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "tasks" / "index.html").is_file()


def test_every_page_the_readme_links_is_there():
    links = re.findall(r"\]\((docs/[^)#]+)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert len(links) >= 10
    assert [link for link in links if not (REPO / link).is_file()] == []
