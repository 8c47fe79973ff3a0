"""Mirrors as a user meets them: ``doit export`` makes one, a web server on 127.0.0.1
(Python's ``http.server``, `tests.web`) serves it, and ``doit fetch`` and ``resolve()``
in subprocesses read from it with no AWS credentials, against each S3 server and the
directory store; a faulty mirror (through the fault proxy) falls through. Requests are
counted at the store's server and at the web server."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import run_python, write
from tests.doit_project import (  # noqa: F401  (fixtures)
    assert_clean_failure,
    backend,
    closed_port,
    dir_backend,
    doit,
    manifest,
    output,
    s3_backend,
    sha256,
)
from tests.servers import FaultProxy, Rule
from tests.web import WebServer

CSV, NEWER, JSON, OBJ = b"a,b\n1,2\n", b"a,b\n3,4\n", b'{"k": 1}\n', b"v 0 0 0\n" * 1000
#: What the store holds, by key.
OBJECTS = {"foo/bar.1.2.5.csv": CSV, "foo/bar.1.2.6.csv": NEWER, "cfg/params.2.0.0.json": JSON,
           "meshes/tri.1.0.1.obj": OBJ}
#: The pins: every one long (with its sha256), as `doit lock` or `doit publish` writes them.
LONG_PINS = f"""
    assets:
      foo/bar.csv: {{version: 1.2.5, sha256: {sha256(CSV)}}}
      cfg/params.json: {{version: 2.0.0, sha256: {sha256(JSON)}}}
      meshes/tri.obj: {{version: 1.0.1, sha256: {sha256(OBJ)}}}
"""
PINNED = ("foo/bar.1.2.5.csv", "cfg/params.2.0.0.json", "meshes/tri.1.0.1.obj")


@pytest.fixture
def web(tmp_path):
    """A web server on 127.0.0.1 over ``tmp_path/site`` (what `doit export` writes)."""
    (tmp_path / "site").mkdir()
    server = WebServer(tmp_path / "site").start()
    yield server
    server.stop()


def stocked(store, body: str = LONG_PINS, mirrors: list[str] = ()) -> None:
    """The store holding `OBJECTS`; assets.yaml: ``store:``, ``mirrors:`` if any, ``body``."""
    for key, data in OBJECTS.items():
        store.put(key, data)
    listed = "".join(f"  - {url}\n" for url in mirrors)
    manifest(store, (f"mirrors:\n{listed}" if mirrors else "") + textwrap.dedent(body).lstrip("\n"))


def serve(site: Path, objects: dict[str, bytes]) -> None:
    """Put ``objects`` (key -> bytes) in the folder a web server serves."""
    for key, data in objects.items():
        (site / key).parent.mkdir(parents=True, exist_ok=True)
        (site / key).write_bytes(data)


def away(store, monkeypatch) -> None:
    """This machine has no way to the store: no AWS credentials (an S3 store, still
    counting requests), or the store's folder gone (a directory store)."""
    if store.s3 is not None:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        store.s3.clear()
    else:
        shutil.move(store.project / "store", store.project.parent / "store-elsewhere")


