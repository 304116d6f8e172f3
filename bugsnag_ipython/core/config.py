"""Every option of the notifier: one typed trait each, one validation step, and how options that
hold credentials (the key, endpoint URLs) may be shown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from traitlets import Bool, Float, HasTraits, Int, Tuple, Unicode

DEFAULT_NOTIFY_ENDPOINT = "https://notify.bugsnag.com"
DEFAULT_SESSIONS_ENDPOINT = "https://sessions.bugsnag.com"
# Keys of BugSnag's SmartBear hosting start with five zeros and use other hosts.
SMARTBEAR_NOTIFY_ENDPOINT = "https://notify.bugsnag.smartbear.com"
SMARTBEAR_SESSIONS_ENDPOINT = "https://sessions.bugsnag.smartbear.com"

_API_KEY = re.compile(r"[0-9a-fA-F]{32}")


class ConfigurationError(ValueError):
    """A refused option, said in one sentence that names the option and the fix."""

    def _render_traceback_(self) -> list[str]:  # IPython shows it instead of a traceback
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
    """An endpoint as it may be shown, without its credentials or query: `https://***@host/n?***`."""
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


# A URL's userinfo: up to the last "@" before its path, or after "user:" up to the next "@" even
# past a "/" (as SQLAlchemy reads URLs: an AWS secret holds "/"); never past a space. A scheme has
# at most 32 characters, so that a long run of words is scanned in linear time.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)(?:[^/?#\s]*|[^:/?#\s@]*:[^\s@]*)@")


def without_credentials(text: str) -> str:
    """`text` with every URL's credentials hidden: `pg://admin:pw@db/x` becomes `pg://***@db/x`."""
    return _CREDENTIALS.sub(r"\1***@", text)


_LONG_ENOUGH = 8  # characters: a shorter secret alone would match ordinary text


def endpoint_credentials(*urls: str | None) -> tuple[str, ...]:
    """Each userinfo the URLs carry, and its password alone, as written and decoded, if long enough."""
    found: list[str] = []
    for url in filter(None, urls):
        try:
            userinfo = urlsplit(url).netloc.rpartition("@")[0]
        except ValueError:
            continue
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


class Configuration(HasTraits):
    """The notifier's options, each declared once as a typed trait: IPython config files and
    `%config` set them on BugsnagIPython, `BUGSNAG_<OPTION>` from the environment. Make new ones
    with :meth:`replace`, which validates and masks the key and endpoints in any repr."""

    api_key = Unicode(None, allow_none=True, help="The project's API key (32 hex digits).").tag(config=True)
    release_stage = Unicode("production", help="app.releaseStage").tag(config=True)
    app_version = Unicode(None, allow_none=True, help="app.version (default: found)").tag(config=True)
    notify_endpoint = Unicode(None, allow_none=True, help="Where events are POSTed.").tag(config=True)
    sessions_endpoint = Unicode(None, allow_none=True, help="Where sessions are POSTed.").tag(config=True)
    auto_track_sessions = Bool(True, help="Sessions by themselves.").tag(config=True)
    background_timeout = Float(30.0, help="Idle seconds to a new session.").tag(config=True)
    persistence_directory = Unicode(None, allow_none=True, help="Where payloads wait.").tag(config=True)
    discard_classes = Tuple(("KeyboardInterrupt", "SystemExit", "UsageError"), help="Never reported.").tag(
        config=True)
    enabled_release_stages = Tuple(default_value=None, allow_none=True, help="Stages that send.").tag(
        config=True)
    redacted_keys = Tuple(("password", "secret", "token", "api_key", "authorization", "cookie"),
                          help="Metadata sent as [REDACTED].").tag(config=True)
    send_code = Bool(True, help="Send the source of cells and files.").tag(config=True)
    project_root = Unicode(None, allow_none=True, help="Files under it are in project.").tag(config=True)
    max_breadcrumbs = Int(50, help="Breadcrumbs kept.").tag(config=True)
    max_held_payloads = Int(1000, help="Held without a key.").tag(config=True)
    max_stored_sessions = Int(1000, help="Sessions on disk.").tag(config=True)
    max_stored_events = Int(10000, help="Events on disk.").tag(config=True)
    watch_kernel_deaths = Bool(True, help="Report deaths at once.").tag(config=True)

    ENV_PREFIX: ClassVar[str] = "BUGSNAG_"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no event may carry: the API key and the endpoints' credentials."""
        found = endpoint_credentials(self.notify_endpoint, self.sessions_endpoint)
        return (self.api_key, *found) if self.api_key else found

    @staticmethod
    def option_names() -> tuple[str, ...]:
        return tuple(_KINDS)

    def replace(self, **changes: Any) -> Configuration:
        """A copy with `changes` applied; ConfigurationError, and nothing changed, if one is refused."""
        cleaned = {name: validated(name, value) for name, value in changes.items()}
        return Configuration(**{**{name: getattr(self, name) for name in _KINDS}, **cleaned})

    def __repr__(self) -> str:
        return f"Configuration({', '.join(f'{name}={getattr(self, name)!r}' for name in _KINDS)})"

    @property
    def notify_url(self) -> str:
        if self.notify_endpoint:
            return self.notify_endpoint
        return SMARTBEAR_NOTIFY_ENDPOINT if self._smartbear else DEFAULT_NOTIFY_ENDPOINT

    @property
    def sessions_url(self) -> str | None:
        """Where sessions go; None when only the notify endpoint is set, as the official notifiers do."""
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


