"""Request schemas: one definition both validates a JSON body and describes it in OpenAPI.

A schema is a small tree of fields; ``validate`` returns clean Python values or raises Invalid
naming the first bad field; ``openapi`` returns the JSON Schema the OpenAPI document shows.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from govern.errors import Invalid

_MISSING = object()


@dataclass
class Field:
    required: bool = True
    description: str = ""

    def check(self, name: str, value):
        raise NotImplementedError

    def spec(self) -> dict:
        raise NotImplementedError

    def _fail(self, name: str, message: str):
        raise Invalid(f"{name}: {message}", field=name)


@dataclass
class Str(Field):
    min_len: int = 1
    max_len: int = 300
    pattern: str | None = None

    def check(self, name, value):
        if not isinstance(value, str):
            self._fail(name, "must be a string")
        value = value.strip()
        if len(value) < self.min_len:
            self._fail(
                name,
                "must not be empty" if self.min_len == 1 else f"needs {self.min_len}+ characters",
            )
        if len(value) > self.max_len:
            self._fail(name, f"must be at most {self.max_len} characters")
        if "\x00" in value:
            self._fail(name, "must not contain NUL characters")
        if self.pattern and not re.fullmatch(self.pattern, value):
            self._fail(name, f"must match {self.pattern}")
        return value

    def spec(self):
        out = {"type": "string", "minLength": self.min_len, "maxLength": self.max_len}
        if self.pattern:
            out["pattern"] = self.pattern
        return out


@dataclass
class Sha256(Str):
    min_len: int = 64
    max_len: int = 64
    pattern: str | None = "[0-9a-fA-F]{64}"

    def check(self, name, value):
        if isinstance(value, str) and not re.fullmatch(r"[0-9a-fA-F]{64}", value.strip()):
            self._fail(name, "must be 64 hexadecimal digits")
        return super().check(name, value).lower()


@dataclass
class Enum(Field):
    choices: tuple[str, ...] = ()

    def check(self, name, value):
        if value not in self.choices:
            self._fail(name, f"must be one of {', '.join(self.choices)}")
        return value

    def spec(self):
        return {"type": "string", "enum": list(self.choices)}


@dataclass
class Int(Field):
    minimum: int | None = None
    maximum: int | None = None

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, "must be an integer")
        if self.minimum is not None and value < self.minimum:
            self._fail(name, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            self._fail(name, f"must be at most {self.maximum}")
        return value

    def spec(self):
        out = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass
class Bool(Field):
    def check(self, name, value):
        if not isinstance(value, bool):
            self._fail(name, "must be true or false")
        return value

    def spec(self):
        return {"type": "boolean"}


@dataclass
class Money(Field):
    """A non-negative amount with at most two decimals, as a JSON number or a string."""

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self._fail(name, "must be an amount such as 3985000.00")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self._fail(name, "must be an amount such as 3985000.00")
        if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:
            self._fail(name, "must be a non-negative amount with at most two decimals")
        if amount >= Decimal("1e16"):
            self._fail(name, "is too large")
        return amount.quantize(Decimal("0.01"))

    def spec(self):
        return {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}]}


@dataclass
class Date(Field):
    def check(self, name, value):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self._fail(name, "must be a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            self._fail(name, "is not a real calendar date")

    def spec(self):
        return {"type": "string", "format": "date"}


@dataclass
class Base64(Field):
    max_bytes: int | None = None

    def check(self, name, value):
        if not isinstance(value, str):
            self._fail(name, "must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self._fail(name, "is not valid base64")

    def spec(self):
        return {"type": "string", "contentEncoding": "base64"}


@dataclass
class List(Field):
    of: Field = field(default_factory=Str)
    min_items: int = 0
    max_items: int = 1000
    unique: bool = True

    def check(self, name, value):
        if not isinstance(value, list):
            self._fail(name, "must be a list")
        if len(value) < self.min_items:
            self._fail(
                name, f"needs at least {self.min_items} entr{'y' if self.min_items == 1 else 'ies'}"
            )
        if len(value) > self.max_items:
            self._fail(name, f"may have at most {self.max_items} entries")
        out = [self.of.check(f"{name}[{i}]", v) for i, v in enumerate(value)]
        if self.unique and len(set(map(repr, out))) != len(out):
            self._fail(name, "has duplicates")
        return out

    def spec(self):
        out = {
            "type": "array",
            "items": self.of.spec(),
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }
        if self.unique:
            out["uniqueItems"] = True
        return out


class Schema:
    """A JSON object with named fields. Unknown fields are refused, so typos are not ignored."""

    def __init__(self, name: str, /, **fields: Field):
        self.name = name
        self.fields = fields

    def validate(self, body) -> dict:
        if not isinstance(body, dict):
            raise Invalid("the body must be a JSON object", field="body")
        unknown = sorted(set(body) - set(self.fields))
        if unknown:
            raise Invalid(f"{unknown[0]}: unknown field", field=unknown[0])
        out = {}
        for name, spec in self.fields.items():
            value = body.get(name, _MISSING)
            if value is _MISSING or value is None:
                if spec.required:
                    raise Invalid(f"{name}: is required", field=name)
                continue
            out[name] = spec.check(name, value)
        return out

    def openapi(self) -> dict:
        props = {}
        for name, spec in self.fields.items():
            props[name] = spec.spec()
            if spec.description:
                props[name]["description"] = spec.description
        required = [n for n, f in self.fields.items() if f.required]
        return {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }
