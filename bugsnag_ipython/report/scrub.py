"""The configured secrets (the API key, the endpoints' credentials) out of a finished payload,
wherever it carries them (a code window, a breadcrumb, metadata, a message), as [REDACTED].

Done once per payload, on its encoded body: one substring search per secret, as JSON escapes
it, and the body decoded, walked and encoded again only when one is found (the walk replaces
only what the decoded strings hold, not a match inside another string's escape sequence).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from .payloads import REDACTED, encode, strings_replaced, utf8

_API_KEY_HEAD = b'{"apiKey":"'


@lru_cache(maxsize=8)
def _needles(secrets: tuple[str, ...]) -> tuple[tuple[tuple[str, bytes], ...], tuple[bytes, ...]]:
    """Each secret with its JSON text, the longest first (a `user:password` is replaced whole
    before its password alone); and the texts to search for: those holding no other one (where
    the password is absent, so is the `user:password` that holds it)."""
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    needles = tuple((secret, utf8(json.dumps(secret, ensure_ascii=False)[1:-1])) for secret in ordered)
    texts = [text for _, text in needles]
    probes = tuple(text for text in texts if not any(o != text and o in text for o in texts))
    return needles, probes


def scrub(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` (an encoded session or event payload) with every one of `secrets` in its strings
    replaced by [REDACTED]; the payload's own `apiKey`, which BugSnag needs, is left as it is."""
    if not secrets:
        return body
    needles, probes = _needles(secrets)

    def replaced(text: str) -> str:
        for secret, _ in needles:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    start = 0
    if body.startswith(_API_KEY_HEAD):  # an event payload: its apiKey comes first
        start = body.find(b'"', len(_API_KEY_HEAD)) + 1
    if not any(body.find(probe, start) >= 0 for probe in probes):
        return body  # nearly every payload: a search per secret, in C
    try:
        payload = json.loads(body)
        cleaned = {
            key: value if key == "apiKey" else strings_replaced(value, replaced)
            for key, value in payload.items()
        }
    except Exception:  # not a payload of ours after all: the bytes, then, never the secret
        head, tail = body[:start], body[start:]
        for _, needle in needles:
            tail = tail.replace(needle, REDACTED.encode())
        return head + tail
    return _within_limit(cleaned)


def _within_limit(payload: dict[str, Any]) -> bytes:
    # [REDACTED] is longer than a short credential: an event at the limit is trimmed again.
    from .trimming import MAX_PAYLOAD_BYTES, fit

    encoded = encode(payload)
    if len(encoded) > MAX_PAYLOAD_BYTES and "events" in payload:
        encoded = encode(fit(payload, size=len(encoded)))
    return encoded
