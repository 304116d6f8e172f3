"""The configured secrets (the API key, the endpoints' credentials) out of a finished payload,
wherever it carries them (a code window, a breadcrumb, metadata, a message), as [REDACTED].

One substring search per secret in the encoded body; the body is decoded, walked and encoded
again only when one is found, so that only what the decoded strings hold is replaced, never a
match inside another string's escape sequence."""

from __future__ import annotations

import json
from functools import lru_cache

from .payloads import REDACTED, encode, strings_replaced, utf8

_API_KEY_HEAD = b'{"apiKey":"'


@lru_cache(maxsize=8)
def _needles(secrets: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """Each secret with its JSON text, the longest first: a `user:password` is replaced whole
    before its password alone."""
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    return tuple((secret, utf8(json.dumps(secret, ensure_ascii=False)[1:-1])) for secret in ordered)


def scrub(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` (an encoded session or event payload) with every one of `secrets` in its strings
    replaced by [REDACTED]; the payload's own `apiKey`, which BugSnag needs, is left as it is."""
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
    encoded = encode(cleaned)
    if "events" in cleaned:  # [REDACTED] is longer than a short credential: trimmed again if need be
        from .trimming import MAX_PAYLOAD_BYTES, fit

        if len(encoded) > MAX_PAYLOAD_BYTES:
            encoded = encode(fit(cleaned, size=len(encoded)))
    return encoded