def from_environment(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Options set by `BUGSNAG_*` variables, and one sentence per variable that was refused."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for name in Configuration.option_names():
        variable = Configuration.ENV_PREFIX + name.upper()
        if variable in env:
            try:
                changes[name] = validated(name, _parse_text(name, env[variable], variable))
            except ConfigurationError as error:
                problems.append(f"{error} The default is used instead.")
    return changes, problems


# What each option holds: its kind decides what it accepts and how its variable is read.
_KINDS = {
    "api_key": "key", "release_stage": "stage", "app_version": "text", "notify_endpoint": "url",
    "sessions_endpoint": "url", "auto_track_sessions": "bool", "background_timeout": "seconds",
    "persistence_directory": "text", "discard_classes": "names", "enabled_release_stages": "names",
    "redacted_keys": "names", "send_code": "bool", "project_root": "text", "max_breadcrumbs": "count",
    "max_held_payloads": "count", "max_stored_sessions": "count", "max_stored_events": "count",
    "watch_kernel_deaths": "bool",
}
# What a refusal says each kind must be; it shows the value refused, but never a key.
_MUST_BE = {
    "key": "the 32 hexadecimal digits of your BugSnag project's API key "
           "(Project Settings > Notifier API key)",
    "url": "an http:// or https:// URL such as 'https://notify.example.com'",
    "stage": "a non-empty string, e.g. 'production'",
    "text": "a string or None", "bool": "True or False", "names": "a list of strings",
    "seconds": "a number of seconds, 0 or more", "count": "a whole number, 1 or more",
}
_SPELLED = {
    "bool": "true or false (or 1/0, yes/no)", "seconds": "a number of seconds", "count": "a whole number",
}
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}


def _parse_text(name: str, raw: str, variable: str) -> Any:  # validated afterwards
    text, kind = raw.strip(), _KINDS[name]
    if kind == "names":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        if kind == "bool":
            return _BOOLEANS[text.lower()]
        if kind in ("seconds", "count"):
            return float(text) if kind == "seconds" else int(text)
    except (KeyError, ValueError):
        raise ConfigurationError(f"{variable} must be {_SPELLED[kind]}, not {raw!r}.") from None
    return text or None


def validated(name: str, value: Any) -> Any:
    """`value` as option `name` holds it; ConfigurationError if the option refuses it."""
    kind = _KINDS.get(name)
    if kind is None:
        raise ConfigurationError(f"{name!r} is not an option of bugsnag_ipython; known: {', '.join(_KINDS)}.")
    unset = value is None or (value == "" and kind in ("key", "url", "text"))
    if unset and (kind in ("key", "url", "text") or name == "enabled_release_stages"):
        return None  # for enabled_release_stages: every stage
    text = value.strip() if isinstance(value, str) else None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    accepted = {
        "key": is_api_key(text or ""),
        "url": _is_http_url(text or ""),
        "stage": bool(text),
        "text": text is not None,
        "bool": isinstance(value, bool),
        "names": isinstance(value, list | tuple) and all(isinstance(item, str) for item in value),
        "seconds": number and value >= 0,
        "count": number and isinstance(value, int) and value >= 1,
    }
    if not accepted[kind]:
        shown = shown_url(value) if kind == "url" and text else value
        refused = "" if kind in ("key", "stage") else f", not {shown!r}"
        raise ConfigurationError(f"{name} must be {_MUST_BE[kind]}{refused}.")
    if kind in ("key", "url", "stage"):
        return MaskedApiKey(text) if kind == "key" else MaskedUrl(text) if kind == "url" else text
    return tuple(value) if kind == "names" else float(value) if kind == "seconds" else value


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
