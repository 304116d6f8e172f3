"""The IPython configurable `BugsnagIPython`: options from config files and `%config`.

Every option of :class:`Configuration` is a trait here, `None` meaning "not set in config".
Config files are read at load; a later `%config BugsnagIPython.x = …` is validated like
`configure()` (a refused value raises one sentence and leaves the trait unchanged) and applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Float, Int, List, TraitType, Unicode, validate
from traitlets.config import Configurable

from ..config import Configuration, MaskedApiKey, MaskedUrl

_HELP = "BugSnag option {name} (None: not set here; see the README for its default)."


def _trait_for(field: dataclasses.Field[Any]) -> TraitType[Any, Any]:
    help_text = _HELP.format(name=field.name)
    kind = field.type if isinstance(field.type, str) else str(field.type)
    trait: TraitType[Any, Any]
    if kind.startswith("bool"):
        trait = Bool(None, allow_none=True, help=help_text)
    elif kind.startswith("float"):
        trait = Float(None, allow_none=True, help=help_text)
    elif kind.startswith("int"):
        trait = Int(None, allow_none=True, help=help_text)
    elif kind.startswith("tuple"):
        trait = List(Unicode(), default_value=None, allow_none=True, help=help_text)
    else:
        trait = Unicode(None, allow_none=True, help=help_text)
    return trait.tag(config=True)


class _Settings(Configurable):
    """The behaviour of BugsnagIPython; its traits are made from the Configuration dataclass
    below, so that every option is declared once."""

    on_change: Callable[[str, Any], None] | None = None

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
            # Validates and applies; raises ConfigurationError (one sentence) when refused.
            self.on_change(name, tuple(value) if isinstance(value, list) else value)
        if name == "api_key" and isinstance(value, str):
            return MaskedApiKey(value)
        if name.endswith("_endpoint") and isinstance(value, str):
            return MaskedUrl(value)
        return value


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
