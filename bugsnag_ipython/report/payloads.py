"""Session and event payloads as BugSnag's API takes them: sessions in the per-session form
of the mobile notifiers (payload version 1.0), events in payload version 4.0.

Pure functions: dicts in, dicts or bytes out. No I/O, no IPython.
"""

from __future__ import annotations

import codecs
import json
import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..core.basics import JsonDict
from ..core.sessions import SessionSnapshot

SESSION_PAYLOAD_VERSION = "1.0"
EVENT_PAYLOAD_VERSION = "4.0"
REDACTED = "[REDACTED]"



def iso8601(epoch_seconds: float) -> str:
    """UTC time with millisecond precision and a Z suffix, as every notifier sends it."""
    m = datetime.fromtimestamp(epoch_seconds, UTC)
    # Formatted here rather than by strftime, which takes longer (an event formats several).
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )


def session_payload(
    snapshot: SessionSnapshot,
    *,
    notifier: JsonDict,
    app: JsonDict,
    device: JsonDict,
    user: JsonDict,
) -> JsonDict:
    """One session in the per-session (mobile) form: its id is what events refer to."""
    session: JsonDict = {"id": snapshot.id, "startedAt": iso8601(snapshot.started_at)}
    if user:
        session["user"] = user
    return {"notifier": notifier, "app": app, "device": device, "sessions": [session]}


def event_session(snapshot: SessionSnapshot) -> JsonDict:
    return {
        "id": snapshot.id,
        "startedAt": _session_start(snapshot.started_at),
        "events": {"handled": snapshot.handled, "unhandled": snapshot.unhandled},
    }


@lru_cache(maxsize=4)
def _session_start(epoch_seconds: float) -> str:
    # Every event of a session carries the same start: formatted once.
    return iso8601(epoch_seconds)


def event(
    *,
    exceptions: list[JsonDict],
    unhandled: bool,
    severity: str,
    severity_reason: str,
    app: JsonDict,
    device: JsonDict,
    user: JsonDict,
    context: str | None = None,
    breadcrumbs: Iterable[JsonDict] = (),
    metadata: Mapping[str, Any] | None = None,
) -> JsonDict:
    """One event, without its session (attached last, after the on-error callbacks)."""
    body: JsonDict = {
        "exceptions": exceptions,
        "severity": severity,
        "severityReason": {"type": severity_reason},
        "unhandled": unhandled,
        "app": app,
        "device": device,
        "breadcrumbs": list(breadcrumbs),
        "metaData": dict(metadata or {}),
    }
    if user:
        body["user"] = user
    if context:
        body["context"] = context
    return body


def event_payload(api_key: str, notifier: JsonDict, events: list[JsonDict]) -> JsonDict:
    return {
        "apiKey": api_key,
        "payloadVersion": EVENT_PAYLOAD_VERSION,
        "notifier": notifier,
        "events": events,
    }


_EVENTS_KEY = b'"events":['


def join_events(bodies: list[bytes]) -> tuple[bytes, int]:
    """One event payload holding the events of the first bodies that differ only in their
    events (same key and notifier), and how many bodies it took; BugSnag's event API takes
    an array of events, which spares a request per event. Bodies are spliced, not decoded:
    each is `{...,"events":[...]}` as `event_payload` orders it, events last."""
    first = bodies[0]
    cut = first.find(_EVENTS_KEY) + len(_EVENTS_KEY)
    if cut < len(_EVENTS_KEY) or not first.endswith(b"]}") or len(first) == cut + 2:
        return first, 1
    head = first[:cut]
    parts = [first[cut:-2]]
    for body in bodies[1:]:
        if not (body.startswith(head) and body.endswith(b"]}")) or len(body) == cut + 2:
            break
        parts.append(body[cut:-2])
    return b"".join((head, b",".join(parts), b"]}")), len(parts)


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold become their str(), and mapping keys
    that JSON cannot hold (tuples, objects) are left out rather than failing the event."""
    return utf8(encode_text(payload))


def encode_text(value: Any) -> str:
    """The JSON text that encode() makes bytes of."""
    try:
        return _ENCODER.encode(value)
    except ValueError:  # NaN or infinity (which JSON has not), or an int too long to print
        return _ENCODER.encode(json_safe(value))


def utf8(text: str) -> bytes:
    """UTF-8 bytes of `text`; a lone surrogate (a file name decoded with surrogateescape, a
    message cut mid-pair) is not UTF-8 and is sent as U+FFFD, the replacement character."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", _REPLACEMENT_CHARACTER)


_REPLACEMENT_CHARACTER = "bugsnag-ipython-fffd"


