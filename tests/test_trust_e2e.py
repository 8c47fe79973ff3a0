"""Credentials go only where the user sent them, as an attacker tries it: a pull request
that edits only assets.yaml names its own server, and CI runs ``doit fetch`` (in a
subprocess) with its credentials in the environment. The attacker's server is a capture
server on 127.0.0.1 that records every request's headers and refuses (403 or 404); the
user's own servers are moto's and rclone's (the ``s3`` fixture), which refuse unsigned
requests, so that a fetch that works there was signed."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pod_tasks.endpoints import config_file, endpoint_folder
from tests.conftest import REPO, run_doit, write
from tests.doit_project import assert_clean_failure, output
from tests.servers import CREDENTIALS

CSV = b"a,b\n1,2\n"
TOKEN = "FwoGZXIvYXdzEPOD-SESSION-TOKEN-7d1e"
#: Every credential of CI's environment: none may reach a server the user did not name.
SECRETS = (CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"], TOKEN)
FORBIDDEN_HEADERS = ("authorization", "x-amz-security-token")


class Capture(ThreadingHTTPServer):
    """An S3-ish server that answers every request ``status`` (an S3 error document) and
    records ``(method, target, headers)`` of each."""

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.status = status
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Recorder(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        server: Capture = self.server  # type: ignore[assignment]
        server.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        code = {403: "AccessDenied", 404: "NoSuchKey"}[server.status]
        body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>no</Message></Error>".encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", "capture")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=[403, 404])
def capture(request):
    server = Capture(request.param)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def ci_credentials(monkeypatch):
    """CI's environment: credentials (a session token too), no endpoint of its own."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def _attacker_project(project, endpoint: str, extra: str = "") -> None:
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"store: s3://assets\nendpoint: {endpoint}\n{extra}"
                                   "assets:\n  foo/bar.csv: 1.0.0\nfiles:\n  - s3://assets/raw.json\n")


def _unsigned(seen) -> None:
    """No request in ``seen`` carried a credential, in a header, the path or the query."""
    assert seen, "the capture server was never asked"
    for method, target, headers in seen:
        assert not set(FORBIDDEN_HEADERS) & set(headers), (method, target, headers)
        text = target + " " + " ".join(f"{k}: {v}" for k, v in headers.items())
        assert not any(secret in text for secret in SECRETS), (method, target, headers)


def test_an_endpoint_only_assets_yaml_names_gets_no_credentials(capture, project, ci_credentials):
    _attacker_project(project, capture.endpoint)
    result = run_doit(["fetch"], project)
    assert result.returncode != 0 and "Traceback" not in output(result), output(result)
    _unsigned(capture.seen)
    if capture.status == 403:  # a refusal that may be for lack of signing says how to trust the server
        lines = [line for line in output(result).splitlines() if f"POD_TRUSTED_ENDPOINTS={capture.endpoint}" in line]
        assert lines and all("trusted_endpoints:" in line for line in lines), output(result)
    assert not any(secret in output(result) for secret in SECRETS)


def test_publish_to_an_endpoint_only_assets_yaml_names_sends_nothing(capture, project, ci_credentials):
    _attacker_project(project, capture.endpoint)
    write(project / "new.csv", "new\n")
    before = (project / "assets.yaml").read_bytes()
    result = run_doit(["publish:foo/bar.csv", "--minor", "--file", "new.csv"], project)
    how = [f"POD_TRUSTED_ENDPOINTS={capture.endpoint}"] if capture.status == 403 else []
    assert_clean_failure(result, "publish:foo/bar.csv", *how)
    assert (project / "assets.yaml").read_bytes() == before
    assert not [request for request in capture.seen if request[0] in ("PUT", "POST")]
    if capture.seen:  # the reads before the upload
        _unsigned(capture.seen)


def test_an_endpoint_with_userinfo_gets_no_basic_auth_and_shows_no_password(capture, project, ci_credentials):
    password = "s3cr3t-in-the-url"
    _attacker_project(project, capture.endpoint.replace("://", f"://ci:{password}@"))
    result = run_doit(["fetch"], project)
    assert result.returncode != 0 and password not in output(result), output(result)
    _unsigned(capture.seen)


