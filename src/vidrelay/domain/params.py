"""Model-specific request fields (the SDKs' `extra_body`): their declared types, and the one
place where a raw value from multipart, urlencoded or JSON becomes a typed value.

Multipart carries only text, so every type also takes its text form (`"42"`, `"true"`,
`"0.5"`); JSON's own types are taken where they cannot be misread (a JSON `true` is a bool,
never an int). `value_text` is a value's canonical text: price conditions compare it, so a
rule written `when = { generate_audio = true }` prices a multipart `"true"` and a JSON `true`
alike.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from vidrelay.domain.errors import InvalidRequest

ParamValue = str | int | float | bool

STRING_MAX_LENGTH = 32000
DEFAULT_STRING_MAX_LENGTH = 2000
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")
_NUMBER_TEXT = re.compile(
    r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,3})?"
)
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


class ParamType(StrEnum):
    ENUM = "enum"
    STRING = "string"
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter. `default`, when set, is filled in when a request omits it (and
    is then priced, stored and sent upstream like a value the client gave); without one, an
    absent parameter stays absent."""

    name: str
    type: ParamType
    values: tuple[str, ...] = ()
    """The allowed values of an `enum`."""
    default: ParamValue | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_length: int | None = None
    """The longest `string` accepted (DEFAULT_STRING_MAX_LENGTH when None)."""
    description: str = ""

    def coerce(self, raw: object) -> ParamValue:
        """The typed value of `raw`, or an InvalidRequest naming the parameter and what it
        accepts."""
        value = _COERCERS[self.type](self, raw)
        if self.type in (ParamType.INT, ParamType.NUMBER):
            assert isinstance(value, int | float)
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise self._invalid(raw)
        return value

    def allowed_text(self) -> str:
        """What this parameter accepts, for people: "720p, 1080p", "an integer from 0 to 9"."""
        if self.type is ParamType.ENUM:
            return ", ".join(self.values)
        if self.type is ParamType.BOOL:
            return "true or false"
        if self.type is ParamType.STRING:
            return f"a string of at most {self.string_max_length} characters"
        noun = "an integer" if self.type is ParamType.INT else "a number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{noun} from {_number_text(low)} to {_number_text(high)}"
        if low is not None:
            return f"{noun} of at least {_number_text(low)}"
        if high is not None:
            return f"{noun} of at most {_number_text(high)}"
        return noun

    @property
    def string_max_length(self) -> int:
        return self.max_length or DEFAULT_STRING_MAX_LENGTH

    def _invalid(self, raw: object) -> InvalidRequest:
        if self.type is ParamType.ENUM:
            allowed = self.allowed_text()
            text = f"{self.name} {_shown(raw)} is not supported; allowed values: {allowed}."
        else:
            text = f"{self.name} must be {self.allowed_text()}; got {_shown(raw)}."
        return InvalidRequest(text, param=self.name)


def value_text(value: ParamValue) -> str:
    """The canonical text of a typed value: what price conditions match on."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _enum(spec: ParamSpec, raw: object) -> ParamValue:
    text = raw if isinstance(raw, str) else None
    if _is_number(raw) and abs(raw) < 1e30:
        text = _number_text(raw)  # a JSON 10 for an enum of "10"
    if text is None or text not in spec.values:
        raise spec._invalid(raw)
    return text


def _string(spec: ParamSpec, raw: object) -> ParamValue:
    if not isinstance(raw, str) or len(raw) > spec.string_max_length:
        raise spec._invalid(raw)
    return raw


def _int(spec: ParamSpec, raw: object) -> ParamValue:
    if isinstance(raw, bool):
        raise spec._invalid(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw.strip()):
        return int(raw.strip())
    raise spec._invalid(raw)


def _number(spec: ParamSpec, raw: object) -> ParamValue:
    value: float | None = None
    if _is_number(raw):
        value = float(raw) if abs(raw) < 1e300 else math.inf
    elif isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw.strip()):
        value = float(raw.strip())
    if value is None or not math.isfinite(value):
        raise spec._invalid(raw)
    return value


def _bool(spec: ParamSpec, raw: object) -> ParamValue:
    if isinstance(raw, bool):
        return raw
    word = raw.strip().lower() if isinstance(raw, str) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise spec._invalid(raw)


_COERCERS = {
    ParamType.ENUM: _enum,
    ParamType.STRING: _string,
    ParamType.INT: _int,
    ParamType.NUMBER: _number,
    ParamType.BOOL: _bool,
}


def _is_number(raw: object) -> TypeGuard[int | float]:
    return isinstance(raw, int | float) and not isinstance(raw, bool)


def _number_text(number: int | float) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return str(number)


def _shown(raw: object) -> str:
    """A client's value in an error message, cut short: it may be 5,000 digits long."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10**30:
        return "a number of more than 30 digits"
    text = repr(raw) if isinstance(raw, str) else str(raw)
    return text if len(text) <= 40 else text[:37] + "..."
