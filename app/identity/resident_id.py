"""The 18-digit citizen identity number of GB 11643-1999: parsing, checking and masking."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# First two digits: the province-level division (GB/T 2260), plus 71 Taiwan, 81 Hong Kong,
# 82 Macao and 83, which residence permits for Taiwan residents use.
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
SHAPE = re.compile(r"^\d{17}[\dX]$")
EARLIEST_BIRTH = date(1900, 1, 1)


class ResidentIdError(ValueError):
    """Why a number is not a valid resident ID; `reason` is a stable code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    male: bool

    @property
    def masked(self) -> str:
        return mask(self.number)


def check_digit(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalize(raw: str) -> str:
    """Forgive what people type: spaces, full-width digits, a lower-case x."""
    text = "".join(raw.split()).upper()
    return text.translate({ord("０") + i: str(i) for i in range(10)} | {ord("Ｘ"): "X"})


def parse(raw: str, *, today: date) -> ResidentId:
    number = normalize(raw)
    if not SHAPE.match(number):
        raise ResidentIdError("format")
    if int(number[:2]) not in PROVINCE_CODES:
        raise ResidentIdError("province")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ResidentIdError("birth_date") from None
    if born > today or born < EARLIEST_BIRTH:
        raise ResidentIdError("birth_date")
    if check_digit(number[:17]) != number[17]:
        raise ResidentIdError("check_digit")
    return ResidentId(number=number, birth_date=born, male=int(number[16]) % 2 == 1)


def mask(number: str) -> str:
    """`500103********123X`: the region and the last four, never the birth date."""
    return number[:6] + "*" * 8 + number[-4:]
