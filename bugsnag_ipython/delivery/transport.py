"""Transports send one `Payload` and return its `Outcome`, never raising for a failed send:
`HttpTransport` (the sender's, one `requests.Session`), `PlainTransport` (the kernel-death watcher's:
the standard library, with the proxies and CA bundle `requests` would use), `NullTransport` (none)."""

from __future__ import annotations

import base64
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import certifi  # what requests, which this package requires, verifies with

from ..core.config import without_credentials
from .payload import Outcome, Payload

CONNECT_TIMEOUT = 3.05  # a little over a multiple of 3 s, the TCP retransmission window
READ_TIMEOUT = 10.0
PLAIN_TIMEOUT = CONNECT_TIMEOUT + 2.0  # of the watcher's connection and of each read
MAX_RETRY_AFTER = 24 * 3600.0  # a longer Retry-After is taken as a server's mistake


class Transport(Protocol):
    def send(self, payload: Payload) -> Outcome: ...


class HttpTransport:
    def __init__(self) -> None:
        import netrc  # noqa: F401  (requests imports it at the first request: do it here, under the fork guard)

        import requests

        self._session = requests.Session()

    def send(self, payload: Payload) -> Outcome:
        try:
            headers = payload.headers(time.time())
            response = self._session.post(payload.url, data=payload.body, headers=headers,
                                          timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except Exception as error:  # no answer (requests' errors, and any other)
            return Outcome(None, error=plain_error(error))
        response.close()
        return Outcome(response.status_code, retry_after=retry_after(response.headers))


class PlainTransport:
    def send(self, payload: Payload) -> Outcome:
        import urllib.error
        import urllib.request

        headers = payload.headers(time.time())
        url, authorization = _without_userinfo(payload.url)
        headers.update(authorization)
        request = urllib.request.Request(url, data=payload.body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=PLAIN_TIMEOUT, context=_tls(url)) as response:
                response.read()
                return Outcome(response.status)
        except urllib.error.HTTPError as error:
            return Outcome(error.code)
        except Exception as error:  # no answer: URLError, a timeout, a TLS error, a broken connection
            reason = getattr(error, "reason", error)
            return Outcome(None, error=plain_error(reason if isinstance(reason, Exception) else error))


class NullTransport:
    def send(self, payload: Payload) -> Outcome:
        return Outcome(202)


def plain_error(error: Exception) -> str:
    """A failed request in words a notebook user can act on."""
    name = type(error).__name__
    text = without_credentials(str(error))  # requests' messages may hold the URL
    if "Timeout" in name:
        return "the endpoint did not answer in time"
    if "SSL" in name:
        return f"a TLS error ({text})"
    if "Connection" in name:
        return "could not connect to the endpoint"
    return f"{name}: {text}"


def retry_after(response_headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a Retry-After: seconds (fractional too, unlike urllib3's) or an HTTP date."""
    value = response_headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its credentials, and those as the Basic Authorization header `requests` sends."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def _tls(url: str) -> Any:
    if not url.startswith("https:"):
        return None
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    return ssl.create_default_context(cafile=bundle)
