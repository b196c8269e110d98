"""JSON text from outside (a request body, a pasted approval, an item's records), read with its
nesting bounded before Python's parser runs: the parser recurses once per level, so a document
nested deep enough (``[[[[...`` a hundred thousand times) would exhaust it and fail as a bug."""

from __future__ import annotations

import json
import re

# Far deeper than anything govern reads, far shallower than the parser's recursion limit.
MAX_DEPTH = 32

# The text with its strings removed leaves only the structure to count brackets in.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    pass


def depth(text: str) -> int:
    deepest = level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def loads(text: str, max_depth: int = MAX_DEPTH):
    """``json.loads`` for untrusted text: ValueError (TooDeep) when nested more than
    ``max_depth`` deep, and ValueError for NaN and Infinity, which are not JSON."""
    if depth(text) > max_depth:
        raise TooDeep(f"nested more than {max_depth} deep")
    return json.loads(text, parse_constant=_refuse_constant)
