"""API key and base URL resolution, the key file, and the per-user folders."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from flux_outpaint import settings
from flux_outpaint.errors import ConfigError

KEY = "abcd1234-key-id:ef567890-secret"


def test_key_from_the_environment_wins(tmp_path):
    env = {"FAL_KEY": f"  {KEY}\n", "FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)}
    settings.save_api_key("other-key-0000", env)
    assert settings.load_api_key(env) == KEY


def test_key_from_the_key_file(tmp_path):
    env = {"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path / "cfg")}
    path = settings.save_api_key(KEY, env)
    assert path == tmp_path / "cfg" / settings.KEY_FILE_NAME
    assert settings.load_api_key(env) == KEY
    assert settings.load_api_key({**env, "FAL_KEY": "   "}) == KEY  # blank env var is unset


def test_missing_key_says_how_to_set_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        settings.load_api_key({"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)})
    text = str(info.value)
    assert "fal API key" in text and "FAL_KEY" in text and "install.py --set-key" in text


def test_empty_key_file_is_reported(tmp_path):
    (tmp_path / settings.KEY_FILE_NAME).write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        settings.load_api_key({"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)})


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_key_file_is_private_even_when_replacing_a_public_one(tmp_path):
    env = {"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path / "cfg")}
    path = settings.key_path(env)
    path.parent.mkdir()
    path.write_text("old-key\n")
    os.chmod(path, 0o644)
    settings.save_api_key(KEY, env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == KEY + "\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("bad", ["", "   ", "two words", "a\nb"])
def test_save_refuses_what_is_not_one_key(tmp_path, bad):
    with pytest.raises(ConfigError) as info:
        settings.save_api_key(bad, {"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)})
    if bad.strip():
        assert bad not in str(info.value)
    assert not settings.key_path({"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)}).exists()


def test_concurrent_saves_leave_one_whole_key(tmp_path):
    env = {"FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path)}
    keys = [f"key-{i:04d}-" + "x" * 40 for i in range(8)]
    failures = []

    def save(key):
        try:
            settings.save_api_key(key, env)
        except Exception as exc:  # noqa: BLE001 - every failure is collected and checked
            failures.append(exc)

    threads = [threading.Thread(target=save, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert settings.load_api_key(env) in keys
    assert [p.name for p in tmp_path.iterdir()] == [settings.KEY_FILE_NAME]


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"HOME": "/h"}, "/h/.config/flux-outpaint"),
        ("linux", {"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/x/flux-outpaint"),
        ("linux", {"HOME": "/h", "XDG_CONFIG_HOME": "rel"}, "/h/.config/flux-outpaint"),
        ("darwin", {"HOME": "/h"}, "/h/Library/Application Support/flux-outpaint"),
        ("win32", {"USERPROFILE": "/u", "APPDATA": "/a"}, "/a/flux-outpaint"),
        ("win32", {"USERPROFILE": "/u"}, "/u/AppData/Roaming/flux-outpaint"),
        ("linux", {"HOME": "/h", "FLUX_OUTPAINT_CONFIG_DIR": "/c"}, "/c"),
    ],
)
def test_config_dir_per_platform(platform, env, expected):
    assert settings.config_dir(env, platform=platform) == Path(expected)


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"HOME": "/h"}, "/h/.local/share/flux-outpaint"),
        ("linux", {"HOME": "/h", "XDG_DATA_HOME": "/d"}, "/d/flux-outpaint"),
        ("darwin", {"HOME": "/h"}, "/h/Library/Application Support/flux-outpaint"),
        ("win32", {"USERPROFILE": "/u", "LOCALAPPDATA": "/l"}, "/l/flux-outpaint"),
        ("win32", {"USERPROFILE": "/u"}, "/u/AppData/Local/flux-outpaint"),
        ("linux", {"HOME": "/h", "FLUX_OUTPAINT_DATA_DIR": "/data"}, "/data"),
    ],
)
def test_data_dir_per_platform(platform, env, expected):
    assert settings.data_dir(env, platform=platform) == Path(expected)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "https://queue.fal.run"),
        ("", "https://queue.fal.run"),
        ("https://queue.example.com/", "https://queue.example.com"),
        ("https://proxy.example.com:8443/fal/", "https://proxy.example.com:8443/fal"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_queue_base_url_accepts(given, expected):
    env = {} if given is None else {"FAL_QUEUE_URL": given}
    assert settings.queue_base_url(env) == expected


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("http://queue.example.com", "http://"),
        ("http://10.0.0.5:8000", "http://"),
        # a name under .localhost resolves wherever a resolver says: not loopback by name
        ("http://evil.localhost:8000", "http://"),
        ("http://localhost.example.com", "http://"),
        ("ftp://example.com", "http(s)"),
        ("queue.fal.run", "http(s)"),
        ("https://user:pw@example.com", "password"),
        ("https://example.com/?a=1", "query"),
        ("https://example.com:notaport", "valid"),
    ],
)
def test_queue_base_url_refuses(given, needle):
    with pytest.raises(ConfigError, match="FAL_QUEUE_URL") as info:
        settings.queue_base_url({"FAL_QUEUE_URL": given})
    assert needle in str(info.value)
    assert "pw" not in str(info.value) or needle != "password"


@pytest.mark.parametrize(
    ("base", "rest"),
    [
        ("https://queue.fal.run", "https://rest.fal.ai"),
        ("https://QUEUE.fal.run", "https://rest.fal.ai"),
        ("https://queue.fal.run:443", "https://rest.fal.ai"),
        ("https://queue.fal.run/", "https://rest.fal.ai"),
        ("https://queue.falrun.com", "https://rest.fal.ai"),  # fal's backup host
        ("https://fal.run", "https://rest.fal.ai"),
        ("http://127.0.0.1:8765/x", "http://127.0.0.1:8765"),
        ("https://q.example.com:8443", "https://q.example.com:8443"),
        ("https://queue.fal.run:8443", "https://queue.fal.run:8443"),  # not fal's own port
        ("https://notfal.run", "https://notfal.run"),
        ("https://queue.fal.run.example.com", "https://queue.fal.run.example.com"),
    ],
)
def test_rest_base_for_every_fal_host_and_for_other_servers(base, rest):
    assert settings.rest_base_url(base) == rest


def test_functions_default_to_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_OUTPAINT_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.setenv("FAL_QUEUE_URL", "http://127.0.0.1:1")
    settings.save_api_key(KEY)
    assert settings.load_api_key() == KEY
    assert settings.queue_base_url() == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("raw", "scale"),
    [
        (None, 1.0),
        ("", 1.0),
        ("0.05", 0.05),
        ("1", 1.0),
        ("0", 1.0),
        ("-1", 1.0),
        ("2", 1.0),
        ("fast", 1.0),
    ],
)
def test_time_scale_from_the_environment(raw, scale):
    env = {} if raw is None else {"FLUX_OUTPAINT_TIME_SCALE": raw}
    assert settings.time_scale(env) == scale


@pytest.mark.parametrize(("raw", "seconds"), [("", None), ("  ", None), ("4", 4.0), (" 0.5 ", 0.5)])
def test_deadline_from_the_environment(raw, seconds):
    assert settings.deadline_s({settings.DEADLINE_ENV: raw}) == seconds
    assert settings.deadline_s({}) is None


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "nan", "inf"])
def test_a_deadline_that_is_no_positive_number_is_a_config_error(raw):
    with pytest.raises(ConfigError, match=settings.DEADLINE_ENV):
        settings.deadline_s({settings.DEADLINE_ENV: raw})
