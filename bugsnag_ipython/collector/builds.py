"""Checks a Build API request (a release's version, stage, builder and commit) the way
build.bugsnag.com does. Pure: no I/O.

The fields are the ones the official clients send (bugsnag-build-reporter, bugsnag-cli):
`apiKey` and `appVersion` required; `releaseStage`, `builderName`, `buildTool`,
`appVersionCode`, `appBundleVersion`, `sourceControl` ({provider, repository, revision}),
`metadata` (strings only) and `autoAssignRelease` optional, each also allowed as null, which
is how those clients leave a field unset. Other fields are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .validation import Refusal, Verdict, check_content_type, parse_json, too_large

_API_KEY = re.compile(r"[0-9a-fA-F]{32}")
_OPTIONAL_STRINGS = ("releaseStage", "builderName", "buildTool", "appVersionCode", "appBundleVersion")


def check_build(headers: Mapping[str, str], body: bytes) -> Verdict:
    """Return the Build API's verdict: 200 with the parsed build, or 400 with one sentence."""
    if (refused := too_large(body)) is not None:
        return refused
    try:
        check_content_type({name.lower(): value for name, value in headers.items()})
        build = parse_json(body)
        if not isinstance(build, dict):
            raise Refusal("The body must be a JSON object.")
        _check_build(build)
    except Refusal as refusal:
        return Verdict(400, str(refusal))
    return Verdict(200, "Accepted.", build)


def _check_build(build: dict[str, Any]) -> None:
    api_key = build.get("apiKey")
    if not isinstance(api_key, str) or not _API_KEY.fullmatch(api_key):
        raise Refusal("The field apiKey must be the project's API key: 32 hexadecimal digits.")
    version = build.get("appVersion")
    if not isinstance(version, str) or not version.strip():
        raise Refusal("The field appVersion must be a non-empty string.")
    for name in _OPTIONAL_STRINGS:
        value = build.get(name)
        if value is not None and not (isinstance(value, str) and value):
            raise Refusal(f"The field {name} must be a non-empty string or null.")
    source = build.get("sourceControl")
    if source is not None:
        if not isinstance(source, dict):
            raise Refusal("The field sourceControl must be an object with repository and revision.")
        for name in ("repository", "revision"):
            if not (isinstance(source.get(name), str) and source[name]):
                raise Refusal(f"The field sourceControl.{name} must be a non-empty string.")
        provider = source.get("provider")
        if provider is not None and not (isinstance(provider, str) and provider):
            raise Refusal("The field sourceControl.provider must be a non-empty string or null.")
    metadata = build.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(value, str) for value in metadata.values())
    ):
        raise Refusal("The field metadata must be an object whose values are strings.")
    assign = build.get("autoAssignRelease")
    if assign is not None and not isinstance(assign, bool):
        raise Refusal("The field autoAssignRelease must be true or false.")
