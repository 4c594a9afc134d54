"""The input rules of app/inputs.py, alone: which text passes, how deep JSON is measured."""

from __future__ import annotations

import json
import re

import pytest

from app.inputs import MAX_ID, MAX_JSON_DEPTH, json_depth, text_problem, up_to, visible_strip


@pytest.mark.parametrize(
    "text",
    [
        "低压电工作业",
        "第一行\n第二行\t安全",
        "第一行\r\n第二行",  # a browser's textarea sends CRLF
        "电工 👩‍🔧",  # an emoji joined by a zero-width joiner
        "شهادة\u200f",  # a right-to-left mark is not an override
        "   ",  # whitespace alone is each field's own rule
        "",
    ],
)
def test_ordinary_text_passes(text):
    assert text_problem(text) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a\x00b", "control"),
        ("a\x1bb", "control"),
        ("line\rover", "control"),  # a lone carriage return rewrites the line on a terminal
        ("\ud800", "surrogate"),
        ("ok\udfffok", "surrogate"),
        ("invoice\u202egpj.exe", "bidi"),
        ("\u2066电工\u2069", "bidi"),
        ("\u202a", "bidi"),
        ("\u200b", "blank"),
        (" \u200b\u200c\u200d\ufeff\u2060 ", "blank"),
        ("\u3164\u3164", "blank"),  # Hangul fillers draw nothing
    ],
)
def test_bad_text_is_named(text, problem):
    assert text_problem(text) == problem


def test_visible_strip_trims_invisible_characters_at_both_ends_only():
    assert visible_strip("\u200b 电工\u200b课 \ufeff") == "电工\u200b课"


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[[[", "]]]"]', 1),  # brackets inside strings do not count
        ('["\\"[[[["]', 1),  # nor after an escaped quote
        ("[" * 50_000 + "]" * 50_000, 50_000),
    ],
)
def test_json_depth_is_measured_without_parsing(raw, depth):
    assert json_depth(raw) == depth
    assert json_depth(raw.encode()) == depth


def test_json_at_the_depth_limit_still_parses():
    raw = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_depth(raw) == MAX_JSON_DEPTH
    assert json.loads(raw)


@pytest.mark.parametrize("limit", [1, 5, 9, 10, 99, 100, 120, 4321])
def test_id_pattern_matches_exactly_one_to_the_limit(limit):
    pattern = re.compile(f"(?:{up_to(limit)})")
    for number in range(0, limit * 3 + 20):
        assert bool(pattern.fullmatch(str(number))) == (1 <= number <= limit), number
    assert not pattern.fullmatch("01")


def test_id_pattern_stops_at_2_pow_31_minus_1():
    pattern = re.compile(f"(?:{up_to(MAX_ID)})")
    for number in (1, 999_999_999, 1_000_000_000, 2_147_483_639, MAX_ID):
        assert pattern.fullmatch(str(number))
    for number in (0, MAX_ID + 1, 2_147_483_650, 2**32, 9_999_999_999, 10**30):
        assert not pattern.fullmatch(str(number))
