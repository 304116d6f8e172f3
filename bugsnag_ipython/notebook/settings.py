"""The options as config files and `%config` see them (each value passes `validated`), and where
each effective value came from: lowest first, defaults, the saved key, config files, `BUGSNAG_*`."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from traitlets import TraitError, TraitType
from traitlets.config import Config, Configurable
from traitlets.config.loader import DeferredConfig, LazyConfigValue

from ..core.config import (
    Configuration,
    ConfigurationError,
    from_environment,
    mask_api_key,
    shown_url,
    validated,
)
from ..core.key_file import KeyFileError, key_file_path, read_key

if TYPE_CHECKING:
    from ..client import Client

# Where an option's effective value came from, as `%config BugsnagIPython` says it.
DEFAULT, CONFIG_FILE, ENVIRONMENT, CALL = "default", "config file", "environment", "call"
KEY_FILE = "key file"  # the key saved by %bugsnag_key (core/key_file.py)
HOW_TO_SET_A_KEY = (
    "run %bugsnag_key to enter it (it is kept for later kernels, never shown), or set "
    "BUGSNAG_API_KEY and run %reload_ext bugsnag_ipython"
)


class BugsnagIPython(Configurable, Configuration):
    """BugSnag session tracking and error reporting for this kernel: the options' traits, as config
    files and `%config` set them. Each has an environment variable, `BUGSNAG_<OPTION>`, which
    comes before config files."""

    def __init__(self, **kwargs: Any) -> None:
        self.from_files: dict[str, Any] = {}  # the options config files set, validated
        self.problems: list[str] = []  # the config files' refused values, one sentence each
        self.client: Client | None = None  # what `%config` changes once loaded; None at load
        super().__init__(**kwargs)

    def update_config(self, config: Config) -> None:
        """`%config BugsnagIPython.x = …`: the values given now, and only those, are checked and
        applied (traitlets would load every value of the config files again, as calls)."""
        self._load_config(config)

    def _load_config(self, cfg: Config, section_names: list[str] | None = None,
                     traits: dict[str, TraitType[Any, Any]] | None = None) -> None:
        accepted: dict[str, Any] = {}
        for name, value in self._find_my_config(cfg).items():
            trait = self.traits(config=True).get(name)
            try:
                if trait is not None and isinstance(value, LazyConfigValue):  # c.X.discard_classes.append(…)
                    value = value.get_value(list(getattr(self, name)))
                elif trait is not None and isinstance(value, DeferredConfig):  # from the command line
                    value = value.get_value(trait)
                accepted[name] = validated(name, value)
            except (TraitError, ValueError) as error:
                if not isinstance(error, ConfigurationError):
                    error = ConfigurationError(f"{name} could not be read: {error}.")
                if self.client is None:
                    self.problems.append(f"{error} (from IPython config; the default is used instead)")
                else:
                    print(f"bugsnag_ipython: {error}", file=sys.stderr)
        # Validated keys and URLs are MaskedApiKey and MaskedUrl: `%config BugsnagIPython.api_key` hides them.
        super()._load_config(Config({type(self).__name__: accepted}), section_names, traits)
        if self.client is None:
            self.from_files.update(accepted)
        elif accepted:
            self.client.configure(CALL, **accepted)

    @classmethod
    def class_get_help(cls, inst: Any = None) -> str:
        """`%config BugsnagIPython`: each option's effective value and where it came from."""
        client = getattr(inst, "client", None)
        if client is None:
            return str(super().class_get_help(inst))
        # An app version nobody set is the release found (`git`, …), waited for as a payload waits.
        config, origins = client.config, client.origins
        release = client.release_lookup.result() if config.app_version is None else None
        if release is not None:
            config = config.replace(app_version=release.version)
            origins = {**origins, "app_version": release.origin}
        return describe(config, origins)


class OptionSources:
    """The options at load, and again at `%reload_ext`, with where each came from."""

    def __init__(self, settings: BugsnagIPython, default_project_root: str) -> None:
        self.settings = settings
        self.default_project_root = default_project_root
        self.environment = dict(os.environ)  # what `reread` compares the variables with
        self.problems: list[str] = []  # each refused value, and the saved key's problem

    def initial(self) -> tuple[Configuration, dict[str, str]]:
        """The options and where each came from."""
        config, origins = Configuration(), {}
        problems = list(self.settings.problems)
        if "api_key" not in self.settings.from_files and not os.environ.get("BUGSNAG_API_KEY", "").strip():
            try:
                saved = read_key(key_file_path())
            except KeyFileError as error:
                saved = None
                problems.append(str(error))
            if saved is not None:
                config, origins["api_key"] = config.replace(api_key=saved), KEY_FILE
        config = config.replace(**self.settings.from_files)
        origins.update(dict.fromkeys(self.settings.from_files, CONFIG_FILE))
        changes, refused_variables = from_environment(os.environ)
        self.problems = problems + refused_variables
        origins.update(dict.fromkeys(changes, ENVIRONMENT))
        config = config.replace(**changes)
        if config.project_root is None:
            config = config.replace(project_root=self.default_project_root)
        return config, origins

    def reread(self, client: Client) -> None:
        """`%reload_ext`: apply the `BUGSNAG_*` variables that changed since they were last read; a
        variable removed gives its option back to what comes below it. The others keep what calls set."""
        before, self.environment = self.environment, dict(os.environ)
        config, origins = self.initial()
        for name in Configuration.option_names():
            variable = Configuration.ENV_PREFIX + name.upper()
            if before.get(variable) == self.environment.get(variable):
                continue
            removed = variable not in self.environment and client.origins.get(name) == ENVIRONMENT
            if origins.get(name) == ENVIRONMENT or removed:  # a refused value changes nothing
                client.configure(origins.get(name, DEFAULT), **{name: getattr(config, name)})


def describe(config: Configuration, origins: Mapping[str, str]) -> str:
    """The options of `config`, one a line: name, effective value (API key masked), origin."""
    rows = [(name, _shown(config, name), origins.get(name, DEFAULT))
            for name in Configuration.option_names()]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    return "\n".join([
        "BugsnagIPython options (effective value, and where it came from):",
        *(f"  {name:<{width}}  {value:<{value_width}}  {origin}" for name, value, origin in rows),
        "Change one with %config BugsnagIPython.<option> = <value> "
        "or bugsnag_ipython.configure(<option>=<value>).",
    ])


def _shown(config: Configuration, name: str) -> str:
    value = getattr(config, name)
    if name == "api_key":
        return mask_api_key(value)
    if name == "notify_endpoint":
        return shown_url(config.notify_url)  # never the credentials a URL may carry
    if name == "sessions_endpoint":
        if config.sessions_url is None:
            return "(off: notify_endpoint is set alone)"
        return shown_url(config.sessions_url)
    if value is None:
        return {"enabled_release_stages": "(all)", "persistence_directory": "(the user cache dir)"}.get(
            name, "(none)")
    if isinstance(value, tuple):
        return ", ".join(value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
