"""One POST with the standard library only: the watcher's (deaths/watcher.py), which must stay
small and has one payload to send, so it imports neither `requests` nor its dependencies.

It sends what HttpTransport sends (the same headers, the integrity digest over the exact
bytes), through the proxies the environment names, and verifies TLS against the CA bundle
`requests` would use (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's when installed, else
the system's).
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ..report import payloads
from .transport import CONNECT_TIMEOUT, Envelope, Outcome, retry_after

TIMEOUT = CONNECT_TIMEOUT + 2.0  # seconds, of the connection and of each read: one payload


class PlainTransport:
    """Sends one envelope with urllib; never raises for a failed send."""

    def send(self, envelope: Envelope) -> Outcome:
        import urllib.error
        import urllib.request

        headers = payloads.headers(envelope.api_key, envelope.payload_version, envelope.body, time.time())
        url, authorization = _without_userinfo(envelope.url)
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=envelope.body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=_tls(url)) as response:
                response.read()
                return Outcome(response.status, retry_after=retry_after(dict(response.headers.items())))
        except urllib.error.HTTPError as error:
            return Outcome(error.code, retry_after=retry_after(dict(error.headers.items())))
        except TimeoutError:
            return Outcome(None, error="the endpoint did not answer in time")
        except Exception as error:  # URLError, a TLS error, a broken connection: no answer
            reason = getattr(error, "reason", error)
            return Outcome(None, error=f"could not connect to the endpoint ({reason})")

    def close(self) -> None:
        pass


def _without_userinfo(url: str) -> tuple[str, str | None]:
    """The URL without the credentials it carries, and those as a Basic Authorization header
    (as `requests` sends them)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def _tls(url: str) -> Any:
    if not url.startswith("https:"):
        return None
    import ssl

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        try:
            import certifi

            bundle = certifi.where()
        except ImportError:
            bundle = None
    return ssl.create_default_context(cafile=bundle)
