"""What an item's content is made of: JSON records, CSV with a header, or opaque bytes.

An item's declared fields are what data minimisation (clause 3.7) cuts its content down to, so
they must be names the content really has. One reading of the content serves both registration
(which checks the fields and records the media type) and the subcontractor's minimised copy, so
the two can never disagree on what an item holds.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

JSON = "application/json"
CSV = "text/csv"
OPAQUE = "application/octet-stream"
JSON_TYPES = (JSON, "text/json")
CSV_TYPES = (CSV, "application/csv", "text/comma-separated-values")


@dataclass(frozen=True)
class Shape:
    """The media type to record, and the names the content has (None: none can be told)."""

    media_type: str
    names: tuple[str, ...] | None
    where: str  # "JSON records' keys", "CSV header", or what the content is


def base_type(media_type: str) -> str:
    return media_type.split(";")[0].strip().lower()


def is_json(media_type: str) -> bool:
    base = base_type(media_type)
    return base in JSON_TYPES or base.endswith("+json")


def is_csv(media_type: str) -> bool:
    return base_type(media_type) in CSV_TYPES


def _text(content: bytes) -> str | None:
    # Records are text: strictly UTF-8 (a byte-order mark is tolerated), never a NUL byte.
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def json_records(content: bytes) -> list[dict] | None:
    """The records when the content is a non-empty JSON list of objects, else None."""
    text = _text(content)
    if text is None:
        return None
    try:
        records = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(records, list) or not records:
        return None
    return records if all(isinstance(r, dict) for r in records) else None


def csv_table(content: bytes, min_columns: int = 1) -> list[list[str]] | None:
    """The rows (header first, its names stripped of spaces) when the content is CSV with a
    header, else None.

    Strict, because nearly any text parses as some CSV: comma-separated with standard quoting
    (bad quoting is an error, not a guess), a header of distinct non-empty names, and every row as
    wide as the header (blank lines aside). ``min_columns`` is 2 when nothing says which names to
    expect, so that lines of prose without commas are never taken for a one-column table.
    """
    text = _text(content)
    if text is None or not text.strip():
        return None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error:
        return None
    header = rows[0]
    names = [name.strip() for name in header]
    if len(header) < min_columns or not all(names) or len(set(names)) != len(names):
        return None
    if any(len(row) != len(header) for row in rows):
        return None
    return [names, *rows[1:]]


def _record_keys(records: list[dict]) -> tuple[str, ...]:
    # Records may leave out a key (a missing value); a field is there when any record has it.
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return tuple(seen)


def _as_json(content: bytes, media_type: str) -> Shape:
    records = json_records(content)
    if records is None:
        return Shape(media_type, None, "not JSON records (a list of objects)")
    return Shape(media_type, _record_keys(records), "the JSON records' keys")


def _as_csv(content: bytes, media_type: str, fields: list[str]) -> Shape:
    rows = csv_table(content, min_columns=1 if fields else 2)
    if rows is None:
        return Shape(media_type, None, "not CSV with a header")
    return Shape(media_type, tuple(rows[0]), "the CSV header")


def shape_of(content: bytes, media_type: str | None, fields: list[str]) -> Shape:
    """What the content is, given its declared media type or, when none is given, detected.

    Detection takes JSON records, then CSV with a header that names every declared field (or,
    with none declared, has at least two columns); anything else is opaque bytes.
    """
    if media_type is not None:
        if is_json(media_type):
            return _as_json(content, media_type)
        if is_csv(media_type):
            return _as_csv(content, media_type, fields)
        return Shape(media_type, None, media_type)
    found = _as_json(content, JSON)
    if found.names is not None:
        return found
    found = _as_csv(content, CSV, fields)
    if found.names is not None and (not fields or set(fields) <= set(found.names)):
        return found
    if found.names is not None and len(found.names) >= 2:
        # A real table that lacks a declared field: say which, rather than call it opaque.
        return found
    return Shape(OPAQUE, None, OPAQUE)


def missing_fields(shape: Shape, fields: list[str]) -> list[str]:
    return [f for f in fields if shape.names is None or f not in shape.names]
