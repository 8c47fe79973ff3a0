"""Who may receive the user's credentials (`pod_tasks.endpoints.signing_refusal`), what
the user's own configuration trusts, and that userinfo never shows: tables over the
environment, an AWS config file and a user config.yaml (no server)."""

from __future__ import annotations

import pytest

from pod_tasks.config import Settings, parse_mirror
from pod_tasks.endpoints import config_file, profile_endpoint, redact, signing_refusal, strip_userinfo
from pod_tasks.errors import ManifestError, UntrustedEndpoint
from pod_tasks.manifest import parse_manifest
from pod_tasks.store import S3Store
from pod_tasks.web import WebMirror

CAPTURE = "http://127.0.0.1:9000"


@pytest.mark.parametrize("endpoint, env, signed", [
    (None, {}, True),                                                    # AWS's own
    ("https://s3.eu-west-1.amazonaws.com", {}, True),
    ("https://s3.cn-north-1.amazonaws.com.cn", {}, True),                # AWS, another partition
    ("https://evil.s3.amazonaws.com", {}, False),                        # someone's bucket: not where you sent them
    ("https://abc.execute-api.us-east-1.amazonaws.com", {}, False),
    ("http://s3.amazonaws.com", {}, False),                              # in clear, to another machine
    (CAPTURE, {}, False),                                                # named only by assets.yaml
    (CAPTURE, {"AWS_ENDPOINT_URL": CAPTURE}, True),
    (CAPTURE, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/"}, True),
    (CAPTURE, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9001"}, False),     # another port, another server
    (CAPTURE, {"AWS_ENDPOINT_URL": "https://127.0.0.1:9000"}, False),    # another scheme
    (CAPTURE, {"AWS_ENDPOINT_URL": "http://localhost:9000"}, False),     # names are not resolved
    (CAPTURE, {"POD_TRUSTED_ENDPOINTS": CAPTURE}, True),
    (CAPTURE, {"POD_TRUSTED_ENDPOINTS": "https://minio.example.com, http://127.0.0.1:9000/s3"}, True),
    ("http://127.0.0.1:9000/a/path", {"POD_TRUSTED_ENDPOINTS": CAPTURE}, True),   # the origin is trusted
    ("https://minio.example.com:443", {"POD_TRUSTED_ENDPOINTS": "https://MINIO.example.com"}, True),
    ("http://minio.example.com:9000", {"POD_TRUSTED_ENDPOINTS": "http://minio.example.com:9000"}, False),
    ("http://minio.example.com:9000", {"AWS_ENDPOINT_URL": "http://minio.example.com:9000"}, False),
    ("http://[::1]:9000", {"POD_TRUSTED_ENDPOINTS": "http://[::1]:9000"}, True),
])
def test_who_gets_credentials(endpoint, env, signed, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert (signing_refusal(endpoint) is None) is signed


def test_the_refusal_says_how_to_trust_the_server():
    text = signing_refusal("http://127.0.0.1:9000/some/path")
    assert "\n" not in text
    assert "POD_TRUSTED_ENDPOINTS=http://127.0.0.1:9000 " in text
    assert f"`trusted_endpoints: [http://127.0.0.1:9000]` in {config_file()}" in text
    assert "AWS_ENDPOINT_URL" in text
    assert "use the server's https:// URL" in signing_refusal("http://minio.example.com:9000")


def test_the_user_config_file_trusts_servers(tmp_path):
    path = config_file()
    assert path.parent.parent == tmp_path / "user-config"   # the test's own XDG_CONFIG_HOME
    path.parent.mkdir(parents=True)
    path.write_text(f"trusted_endpoints:\n  - {CAPTURE}\n  - https://minio.example.com\n", encoding="utf-8")
    assert signing_refusal(CAPTURE) is None and signing_refusal("https://minio.example.com:443/x") is None
    assert signing_refusal("http://127.0.0.1:9001") is not None


@pytest.mark.parametrize("text, fragment", [
    ("trusted_endpoints: http://127.0.0.1:9000\n", "`trusted_endpoints:` must be a list of URLs"),
    ("[1, 2]\n", "`trusted_endpoints:` must be a list of URLs"),
    ("trusted_endpoints: [1]\n", "`trusted_endpoints:` must be a list of URLs"),
    ("trusted_endpoints: [minio:9000]\n", "'minio:9000' is not a server URL"),
    ("trusted_endpoints: [\n", "not valid YAML"),
])
def test_a_bad_user_config_file_is_one_line_naming_it(text, fragment):
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        signing_refusal(CAPTURE)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value) and "\n" not in str(info.value)


def test_a_bad_trust_variable_is_named(monkeypatch):
    monkeypatch.setenv("POD_TRUSTED_ENDPOINTS", f"{CAPTURE},ftp://x")
    with pytest.raises(ManifestError, match=r"^\$POD_TRUSTED_ENDPOINTS: 'ftp://x' is not a server URL"):
        signing_refusal(CAPTURE)


def test_the_aws_profile_endpoint_is_used_and_trusted(tmp_path, monkeypatch):
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = us-east-1\n\n[profile lab]\nendpoint_url = {CAPTURE}\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert profile_endpoint() is None and signing_refusal(CAPTURE) is not None
    monkeypatch.setenv("AWS_PROFILE", "lab")
    assert profile_endpoint() == CAPTURE and signing_refusal(CAPTURE) is None
    assert Settings.load(cache_dir="c").endpoint == CAPTURE
    assert S3Store("assets").name == "_endpoint-127.0.0.1-9000/assets"   # not AWS's folder
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert profile_endpoint() is None


def test_the_profile_services_section_names_the_s3_endpoint(tmp_path, monkeypatch):
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nservices = lab\n\n[services lab]\ns3 =\n  endpoint_url = {CAPTURE}\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert profile_endpoint() == CAPTURE


def test_a_write_to_an_untrusted_server_sends_nothing():
    store = S3Store("assets", CAPTURE)

    def never(client):
        raise AssertionError("no request may be made")

    with pytest.raises(UntrustedEndpoint, match="cannot write to the store at http://127.0.0.1:9000 without credentials: "
                                                "pod-tasks signs requests only to servers you trust"):
        store._call("k", never, write=True)


@pytest.mark.parametrize("text, shown", [
    ("https://user:pa55@mirror.example.com/pod", "https://***@mirror.example.com/pod"),
    ("https://TOKEN@mirror.example.com", "https://***@mirror.example.com"),
    ("mirror http://a:b@h:1/x: HTTP 500; and https://c@d/", "mirror http://***@h:1/x: HTTP 500; and https://***@d/"),
    ("https://mirror.example.com/a@b", "https://mirror.example.com/a@b"),       # an @ in the path is no userinfo
    ("s3://bucket/key", "s3://bucket/key"),
])
def test_userinfo_is_redacted(text, shown):
    assert redact(text) == shown


def test_userinfo_never_reaches_a_message(tmp_path):
    secret = "hunter2-pw"
    base = f"https://reader:{secret}@mirror.example.com/pod"
    assert secret not in WebMirror(base).url("foo/bar.1.0.0.csv") and secret not in repr(WebMirror(base))
    with pytest.raises(ValueError) as info:
        parse_mirror(f"https://reader:{secret}@mirror.example.com/pod?x=1")
    assert secret not in str(info.value) and "***@mirror.example.com" in str(info.value)
    for text in (f"store: s3://assets\nendpoint: ftp://u:{secret}@h\n",
                 f"store: s3://assets\nmirrors: [{base}, {base}/]\n"):
        with pytest.raises(ManifestError) as info:
            parse_manifest(text, tmp_path / "assets.yaml")
        assert secret not in str(info.value) and "***@" in str(info.value)
    store = S3Store("assets", f"https://key:{secret}@minio.example.com")
    assert store.endpoint == "https://minio.example.com" and secret not in store.identity
    assert strip_userinfo("http://127.0.0.1:9") == "http://127.0.0.1:9"
