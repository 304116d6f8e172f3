"""Requests as bugsnag-js and bugsnag-android send them, written from those notifiers' public source.

Each builder returns (headers, body) exactly as the notifier would put them on the wire:
- bugsnag-js: `packages/delivery-fetch/src/delivery.ts` and `packages/delivery-node/src/delivery.ts`
  (headers `Bugsnag-Payload-Version: 4` for events, `1` for sessions; no integrity header, except
  from the browser's XHR delivery in a secure context, which sends `sha1 <hex>`);
  `packages/core/event.js` `toJSON()` (`payloadVersion: '4'` inside each event, none at the top);
  `packages/core/client.js` `_notify()` (`{apiKey, notifier, events: [event]}`);
  `packages/plugin-browser-session` (`sessions: [{id, startedAt, user}]`) and
  `packages/plugin-server-session` (`sessionCounts: [{startedAt, sessionsStarted}]` per minute,
  `device: {}`, `app.version` left out when not configured).
- bugsnag-android: `DeliveryHeaders.kt` (`4.0` / `1.0`, `Bugsnag-Stacktrace-Types`, and
  `Bugsnag-Integrity: sha1 <hex>` always), `EventPayload.kt` (`apiKey`, `payloadVersion: "4.0"`),
  `EventInternal.kt` (the event: `threads`, `featureFlags`, the session's `events` counts),
  `SessionPayload.kt` (`sessions: [{id, startedAt, user}]`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.payloads import API_KEY as API_KEY  # the same key as every other test's

SENT_AT = "2026-12-01T08:05:00.000Z"


def _js_body(payload: object) -> bytes:
    # JSON.stringify: no spaces, non-ASCII characters as they are.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sha1(body: bytes) -> str:
    return f"sha1 {hashlib.sha1(body).hexdigest()}"


# -- bugsnag-js -----------------------------------------------------------------------------------


JS_BROWSER_NOTIFIER = {
    "name": "Bugsnag JavaScript",
    "version": "8.1.1",
    "url": "https://github.com/bugsnag/bugsnag-js",
}
JS_NODE_NOTIFIER = {
    "name": "Bugsnag Node",
    "version": "8.1.1",
    "url": "https://github.com/bugsnag/bugsnag-js",
}


def js_browser_session(session_id: str, *, version: str, stage: str) -> tuple[dict[str, str], bytes]:
    body = _js_body(
        {
            "notifier": JS_BROWSER_NOTIFIER,
            "device": {"locale": "en-GB", "userAgent": "Mozilla/5.0", "time": SENT_AT},
            "app": {"releaseStage": stage, "version": version, "type": "browser"},
            "sessions": [{"id": session_id, "startedAt": "2026-12-01T08:03:42.123Z", "user": {}}],
        }
    )
    headers = {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": API_KEY,
        "Bugsnag-Payload-Version": "1",
        "Bugsnag-Sent-At": SENT_AT,
        "Bugsnag-Integrity": _sha1(body),  # sendPayloadChecksums in a secure context
    }
    return headers, body


def js_event(
    *, runtime: str, version: str | None, stage: str, session: dict[str, Any] | None, unhandled: bool
) -> dict[str, Any]:
    """One event as `Event.prototype.toJSON` makes it (runtime: 'browserjs' or 'nodejs')."""
    app: dict[str, Any] = {"releaseStage": stage, "type": "browser" if runtime == "browserjs" else "node"}
    if version is not None:
        app["version"] = version
    event: dict[str, Any] = {
        "payloadVersion": "4",
        "exceptions": [
            {
                "errorClass": "TypeError",
                "errorMessage": "Cannot read properties of undefined (reading 'naïve')",
                "message": "Cannot read properties of undefined (reading 'naïve')",
                "type": runtime,
                "stacktrace": [
                    {
                        "file": "https://example.com/app.js",
                        "lineNumber": 12,
                        "columnNumber": 7,
                        "method": "render",
                        "inProject": True,
                    },
                ],
            }
        ],
        "severity": "error" if unhandled else "warning",
        "unhandled": unhandled,
        "severityReason": {"type": "unhandledException" if unhandled else "handledException"},
        "app": app,
        "device": {"time": SENT_AT},
        "request": {},
        "breadcrumbs": [],
        "context": "/checkout",
        "metaData": {},
        "user": {},
        "featureFlags": [],
    }
    if session is not None:
        event["session"] = session
    return event


def js_notify(event: dict[str, Any], *, node: bool) -> tuple[dict[str, str], bytes]:
    notifier = JS_NODE_NOTIFIER if node else JS_BROWSER_NOTIFIER
    body = _js_body({"apiKey": API_KEY, "notifier": notifier, "events": [event]})
    headers = {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": API_KEY,
        "Bugsnag-Payload-Version": "4",
        "Bugsnag-Sent-At": SENT_AT,
    }
    return headers, body


def js_node_session_counts(counts: list[tuple[str, int]], *, stage: str) -> tuple[dict[str, str], bytes]:
    """plugin-server-session's summary; no app.version when the app configured none."""
    body = _js_body(
        {
            "notifier": JS_NODE_NOTIFIER,
            "device": {},
            "app": {"releaseStage": stage, "type": "node"},
            "sessionCounts": [{"startedAt": started, "sessionsStarted": n} for started, n in counts],
        }
    )
    headers = {
        "Content-Type": "application/json",
        "Bugsnag-Api-Key": API_KEY,
        "Bugsnag-Payload-Version": "1",
        "Bugsnag-Sent-At": SENT_AT,
    }
    return headers, body


