"""The IPython configurable `BugsnagIPython`: options from config files and `%config`.

Every option of :class:`Configuration` is a trait here, `None` meaning "not set in config".
Config files are read at load; a later `%config BugsnagIPython.x = …` is validated like
`configure()` and applied, and a refused value is said in the package's one sentence (not as
traitlets' logged error) and leaves the trait unchanged. `%config BugsnagIPython` lists the
effective value of each option and where it came from.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import TraitError, TraitType, validate
from traitlets.config import Config, Configurable

from ..core.config import Configuration, ConfigurationError, MaskedApiKey, MaskedUrl, mask_api_key, shown_url

_HELP = "BugSnag option {name} (None: not set here; see the README for its default)."

# Where an option's effective value came from, as `%config BugsnagIPython` says it.
DEFAULT, CONFIG_FILE, ENVIRONMENT, CALL = "default", "config file", "environment", "call"
KEY_FILE = "key file"  # the key saved by %bugsnag_key (core/key_file.py)


def _trait_for(field: dataclasses.Field[Any]) -> TraitType[Any, Any]:
    # Untyped traits: the one validation of every option is Configuration's, so that a bad
    # value gets its sentence, never a trait-type error worded by traitlets.
    return AnyTrait(None, allow_none=True, help=_HELP.format(name=field.name)).tag(config=True)


class _Settings(Configurable):
    """The behaviour of BugsnagIPython; its traits are made from the Configuration dataclass
    below, so that every option is declared once."""

    on_change: Callable[[str, Any], None] | None = None
    # The effective options and their origins, for `%config BugsnagIPython`; set by the glue.
    effective: Callable[[], tuple[Configuration, Mapping[str, str]]] | None = None

    def set_options(self) -> dict[str, Any]:
        """The options given a value by IPython config."""
        options = {}
        for name in Configuration.option_names():
            value = getattr(self, name)
            if value is not None:
                options[name] = tuple(value) if isinstance(value, list) else value
        return options

    @validate(*Configuration.option_names())
    def _check(self, proposal: Any) -> Any:
        name = proposal["trait"].name
        value = proposal["value"]
        if self.on_change is not None and value is not None:
            try:
                # Validates and applies; a refusal is one sentence.
                self.on_change(name, tuple(value) if isinstance(value, list) else value)
            except ConfigurationError as error:
                # A TraitError makes traitlets put the trait back as it was.
                raise TraitError(str(error)) from None
        if name == "api_key" and isinstance(value, str):
            return MaskedApiKey(value)
        if name.endswith("_endpoint") and isinstance(value, str):
            return MaskedUrl(value)
        return value

    def update_config(self, config: Config) -> None:
        """`%config BugsnagIPython.x = …`: a refused value is said in one sentence in the cell,
        instead of the traceback-less `ERROR:root:` line traitlets' error would make."""
        try:
            super().update_config(config)
        except TraitError as error:
            print(f"bugsnag_ipython: {error}", file=sys.stderr)

    @classmethod
    def class_get_help(cls, inst: Any = None) -> str:
        """`%config BugsnagIPython`: each option's effective value and where it came from."""
        effective = getattr(inst, "effective", None)
        if effective is None:
            return str(super().class_get_help(inst))
        config, origins = effective()
        return describe(config, origins)


def describe(config: Configuration, origins: Mapping[str, str]) -> str:
    """The options of `config`, one a line: name, effective value (API key masked), origin."""
    rows = [(name, _shown(config, name), origins.get(name, DEFAULT))
            for name in Configuration.option_names()]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = ["BugsnagIPython options (effective value, and where it came from):"]
    lines += [f"  {name:<{width}}  {value:<{value_width}}  {origin}" for name, value, origin in rows]
    lines.append(
        "Change one with %config BugsnagIPython.<option> = <value> "
        "or bugsnag_ipython.configure(<option>=<value>)."
    )
    return "\n".join(lines)


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
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_metaclass: Any = type(Configurable)
BugsnagIPython: type[_Settings] = _metaclass(
    "BugsnagIPython",
    (_Settings,),
    {
        "__doc__": "BugSnag session tracking and error reporting for this kernel.",
        "__module__": __name__,
        **{field.name: _trait_for(field) for field in dataclasses.fields(Configuration)},
    },
)
