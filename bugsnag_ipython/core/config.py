"""Every option of the notifier: one frozen dataclass, one validation step.

Options come, lowest priority first, from the defaults, IPython config files, the environment
and calls (`configure()`, `%config`, magics). This module only knows how to turn raw values
into a valid :class:`Configuration`; who reads which source lives in the extension glue.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

DEFAULT_NOTIFY_ENDPOINT = "https://notify.bugsnag.com"
DEFAULT_SESSIONS_ENDPOINT = "https://sessions.bugsnag.com"
# Keys of BugSnag's SmartBear hosting start with five zeros and use other hosts.
SMARTBEAR_NOTIFY_ENDPOINT = "https://notify.bugsnag.smartbear.com"
SMARTBEAR_SESSIONS_ENDPOINT = "https://sessions.bugsnag.smartbear.com"

DEFAULT_REDACTED_KEYS = ("password", "secret", "token", "api_key", "authorization", "cookie")
DEFAULT_DISCARD_CLASSES = ("KeyboardInterrupt", "SystemExit", "UsageError")

_API_KEY = re.compile(r"[0-9a-fA-F]{32}")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigurationError(ValueError):
    """A refused option, said in one sentence that names the option and the fix."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the sentence is the whole message.
        return [f"bugsnag_ipython: {self}"]


def is_api_key(text: str) -> bool:
    """Whether `text` is an API key: 32 hexadecimal digits."""
    return _API_KEY.fullmatch(text) is not None


def mask_api_key(key: str | None) -> str:
    """The key as it may be shown: its last four digits only."""
    if not key:
        return "(not set)"
    return "…" + key[-4:] if len(key) > 4 else "…"


def shown_url(url: str | None) -> str:
    """An endpoint as it may be shown (status, panel, log lines, the command line): never the
    credentials a URL can carry, as proxies and On-Premise setups use them
    (`https://user:password@host/notify` is shown `https://***@host/notify`), nor its query."""
    if not url:
        return "off"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an endpoint that is not a URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    return shown + ("?***" if parts.query else "")


def shown_host(url: str | None) -> str:
    """The endpoint's host (and port), without any credentials the URL carries."""
    if not url:
        return "off"
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or shown_url(url)
    except ValueError:
        return shown_url(url)


# A URL's userinfo: up to the last "@" before its path (a password may hold an "@" of its own),
# or, after "user:", up to the next "@" even past a "/" (as SQLAlchemy reads database URLs: an
# AWS secret key holds "/", and is often written unencoded). Never past a space, so prose after
# a URL is not taken for its userinfo. A scheme has at most 32 characters, so that a long run of
# words (a parameter of 100 kB, say) is scanned in linear time.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)(?:[^/?#\s]*|[^:/?#\s@]*:[^\s@]*)@")


def without_credentials(text: str) -> str:
    """`text` with every URL's credentials hidden (`postgresql://admin:pw@db/x` becomes
    `postgresql://***@db/x`): for an error from the network library, and for the strings of a
    run's metadata (papermill's parameters and paths), which often are connection URLs."""
    if "@" not in text or "://" not in text:  # most strings: no URL with credentials
        return text
    return _CREDENTIALS.sub(r"\1***@", text)


_LONG_ENOUGH = 8  # characters: a shorter secret alone would match ordinary text


def endpoint_credentials(*urls: str | None) -> tuple[str, ...]:
    """The secrets that endpoint URLs carry, as they may appear in text: each URL's userinfo as
    written (`user:password`, or a token alone), and a password on its own, as written and
    percent-decoded, when it is long enough not to be ordinary text (8 characters or more)."""
    found: list[str] = []
    for url in urls:
        if not url:
            continue
        try:
            netloc = urlsplit(url).netloc
        except ValueError:
            continue
        userinfo = netloc.rpartition("@")[0]
        if not userinfo:
            continue
        _, colon, password = userinfo.partition(":")
        if colon or len(userinfo) >= _LONG_ENOUGH:
            found.append(userinfo)
        for secret in (password, unquote(password)) if colon else ():
            if len(secret) >= _LONG_ENOUGH:
                found.append(secret)
    return tuple(dict.fromkeys(found))


class MaskedUrl(str):
    """A str whose repr never shows the credentials of the URL it holds (for `%config`)."""

    def __repr__(self) -> str:
        return repr(shown_url(str(self)))


class MaskedApiKey(str):
    """A str whose repr never shows the key whole (for `%config` and trait listings)."""

    def __repr__(self) -> str:
        return repr(mask_api_key(str(self)))


