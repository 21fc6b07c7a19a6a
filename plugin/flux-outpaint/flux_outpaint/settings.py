"""Where the API key and the server come from, and where per-user files live.

The key: ``FAL_KEY`` in the environment, else the per-user key file written by
``python3 install.py --set-key`` (mode 0600, replaced atomically).  The key is returned to the
caller and nowhere else: it never goes into a message, a repr, a log or the journal.

The server: ``https://queue.fal.run`` unless ``FAL_QUEUE_URL`` names another full URL.  Plain
``http://`` is accepted only for loopback hosts (the local test server), because the key
travels in a header on every request.

Every function takes an optional ``env`` mapping (default ``os.environ``) so tests and the CLI
can resolve settings without touching the process environment.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError
from .i18n import _

__all__ = [
    "APP_DIR_NAME",
    "CONFIG_DIR_ENV",
    "DATA_DIR_ENV",
    "DEADLINE_ENV",
    "DEFAULT_QUEUE_BASE_URL",
    "DEFAULT_REST_BASE_URL",
    "KEY_ENV",
    "KEY_FILE_NAME",
    "QUEUE_URL_ENV",
    "check_base_url",
    "config_dir",
    "data_dir",
    "deadline_s",
    "is_fal_host",
    "is_loopback",
    "key_path",
    "load_api_key",
    "queue_base_url",
    "rest_base_url",
    "save_api_key",
    "time_scale",
]

DEFAULT_QUEUE_BASE_URL = "https://queue.fal.run"
# fal's storage API lives on its own host; any other queue base serves storage itself.
DEFAULT_REST_BASE_URL = "https://rest.fal.ai"
KEY_ENV = "FAL_KEY"
QUEUE_URL_ENV = "FAL_QUEUE_URL"
CONFIG_DIR_ENV = "FLUX_OUTPAINT_CONFIG_DIR"  # the folder holding the key file, used as is
DATA_DIR_ENV = "FLUX_OUTPAINT_DATA_DIR"  # the folder holding the journal, used as is
# Multiplies the client's own pauses (retry.py, "Time scale"); for tests, not for people.
TIME_SCALE_ENV = "FLUX_OUTPAINT_TIME_SCALE"
# How long one run of the plug-in may wait for fal, in seconds (the core's default when unset);
# the CLI has --timeout for the same thing.
DEADLINE_ENV = "FLUX_OUTPAINT_DEADLINE_S"
APP_DIR_NAME = "flux-outpaint"
KEY_FILE_NAME = "fal-key"


def _how_to_set() -> str:
    return _("set the {variable} environment variable or run `{command}`").format(
        variable=KEY_ENV, command="python3 install.py --set-key"
    )


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str], platform: str) -> Path:
    home = env.get("USERPROFILE") if platform == "win32" else env.get("HOME")
    return Path(home) if home else Path.home()


def _base_dir(
    env: Mapping[str, str], platform: str, *, windows_var: str, xdg_var: str, xdg_default: str
) -> Path:
    home = _home(env, platform)
    if platform == "win32":
        root = env.get(windows_var)
        return (
            Path(root)
            if root
            else home / "AppData" / ("Roaming" if windows_var == "APPDATA" else "Local")
        )
    if platform == "darwin":
        return home / "Library" / "Application Support"
    xdg = env.get(xdg_var, "")
    # The XDG spec says relative paths are invalid and must be ignored.
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / xdg_default


def config_dir(env: Mapping[str, str] | None = None, *, platform: str | None = None) -> Path:
    """The per-user settings folder: $FLUX_OUTPAINT_CONFIG_DIR, else the platform's own."""
    env = _env(env)
    if env.get(CONFIG_DIR_ENV):
        return Path(env[CONFIG_DIR_ENV])
    base = _base_dir(
        env,
        platform or sys.platform,
        windows_var="APPDATA",
        xdg_var="XDG_CONFIG_HOME",
        xdg_default=".config",
    )
    return base / APP_DIR_NAME


def data_dir(env: Mapping[str, str] | None = None, *, platform: str | None = None) -> Path:
    """The per-user data folder (journal, result cache): $FLUX_OUTPAINT_DATA_DIR, else XDG."""
    env = _env(env)
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV])
    base = _base_dir(
        env,
        platform or sys.platform,
        windows_var="LOCALAPPDATA",
        xdg_var="XDG_DATA_HOME",
        xdg_default=".local/share",
    )
    return base / APP_DIR_NAME


