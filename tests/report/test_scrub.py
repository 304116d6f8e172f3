"""The configured secrets out of a finished payload body, wherever its strings hold them."""

from __future__ import annotations

import json

from bugsnag_ipython.report.payloads import encode, event_payload
from bugsnag_ipython.report.trimming import MAX_PAYLOAD_BYTES, scrub
from tests.payloads import API_KEY as KEY


def payload_with(text: str, **event: object) -> bytes:
    body = {
        "exceptions": [{"errorClass": "ValueError", "message": text, "stacktrace": [
            {"file": "cell-a", "lineNumber": 1, "method": "<module>", "code": {"1": text}}]}],
        "context": text,
        "breadcrumbs": [{"name": text, "type": "manual", "metaData": {"value": text}}],
        "metaData": {"notebook": {"cellSource": text}, "tab": {text: [text, {"deep": text}]}},
        **event,
    }
    return encode(event_payload(KEY, {"name": "bugsnag-ipython"}, [body]))


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_every_string_holding_the_key_has_it_replaced_and_the_payloads_own_key_stays() -> None:
    body = payload_with(f'key = "{KEY}"')

    cleaned = json.loads(scrub(body, (KEY,)))

    assert cleaned["apiKey"] == KEY
    texts = strings(cleaned["events"])
    assert 'key = "[REDACTED]"' in texts and not any(KEY in text for text in texts)
    assert texts.count('key = "[REDACTED]"') == 9  # message, code, context, crumb x2, tabs x4


def test_a_payload_without_secrets_is_the_same_bytes() -> None:
    body = payload_with("nothing to hide")

    assert scrub(body, (KEY, "user:Pa55word-long")) is body
    assert scrub(body, ()) is body


def test_credentials_that_json_escapes_are_found_and_replaced_whole_first() -> None:
    password = 'pa"ss\\w\x01rd-long'
    body = payload_with(f"http://user:{password}@proxy/ then {password} alone")

    cleaned = scrub(body, (f"user:{password}", password))

    assert json.loads(cleaned)["events"][0]["context"] == "http://[REDACTED]@proxy/ then [REDACTED] alone"


def test_a_match_inside_an_escape_is_no_secret_and_breaks_nothing() -> None:
    # "\x00" encodes as \u0000: a "key" of the digits that follow the escape's, met in the
    # body, is in no string.
    digits = "00" + KEY[2:]
    body = payload_with("\x00" + KEY[2:])

    cleaned = scrub(body, (digits,))

    assert json.loads(cleaned) == json.loads(body)


def test_a_session_payload_is_scrubbed_too() -> None:
    body = encode({"notifier": {}, "app": {}, "device": {}, "sessions": [
        {"id": "s", "user": {"name": f"ci {KEY}"}}]})

    assert json.loads(scrub(body, (KEY,)))["sessions"][0]["user"]["name"] == "ci [REDACTED]"


def test_an_event_at_the_limit_stays_under_it_when_a_short_credential_is_replaced() -> None:
    short = "u:pw"  # 4 characters become 10
    body = payload_with("x", metaData={"big": {"text": (short + " ") * 199_000}})
    assert len(body) < MAX_PAYLOAD_BYTES < len(body) + 6 * 199_000

    cleaned = scrub(body, (short,))

    assert len(cleaned) <= MAX_PAYLOAD_BYTES
    assert short not in cleaned.decode()
    assert json.loads(cleaned)["events"][0]["exceptions"][0]["errorClass"] == "ValueError"
