"""Sealing a payload: an event trimmed under BugSnag's 1 MB limit (as bugsnag-android trims), secrets out."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from ..core.basics import JsonDict
from . import payloads
from .breadcrumbs import Trail
from .environment import NOTIFIER
from .payloads import REDACTED, encode, strings_replaced

if TYPE_CHECKING:
    from ..core.config import Configuration

# BugSnag's limit is 1,000,000 bytes; delivery adds the API key (32 characters) afterwards.
MAX_PAYLOAD_BYTES = 999_000
MAX_STRING = 10_000  # characters, as bugsnag-android's maxStringValueLength
KEPT_FRAMES = 25  # innermost and outermost frames each kept of a very deep stack
_API_KEY_HEAD = b'{"apiKey":"'


def fit(payload: JsonDict) -> JsonDict:
    """An event payload (itself when it fits) under the limit, keeping every exception class."""
    if len(encode(payload)) <= MAX_PAYLOAD_BYTES:
        return payload
    events = payload["events"]
    event = dict(events[0])
    # Exceptions, threads and frames are small and changed in place below: copy them, once.
    for key in ("exceptions", "threads"):
        if key in event:
            event[key] = [{**s, "stacktrace": [dict(f) for f in _dicts(s, "stacktrace")]}
                          for s in _dicts(event, key)]
    trimmed = {**payload, "events": [event, *events[1:]]}

    def excess() -> int:
        return len(encode(trimmed)) - MAX_PAYLOAD_BYTES

    def crashing() -> list[JsonDict]:  # the crashing thread's stacks: the exceptions' and its own
        return [*_dicts(event, "exceptions"), *_threads(event, crashing=True)]

    steps: list[Callable[[], None]] = [
        lambda: _trim_strings(event, MAX_STRING),
        lambda: _drop_windows(_threads(event, crashing=False), excess()),
        lambda: _drop_middle_of(_threads(event, crashing=False)),
        lambda: _drop_other_threads(event, excess()),
        lambda: _drop_oldest_breadcrumbs(event, excess()),
        lambda: _drop_windows(crashing(), excess()),
        lambda: _drop_middle_of(crashing()),
        lambda: _trim_strings(event, 1_000),
        lambda: _trim_strings(event, 100),
        lambda: _drop_everything_but_exceptions(event),
    ]
    for step in steps:
        step()
        if excess() <= 0:
            break
    return trimmed


def _trim_strings(event: JsonDict, limit: int) -> None:  # every string, keys too, but an errorClass
    def cut(text: str) -> str:
        return text if len(text) <= limit else f"{text[:limit]}***<{len(text) - limit}> CHARS TRUNCATED***"

    for key, value in list(event.items()):
        if key != "exceptions":
            event[key] = strings_replaced(value, cut)
    for exception in _dicts(event, "exceptions"):
        for key, value in list(exception.items()):
            if key != "errorClass":
                exception[key] = strings_replaced(value, cut)


def _drop_oldest_breadcrumbs(event: JsonDict, excess: int) -> None:
    crumbs = event.get("breadcrumbs")
    if not isinstance(crumbs, list) or not crumbs or excess <= 0:
        return
    dropped = 0
    while dropped < len(crumbs) and excess > 0:
        excess -= len(encode(crumbs[dropped])) + 1  # and its comma
        dropped += 1
    last = crumbs[dropped - 1]
    at = last.get("timestamp") if isinstance(last, dict) else None
    # As bugsnag-android does: one breadcrumb says that older ones were removed.
    name = f"Removed, along with {dropped - 1} older breadcrumbs, to reduce payload size"
    notice = [{"timestamp": at, "name": name, "type": "manual", "metaData": {}}] if at else []
    event["breadcrumbs"] = [*notice, *crumbs[dropped:]]


def _drop_windows(stacks: list[JsonDict], excess: int) -> None:  # from the last's outermost frames
    frames = [f for stack in stacks for f in _dicts(stack, "stacktrace")]
    for frame in reversed(frames):
        if excess <= 0:
            break
        code = frame.pop("code", None)
        if code is not None:
            excess -= len(encode(code)) + 8  # and its `,"code":`


def _threads(event: JsonDict, *, crashing: bool) -> list[JsonDict]:
    return [t for t in _dicts(event, "threads") if (t.get("errorReportingThread") is True) == crashing]


def _drop_other_threads(event: JsonDict, excess: int) -> None:  # the last listed first, as far as needed
    kept: list[JsonDict] = []
    for thread in reversed(_dicts(event, "threads")):
        if excess > 0 and not thread.get("errorReportingThread"):
            excess -= len(encode(thread)) + 1  # and its comma
        else:
            kept.append(thread)
    if "threads" in event:
        event["threads"] = kept[::-1]


def _drop_middle_of(stacks: list[JsonDict]) -> None:
    for stack in stacks:
        frames = _dicts(stack, "stacktrace")
        if len(frames) > 2 * KEPT_FRAMES + 1:
            method = f"[{len(frames) - 2 * KEPT_FRAMES} frames left out]"
            marker = {"file": "[frames left out]", "lineNumber": 0, "method": method, "inProject": False}
            stack["stacktrace"] = [*frames[:KEPT_FRAMES], marker, *frames[-KEPT_FRAMES:]]


def _drop_everything_but_exceptions(event: JsonDict) -> None:
    event.update(metaData={}, breadcrumbs=[])
    event.pop("threads", None)  # the crashing thread's stack is the exception's
    for exception in _dicts(event, "exceptions"):
        exception["stacktrace"] = _dicts(exception, "stacktrace")[:KEPT_FRAMES]


def _dicts(holder: JsonDict, key: str) -> list[JsonDict]:
    found = holder.get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def encode_within_limit(payload: JsonDict) -> tuple[JsonDict, bytes]:
    """An event payload and its body, trimmed (and encoded again) only when over the limit."""
    encoded = _spliced(payload)
    if len(encoded) > MAX_PAYLOAD_BYTES:
        payload = fit(payload)
        encoded = encode(payload)
    return payload, encoded


def _spliced(payload: JsonDict) -> bytes:
    """`encode(payload)`, with a one-event payload's `Trail` as it encoded itself (the error-cost target)."""
    events = payload.get("events")
    event = events[0] if isinstance(events, list) and len(events) == 1 else None
    event = event if isinstance(event, dict) else {}
    crumbs = event.get("breadcrumbs")
    if not isinstance(crumbs, Trail) or list(payload)[-1] != "events":
        return encode(payload)
    rest = encode({**payload, "events": [{k: v for k, v in event.items() if k != "breadcrumbs"}]})
    if not rest.endswith(b"}]}") or rest.endswith(b"{}]}"):
        return encode(payload)
    # The event is the last key's only value: its closing brace is the third byte from the end.
    return rest[:-3] + b',"breadcrumbs":' + crumbs.encoded + rest[-3:]