@pytest.mark.parametrize("trust", ["variable", "config file"])
def test_an_endpoint_the_user_trusts_is_signed(capture, project, ci_credentials, trust, monkeypatch):
    if trust == "variable":
        monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", f"https://minio.example.com,{capture.endpoint}")
    else:
        write(config_file(), f"trusted_endpoints:\n  - {capture.endpoint}\n")
    _attacker_project(project, capture.endpoint)
    result = run_doit(["fetch:foo/bar.csv"], project)
    assert result.returncode != 0
    signed = [headers for _, _, headers in capture.seen if "authorization" in headers]
    assert signed and all(f"Credential={CREDENTIALS['AWS_ACCESS_KEY_ID']}/" in h["authorization"] for h in signed)
    assert all(h.get("x-amz-security-token") == TOKEN for h in signed)
    assert "POD_TRUSTED_ENDPOINTS=" not in output(result)


@pytest.mark.parametrize("trust", ["none", "variable", "config file", "aws profile"])
def test_the_users_own_server_in_assets_yaml_is_signed_once_trusted(s3, client, project, cache_dir, trust, monkeypatch,
                                                                     tmp_path):
    client.create_bucket(Bucket="assets")
    client.put_object(Bucket="assets", Key="foo/bar.1.0.0.csv", Body=CSV)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    s3.clear()
    named = s3.endpoint
    if trust == "variable":
        monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", s3.endpoint)
    elif trust == "config file":
        write(config_file(), f"trusted_endpoints: [{s3.endpoint}]\n")
    elif trust == "aws profile":  # botocore's own endpoint_url: assets.yaml need not name it at all
        write(tmp_path / "aws-config", f"[profile lab]\nendpoint_url = {s3.endpoint}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
        monkeypatch.setenv("AWS_PROFILE", "lab")
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    endpoint_line = "" if trust == "aws profile" else f"endpoint: {named}\n"
    write(project / "assets.yaml", f"store: s3://assets\n{endpoint_line}assets:\n  foo/bar.csv: 1.0.0\n")
    result = run_doit(["fetch"], project)
    target = cache_dir / endpoint_folder(s3.endpoint) / "assets" / "foo" / "bar.1.0.0.csv"
    if trust == "none":  # the server wants signatures, and it got none
        assert_clean_failure(result, "foo/bar.csv", "refused an unsigned read", f"POD_TRUSTED_ENDPOINTS={s3.endpoint}")
        assert not target.exists() and s3.count("GET", "/assets/foo/bar.1.0.0.csv") >= 1
    else:
        assert result.returncode == 0, output(result)
        assert target.read_bytes() == CSV and s3.count("GET", "/assets/foo/bar.1.0.0.csv") == 1


def test_a_mirror_password_is_never_printed(capture, project, ci_credentials, monkeypatch):
    password = "mirror-pa55word-9c1"
    monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", capture.endpoint)
    mirror = capture.endpoint.replace("://", f"://reader:{password}@") + "/pod"
    shutil.copy(REPO / "dodo.py", project / "dodo.py")
    write(project / "assets.yaml", f"store: s3://assets\nendpoint: {capture.endpoint}\nmirrors: [{mirror}]\n"
                                   f"assets:\n  foo/bar.csv: {{version: 1.0.0, sha256: {'0' * 64}}}\n")
    fetched = run_doit(["fetch"], project)
    assert fetched.returncode != 0 and "Traceback" not in output(fetched), output(fetched)
    assert any(target.startswith("/pod/foo/bar.1.0.0.csv") for _, target, _ in capture.seen)  # the mirror was asked
    assert f"mirror http://***@127.0.0.1:{capture.server_address[1]}/pod" in output(fetched), output(fetched)
    bad = run_doit(["fetch"], project, env={"POD_MIRRORS": mirror + "?q=1"})
    assert "***@127.0.0.1" in output(bad), output(bad)
    for result in (fetched, bad):
        assert password not in output(result), output(result)
    mirrored = [headers for _, target, headers in capture.seen if target.startswith("/pod/")]
    assert mirrored and not any("authorization" in headers for headers in mirrored)  # nor as basic auth