# -- bugsnag-android ------------------------------------------------------------------------------


ANDROID_NOTIFIER = {
    "name": "Android Bugsnag Notifier",
    "version": "6.26.0",
    "url": "https://bugsnag.com",
}
ANDROID_APP = {
    "binaryArch": "arm64",
    "buildUUID": "3f2e0c5a",
    "id": "com.example.shop",
    "releaseStage": "production",
    "type": "android",
    "version": "5.2.0",
    "versionCode": 52,
}
ANDROID_DEVICE = {
    "cpuAbi": ["arm64-v8a"],
    "jailbroken": False,
    "id": "f0c3b1",
    "locale": "en_US",
    "manufacturer": "Google",
    "model": "Pixel 7",
    "osName": "android",
    "osVersion": "14",
    "runtimeVersions": {"androidApiLevel": "34", "osBuild": "UQ1A"},
    "totalMemory": 8_000_000_000,
}


def android_session(session_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "notifier": ANDROID_NOTIFIER,
            "app": ANDROID_APP,
            "device": ANDROID_DEVICE,
            "sessions": [
                {"id": session_id, "startedAt": "2026-12-01T08:03:42.123Z", "user": {"id": "f0c3b1"}}
            ],
        }
    ).encode("utf-8")
    headers = {
        "Bugsnag-Payload-Version": "1.0",
        "Bugsnag-Api-Key": API_KEY,
        "Bugsnag-Sent-At": SENT_AT,
        "Content-Type": "application/json",
        "Bugsnag-Integrity": _sha1(body),
    }
    return headers, body


def android_event(session_id: str, *, unhandled: int, handled: int = 0) -> tuple[dict[str, str], bytes]:
    frames = [
        {
            "method": "com.example.shop.CartActivity.onCreate",
            "file": "CartActivity.kt",
            "lineNumber": 42,
            "inProject": True,
        },
        {"method": "android.app.Activity.performCreate", "file": "Activity.java", "lineNumber": 8000},
    ]
    event = {
        "context": "CartActivity",
        "metaData": {"app": {"memoryUsage": 1234}},
        "severity": "error",
        "severityReason": {"type": "unhandledException", "unhandledOverridden": False},
        "unhandled": True,
        "exceptions": [
            {
                "errorClass": "java.lang.IllegalStateException",
                "message": "cart is empty",
                "stacktrace": frames,
                "type": "android",
            }
        ],
        "projectPackages": ["com.example.shop"],
        "user": {"id": "f0c3b1"},
        "app": {**ANDROID_APP, "duration": 5000, "durationInForeground": 4000, "inForeground": True},
        "device": {**ANDROID_DEVICE, "time": SENT_AT, "orientation": "portrait"},
        "breadcrumbs": [{"timestamp": SENT_AT, "name": "Bugsnag loaded", "type": "state", "metaData": {}}],
        "threads": [
            {
                "id": 2,
                "name": "main",
                "type": "android",
                "state": "RUNNABLE",
                "errorReportingThread": True,
                "stacktrace": frames,
            }
        ],
        "featureFlags": [],
        "session": {
            "id": session_id,
            "startedAt": "2026-12-01T08:03:42.123Z",
            "events": {"handled": handled, "unhandled": unhandled},
        },
    }
    body = json.dumps(
        {
            "apiKey": API_KEY,
            "payloadVersion": "4.0",
            "notifier": ANDROID_NOTIFIER,
            "events": [event],
        }
    ).encode("utf-8")
    headers = {
        "Bugsnag-Payload-Version": "4.0",
        "Bugsnag-Api-Key": API_KEY,
        "Bugsnag-Sent-At": SENT_AT,
        "Content-Type": "application/json",
        "Bugsnag-Stacktrace-Types": "android",
        "Bugsnag-Integrity": _sha1(body),
    }
    return headers, body
