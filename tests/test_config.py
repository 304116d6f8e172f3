"""Options: validation in one sentence, environment parsing, endpoint rules, masking."""

from __future__ import annotations

import pytest

from bugsnag_ipython.core.config import (
    DEFAULT_NOTIFY_ENDPOINT,
    DEFAULT_SESSIONS_ENDPOINT,
    SMARTBEAR_NOTIFY_ENDPOINT,
    SMARTBEAR_SESSIONS_ENDPOINT,
    Configuration,
    ConfigurationError,
    MaskedApiKey,
    from_environment,
)
from tests.payloads import OTHER_KEY as KEY


def test_defaults_match_the_documented_table() -> None:
    config = Configuration()
    assert config.api_key is None
    assert config.release_stage == "production"
    assert config.auto_track_sessions is True
    assert config.background_timeout == 30.0
    assert config.notify_url == DEFAULT_NOTIFY_ENDPOINT
    assert config.sessions_url == DEFAULT_SESSIONS_ENDPOINT


def test_keys_of_the_smartbear_hosting_use_its_hosts() -> None:
    config = Configuration().replace(api_key="00000" + KEY[5:])
    assert config.notify_url == SMARTBEAR_NOTIFY_ENDPOINT
    assert config.sessions_url == SMARTBEAR_SESSIONS_ENDPOINT


def test_notify_endpoint_alone_turns_session_delivery_off() -> None:
    config = Configuration().replace(notify_endpoint="https://bugsnag.internal:49000")
    assert config.notify_url == "https://bugsnag.internal:49000"
    assert config.sessions_url is None
    both = config.replace(sessions_endpoint="https://bugsnag.internal:49001")
    assert both.sessions_url == "https://bugsnag.internal:49001"


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("api_key", "not-a-key", "api_key"),
        ("api_key", KEY + "0", "api_key"),
        ("notify_endpoint", "ftp://example.com", "notify_endpoint"),
        ("sessions_endpoint", "localhost:9000", "sessions_endpoint"),
        ("background_timeout", -1, "background_timeout"),
        ("background_timeout", "30", "background_timeout"),
        ("auto_track_sessions", "yes", "auto_track_sessions"),
        ("max_breadcrumbs", 0, "max_breadcrumbs"),
        ("release_stage", "", "release_stage"),
        ("no_such_option", 1, "no_such_option"),
    ],
)
def test_a_bad_value_is_refused_in_one_sentence_naming_the_option(
    option: str, value: object, named: str
) -> None:
    config = Configuration()
    with pytest.raises(ConfigurationError) as refused:
        config.replace(**{option: value})
    message = str(refused.value)
    assert named in message
    assert "\n" not in message and message.endswith(".")
    assert isinstance(refused.value, ValueError)
    assert refused.value._render_traceback_() == [f"bugsnag_ipython: {message}"]


def test_a_refused_call_changes_nothing() -> None:
    config = Configuration().replace(release_stage="staging")
    with pytest.raises(ConfigurationError):
        config.replace(release_stage="beta", api_key="bad")
    assert config.release_stage == "staging"


def test_environment_values_are_parsed_and_bad_ones_fall_back_with_a_sentence() -> None:
    env = {
        "BUGSNAG_API_KEY": KEY,
        "BUGSNAG_RELEASE_STAGE": "staging",
        "BUGSNAG_APP_VERSION": "1.2.3",
        "BUGSNAG_AUTO_TRACK_SESSIONS": "no",
        "BUGSNAG_BACKGROUND_TIMEOUT": "soon",
        "BUGSNAG_DISCARD_CLASSES": "KeyboardInterrupt, MyError",
        "UNRELATED": "x",
    }
    changes, problems = from_environment(env)
    assert changes == {
        "api_key": KEY,
        "release_stage": "staging",
        "app_version": "1.2.3",
        "auto_track_sessions": False,
        "discard_classes": ("KeyboardInterrupt", "MyError"),
    }
    assert len(problems) == 1
    assert "BUGSNAG_BACKGROUND_TIMEOUT" in problems[0] and "default" in problems[0]


@pytest.mark.parametrize(("text", "value"), [("1", True), ("TRUE", True), ("0", False), ("yes", True)])
def test_boolean_environment_spellings(text: str, value: bool) -> None:
    changes, problems = from_environment({"BUGSNAG_AUTO_TRACK_SESSIONS": text})
    assert changes == {"auto_track_sessions": value} and problems == []


def test_the_api_key_is_never_shown_whole() -> None:
    config = Configuration().replace(api_key=KEY)
    assert KEY not in repr(config)
    assert KEY not in repr(MaskedApiKey(KEY))
    assert repr(config).count("cdef") == 1  # only the last four digits


def test_no_credential_in_the_configurations_repr_or_str() -> None:
    config = Configuration().replace(
        api_key=KEY,
        notify_endpoint="https://user:pw-notify@notify.example/notify",
        sessions_endpoint="https://ci:s3cr%40t@sessions.example:8443/s?token=abc",
    )

    for shown in (repr(config), str(config), f"{config}", repr([config])):
        assert KEY not in shown and "cdef" in shown
        assert "pw-notify" not in shown and "s3cr" not in shown and "token=abc" not in shown
        assert "user" not in shown and "ci:" not in shown
        assert "'https://***@notify.example/notify'" in shown
        assert "'https://***@sessions.example:8443/s?***'" in shown


def test_the_secrets_no_event_may_carry() -> None:
    config = Configuration().replace(
        api_key=KEY,
        notify_endpoint="https://user:pw@notify.example",  # short: replaced only with its user
        sessions_endpoint="https://ci:Pa55w%40rd-long@sessions.example",
    )

    assert config.secrets == (KEY, "user:pw", "ci:Pa55w%40rd-long", "Pa55w%40rd-long", "Pa55w@rd-long")
    assert Configuration().secrets == ()
    token_only = Configuration().replace(notify_endpoint="https://tok3n-abcdef@proxy.example")
    assert token_only.secrets == ("tok3n-abcdef",)
