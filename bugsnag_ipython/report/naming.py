"""What an exception is called and what it says, as strings, even when its class's names or str() raise."""

from __future__ import annotations

from typing import Any

# The type's own slots: they read the class's real name, past any metaclass property.
_QUALNAME: Any = type.__dict__["__qualname__"]
_NAME: Any = type.__dict__["__name__"]
_MODULE: Any = type.__dict__["__module__"]


def class_name(error: BaseException) -> str:
    """`module.QualName` of the error's class (`QualName` for builtins and `__main__`)."""
    cls = type(error)
    module = _text(cls, _MODULE)
    return type_name(cls) if module in (None, "builtins", "__main__") else f"{module}.{type_name(cls)}"


def type_name(cls: type, *, qualified: bool = True) -> str:
    """The class's `__qualname__` (or `__name__`) as a non-empty string, never raising."""
    return _text(cls, _QUALNAME if qualified else _NAME) or _text(cls, _NAME) or "UnnamedError"


def names_of(cls: type) -> set[str]:
    """The names `discard_classes` may give a class: its own and its bases', bare and with module."""
    try:
        mro = type.__dict__["__mro__"].__get__(cls, type(cls))
    except Exception:
        mro = (cls,)
    bare = {type_name(base, qualified=False) for base in mro}
    return bare | {f"{_text(base, _MODULE)}.{type_name(base)}" for base in mro}


def message_of(error: BaseException) -> str:
    """What the error says: `str(error)` (a SyntaxError's `msg`), or a placeholder when that raises."""
    try:
        if isinstance(error, SyntaxError):
            return "" if error.msg is None else str(error.msg)
        return str(error)
    except KeyboardInterrupt:
        raise
    except BaseException:  # a __str__ may raise anything, SystemExit included
        return f"<unprintable {class_name(error)}>"


def _text(cls: type, slot: Any) -> str | None:  # the class's attribute of that name, else the slot's
    for from_slot in (False, True):
        try:
            value = slot.__get__(cls, type(cls)) if from_slot else getattr(cls, slot.__name__)
        except Exception:
            continue
        if type(value) is str and value:
            return str(value)
    return None
