"""The one validation mechanism of every config (variant files, run configs, scoring):
pydantic models whose fields are strict and say what they expect.

A mistake becomes one line naming the key, what it must be and what it was, e.g.
``key 'cluster.workers': expected a positive integer, got 0``.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError


class ConfigError(ValueError):
    """A config value, key or file that is wrong; the message names the key and what is allowed."""


class Settings(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def as_json(self) -> dict:
        """The settings as plain JSON values (lists, not tuples), for where JSON is stored."""
        return self.model_dump(mode="json")


def _expect(what: str, check: Callable[[Any], Any]):
    """A field type that accepts what ``check`` returns (non-None) and otherwise fails with
    'expected <what>'."""
    def validate(value):
        result = check(value)
        if result is None:
            raise PydanticCustomError("expected", "expected {what}", {"what": what})
        return None if result is _NULL else result
    return PlainValidator(validate)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def number(what: str = "a number", low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False):
    """A finite int or float (never a bool or a string) within optional bounds."""
    def check(value):
        if not _is_number(value):
            return None
        if low is not None and (value <= low if low_open else value < low):
            return None
        if high is not None and (value >= high if high_open else value > high):
            return None
        return value
    return Annotated[Any, _expect(what, check)]


_NULL = object()


def integer(what: str = "an integer", low: int | None = None, high: int | None = None, nullable: bool = False):
    """An int (never a bool) within optional bounds; ``None`` too where ``nullable``."""
    def check(value):
        if value is None and nullable:
            return _NULL
        if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):
            return None
        return value
    return Annotated[Any, _expect(what, check)]


def one_of(choices: Iterable, what: str | None = None):
    options = tuple(choices)
    label = what or f"one of {', '.join(map(str, options))}"

    def check(value):
        return value if not isinstance(value, bool) and value in options else None
    return Annotated[Any, _expect(label, check)]


def flag():
    return Annotated[Any, _expect("true or false", lambda v: v if isinstance(v, bool) else None)]


def text(what: str = "a non-empty string", allowed: Callable[[str], bool] = lambda s: True, nullable: bool = False):
    def check(value):
        if value is None and nullable:
            return _NULL
        return value if isinstance(value, str) and value and allowed(value) else None
    return Annotated[Any, _expect(what, check)]


def mapping(what: str = "a mapping"):
    return Annotated[Any, _expect(what, lambda v: dict(v) if isinstance(v, dict) else None)]


def numbers(length: int | None = None, what: str | None = None, each: Callable[[Any], bool] = lambda v: True,
            ordered: bool = False):
    """A list of numbers (kept as a tuple), of ``length`` when given."""
    label = what or (f"a list of {length} numbers" if length else "a list of numbers")

    def check(value):
        if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length) or not value:
            return None
        if not all(_is_number(v) and each(v) for v in value):
            return None
        if ordered and list(value) != sorted(value):
            return None
        return tuple(value)
    return Annotated[Any, _expect(label, check)]


def listed(choices: Iterable, what: str | None = None, nonempty: bool = True, unique: bool = True):
    """A list of values among ``choices`` (kept as a tuple)."""
    options = tuple(choices)
    label = what or f"a list of values among {', '.join(map(str, options))}"

    def check(value):
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or (nonempty and not value):
            return None
        if any(isinstance(v, bool) or v not in options for v in value) or (unique and len(set(value)) != len(value)):
            return None
        return tuple(value)
    return Annotated[Any, _expect(label, check)]


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found by following ``loc`` (for 'unknown key' messages)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def describe(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first error of ``exc`` as one line naming the key."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    key = prefix + ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        return f"unknown key {key!r}" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if error["type"] == "missing":
        return f"key {key!r}: missing"
    got = error.get("input")
    message = error["msg"] if error["type"] == "expected" else f"expected {error['msg'][0].lower()}{error['msg'][1:]}"
    return f"key {key!r}: {message}, got {got!r}"


def validate(model: type[BaseModel], data: Any, where: str = "", prefix: str = ""):
    """``model`` built from ``data``; a ``ConfigError`` naming ``where`` and the key otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where + ': ' if where else ''}expected a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where + ': ' if where else ''}{describe(exc, model, prefix)}") from None


# Field types shared by kernels' constants.
POSITIVE = number("a positive number", low=0, low_open=True)
NONNEGATIVE = number("a number >= 0", low=0)
FRACTION = number("a number from 0 to 1", low=0, high=1)
NUMBER = number()
POSITIVE_INT = integer("a positive integer", low=1)
# Shot noise tabulates 256 x photons probabilities; past 10^5 photons its noise is under one level.
PHOTONS = number("a number of photons above 0 and at most 100000", low=0, low_open=True, high=100_000)
ANGLE_RANGE = numbers(2, "two numbers [low, high] with low <= high (degrees)", ordered=True)
RGB = numbers(3, "three integers from 0 to 255 (R, G, B)", each=lambda v: isinstance(v, int) and 0 <= v <= 255)
ODD_SIZE = Annotated[Any, _expect("a positive odd integer", lambda v: v if _is_int(v) and v > 0 and v % 2 else None)]


def matrix(rows: int, cols: int, what: str | None = None):
    """A rows x cols list of lists of numbers (kept as a tuple of tuples)."""
    label = what or f"a {rows} x {cols} list of lists of numbers"

    def check(value):
        if not isinstance(value, (list, tuple)) or len(value) != rows:
            return None
        out = []
        for row in value:
            if not isinstance(row, (list, tuple)) or len(row) != cols or not all(_is_number(v) for v in row):
                return None
            out.append(tuple(row))
        return tuple(out)
    return Annotated[Any, _expect(label, check)]


def checked(what: str, check: Callable[[Any], Any]):
    """A field type accepting what ``check`` returns (not None), else 'expected <what>'."""
    return Annotated[Any, _expect(what, check)]