def test_the_customer_site(backend, web, tmp_path, monkeypatch):
    """A pinned project; `doit export` writes a folder that a web server serves; a
    machine with no AWS account fetches every pin from it, verified."""
    stocked(backend)
    site = tmp_path / "site"
    first = doit(backend, "export", "--dest", str(site))
    assert first.returncode == 0, output(first)
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == sorted(PINNED)
    for key in PINNED:
        assert (site / key).read_bytes() == OBJECTS[key]
    assert "exported 3 file(s), 7.8 KiB into" in first.stdout and first.stdout.endswith("; 0 already there\n")
    assert "exported foo/bar.1.2.5.csv (8 B)" in first.stdout
    again = doit(backend, "export", "--dest", str(site))
    assert again.returncode == 0 and "exported 0 file(s), 0 B" in again.stdout and "3 already there" in again.stdout
    every = doit(backend, "export", "--dest", str(site), "--all-versions")
    assert every.returncode == 0, output(every)
    assert "exported foo/bar.1.2.6.csv" in every.stdout and "exported 1 file(s), 8 B" in every.stdout
    assert (site / "foo/bar.1.2.6.csv").read_bytes() == NEWER
    assert not list(site.rglob(".*"))  # no temporary file left

    # The customer's machine: the same assets.yaml, plus the mirror; no way to the store.
    write(backend.project / "assets.yaml", (backend.project / "assets.yaml").read_text().replace(
        "assets:", f"mirrors: [{web.endpoint}/]\nassets:", 1))
    monkeypatch.setenv("POD_CACHE_DIR", str(tmp_path / "customer-cache"))
    away(backend, monkeypatch)
    fetched = doit(backend, "fetch")
    assert fetched.returncode == 0, output(fetched)
    for key in PINNED:
        assert (tmp_path / "customer-cache" / backend.cache_folder / key).read_bytes() == OBJECTS[key]
    assert "fetched 3 files" in fetched.stdout and "warning" not in output(fetched).lower()
    assert sorted(web.requests) == sorted(("GET", f"/{key}") for key in PINNED)
    if backend.s3 is not None:
        assert backend.s3.requests == []  # not one request to the store
    web.clear()
    noop = doit(backend, "fetch")
    assert noop.returncode == 0 and web.requests == []


@pytest.mark.parametrize("how", ["assets.yaml", "POD_MIRRORS"])
def test_resolve_reads_a_mirror_with_no_credentials(backend, web, tmp_path, monkeypatch, how):
    serve(tmp_path / "site", {key: OBJECTS[key] for key in PINNED})
    if how == "POD_MIRRORS":  # wins over assets.yaml's (a port nothing listens on)
        stocked(backend, mirrors=[f"http://127.0.0.1:{closed_port()}"])
        monkeypatch.setenv("POD_MIRRORS", f"{web.endpoint} file:///nowhere")
    else:
        stocked(backend, mirrors=[web.endpoint])
    away(backend, monkeypatch)
    result = run_python("""
        from pod_tasks import resolve
        path = resolve("meshes/tri.obj")
        print(path)
        print(resolve("meshes/tri.obj") == path)
    """, backend.project)
    assert result.returncode == 0, result.stdout + result.stderr
    path, same = result.stdout.splitlines()
    assert Path(path).read_bytes() == OBJ and same == "True"
    assert result.stderr == ""  # no warning: the first mirror served
    assert web.requests == [("GET", "/meshes/tri.1.0.1.obj")]
    if backend.s3 is not None:
        assert backend.s3.requests == []


def test_short_pins_ask_the_store_once_each_and_say_so_once(s3_backend, web, tmp_path):
    serve(tmp_path / "site", {key: OBJECTS[key] for key in ("foo/bar.1.2.5.csv", "cfg/params.2.0.0.json")})
    stocked(s3_backend, """
        assets:
          foo/bar.csv: 1.2.5
          cfg/params.json: 2.0.0
    """, mirrors=[web.endpoint])
    result = doit(s3_backend, "fetch")
    assert result.returncode == 0, output(result)
    assert s3_backend.s3.counts() == {"HEAD": 2}  # the proof; the bytes come from the mirror
    assert web.count("GET") == 2
    assert output(result).count("doit lock") == 1, output(result)
    assert "pinned without a sha256" in result.stderr


def test_a_short_pin_on_a_folder_store_comes_from_the_store(dir_backend, web, tmp_path):
    serve(tmp_path / "site", {"foo/bar.1.2.5.csv": b"mirror"})
    stocked(dir_backend, "assets:\n  foo/bar.csv: 1.2.5\n", mirrors=[web.endpoint])
    result = doit(dir_backend, "fetch")
    assert result.returncode == 0, output(result)
    assert web.requests == []
    assert "the store gives no sha256, sha1 or MD5" in result.stderr and result.stderr.count("doit lock") == 1


