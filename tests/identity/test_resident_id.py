"""GB 11643-1999 resident ID numbers."""

from datetime import date

import pytest

from app.identity.resident_id import ResidentIdError, check_digit, mask, parse

TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("number", "born", "male"),
    [
        ("110105199003071239", date(1990, 3, 7), True),
        ("440304199512310024", date(1995, 12, 31), False),
        ("11010519491231002X", date(1949, 12, 31), False),
    ],
)
def test_accepts_valid_numbers_and_reads_birth_date_and_sex(number, born, male):
    resident = parse(number, today=TODAY)
    assert resident.birth_date == born
    assert resident.male is male


def test_forgives_spaces_full_width_digits_and_lower_case_x():
    assert parse(" 1101 0519 4912 31002x ", today=TODAY).number == "11010519491231002X"
    assert parse("１１０１０５１９９００３０７１２３９", today=TODAY).number == "110105199003071239"


def test_check_digit_of_known_number_including_x():
    assert check_digit("11010519491231002") == "X"
    assert check_digit("11010519900307123") == "9"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105199003071238", "check_digit"),  # one digit off
        ("990105199003071234", "province"),  # no such province
        ("10010519900307123X", "province"),
        ("110105209901011234", "birth_date"),  # born in 2099
        ("110105199002301234", "birth_date"),  # 30 February
        ("110105189912311234", "birth_date"),  # before 1900
        ("11010519900307123", "format"),  # 17 characters
        ("1101051990030712390", "format"),
        ("11010519900307123A", "format"),
        ("X10105199003071239", "format"),
        ("", "format"),
    ],
)
def test_refuses_invalid_numbers_with_a_reason(number, reason):
    with pytest.raises(ResidentIdError) as caught:
        parse(number, today=TODAY)
    assert caught.value.reason == reason


def test_future_birth_date_is_refused_relative_to_today():
    number = "110105202612011230"
    number = number[:17] + check_digit(number[:17])
    with pytest.raises(ResidentIdError):
        parse(number, today=TODAY)
    assert parse(number, today=date(2026, 12, 1)).birth_date == date(2026, 12, 1)


def test_mask_hides_birth_date_and_sequence():
    assert mask("50010319880101123X") == "500103********123X"
