"""``pod-tasks TASK ...`` and ``pod-tasks init``, run as a user runs them (a subprocess,
from a subfolder of the project, on moto, rclone and a folder store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import write
from tests.doit_project import backend, manifest, sha256  # noqa: F401  (fixtures)

BYTES = b"id,label\n1,cat\n"


def pod(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pod_tasks", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_every_task_runs_from_a_subfolder_with_no_dodo_py(backend, cache_dir):
    project = backend.project
    (project / "dodo.py").unlink()
    sub = project / "tests" / "deep"
    sub.mkdir(parents=True)
    write(project / "data" / "labels.csv", BYTES.decode())
    manifest(backend, """
        assets:
          labels.csv: {source: data/labels.csv}
    """)
    published = pod(sub, "publish", "labels.csv", "--minor", "-m", "first labels")
    assert published.returncode == 0, published.stdout + published.stderr
    pin = yaml.safe_load((project / "assets.yaml").read_text())["assets"]["labels.csv"]
    assert pin == {"version": "1.0.0", "sha256": sha256(BYTES), "size": len(BYTES), "source": "data/labels.csv"}  # first: 1.0.0
    assert backend.get("labels.1.0.0.csv") == BYTES
    cached = cache_dir / backend.cache_folder / "labels.1.0.0.csv"
    cached.unlink()
    if backend.s3:
        backend.s3.clear()
    fetched = pod(sub, "fetch")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert cached.read_bytes() == BYTES
    if backend.s3:
        assert backend.gets("labels.1.0.0.csv") == 1
    versions = pod(sub, "versions", "labels.csv")
    assert versions.returncode == 0 and "first labels" in versions.stdout
    assert (project / ".doit.db").exists() and not any(p.name.startswith(".doit") for p in sub.iterdir())
    assert sorted(p.name for p in sub.iterdir()) == []


def test_a_failing_task_exits_as_doit_does_and_typos_get_the_nearest_name(backend):
    manifest(backend, """
        assets:
          labels.csv: 1.0.0
    """)
    sub = backend.project / "src"
    sub.mkdir()
    missing = pod(sub, "fetch")
    assert missing.returncode == 1 and "labels.csv" in missing.stdout + missing.stderr
    typo = pod(sub, "fetc")
    assert (typo.returncode, typo.stdout) == (3, "")
    assert typo.stderr == "pod-tasks: 'fetc' is not a task of this project: did you mean fetch?\n"
    unknown = pod(sub, "publish", "nope.csv", "--patch")
    assert unknown.returncode != 0 and "'nope.csv' is not in" in unknown.stdout + unknown.stderr


def test_the_dodo_py_beside_assets_yaml_brings_its_own_tasks(backend):
    manifest(backend, "assets: {}\n")
    write(backend.project / "dodo.py", "from pod_tasks.tasks import *  # noqa\n\n"
          "def task_hello():\n    return {'actions': ['echo hello > hello.txt'], 'verbosity': 0}\n")
    sub = backend.project / "sub"
    sub.mkdir()
    result = pod(sub, "hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (sub / "hello.txt").read_text().strip() == "hello"  # run where the user is


def test_with_no_assets_yaml_anywhere_one_line(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    result = pod(folder, "fetch")
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (f"pod-tasks: no assets.yaml in {folder} or any folder above it: "
                             "run `pod-tasks init` to start a project\n")


def test_init_then_publish_and_fetch_on_the_default_folder_store(tmp_path, cache_dir):
    project = tmp_path / "newproj"
    project.mkdir()
    result = pod(project, "init")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in project.iterdir()) == [".gitignore", "assets.yaml", "dodo.py", "versioned-assets"]
    assert (project / ".gitignore").read_text() == ".doit.db*\n"
    assert (project / "dodo.py").read_text().startswith("from pod_tasks.tasks import *")
    text = (project / "assets.yaml").read_text()
    assert yaml.safe_load(text)["store"] == "versioned-assets"
    write(project / "assets.yaml", text.replace("  # data/labels.csv:", "  data/labels.csv:"))
    write(project / "data" / "labels.csv", BYTES.decode())
    assert pod(project / "data", "publish", "data/labels.csv", "--patch").returncode == 0
    assert (project / "versioned-assets" / "data" / "labels.1.0.0.csv").read_bytes() == BYTES
    plain_doit = subprocess.run([str(Path(sys.executable).with_name("doit")), "fetch"], cwd=project,
                                capture_output=True, text=True, timeout=120)
    assert plain_doit.returncode == 0, plain_doit.stdout + plain_doit.stderr


def test_init_never_overwrites(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    write(project / "dodo.py", "def task_x():\n    return {'actions': []}\n")
    write(project / ".gitignore", "build/")
    first = pod(project, "init", "--store", "s3://team-assets/proj")
    assert first.returncode == 0, first.stderr
    assert (project / "dodo.py").read_text() == "def task_x():\n    return {'actions': []}\n"
    assert "add this line to dodo.py" in first.stdout and "from pod_tasks.tasks import *" in first.stdout
    assert (project / ".gitignore").read_text() == "build/\n.doit.db*\n"
    assert yaml.safe_load((project / "assets.yaml").read_text())["store"] == "s3://team-assets/proj"
    assert not (project / "versioned-assets").exists()
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    again = pod(project, "init")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith(f"pod-tasks: {project / 'assets.yaml'} already exists: ")
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


def test_init_refuses_a_store_that_is_not_one(tmp_path):
    result = pod(tmp_path, "init", "--store", "s3:/x")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "store" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_is_plain_text_and_names_the_tasks(tmp_path):
    result = pod(tmp_path, "--help")
    assert result.returncode == 0 and "`" not in result.stdout, result.stdout
    assert "init" in result.stdout and "publish NAME --minor" in result.stdout