def key_path(env: Mapping[str, str] | None = None, *, platform: str | None = None) -> Path:
    return config_dir(env, platform=platform) / KEY_FILE_NAME


def load_api_key(env: Mapping[str, str] | None = None) -> str:
    """The fal API key, or ConfigError saying how to provide one."""
    env = _env(env)
    key = env.get(KEY_ENV, "").strip()
    if key:
        return key
    path = key_path(env)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(_("No fal API key: {how}").format(how=_how_to_set())) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(
            _("Cannot read the fal API key file {path} ({reason}): {how}").format(
                path=path, reason=reason, how=_how_to_set()
            )
        ) from None
    if not key:
        raise ConfigError(
            _("The fal API key file {path} is empty: {how}").format(path=path, how=_how_to_set())
        )
    return key


def save_api_key(key: str, env: Mapping[str, str] | None = None) -> Path:
    """Store the key in the per-user key file, readable only by its owner; return the path.

    Written to a private temporary file in the same folder, synced, then renamed over the old
    one, so a crash leaves either the old key or the new one, never half of either.
    """
    key = key.strip()
    if not key or any(ch.isspace() for ch in key):
        raise ConfigError(_("Not a fal API key: expected one key on one line"))
    path = key_path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp: a fresh name per call (concurrent saves never share one) and mode 0600.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        try:
            os.write(fd, (key + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def queue_base_url(env: Mapping[str, str] | None = None) -> str:
    """The queue server's base URL without a trailing slash; ConfigError if it is unsafe."""
    raw = _env(env).get(QUEUE_URL_ENV, "").strip()
    return check_base_url(raw or DEFAULT_QUEUE_BASE_URL, source=QUEUE_URL_ENV)


def check_base_url(url: str, *, source: str = "base URL") -> str:
    """Validate a server base URL: https anywhere, http only on loopback; no credentials."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(
            _("{source} is not a valid URL: {url}").format(source=source, url=repr(url))
        ) from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(
            _("{source} must be a full http(s) URL, e.g. {example}, not {url}").format(
                source=source, example=DEFAULT_QUEUE_BASE_URL, url=repr(url)
            )
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            _("{source} must not contain a user name or password").format(source=source)
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            _("{source} must not contain a query or fragment: {url}").format(
                source=source, url=repr(url)
            )
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            _(
                "{source} uses plain http:// for {host}; the API key would travel "
                "unencrypted. Use https://, or http:// only for localhost"
            ).format(source=source, host=host)
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def is_loopback(host: str) -> bool:
    """``localhost`` itself or a loopback address.  A name under ``.localhost`` is not taken
    on its name alone: whether it resolves to this machine is up to a resolver."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# fal's own hosts (the queue, its backup queue.falrun.com, the sync host): storage for all
# of them lives on the REST host, whatever the spelling or an explicit :443.
FAL_DOMAINS = ("fal.run", "falrun.com")


def is_fal_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in FAL_DOMAINS)


def rest_base_url(queue_base: str) -> str:
    """Where storage lives: fal's REST host for any of fal's hosts, else the queue server's
    origin (the local server serves storage itself)."""
    parts = urlsplit(queue_base.strip())
    host = parts.hostname or ""
    if parts.scheme == "https" and parts.port in (None, 443) and is_fal_host(host):
        return DEFAULT_REST_BASE_URL
    return f"{parts.scheme}://{parts.netloc}"


def time_scale(env: Mapping[str, str] | None = None) -> float:
    """``FLUX_OUTPAINT_TIME_SCALE`` as a factor in (0, 1]; 1 when unset or not such a number."""
    raw = _env(env).get(TIME_SCALE_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return value if 0.0 < value <= 1.0 else 1.0


def deadline_s(env: Mapping[str, str] | None = None) -> float | None:
    """``FLUX_OUTPAINT_DEADLINE_S`` in seconds; None when unset (the caller's default holds)."""
    raw = _env(env).get(DEADLINE_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            _("{variable} must be a number of seconds, not {value}").format(
                variable=DEADLINE_ENV, value=repr(raw)
            )
        ) from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(
            _("{variable} must be a positive number of seconds").format(variable=DEADLINE_ENV)
        )
    return value
