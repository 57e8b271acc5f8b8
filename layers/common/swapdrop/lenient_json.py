"""JSON from parties we do not control (callback bodies, the swap API's answers), parsed safely.

The standard library's parser recurses once per nesting level, so `[[[[...` 10,000 deep
raises RecursionError, and an integer of more than 4,300 digits raises a ValueError about
int conversion. Here nesting is measured first (strings skipped, brackets counted, no
recursion) and refused past a limit, and an over-long integer becomes a float (±inf), which
the snapshot parser then ignores like any non-finite number. `NaN` and `Infinity` parse
as floats, as they do in `json.loads`; callers decide what they mean.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_INT_DIGITS = 4000  # under sys.get_int_max_str_digits()'s default of 4300
_STRING_AT = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET_OR_QUOTE = re.compile(r'[\[\]{}"]')


class JsonRefused(ValueError):
    """Why a document was not parsed, for a person: '<what> is not valid JSON (...)'."""


def nesting_depth(text: str, stop_above: int | None = None) -> int:
    """The deepest bracket nesting outside strings (exact for valid JSON), in one linear pass.

    Each character is read once: a string is skipped whole, and an unterminated one ends the
    scan (it runs to the end, so nothing after it nests). Retrying the string pattern at every
    later quote instead would be quadratic: 64 KiB of escaped quotes took 18 s. With
    `stop_above`, returns as soon as the depth passes it."""
    depth = deepest = position = 0
    while (found := _BRACKET_OR_QUOTE.search(text, position)) is not None:
        char = found.group()
        if char == '"':
            string = _STRING_AT.match(text, found.start())
            if string is None:
                break
            position = string.end()
            continue
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                return deepest
        position = found.end()
    return deepest


def loads(
    data: bytes | str, what: str = "the document", max_depth: int = MAX_DEPTH, needs: str = "a task snapshot"
) -> Any:
    """Parse `data` or raise JsonRefused; never RecursionError, never an int-conversion error.
    `needs`: what such a document holds, for the refusal's message."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise JsonRefused(f"{what} is not valid JSON (not UTF-8 text at byte {error.start})") from None
    else:
        text = data
    if nesting_depth(text, stop_above=max_depth) > max_depth:
        raise JsonRefused(f"{what} nests deeper than {max_depth} levels, far more than {needs} needs")
    try:
        return json.loads(text, parse_int=_int)
    except json.JSONDecodeError as error:
        raise JsonRefused(
            f"{what} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except (ValueError, RecursionError):  # the depth check makes RecursionError unreachable; belt and braces
        raise JsonRefused(f"{what} is not valid JSON") from None


def _int(digits: str) -> int | float:
    return int(digits) if len(digits) <= _INT_DIGITS else float(digits)