def sealed_event(body: JsonDict, config: Configuration) -> tuple[JsonDict, bytes]:
    """The payload of an event as it is sent (redacted, API key and notifier added, trimmed), encoded."""
    trail = isinstance(body.get("breadcrumbs"), Trail)
    payloads.redact_event(body, config.redacted_keys, breadcrumbs=not trail)
    return encode_within_limit(payloads.event_payload(config.api_key or "", NOTIFIER, [body]))


@lru_cache(maxsize=8)
def _needles(secrets: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    # Each secret with its JSON text, the longest first: a `user:password` goes before its password.
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    return tuple((secret, encode(secret)[1:-1]) for secret in ordered)


def scrub(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` (an encoded payload) with `secrets` in its strings, but its `apiKey`, as [REDACTED]."""
    needles = _needles(secrets)
    start = body.find(b'"', len(_API_KEY_HEAD)) + 1 if body.startswith(_API_KEY_HEAD) else 0
    if not any(body.find(text, start) >= 0 for _, text in needles):
        return body  # nearly every payload: a search per secret, in C

    def replaced(text: str) -> str:
        for secret, _ in needles:
            text = text.replace(secret, REDACTED)
        return text

    payload = json.loads(body)
    cleaned = {key: value if key == "apiKey" else strings_replaced(value, replaced)
               for key, value in payload.items()}
    # [REDACTED] is longer than a short credential: an event at the limit is trimmed again.
    return encode(fit(cleaned) if "events" in cleaned else cleaned)
