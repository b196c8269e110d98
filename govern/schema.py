"""Request schemas: one definition both validates a JSON body and describes it in OpenAPI.

A schema is a small tree of fields; ``validate`` returns clean Python values or raises Invalid
naming the first bad field; ``openapi`` returns the JSON Schema the OpenAPI document shows.

The bounds of every input live here, so that no input can reach the database or a parser in a
shape that makes a server error: ``parse_json`` reads a request body (UTF-8, nested at most
``jsontext.MAX_DEPTH`` deep, no lone surrogates); integers are 64-bit and row ids 1 to ``MAX_ID``
(in paths through ``IdConverter``, in bodies through ``Id``); text holds no control characters,
no lone surrogates, no unassigned code points and, on one line (names, titles, third parties),
no bidirectional overrides.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from werkzeug.routing import IntegerConverter

from govern import jsontext
from govern.db import MAX_ID
from govern.errors import Invalid
from govern.messages import Msg

_MISSING = object()
# Row ids are bounded by the stores' keys (db.MAX_ID); the trail's sequence numbers are BIGINT,
# and other integers 64-bit.
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)

# Control characters (C0, DEL, C1) and the Unicode line separators: never inside one line.
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line text keeps tab, line feed and carriage return (a reason typed into a textarea).
_CONTROL_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates make a name read differently from what it
# is ("invoice\u202egpj.exe"); a name, title or third party never needs them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unassigned(value: str) -> bool:
    """A code point Unicode has not assigned is no character anyone typed. The CJK planes (2 and
    3) are left alone: new ideographs for rare names arrive there with every Unicode version,
    before this Python knows them."""
    return any(unicodedata.category(c) == "Cn" and not 0x20000 <= ord(c) <= 0x3FFFF for c in value)


def whole_number(text: str) -> int | str:
    """A number typed into a form field, or the text as it is (for the schema to refuse): only
    ASCII digits count, and no more than a 64-bit integer has."""
    return int(text) if re.fullmatch("[0-9]{1,19}", text) else text


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or None."""
    if _SURROGATE.search(value):
        return Msg("schema.surrogates")
    control = _CONTROL_MULTI_LINE if multiline else _CONTROL_ONE_LINE
    if control.search(value):
        return Msg("schema.control")
    if not multiline and _BIDI.search(value):
        return Msg("schema.bidi")
    if not value.isascii() and _unassigned(value):
        return Msg("schema.unassigned")
    return None


def _no_surrogates(value, where: str) -> None:
    """Lone surrogates (``"\\ud800"`` decodes to one) cannot be stored or encoded as UTF-8."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise Invalid(Msg("body.surrogates"), field=where, at=where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_surrogates(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            if _SURROGATE.search(k):
                raise Invalid(Msg("body.key_surrogates"), field="body")
            _no_surrogates(v, k if where == "body" else f"{where}.{k}")


def parse_json(raw: bytes):
    """A request body as Python values, refused (field ``body``) unless it is UTF-8 JSON nested
    at most ``jsontext.MAX_DEPTH`` deep, with no lone surrogate in a key or a string."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(Msg("body.not_utf8"), field="body") from exc
    try:
        value = jsontext.loads(text)
    except jsontext.TooDeep as exc:
        raise Invalid(Msg("body.too_deep", what=str(exc)), field="body") from exc
    except ValueError as exc:
        raise Invalid(Msg("body.not_json"), field="body") from exc
    _no_surrogates(value, "body")
    return value


