"""The one place that checks what every request brings: ids, text, JSON depth and sizes.

Whatever a route reads, it reads through here: ids in the URL through the `int` converter
(1 to 2^31-1, anything else is a 404, so PostgreSQL never sees an integer it cannot hold),
text in the path, the query string, form fields and JSON bodies through `check_text`, and JSON
through `parse_json`, which measures the nesting before the parser recurses. Bad input is a
4xx with a stable code (`invalid_text`, `too_deep`, `malformed_json`) naming the field.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter, ValidationError

from app.errors import BadRequest, Invalid

# The largest id a PostgreSQL `integer` column holds; every id of ours is one.
MAX_ID = 2**31 - 1
# Deeper JSON than any request of ours needs; refused before the parser recurses into it.
MAX_JSON_DEPTH = 32
# Werkzeug's default is 500 KB per form field held in memory; one of ours is at most 20,000
# characters of description, so a tenth of that is plenty.
MAX_FORM_MEMORY_BYTES = 256 * 1024

# C0 controls except tab and newline (a carriage return only as part of CRLF, as browsers send
# a textarea's line breaks), UTF-16 surrogates (a JSON "\ud800" decodes to one, and no
# database can store it), and the bidirectional embeddings, overrides and isolates that
# make text display other than it reads (U+202A-U+202E, U+2066-U+2069).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|\r(?!\n)")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Letters that are drawn as nothing: Hangul fillers, the combining grapheme joiner, the
# Braille blank. Format characters (category Cf: zero-width space and joiners, word joiner,
# BOM, soft hyphen, direction marks) are invisible too, and so are separators and controls.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u2800")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")

TEXT_PROBLEMS = {
    "control": _l("Remove the control characters (only tabs and line breaks are allowed)."),
    "surrogate": _l("Remove the invalid characters (unpaired UTF-16 surrogates)."),
    "bidi": _l("Remove the characters that override the text direction."),
    "blank": _l("Enter visible text, not only spaces or invisible characters."),
}


def is_invisible(char: str) -> bool:
    return (
        char.isspace()
        or unicodedata.category(char) in ("Cf", "Cc", "Zs", "Zl", "Zp")
        or char in _INVISIBLE_LETTERS
    )


def visible_strip(value: str) -> str:
    """The value without leading and trailing whitespace or invisible characters."""
    start, end = 0, len(value)
    while start < end and is_invisible(value[start]):
        start += 1
    while end > start and is_invisible(value[end - 1]):
        end -= 1
    return value[start:end]


def text_problem(value: str) -> str | None:
    """What is wrong with a piece of text, as a key of TEXT_PROBLEMS, or None.

    Text of whitespace alone is left to each field's own rule (many may be empty); text that
    holds invisible characters and nothing visible is refused everywhere, as it is never
    what anyone meant to type.
    """
    if _SURROGATE.search(value):
        return "surrogate"
    if _CONTROL.search(value):
        return "control"
    if _BIDI.search(value):
        return "bidi"
    if value.strip() and not visible_strip(value):
        return "blank"
    return None


def _invalid_text(fields: dict[str, str]) -> Invalid:
    return Invalid(
        _l("Some text contains characters that are not allowed."),
        code="invalid_text",
        fields={name: TEXT_PROBLEMS[problem] for name, problem in fields.items()},
    )


def _field_name(name: str) -> str:
    # A bad key cannot name itself in the answer: that would echo what it was refused for.
    return name if text_problem(name) is None else "(name)"


def check_pairs(pairs: Iterable[tuple[str, Any]], prefix: str = "") -> None:
    """Refuse a query string, form or path whose names or string values are bad text."""
    problems: dict[str, str] = {}
    for name, value in pairs:
        field = prefix + _field_name(str(name))
        problem = text_problem(str(name))
        if problem is None and isinstance(value, str):
            problem = text_problem(value)
        if problem is not None:
            problems.setdefault(field, problem)
    if problems:
        raise _invalid_text(problems)


def check_json(document: Any) -> None:
    """Refuse a parsed JSON document holding bad text in any key or string."""
    problems: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                problems.setdefault(path or "(body)", problem)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                name = _field_name(key)
                if (problem := text_problem(key)) is not None:
                    problems.setdefault(f"{path}.{name}" if path else name, problem)
                walk(item, f"{path}.{name}" if path else name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(document, "")  # depth is bounded by MAX_JSON_DEPTH, checked before parsing
    if problems:
        raise _invalid_text(problems)


def json_depth(raw: bytes | str) -> int:
    """How deeply arrays and objects nest in raw JSON, counted without parsing it.

    Strings are taken out first, exactly as a JSON tokenizer reads them, so brackets inside
    them do not count; in text that is not JSON the answer may be too high, never too low.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    if not brackets:
        return 0
    steps = (1 if byte in b"[{" else -1 for byte in brackets)
    return max(0, *accumulate(steps))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep() -> BadRequest:
    return BadRequest(
        _l("The JSON nests deeper than %(n)d levels.", n=MAX_JSON_DEPTH),
        code="too_deep",
        fields={"body": _l("At most %(n)d levels of nesting.", n=MAX_JSON_DEPTH)},
    )