def _replacement_character(error: UnicodeError) -> tuple[bytes, int]:
    assert isinstance(error, UnicodeEncodeError)
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error(_REPLACEMENT_CHARACTER, _replacement_character)


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of `value` that JSON can hold: NaN and infinities as the strings Python prints,
    an int too long to print as a note of its size (BugSnag refuses a body with NaN in it)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else repr(value)
    if kind is int:
        try:
            repr(value)
        except ValueError:
            return f"<int of {value.bit_length()} bits>"
        return value
    if depth > 64:
        return "[DEPTH LIMIT]"
    if isinstance(value, Mapping):
        return {
            json_safe(k, depth + 1) if type(k) in (float, int) else k: json_safe(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    return value


class RawJson:
    """JSON text encoded earlier (by encode_text), which encode_spliced puts in as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def encode_spliced(payload: Any) -> bytes | None:
    """encode(payload), byte for byte, where some values are RawJson: each one's text is put
    where it stands. None in the (practically impossible) case that a value of the user's holds
    the marker a RawJson is encoded as first."""
    texts: list[str] = []

    def default(value: object) -> str:
        if type(value) is RawJson:
            texts.append(value.text)
            return _RAW_MARK
        return _fallback(value)

    encoder = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, default=default, skipkeys=True, allow_nan=False
    )
    try:
        text = encoder.encode(payload)
    except ValueError:  # NaN, infinity, a huge int: encode() makes them what JSON holds
        return None
    pieces = text.split(_RAW_MARK_JSON)
    if len(pieces) != len(texts) + 1:
        return None
    spliced = [pieces[0]]
    for text, piece in zip(texts, pieces[1:], strict=True):
        spliced += (text, piece)
    return utf8("".join(spliced))


def _fallback(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def encode_event(payload: JsonDict, breadcrumbs_json: str) -> bytes:
    """encode(payload), byte for byte, for less, for an event payload that no callback has
    seen: `breadcrumbs_json` is its breadcrumbs' text (each breadcrumb is encoded once, not
    once per event), and a frame dict that appears many times (a recursion's frames are one
    dict when nothing may change them) is encoded once."""
    memo: dict[int, str] = {}

    def frames_json(frames: list[JsonDict]) -> RawJson:
        texts = []
        for frame in frames:
            text = memo.get(id(frame))
            if text is None:
                text = memo[id(frame)] = encode_text(frame)
            texts.append(text)
        return RawJson("[" + ",".join(texts) + "]")

    first, *others = payload["events"]
    exceptions = [{**e, "stacktrace": frames_json(e["stacktrace"])} for e in first["exceptions"]]
    event = {**first, "exceptions": exceptions, "breadcrumbs": RawJson(breadcrumbs_json)}
    spliced = encode_spliced({**payload, "events": [event, *others]})
    return spliced if spliced is not None else encode(payload)


# One encoder for every call: json.dumps() with options builds one per call.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=_fallback, skipkeys=True, allow_nan=False
)
# What a RawJson is encoded as before its text replaces it: unguessable, so no value can hold it.
_RAW_MARK = f"\x00raw-json-{os.urandom(8).hex()}\x00"
_RAW_MARK_JSON = json.dumps(_RAW_MARK)


def headers(api_key: str, payload_version: str, body: bytes, sent_at: float) -> dict[str, str]:
    """The headers of one send attempt; the digest is over the exact bytes sent."""
    import hashlib  # here, not at load: the sender needs it, loading does not

    return {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": api_key,
        "Bugsnag-Payload-Version": payload_version,
        "Bugsnag-Sent-At": iso8601(sent_at),
        "Bugsnag-Integrity": "sha1 " + hashlib.sha1(body).hexdigest(),
    }


def redact_event(event: JsonDict, keys: tuple[str, ...], *, breadcrumbs: bool = True) -> None:
    """Redact, in place, the parts of an event whose keys users choose: metadata, breadcrumb
    metadata and user fields. Source text (code windows, cell source) is not a key's value:
    `send_code` alone decides whether it is sent.

    The redacted parts are copies, cut at a depth of 32, so a cycle in the user's metadata
    cannot break encoding even when no key is redacted.
    """
    lowered = _lowered(keys)
    if isinstance(event.get("metaData"), Mapping):
        event["metaData"] = _redact(event["metaData"], lowered, 0)
    if isinstance(event.get("user"), Mapping):
        event["user"] = _redact(event["user"], lowered, 0)
    crumbs = event.get("breadcrumbs")
    if breadcrumbs and isinstance(crumbs, list):
        event["breadcrumbs"] = [
            {**crumb, "metaData": _redact(crumb["metaData"], lowered, 0)}
            if isinstance(crumb, Mapping) and isinstance(crumb.get("metaData"), Mapping)
            else crumb
            for crumb in crumbs
        ]


def redact(value: Any, keys: tuple[str, ...]) -> Any:
    """A copy of `value` with every mapping entry whose key contains one of `keys`
    (case-insensitively) replaced by [REDACTED], at any depth (cut at 32)."""
    return _redact(value, _lowered(keys), 0)


@lru_cache(maxsize=16)
def _lowered(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k.lower() for k in keys)


_SCALARS = (str, int, float, bool, type(None))
_VERDICTS: dict[tuple[str, ...], dict[str, bool]] = {}  # keys -> key -> redacted?, for the hot path


def _redact(value: Any, keys: tuple[str, ...], depth: int) -> Any:
    # Events are redacted on the cell's thread: scalars (most values) return at once, and
    # each key's verdict is remembered, since the same few keys recur in every event.
    if type(value) in _SCALARS:
        return value
    if depth > 32:  # a cycle or absurd nesting: stop rather than recurse forever
        return "[DEPTH LIMIT]"
    if isinstance(value, Mapping):
        return _redact_mapping(value, keys, depth)
    if isinstance(value, list | tuple):
        return [_redact(v, keys, depth + 1) for v in value]
    return value


def _redact_mapping(value: Mapping[Any, Any], keys: tuple[str, ...], depth: int) -> JsonDict:
    verdicts = _VERDICTS.get(keys)
    if verdicts is None:
        if len(_VERDICTS) >= 16:
            _VERDICTS.clear()
        verdicts = _VERDICTS.setdefault(keys, {})
    redacted: JsonDict = {}
    for k, v in value.items():
        key = k if type(k) is str else _fallback(k)  # a key whose str() raises is named so
        verdict = verdicts.get(key)
        if verdict is None:
            if len(verdicts) >= 4096:
                verdicts.clear()
            verdict = verdicts[key] = any(part in key.lower() for part in keys)
        if verdict:
            redacted[key] = REDACTED
        else:  # a scalar (most values are) without a call
            redacted[key] = v if type(v) in _SCALARS else _redact(v, keys, depth + 1)
    return redacted