def _decimal_at_most(limit: str) -> str:
    """A regular expression for the numbers 1 to ``limit`` written without leading zeros."""
    shorter = f"[1-9][0-9]{{0,{len(limit) - 2}}}"
    same_length = []
    for i, digit in enumerate(limit):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            rest = len(limit) - i - 1
            same_length.append(f"{limit[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "|".join([shorter, *same_length, limit])


class IdConverter(IntegerConverter):
    """Every integer in a path is a row id, 1 to MAX_ID. Anything else matches no route, so it is
    answered 404 like an id that names nothing (it cannot name anything). The bound is in the
    pattern, not only in the conversion, so a path with several methods still answers 404."""

    limit = MAX_ID
    regex = f"(?:{_decimal_at_most(str(MAX_ID))})"

    def __init__(self, map, fixed_digits=0, min=1, max=None, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits, min, max or self.limit, signed)


class SeqConverter(IdConverter):
    """A sequence number of the trail (BIGINT): 1 to 2**63 - 1."""

    limit = MAX_INT
    regex = f"(?:{_decimal_at_most(str(MAX_INT))})"


@dataclass
class Field:
    required: bool = True
    description: str = ""

    def check(self, name: str, value):
        raise NotImplementedError

    def spec(self) -> dict:
        raise NotImplementedError

    def _fail(self, name: str, message: str):
        raise Invalid(message, field=name, at=name)


@dataclass
class Str(Field):
    min_len: int = 1
    max_len: int = 300
    pattern: str | None = None
    # Free text typed into a textarea (a reason, a purpose): it may span lines.
    multiline: bool = False

    def check(self, name, value):
        if not isinstance(value, str):
            self._fail(name, Msg("schema.string"))
        value = value.strip()
        if len(value) < self.min_len:
            self._fail(
                name,
                Msg("schema.empty")
                if self.min_len == 1
                else Msg("schema.min_len", min=self.min_len),
            )
        if len(value) > self.max_len:
            self._fail(name, Msg("schema.too_long", max=self.max_len))
        problem = text_problem(value, self.multiline)
        if problem:
            self._fail(name, problem)
        if self.pattern and not re.fullmatch(self.pattern, value):
            self._fail(name, Msg("schema.pattern", pattern=self.pattern))
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
            self._fail(name, Msg("schema.sha256"))
        return super().check(name, value).lower()


@dataclass
class Enum(Field):
    choices: tuple[str, ...] = ()

    def check(self, name, value):
        if value not in self.choices:
            self._fail(name, Msg("schema.one_of", choices=", ".join(self.choices)))
        return value

    def spec(self):
        return {"type": "string", "enum": list(self.choices)}


@dataclass
class Int(Field):
    """A 64-bit integer unless narrower bounds are given; ``Int(minimum=1)`` is an id."""

    minimum: int = MIN_INT
    maximum: int = MAX_INT

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, Msg("schema.integer"))
        if value < self.minimum:
            self._fail(name, Msg("schema.at_least", min=self.minimum))
        if value > self.maximum:
            self._fail(name, Msg("schema.at_most", max=self.maximum))
        return value

    def spec(self):
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass
class Id(Int):
    """A row id in a body (``item_ids``), bounded like the ids in paths."""

    minimum: int = 1
    maximum: int = MAX_ID


@dataclass
class Bool(Field):
    def check(self, name, value):
        if not isinstance(value, bool):
            self._fail(name, Msg("schema.boolean"))
        return value

    def spec(self):
        return {"type": "boolean"}


@dataclass
class Money(Field):
    """A non-negative amount with at most two decimals, as a JSON number or a string."""

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self._fail(name, Msg("schema.amount"))
        if isinstance(value, str | int) and len(str(value)) > 40:
            self._fail(name, Msg("schema.too_large"))
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self._fail(name, Msg("schema.amount"))
        if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:
            self._fail(name, Msg("schema.amount_range"))
        if amount >= Decimal("1e16"):
            self._fail(name, Msg("schema.too_large"))
        return amount.quantize(Decimal("0.01"))

    def spec(self):
        return {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}]}


@dataclass
class Date(Field):
    def check(self, name, value):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self._fail(name, Msg("schema.date"))
        try:
            return date.fromisoformat(value)
        except ValueError:
            self._fail(name, Msg("schema.calendar"))

    def spec(self):
        return {"type": "string", "format": "date"}


@dataclass
class Base64(Field):
    max_bytes: int | None = None

    def check(self, name, value):
        if not isinstance(value, str):
            self._fail(name, Msg("schema.base64_string"))
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self._fail(name, Msg("schema.base64"))

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
            self._fail(name, Msg("schema.list"))
        if len(value) < self.min_items:
            self._fail(
                name,
                Msg("schema.min_one")
                if self.min_items == 1
                else Msg("schema.min_items", min=self.min_items),
            )
        if len(value) > self.max_items:
            self._fail(name, Msg("schema.max_items", max=self.max_items))
        out = [self.of.check(f"{name}[{i}]", v) for i, v in enumerate(value)]
        if self.unique and len(set(map(repr, out))) != len(out):
            self._fail(name, Msg("schema.duplicates"))
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
            raise Invalid(Msg("body.not_object"), field="body")
        unknown = sorted(set(body) - set(self.fields))
        if unknown:
            shown = unknown[0][:100]
            raise Invalid(Msg("field.unknown"), field=shown, at=shown)
        out = {}
        for name, spec in self.fields.items():
            value = body.get(name, _MISSING)
            if value is _MISSING or value is None:
                if spec.required:
                    raise Invalid(Msg("field.required"), field=name, at=name)
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