@dataclass(frozen=True)
class Configuration:
    """The notifier's options. Build new ones with :meth:`replace`, which validates."""

    api_key: str | None = field(default=None, repr=False)
    release_stage: str = "production"
    app_version: str | None = None
    notify_endpoint: str | None = None
    sessions_endpoint: str | None = None
    auto_track_sessions: bool = True
    background_timeout: float = 30.0
    persistence_directory: str | None = None
    discard_classes: tuple[str, ...] = DEFAULT_DISCARD_CLASSES
    enabled_release_stages: tuple[str, ...] | None = None
    redacted_keys: tuple[str, ...] = DEFAULT_REDACTED_KEYS
    send_code: bool = True
    project_root: str | None = None
    max_breadcrumbs: int = 50
    max_held_payloads: int = 1000
    max_stored_sessions: int = 1000
    max_stored_events: int = 10000
    watch_kernel_deaths: bool = True

    ENV_PREFIX: ClassVar[str] = "BUGSNAG_"

    def __repr__(self) -> str:
        # Never a credential: the key masked, endpoints without the user:password they carry.
        shown = ", ".join(
            f"{f.name}={_shown_field(f.name, getattr(self, f.name))!r}"
            for f in dataclasses.fields(self) if f.repr
        )
        return f"Configuration(api_key={mask_api_key(self.api_key)!r}, {shown})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no event may carry: the API key and the endpoints' credentials."""
        found = endpoint_credentials(self.notify_endpoint, self.sessions_endpoint)
        return (self.api_key, *found) if self.api_key else found

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> Configuration:
        """A copy with `changes` applied; raises ConfigurationError and changes nothing if any
        change is invalid."""
        cleaned = {name: _validate(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **cleaned)

    # -- derived values ----------------------------------------------------------------

    @property
    def notify_url(self) -> str:
        if self.notify_endpoint:
            return self.notify_endpoint
        return SMARTBEAR_NOTIFY_ENDPOINT if self._smartbear else DEFAULT_NOTIFY_ENDPOINT

    @property
    def sessions_url(self) -> str | None:
        """Where sessions go, or None when session delivery is off.

        Setting only the notify endpoint (BugSnag On-Premise, a proxy) turns session delivery
        off, as the official notifiers do, rather than sending sessions to BugSnag's cloud.
        """
        if self.sessions_endpoint:
            return self.sessions_endpoint
        if self.notify_endpoint:
            return None
        return SMARTBEAR_SESSIONS_ENDPOINT if self._smartbear else DEFAULT_SESSIONS_ENDPOINT

    @property
    def _smartbear(self) -> bool:
        return bool(self.api_key and self.api_key.startswith("00000"))

    @property
    def release_stage_enabled(self) -> bool:
        stages = self.enabled_release_stages
        return stages is None or self.release_stage in stages


def _shown_field(name: str, value: Any) -> Any:
    return shown_url(value) if name in _URLS and value else value


def from_environment(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Options set by `BUGSNAG_*` variables, and one sentence per variable that was refused."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for name in Configuration.option_names():
        variable = Configuration.ENV_PREFIX + name.upper()
        if variable not in env:
            continue
        raw = env[variable]
        try:
            changes[name] = _validate(name, _parse_text(name, raw, variable))
        except ConfigurationError as error:
            problems.append(f"{error} The default is used instead.")
    return changes, problems


# -- validation -----------------------------------------------------------------------

_BOOLS = {"auto_track_sessions", "send_code", "watch_kernel_deaths"}
_TUPLES = {"discard_classes", "enabled_release_stages", "redacted_keys"}
_POSITIVE_INTS = {"max_breadcrumbs", "max_held_payloads", "max_stored_sessions", "max_stored_events"}
_URLS = {"notify_endpoint", "sessions_endpoint"}
_OPTIONAL_TEXT = {"app_version", "persistence_directory", "project_root"}


def _parse_text(name: str, raw: str, source: str) -> Any:
    """Turn an environment string into the option's type (validated afterwards)."""
    text = raw.strip()
    if name in _BOOLS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{source} must be true or false (or 1/0, yes/no), not {raw!r}.")
    if name in _TUPLES:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if name in _POSITIVE_INTS:
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"{source} must be a whole number, not {raw!r}.") from None
    if name == "background_timeout":
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(
                f"{source} must be a number of seconds, not {raw!r}."
            ) from None
    return text or None


def _validate(name: str, value: Any) -> Any:
    if name not in Configuration.option_names():
        known = ", ".join(Configuration.option_names())
        raise ConfigurationError(f"{name!r} is not an option of bugsnag_ipython; known: {known}.")
    if name == "api_key":
        return _validate_api_key(value)
    if name == "release_stage":
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("release_stage must be a non-empty string, e.g. 'production'.")
        return value.strip()
    if name in _OPTIONAL_TEXT:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string or None, not {value!r}.")
        return value
    if name in _URLS:
        return _validate_url(name, value)
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be True or False, not {value!r}.")
        return value
    if name == "background_timeout":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigurationError(
                f"background_timeout must be a number of seconds, 0 or more, not {value!r}."
            )
        return float(value)
    if name in _POSITIVE_INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a whole number, 1 or more, not {value!r}.")
        return value
    if name in _TUPLES:
        if value is None and name == "enabled_release_stages":
            return None
        if isinstance(value, str) or not all(isinstance(v, str) for v in value or ()):
            raise ConfigurationError(f"{name} must be a list of strings, not {value!r}.")
        return tuple(value)
    raise AssertionError(f"option {name} has no validation")  # pragma: no cover


def _validate_api_key(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _API_KEY.fullmatch(value.strip()):
        raise ConfigurationError(
            "api_key must be the 32 hexadecimal digits of your BugSnag project's API key "
            "(Project Settings > Notifier API key)."
        )
    return str(value.strip())


def _validate_url(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be an http(s) URL string, not {value!r}.")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{name} must be an http:// or https:// URL such as "
            f"'https://notify.example.com', not {shown_url(value)!r}."
        )
    return value.strip()