def loads(raw: bytes | str, **kwargs: Any) -> Any:
    """json.loads that refuses deep nesting (too_deep) before parsing, and NaN or Infinity."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise _too_deep()
    kwargs.setdefault("parse_constant", _refuse_constant)
    return json.loads(raw, **kwargs)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON with its text checked; malformed_json, too_deep, invalid_text."""
    try:
        document = loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(_l("The body is not valid JSON."), code="malformed_json") from None
    check_json(document)
    return document


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with the depth guard wherever Flask parses (request.get_json, sessions)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)


class CheckedRequest(Request):
    """A request whose form fields and JSON are checked the moment a route first reads them.

    Reading is lazy so that a route can still raise its own size limit before the body is
    parsed (uploads do).
    """

    max_form_memory_size = MAX_FORM_MEMORY_BYTES

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        super()._load_form_data()
        form = self.__dict__["form"]
        try:
            check_pairs(form.items(multi=True))
        except Invalid:
            # What a later reader (an error page) sees: nothing rather than the bad text.
            self.__dict__["form"] = MultiDict()
            raise

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        document = super().get_json(force=force, silent=silent, cache=cache)
        check_json(document)
        return document


def up_to(limit: int) -> str:
    """A regular expression for the whole numbers 1..limit, written without leading zeros."""
    digits = str(limit)
    size = len(digits)
    options = [rf"[1-9]\d{{0,{size - 2}}}"] if size > 1 else []  # fewer digits than limit
    for at, digit in enumerate(digits):
        low = 1 if at == 0 else 0
        if int(digit) > low:  # the same first digits, then a smaller one, then any
            rest = size - at - 1
            options.append(
                f"{digits[:at]}[{low}-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest else "")
            )
    options.append(digits)
    return "|".join(options)


class IdConverter(BaseConverter):
    """`<int:...>` for every route: a whole number from 1 to MAX_ID, else the route is a 404.

    The range is in the pattern, so a path with another number matches no route at all
    (a check in to_python would let Werkzeug answer 405 where another method's rule matched).
    """

    regex = up_to(MAX_ID)
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        if len(value) > len(str(MAX_ID)):  # never, with the pattern; int() of a huge text is slow
            raise ValidationError()
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def check_request() -> None:
    """Before every view: the query string and the text parts of the URL."""
    check_pairs(request.args.items(multi=True))
    if request.view_args:
        check_pairs(request.view_args.items())


def init_inputs(app: Flask) -> None:
    """Install the checks; call before any blueprint is registered (routes bind converters)."""
    app.url_map.converters["int"] = IdConverter
    app.request_class = CheckedRequest
    app.json = JSONProvider(app)
    app.before_request(check_request)
