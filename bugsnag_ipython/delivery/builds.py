"""A release reported to BugSnag's Build API (for `bugsnag-ipython release`), which links an app
version to its commit: {"apiKey", "appVersion", "releaseStage", "builderName", "sourceControl":
{"provider", "repository", "revision"}, "metadata"} POSTed to build.bugsnag.com."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..core.basics import JsonDict
from ..core.config import Configuration, ConfigurationError, shown_host
from ..core.release import Release

DEFAULT_BUILD_ENDPOINT = "https://build.bugsnag.com/"
SMARTBEAR_BUILD_ENDPOINT = "https://build.bugsnag.smartbear.com/"
ENDPOINT_VARIABLE = "BUGSNAG_BUILD_ENDPOINT"
TIMEOUT = 30.0


class BuildError(Exception):
    """A release that could not be reported, said in one sentence (the text)."""


@dataclass(frozen=True)
class Build:
    """One release to report."""

    api_key: str
    app_version: str
    release_stage: str
    builder_name: str | None
    release: Release | None  # where the version was found: its source control facts
    metadata: Mapping[str, str]

    def payload(self) -> JsonDict:
        body: JsonDict = {"apiKey": self.api_key, "appVersion": self.app_version,
                          "releaseStage": self.release_stage}
        if self.builder_name:
            body["builderName"] = self.builder_name
        release = self.release
        if release is not None and release.revision:
            control = {"revision": release.revision, "repository": release.repository,
                       "provider": release.provider}
            body["sourceControl"] = {k: v for k, v in control.items() if v}
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body


def build_endpoint(api_key: str, env: Mapping[str, str]) -> str:
    """`BUGSNAG_BUILD_ENDPOINT`, else BugSnag's, on SmartBear's hosts for keys 00000…"""
    given = env.get(ENDPOINT_VARIABLE, "").strip()
    if given:
        parts = urlsplit(given)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BuildError(f"{ENDPOINT_VARIABLE} is not an http(s) URL; set it to the Build API's "
                             "address, such as https://build.bugsnag.com/.")
        return given
    return SMARTBEAR_BUILD_ENDPOINT if api_key.startswith("00000") else DEFAULT_BUILD_ENDPOINT


def checked_key(api_key: str | None) -> str:
    """The API key as the configuration takes it; BuildError when there is none or it is refused."""
    if not api_key:
        raise BuildError("No API key is set, so no release can be reported; set BUGSNAG_API_KEY "
                         "or pass --api-key.")
    try:
        validated = Configuration().replace(api_key=api_key).api_key
    except ConfigurationError as error:
        raise BuildError(str(error)) from None
    assert validated is not None
    return validated


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """`--metadata key=value` pairs as a dict; a pair without `=` is refused."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BuildError(f"--metadata {pair!r} is not key=value; give it as, for example, "
                             "--metadata pipeline=nightly.")
        found[key.strip()] = value
    return found


def report_build(build: Build, endpoint: str) -> list[str]:
    """POST the build; returns the warnings the API gave. Raises BuildError in one sentence."""
    import requests  # here: the command line's other tools do not need it

    host = shown_host(endpoint)
    try:
        response = requests.post(endpoint, json=build.payload(), timeout=TIMEOUT)
    except requests.RequestException as error:
        raise BuildError(f"The Build API at {host} could not be reached ({type(error).__name__}); "
                         f"check the network or {ENDPOINT_VARIABLE}.") from None
    try:
        answer = response.json()
    except ValueError:  # requests' JSONDecodeError is one
        answer = None
    answer = answer if isinstance(answer, dict) else {}
    if not 200 <= response.status_code < 300:
        said = answer.get("errors") or answer.get("error") or response.reason
        if isinstance(said, list):
            said = "; ".join(map(str, said))
        raise BuildError(f"The Build API at {host} refused the release (HTTP {response.status_code}: "
                         f"{str(said)[:300]}).")
    warnings = answer.get("warnings")
    return [str(w) for w in warnings] if isinstance(warnings, list) else []

