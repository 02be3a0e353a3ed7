"""JSON bodies, parsed with a nesting limit and cleaned of what PostgreSQL cannot store.

Python's json module recurses once per nesting level: 20,000 `[` inside the webhook's 64 KiB limit raise
RecursionError, a 500 (red team D9). The depth is counted first, without recursion, and a body nested
deeper than JSON_MAX_DEPTH is refused as bad input. Strings (keys and values) come back without NUL and
with any lone UTF-16 surrogate (`"\\ud800"`, e.g. a `{{last_input_text}}` cut inside an emoji) replaced by
U+FFFD, so nothing downstream (hashing a dedupe key, a PostgreSQL text column) can fail on them.
NaN and Infinity are not JSON and are refused too.
"""

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

JSON_MAX_DEPTH = 64
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonBodyError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def json_depth_check(*, raw: bytes, max_depth: int = JSON_MAX_DEPTH) -> None:
    depth = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()[:1]
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JsonBodyError(f"is nested deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def text_clean(value: str) -> str:
    """The string without NUL and with lone surrogates replaced by U+FFFD."""
    if value.isascii():
        return value.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", value).replace("\x00", "")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return text_clean(value)
    if isinstance(value, dict):
        return {text_clean(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _refuse_constant(name: str):
    raise JsonBodyError(f"is not valid JSON ({name} is not a JSON value)")


def json_parse(*, raw: bytes | str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """The parsed body; JsonBodyError (a ValueError) saying what is wrong otherwise."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    json_depth_check(raw=data, max_depth=max_depth)
    try:
        parsed = json.loads(data, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonBodyError(f"is not valid JSON ({exc.__class__.__name__})") from exc
    except RecursionError as exc:  # the depth scan should have caught it; never a 500
        raise JsonBodyError(f"is nested deeper than {max_depth} levels") from exc
    return _clean(parsed)


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser with the nesting limit and the cleaning above (REST_FRAMEWORK's default)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json_parse(raw=stream.read())
        except JsonBodyError as exc:
            raise ParseError(f"JSON parse error: body {exc.message}") from exc
