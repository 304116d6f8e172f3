"""What the tests send to a collector: the project's API key, payloads shaped as BugSnag's
notifiers shape them, their headers, and one way to post them."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import requests

API_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
# Another project's key. Its last four digits stand in it twice: a mask that shows more than
# the last four shows them twice.
OTHER_KEY = "0123456789abcdef0123456789abcdef"
NOTIFIER = {
    "name": "Bugsnag IPython",
    "version": "0.1.0",
    "url": "https://github.com/bugsnag-ipython/bugsnag-ipython",
}


def session_payload(
    session_id: str | None = None, version: str | None = "1.2.3", stage: str = "production"
) -> dict[str, Any]:
    app: dict[str, Any] = {"type": "jupyter", "releaseStage": stage}
    if version is not None:
        app["version"] = version
    return {
        "notifier": dict(NOTIFIER),
        "app": app,
        "device": {
            "hostname": "h",
            "osName": "linux",
            "osVersion": "6.1",
            "runtimeVersions": {"python": "3.11.7"},
        },
        "sessions": [
            {
                "id": session_id or str(uuid.uuid4()),
                "startedAt": "2026-12-01T08:03:42.123Z",
                "user": {"id": "u"},
            }
        ],
    }


def event_payload(
    *,
    unhandled: bool = True,
    session_id: str | None = None,
    handled_count: int = 0,
    unhandled_count: int = 1,
    version: str | None = "1.2.3",
    stage: str = "production",
    error_class: str = "ZeroDivisionError",
    message: str = "division by zero",
) -> dict[str, Any]:
    app: dict[str, Any] = {
        "type": "jupyter",
        "releaseStage": stage,
        "duration": 12345,
        "durationInForeground": 230,
        "inForeground": True,
    }
    if version is not None:
        app["version"] = version
    event: dict[str, Any] = {
        "exceptions": [
            {
                "errorClass": error_class,
                "message": message,
                "type": "python",
                "stacktrace": [
                    {
                        "file": "<cell 3>",
                        "lineNumber": 3,
                        "method": "<module>",
                        "inProject": True,
                        "code": {"3": "1/0"},
                    }
                ],
            }
        ],
        "severity": "error" if unhandled else "warning",
        "severityReason": {"type": "unhandledException" if unhandled else "handledException"},
        "unhandled": unhandled,
        "context": "notebook.ipynb",
        "app": app,
        "device": {"hostname": "h", "time": "2026-12-01T08:05:00.000Z"},
        "user": {"id": "u"},
        "breadcrumbs": [],
        "metaData": {},
    }
    if session_id is not None:
        event["session"] = {
            "id": session_id,
            "startedAt": "2026-12-01T08:03:42.123Z",
            "events": {"handled": handled_count, "unhandled": unhandled_count},
        }
    return {
        "apiKey": API_KEY,
        "payloadVersion": "4.0",
        "notifier": dict(NOTIFIER),
        "events": [event],
    }


def build_payload(
    version: str = "1.2.3",
    stage: str | None = "production",
    *,
    revision: str | None = "4f2c1e9a0b7d3c5e8f1a2b3c4d5e6f708192a3b4",
    builder: str | None = "ci",
) -> dict[str, Any]:
    """A Build API body as bugsnag-build-reporter and bugsnag-cli send it."""
    build: dict[str, Any] = {"apiKey": API_KEY, "appVersion": version, "buildTool": "tests"}
    if stage is not None:
        build["releaseStage"] = stage
    if builder is not None:
        build["builderName"] = builder
    if revision is not None:
        build["sourceControl"] = {
            "provider": "github",
            "repository": "https://github.com/example/notebooks",
            "revision": revision,
        }
    return build


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode("utf-8")


def headers_for(kind: str, body: bytes, *, api_key: str = API_KEY) -> dict[str, str]:
    """The headers a notifier sends with `body` to the `kind` endpoint ("events", "sessions" or
    "builds": the Build API takes its key in the body, and no header of BugSnag's)."""
    if kind == "builds":
        return {"Content-Type": "application/json"}
    return {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": api_key,
        "Bugsnag-Payload-Version": "1.0" if kind == "sessions" else "4.0",
        "Bugsnag-Sent-At": "2026-12-01T08:03:42.200Z",
        "Bugsnag-Integrity": f"sha1 {hashlib.sha1(body).hexdigest()}",
    }


def post(
    url: str,
    kind: str,
    payload: object,
    *,
    headers: dict[str, str] | None = None,
    http: requests.Session | None = None,
    timeout: float = 5.0,
    **header_changes: str,
) -> requests.Response:
    """POST `payload` (bytes as they are, anything else as JSON) to `url` as a notifier sends a
    `kind`, with `headers` in place of its usual ones (a replayed request's own), and
    `header_changes` over them (`Bugsnag_Api_Key=""` sets `Bugsnag-Api-Key` empty)."""
    body = payload if isinstance(payload, bytes) else encode(payload)
    sent = dict(headers) if headers is not None else headers_for(kind, body)
    sent.update({name.replace("_", "-"): value for name, value in header_changes.items()})
    return (http or requests).post(url, data=body, headers=sent, timeout=timeout)
