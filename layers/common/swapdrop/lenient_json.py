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
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
_INT_DIGITS = 4000  # under sys.get_int_max_str_digits()'s default of 4300
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonRefused(ValueError):
    """Why a document was not parsed, for a person: '<what> is not valid JSON (...)'."""


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings (exact for valid JSON, never recursive)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(data: bytes | str, what: str = "the document", max_depth: int = MAX_DEPTH) -> Any:
    """Parse `data` or raise JsonRefused; never RecursionError, never an int-conversion error."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise JsonRefused(f"{what} is not valid JSON (not UTF-8 text at byte {error.start})") from None
    else:
        text = data
    if nesting_depth(text) > max_depth:
        raise JsonRefused(f"{what} nests deeper than {max_depth} levels, far more than a task snapshot needs")
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