def test_a_failing_mirror_falls_through_and_is_given_up(s3_backend, web, tmp_path, monkeypatch):
    many = {f"data/f{i}.1.0.0.bin": bytes([i]) * (1000 + i) for i in range(6)}
    for key, data in many.items():
        s3_backend.put(key, data)
    serve(tmp_path / "site", many)
    pins = "".join(f"  data/f{i}.bin: {{version: 1.0.0, sha256: {sha256(data)}}}\n" for i, data in enumerate(many.values()))
    broken = FaultProxy(web.port).start()
    try:
        broken.add(Rule("GET", "", "status", status=500, times=None))
        manifest(s3_backend, f"mirrors:\n  - {broken.endpoint}\n  - {web.endpoint}\nassets:\n{pins}")
        away(s3_backend, monkeypatch)
        result = doit(s3_backend, "fetch", "--jobs", "1")
        assert result.returncode == 0, output(result)
        assert broken.injected == 3  # then skipped for the rest of the run
        assert web.count("GET") == 6 and s3_backend.s3.requests == []
        warnings = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(warnings) == 1 and warnings[0].startswith(f"mirror {broken.endpoint}: data/f0.bin@1.0.0: "), warnings
        assert "HTTP 500" in warnings[0]
    finally:
        broken.stop()


@pytest.mark.parametrize("rule", [
    Rule("GET", "", "status", status=404),
    Rule("GET", "", "page", status=200),
    Rule("GET", "", "truncate", keep=0.5),
    Rule("GET", "", "flip"),
], ids=["404", "html page", "truncated", "wrong bytes"])
def test_a_bad_mirror_never_fails_a_fetch_the_store_can_serve(backend, web, tmp_path, rule, cache_dir):
    serve(tmp_path / "site", {key: OBJECTS[key] for key in PINNED})
    broken = FaultProxy(web.port).start()
    try:
        broken.add(replace(rule, times=None))
        stocked(backend, mirrors=[broken.endpoint])
        result = doit(backend, "fetch", "--jobs", "1")
        assert result.returncode == 0, output(result)
        for key in PINNED:
            assert (cache_dir / backend.cache_folder / key).read_bytes() == OBJECTS[key]
        if backend.s3 is not None:
            assert backend.s3.count("GET") == 3  # each from the store, after the mirror failed it
        assert result.stderr.count(f"mirror {broken.endpoint}") == 1
    finally:
        broken.stop()


def test_mirror_mistakes_are_one_line(dir_backend, monkeypatch):
    stocked(dir_backend, "mirrors: [ftp://old.example/assets]\n" + textwrap.dedent(LONG_PINS))
    result = doit(dir_backend, "fetch")
    assert result.returncode == 3 and "Traceback" not in output(result)
    assert "assets.yaml:2: mirror 'ftp://old.example/assets' is not a base URL" in result.stderr
    stocked(dir_backend)
    monkeypatch.setenv("POD_MIRRORS", "cdn.example.com")
    result = doit(dir_backend, "fetch")
    assert result.returncode == 3 and "$POD_MIRRORS: mirror 'cdn.example.com' is not a base URL" in result.stderr
    monkeypatch.delenv("POD_MIRRORS")
    assert_clean_failure(doit(dir_backend, "export"), "export", "doit export --dest DIR")
    refused = doit(dir_backend, "export", "--dst", "x")
    assert refused.returncode == 3 and "--dest" in refused.stderr and "Traceback" not in output(refused)


def test_export_names_what_it_could_not_fetch(backend, tmp_path):
    stocked(backend, LONG_PINS + "      gone/x.csv: 9.9.9\n")
    site = tmp_path / "site"
    result = doit(backend, "export", "--dest", str(site))
    assert_clean_failure(result, "export", "could not be exported", "gone/x.9.9.9.csv")
    assert "failed gone/x.csv@9.9.9: " in result.stdout
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == sorted(PINNED)
    assert "exported 3 file(s)" in result.stdout and "1 failed" in result.stdout
