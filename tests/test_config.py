"""Timeout parsing and where each setting comes from."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pod_tasks.config import DEFAULT_TIMEOUT, NEVER, Settings, format_timeout, parse_old_timeout, parse_timeout


@pytest.mark.parametrize("text, seconds", [
    ("0", 0.0),           # 0 = check every time (the old tool's bug was "never")
    (0, 0.0),
    ("3600", 3600.0),
    (90, 90.0),
    ("90s", 90.0),
    ("15m", 900.0),
    ("12h", 43200.0),
    ("1d", 86400.0),
    ("2w", 1209600.0),
    ("1.5h", 5400.0),
    (" 1d ", 86400.0),
    (float("inf"), NEVER),
    ("1D", 86400.0),
    ("never", NEVER),
    ("Never", NEVER),
])
def test_parse_timeout(text, seconds):
    assert parse_timeout(text) == seconds


def test_never_is_infinite_and_zero_is_not():
    assert parse_timeout("never") == math.inf
    assert parse_timeout("0") == 0 and parse_timeout("0") != NEVER


@pytest.mark.parametrize("text", ["", "-1", -5, -0.5, float("nan"), "nan", "1y", "soon", "1 d 2", "d", "1e3"])
def test_parse_timeout_invalid(text):
    with pytest.raises(ValueError, match="timeout"):
        parse_timeout(text)


@pytest.mark.parametrize("seconds, text", [
    (NEVER, "never"), (0, "0s"), (90, "90s"), (900, "15m"), (86400, "1d"), (1209600, "2w"), (5400, "90m"),
])
def test_format_timeout_round_trips(seconds, text):
    assert format_timeout(seconds) == text
    assert parse_timeout(text) == seconds


ARG, POD, STATIC, MANIFEST = "arg", "pod", "static", "manifest"


@pytest.mark.parametrize("sources, winner", [
    ({ARG, POD, STATIC, MANIFEST}, ARG),
    ({POD, STATIC, MANIFEST}, POD),
    ({STATIC, MANIFEST}, STATIC),
    ({MANIFEST}, MANIFEST),
    (set(), None),
])
def test_cache_dir_precedence(tmp_path, sources, winner):
    folders = {s: tmp_path / s for s in (ARG, POD, STATIC, MANIFEST)}
    env = {}
    if POD in sources:
        env["POD_CACHE_DIR"] = str(folders[POD])
    if STATIC in sources:
        env["STATIC_CACHE_DIR"] = str(folders[STATIC])
    settings = Settings.load(
        cache_dir=folders[ARG] if ARG in sources else None,
        manifest_cache_dir=folders[MANIFEST] if MANIFEST in sources else None,
        environ=env,
    )
    if winner:
        assert settings.cache_dir == folders[winner]
    else:
        assert "pod-tasks" in settings.cache_dir.parts and settings.cache_dir.is_absolute()  # platformdirs


@pytest.mark.parametrize("sources, winner", [
    ({ARG, POD, STATIC, MANIFEST}, 1.0),
    ({POD, STATIC, MANIFEST}, 60.0),
    ({STATIC, MANIFEST}, 3600.0),
    ({MANIFEST}, 86400.0 * 7),
    (set(), DEFAULT_TIMEOUT),
])
def test_timeout_precedence(sources, winner):
    env = {}
    if POD in sources:
        env["POD_TIMEOUT"] = "1m"
    if STATIC in sources:
        env["STATIC_CACHE_TIMEOUT"] = "3600"
    settings = Settings.load(
        cache_dir=".",
        timeout="1s" if ARG in sources else None,
        manifest_timeout=86400.0 * 7 if MANIFEST in sources else None,
        environ=env,
    )
    assert settings.timeout == winner


def test_default_timeout_is_one_day():
    assert DEFAULT_TIMEOUT == 86400.0


@pytest.mark.parametrize("env_value, arg, offline", [
    (None, None, False), ("1", None, True), ("true", None, True), ("0", None, False),
    ("", None, False), ("1", False, False), (None, True, True),
])
def test_offline(env_value, arg, offline):
    env = {} if env_value is None else {"POD_OFFLINE": env_value}
    assert Settings.load(cache_dir=".", offline=arg, environ=env).offline is offline


def test_immutable_buckets_are_the_union_of_every_source():
    settings = Settings.load(
        cache_dir=".", immutable={"arg"}, manifest_immutable=frozenset({"yaml"}),
        environ={"STATIC_CACHE_IMMUTABLE_BUCKETS": "old-a:old-b::"},
    )
    assert settings.immutable == {"arg", "yaml", "old-a", "old-b"}


@pytest.mark.parametrize("value, bucket, problem", [
    ("frozen:UPPER", "UPPER", "it has capital letters"),
    ("_endpoint-x", "_endpoint-x", "it has '_'"),
    ("ok-bucket:.pod", ".pod", "it does not begin and end with a letter or digit"),
])
def test_a_bad_immutable_bucket_in_the_environment_names_the_variable(value, bucket, problem):
    with pytest.raises(ValueError) as info:
        Settings.load(cache_dir=".", environ={"STATIC_CACHE_IMMUTABLE_BUCKETS": value})
    assert str(info.value) == (f"$STATIC_CACHE_IMMUTABLE_BUCKETS: invalid bucket {bucket!r}: {problem} (S3 bucket "
                               f"names are 3 to 63 lowercase letters, digits, '.' and '-'): fix the name")


def test_bad_pod_timeout_names_the_variable():
    with pytest.raises(ValueError, match=r"^\$POD_TIMEOUT: timeout 'soon' is not a duration"):
        Settings.load(cache_dir=".", environ={"POD_TIMEOUT": "soon"})


@pytest.mark.parametrize("text, seconds", [
    ("0", NEVER),          # the old tool's "never check"
    (" 0 ", NEVER),
    ("none", NEVER),       # not a whole number: never check, as the old tool read it
    ("None", NEVER),
    ("soon", NEVER),
    ("1d", NEVER),
    ("3600.0", NEVER),
    ("never", NEVER),
    ("3600", 3600.0),
    ("+60", 60.0),
    ("1", 1.0),
    ("-1", 0.0),           # always past: check every time
])
def test_parse_old_timeout(text, seconds):
    assert parse_old_timeout(text) == seconds


@pytest.mark.parametrize("env, seconds", [
    ({"STATIC_CACHE_TIMEOUT": "0"}, NEVER),
    ({"STATIC_CACHE_TIMEOUT": "none"}, NEVER),
    ({"STATIC_CACHE_TIMEOUT": "120"}, 120.0),
    ({"POD_TIMEOUT": "0"}, 0.0),
    ({"POD_TIMEOUT": "0", "STATIC_CACHE_TIMEOUT": "0"}, 0.0),         # POD_TIMEOUT wins
    ({"POD_TIMEOUT": "never", "STATIC_CACHE_TIMEOUT": "60"}, NEVER),
    ({"POD_TIMEOUT": "", "STATIC_CACHE_TIMEOUT": "0"}, NEVER),        # empty is unset
    ({"STATIC_CACHE_TIMEOUT": ""}, 3600.0),                           # then assets.yaml's
])
def test_old_and_new_timeout_variables(env, seconds):
    assert Settings.load(cache_dir=".", manifest_timeout=3600.0, environ=env).timeout == seconds


def test_cache_dir_is_absolute_and_user_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    assert Settings.load(cache_dir="~/c", environ={}).cache_dir == tmp_path / "c"
    assert Settings.load(cache_dir="rel", environ={}).cache_dir == Path.cwd() / "rel"


@pytest.mark.parametrize("env, manifest, mirrors", [
    ({}, (), ()),
    ({}, ("https://a.example",), ("https://a.example",)),
    ({"POD_MIRRORS": "http://127.0.0.1:8000/m/ file:///srv/m"}, ("https://a.example",),
     ("http://127.0.0.1:8000/m", "file:///srv/m")),
    ({"POD_MIRRORS": "  https://b.example  https://b.example/ "}, (), ("https://b.example",)),
    ({"POD_MIRRORS": ""}, ("https://a.example",), ()),  # set to nothing: no mirrors on this machine
])
def test_pod_mirrors_replaces_the_manifests(env, manifest, mirrors):
    assert Settings.load(cache_dir=".", manifest_mirrors=manifest, environ=env).mirrors == mirrors


def test_bad_pod_mirrors_names_the_variable():
    with pytest.raises(ValueError, match=r"^\$POD_MIRRORS: mirror 'ftp://x' is not a base URL"):
        Settings.load(cache_dir=".", environ={"POD_MIRRORS": "https://ok.example ftp://x"})
