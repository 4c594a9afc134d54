"""Certificates: issue and revoke, public verification (page and API), the printable copy."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError

import config
from app.certificates import service
from app.certificates.models import Certificate
from app.certificates.views import hours_text, qr_svg
from app.courses.models import Course, CourseLevel, CourseStatus
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User, mask_name
from app.learning import service as learning
from app.platforms import service as platforms
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir, sideways_overflow
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    count_rows,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.test_openapi import Contract

OWNER_NAME = "张三丰"
OTHER_ID = "11010519491231002X"
NUMBER = re.compile(r"^VS(\d{4})-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{8}$")


@dataclass
class Enrolled:
    app: Flask
    enrollment_id: int
    trainee_id: int
    course_id: int


def publish_course(app: Flask, platform_name: str = "鲁班学堂") -> int:
    """A published course, written directly: certificates need its rows, not its videos."""
    with app.test_request_context():
        platform = platforms.create(platform_name)
        course = Course(
            platform_id=platform.id,
            occupation_code="6-31-01-03",
            title="低压电工作业",
            level=CourseLevel.JUNIOR,
            hours=Decimal(16),
            status=CourseStatus.PUBLISHED,
            published_at=utcnow(),
        )
        db.session.add(course)
        db.session.commit()
        return course.id


def enrol(app: Flask, course_id: int, id_number: str = TRAINEE_ID, name: str = OWNER_NAME):
    trainee_id = make_trainee(app, id_number, name=name)
    with app.test_request_context():
        enrollment, _ = learning.enroll(db.session.get(User, trainee_id), course_id)
        db.session.commit()
        return Enrolled(app, enrollment.id, trainee_id, course_id)


@pytest.fixture
def enrolled(fresh_app) -> Enrolled:
    return enrol(fresh_app, publish_course(fresh_app))


def issue(app: Flask, enrollment_id: int, hours: float = 16.0) -> Certificate:
    """Issue (or return) the enrolment's certificate, committed, detached for reading."""
    with app.test_request_context():
        certificate = service.issue(enrollment_id, hours=hours)
        db.session.commit()
        db.session.refresh(certificate)
        db.session.expunge(certificate)
        return certificate


def revoke(app: Flask, enrollment_id: int, reason: str = "复核发现代学") -> Certificate | None:
    with app.test_request_context():
        certificate = service.revoke(enrollment_id, reason=reason)
        db.session.commit()
        if certificate is not None:
            db.session.refresh(certificate)
            db.session.expunge(certificate)
        return certificate


# --- Issuing and revoking ------------------------------------------------------------------------


def test_issue_copies_the_course_and_draws_a_readable_random_number(enrolled):
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16.25)
    match = NUMBER.match(certificate.number)
    assert match, certificate.number
    with enrolled.app.app_context():
        zone = ZoneInfo(enrolled.app.config["BABEL_DEFAULT_TIMEZONE"])
    assert int(match.group(1)) == datetime.now(zone).year
    assert CODE.match(certificate.verify_code)
    assert certificate.user_id == enrolled.trainee_id
    assert certificate.holder_name == OWNER_NAME
    assert (certificate.occupation_code, certificate.occupation_name) == ("6-31-01-03", "电工")
    assert certificate.course_title == "低压电工作业"
    assert certificate.level is CourseLevel.JUNIOR
    assert certificate.hours == Decimal("16.25")
    assert certificate.issued_at.tzinfo is not None and certificate.revoked_at is None


def test_issuing_again_returns_the_live_certificate_unchanged(enrolled):
    first = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    again = issue(enrolled.app, enrolled.enrollment_id, hours=99)
    assert (again.id, again.number) == (first.id, first.number)
    assert again.verify_code == first.verify_code
    assert again.hours == Decimal("16.00")
    assert count_rows(enrolled.app, Certificate) == 1


def test_numbers_differ_between_enrolments_and_draws(fresh_app):
    course_id = publish_course(fresh_app)
    first = enrol(fresh_app, course_id)
    second = enrol(fresh_app, course_id, OTHER_ID, "欧阳娜娜")
    one = issue(fresh_app, first.enrollment_id)
    two = issue(fresh_app, second.enrollment_id)
    assert one.number != two.number and one.verify_code != two.verify_code
    drawn = {service.new_number(2026) for _ in range(5000)}
    assert len(drawn) == 5000 and all(NUMBER.match(number) for number in drawn)
    codes = {service.new_verify_code() for _ in range(5000)}
    assert len(codes) == 5000 and all(CODE.match(code) for code in codes)


def test_a_taken_number_is_never_reused(fresh_app, monkeypatch):
    course_id = publish_course(fresh_app)
    first = issue(fresh_app, enrol(fresh_app, course_id).enrollment_id)
    second = enrol(fresh_app, course_id, OTHER_ID, "欧阳娜娜")
    draws = iter([first.number, "VS2026-AAAAA-BBBBB"])
    monkeypatch.setattr(service, "new_number", lambda year: next(draws))
    certificate = issue(fresh_app, second.enrollment_id)
    assert certificate.number == "VS2026-AAAAA-BBBBB"
    assert count_rows(fresh_app, Certificate) == 2


def test_revocation_keeps_the_record_and_a_new_issue_gets_a_new_number(enrolled):
    app, enrollment_id = enrolled.app, enrolled.enrollment_id
    first = issue(app, enrollment_id)
    revoked = revoke(app, enrollment_id, "  复核发现代学  ")
    assert revoked.id == first.id and revoked.revoked_at is not None
    assert revoked.revoke_reason == "复核发现代学"
    with app.test_request_context():
        assert service.current_for(enrollment_id) is None
    assert revoke(app, enrollment_id) is None  # nothing live: nothing to do

    second = issue(app, enrollment_id, hours=15.5)
    assert second.id != first.id
    assert second.number != first.number and second.verify_code != first.verify_code
    assert second.revoked_at is None and second.hours == Decimal("15.50")
    with app.test_request_context():
        assert service.current_for(enrollment_id).id == second.id
        old = service.lookup(first.number)
        assert old.revoked_at is not None and not old.valid
        assert [c.id for c in service.certificates_of(enrolled.trainee_id)] == [second.id, first.id]


def test_revoking_needs_a_reason(enrolled):
    issue(enrolled.app, enrolled.enrollment_id)
    with enrolled.app.test_request_context():
        for reason in ("", "   ", None):
            with pytest.raises(Invalid) as refused:
                service.revoke(enrolled.enrollment_id, reason=reason)
            assert "reason" in refused.value.fields
        assert service.current_for(enrolled.enrollment_id) is not None


def test_the_database_holds_at_most_one_live_certificate_per_enrolment(enrolled):
    live = issue(enrolled.app, enrolled.enrollment_id)

    def another(revoked: bool) -> None:
        with enrolled.app.test_request_context():
            db.session.add(
                Certificate(
                    number=service.new_number(2026),
                    verify_code=service.new_verify_code(),
                    enrollment_id=enrolled.enrollment_id,
                    user_id=live.user_id,
                    holder_name=live.holder_name,
                    occupation_code=live.occupation_code,
                    occupation_name=live.occupation_name,
                    course_title=live.course_title,
                    hours=Decimal(1),
                    revoked_at=utcnow() if revoked else None,
                )
            )
            db.session.commit()

    with pytest.raises(IntegrityError):
        another(revoked=False)
    another(revoked=True)  # revoked ones may pile up beside the live one
    assert count_rows(enrolled.app, Certificate) == 2


@pytest.mark.parametrize("hours", [-1, -0.01, math.nan, math.inf, "16", None, True, 100000.01])
def test_issue_refuses_hours_that_are_not_a_plausible_number(enrolled, hours):
    with enrolled.app.test_request_context(), pytest.raises(Invalid) as refused:
        service.issue(enrolled.enrollment_id, hours=hours)
    assert "hours" in refused.value.fields
    assert count_rows(enrolled.app, Certificate) == 0


def test_hours_are_kept_to_two_decimals(enrolled):
    assert issue(enrolled.app, enrolled.enrollment_id, hours=12.345).hours == Decimal("12.35")
    assert (hours_text(Decimal("12.50")), hours_text(Decimal("16.00"))) == ("12.5", "16")
    assert (hours_text(Decimal("0.00")), hours_text(Decimal("100"))) == ("0", "100")


def test_issue_for_an_unknown_enrolment_is_not_found(fresh_app):
    with fresh_app.test_request_context(), pytest.raises(NotFound) as missing:
        service.issue(424242, hours=1)
    assert missing.value.code == "enrollment_not_found"


def test_lookup_reads_numbers_as_people_type_them(enrolled):
    certificate = issue(enrolled.app, enrolled.enrollment_id)
    number = certificate.number
    typed = [
        number.lower(),
        number.replace("-", ""),
        " " + number.replace("-", " ") + " ",
        number.replace("0", "O").replace("1", "I"),
    ]
    with enrolled.app.test_request_context():
        for text in typed:
            assert service.lookup(text).id == certificate.id, text
        for junk in ("", "VS2026", number[:-1], number + "Z", "x" * 5000, "VS2026-UUUUU-UUUUU"):
            with pytest.raises(NotFound) as missing:
                service.lookup(junk)
            assert missing.value.code == "certificate_not_found"


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三丰", "张**"), ("李四", "李*"), ("欧阳娜娜", "欧***"), ("阿依古丽·买买提", "阿*******")],
)
def test_names_are_masked_to_the_first_character(name, masked):
    assert mask_name(name) == masked
    assert mask_name("") == "*"


# --- Public verification: the API ----------------------------------------------------------------


@pytest.fixture
def contract(client) -> Contract:
    return Contract(client.get("/api/v1/openapi.json").get_json())


def test_api_answers_valid_revoked_and_unknown_as_documented(client, enrolled, contract):
    path = "/api/v1/certificates/{number}"
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    url = f"/api/v1/certificates/{certificate.number}"

    response = client.get(url)  # no credentials: verification is public
    body = contract.check(response, "get", path)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert body == {
        "valid": True,
        "number": certificate.number,
        "name": "张**",
        "occupation_code": "6-31-01-03",
        "occupation_name": "电工",
        "hours": 16.0,
        "issued_at": certificate.issued_at.isoformat(),
        "revoked_at": None,
    }
    assert OWNER_NAME not in response.get_data(as_text=True)
    assert certificate.verify_code not in response.get_data(as_text=True)
    assert client.get(url.lower()).get_json()["number"] == certificate.number

    revoke(enrolled.app, enrolled.enrollment_id)
    revoked = contract.check(client.get(url), "get", path)
    assert revoked["valid"] is False and revoked["revoked_at"]

    for unknown in ("VS2026-AAAAA-BBBBB", "nonsense", "x" * 300):
        response = client.get(f"/api/v1/certificates/{unknown}")
        assert response.status_code == 404
        assert contract.check(response, "get", path)["error"]["code"] == "certificate_not_found"


# --- Public verification: the page ---------------------------------------------------------------


def verdict(html: str) -> str | None:
    match = re.search(r'class="verdict[^"]*" data-state="(\w+)"', html)
    return match.group(1) if match else None


def code_check(html: str) -> str | None:
    match = re.search(r'data-code="(\w+)"', html)
    return match.group(1) if match else None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_verify_page_shows_valid_revoked_and_unknown(client, enrolled, lang):
    client.set_cookie("lang", lang)
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    url = f"/verify/{certificate.number}"

    response = client.get(url)  # anonymous
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and verdict(page) == "valid"
    assert response.headers["Cache-Control"] == "no-store"
    assert "张**" in page and OWNER_NAME not in page
    assert certificate.verify_code not in page  # the code is on the paper, never on the web
    assert "电工" in page and "6-31-01-03" in page and certificate.number in page
    assert re.search(r'data-field="hours">[^<]*\b16\b', page)
    assert code_check(page) is None

    revoke(enrolled.app, enrolled.enrollment_id)
    response = client.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and verdict(page) == "revoked"
    assert "复核发现代学" not in page  # why it was revoked is not the public's business
    assert OWNER_NAME not in page

    response = client.get("/verify/VS2026-AAAAA-BBBBB")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and verdict(page) == "unknown"
    assert "VS2026-AAAAA-BBBBB" in page
    response = client.get("/verify/<script>alert(1)<%2Fscript>")
    assert response.status_code == 404 and "<script>alert" not in response.get_data(as_text=True)


def test_verify_page_says_whether_the_printed_code_matches(client, enrolled):
    certificate = issue(enrolled.app, enrolled.enrollment_id)
    url = f"/verify/{certificate.number}"
    code = certificate.verify_code
    assert code_check(client.get(url, query_string={"code": code}).get_data(as_text=True)) == (
        "match"
    )
    typed = f" {code[:4].lower()} {code[4:].lower()} "
    assert code_check(client.get(url, query_string={"code": typed}).get_data(as_text=True)) == (
        "match"
    )
    wrong = ("Z" if code[0] != "Z" else "Y") + code[1:]
    for bad in (wrong, "12345", "x" * 500):
        page = client.get(url, query_string={"code": bad}).get_data(as_text=True)
        assert verdict(page) == "valid" and code_check(page) == "mismatch", bad

    revoke(enrolled.app, enrolled.enrollment_id)
    page = client.get(url, query_string={"code": code}).get_data(as_text=True)
    assert verdict(page) == "revoked" and code_check(page) == "match"


def test_verify_form_leads_to_the_certificate(client, enrolled):
    certificate = issue(enrolled.app, enrolled.enrollment_id)
    form = client.get("/verify")
    assert form.status_code == 200 and 'name="number"' in form.get_data(as_text=True)
    typed = certificate.number.lower().replace("-", " ")
    response = client.get("/verify", query_string={"number": typed, "code": "abc"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/verify/{certificate.number}?code=abc"
    unknown = client.get("/verify", query_string={"number": "nothing"}, follow_redirects=True)
    assert unknown.status_code == 404 and verdict(unknown.get_data(as_text=True)) == "unknown"


# --- The printable certificate -------------------------------------------------------------------


def test_holder_sees_the_printable_certificate_with_a_qr_code_of_its_verification_url(
    client, enrolled
):
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    response = client.get(f"/certificates/{certificate.number}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert OWNER_NAME in page and certificate.verify_code in page
    assert "110105********1239" in page and TRAINEE_ID not in page
    assert "/static/certificates.css" in page

    base = enrolled.app.config["PUBLIC_BASE_URL"]
    with enrolled.app.test_request_context():
        stored = service.lookup(certificate.number)
        url = service.verification_url(stored)
        printed = service.printed_url(stored)
        expected_svg = str(qr_svg(printed))
    assert url == f"{base}/verify/{certificate.number}"
    assert printed == f"{url}?code={certificate.verify_code}"
    assert expected_svg.startswith("<svg") and expected_svg in page
    assert page.count("<svg") == 1
    # A different URL draws a different code: the page's QR is the printed URL's.
    assert str(qr_svg(url)) not in page
    # The URL it encodes leads to the verification page, which confirms the code.
    follow = client.get(printed.removeprefix(base))
    assert code_check(follow.get_data(as_text=True)) == "match"

    listing = client.get("/certificates").get_data(as_text=True)
    assert certificate.number in listing and "低压电工作业" in listing

    revoke(enrolled.app, enrolled.enrollment_id)
    page = client.get(f"/certificates/{certificate.number}").get_data(as_text=True)
    assert 'class="stamp" data-state="revoked"' in page


def test_only_the_holder_and_staff_open_the_printable_certificate(fresh_app, enrolled):
    certificate = issue(enrolled.app, enrolled.enrollment_id)
    url = f"/certificates/{certificate.number}"

    anonymous = fresh_app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    make_trainee(fresh_app, OTHER_ID, name="欧阳娜娜")
    other = fresh_app.test_client()
    sign_in_page(other, OTHER_ID, TRAINEE_PASSWORD)
    refused = other.get(url)
    assert refused.status_code == 403 and OWNER_NAME not in refused.get_data(as_text=True)
    assert certificate.number not in other.get("/certificates").get_data(as_text=True)

    for role, username in ((Role.AUDITOR, "auditor1"), (Role.ADMIN, "chief")):
        make_staff(fresh_app, role, username)
        staff = fresh_app.test_client()
        sign_in_page(staff, username)
        response = staff.get(url)
        page = response.get_data(as_text=True)
        # Staff see the certificate with the holder's name masked, as the public page has it.
        assert response.status_code == 200 and certificate.number in page
        assert OWNER_NAME not in page and mask_name(OWNER_NAME) in page
        assert staff.get("/certificates/VS2026-AAAAA-BBBBB").status_code == 404


# --- In a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_certificate_pages_fit_phones_and_print_on_one_a4_page(
    browser, database_url, enrolled, viewport
):
    if not database_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database; runs on SQLite")
    shots = screenshot_dir()
    width = viewport["width"]
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    with live_server(enrolled.app) as base:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()

        pages = {
            "verify": f"/verify/{certificate.number}?code={certificate.verify_code}",
            "verify-unknown": "/verify/VS2026-AAAAA-BBBBB",
        }
        for name, path in pages.items():
            page.goto(base + path)
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"{path} is {overflow}px too wide at {width}px"
            if shots:
                page.screenshot(path=shots / f"certs-{name}-{width}.png", full_page=True)
        page.goto(base + pages["verify"])
        assert page.locator(".verdict-valid").is_visible()
        assert page.locator("[data-code=match]").is_visible()

        page.goto(f"{base}/login")
        page.fill("#f-login", TRAINEE_ID)
        page.fill("#f-password", TRAINEE_PASSWORD)
        page.click("button[type=submit].wide")
        page.wait_for_url(lambda url: "/login" not in url)
        response = page.goto(f"{base}/certificates/{certificate.number}")
        assert response.status == 200
        overflow = sideways_overflow(page)
        assert overflow <= 0, f"the certificate is {overflow}px too wide at {width}px"
        qr = page.locator("svg.qr").bounding_box()
        assert qr and qr["width"] >= 120 and abs(qr["width"] - qr["height"]) < 1
        if shots:
            page.screenshot(path=shots / f"certs-printable-{width}.png", full_page=True)

        # Printed, the site's header and buttons go and the certificate fills one A4 sheet.
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 703, "height": 1013})  # A4 less 12 mm margins, 96 dpi
        assert page.locator(".topbar").is_hidden() and page.locator("[data-print]").is_hidden()
        clipped = page.evaluate(
            "(() => { const c = document.querySelector('.certificate');"
            " return c.scrollHeight - c.clientHeight; })()"
        )
        assert clipped <= 0, f"{clipped}px of the certificate would be cut off in print"
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
        if shots:
            page.screenshot(path=shots / f"certs-print-{width}.png", full_page=True)
            (shots / f"certs-print-{width}.pdf").write_bytes(pdf)

        # Revoked: the public page says so plainly and the holder's copy is stamped.
        revoke(enrolled.app, enrolled.enrollment_id)
        page.emulate_media(media="screen")
        page.set_viewport_size(viewport)
        for name, path, marker in (
            ("verify-revoked", f"/verify/{certificate.number}", ".verdict-revoked"),
            ("printable-revoked", f"/certificates/{certificate.number}", ".stamp"),
        ):
            page.goto(base + path)
            assert page.locator(marker).is_visible(), name
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"{path} is {overflow}px too wide at {width}px"
            if shots:
                page.screenshot(path=shots / f"certs-{name}-{width}.png", full_page=True)
        context.close()


def test_the_qr_code_points_at_the_configured_address_whatever_host_was_asked(
    client, enrolled, monkeypatch
):
    monkeypatch.setitem(enrolled.app.config, "PUBLIC_BASE_URL", "https://peixun.example.gov.cn")
    certificate = issue(enrolled.app, enrolled.enrollment_id, hours=16)
    client.environ_base["HTTP_HOST"] = "evil.example.com"  # as a forged Host header would
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    page = client.get(f"/certificates/{certificate.number}").get_data(as_text=True)
    assert certificate.verify_code in page
    printed = f"https://peixun.example.gov.cn/verify/{certificate.number}"
    assert f"{printed}</p>" in page and "evil.example.com" not in page
    # The QR's modules (its title is in the page's language) encode the configured address.
    modules = re.findall(r' d="([^"]+)"', str(qr_svg(f"{printed}?code={certificate.verify_code}")))
    assert modules and all(f'd="{path}"' in page for path in modules)


@pytest.mark.parametrize(
    ("env", "url", "ok"),
    [
        ("development", "http://127.0.0.1:5000", True),
        ("production", "https://peixun.example.gov.cn", True),
        ("production", "https://peixun.example.gov.cn/", True),
        ("production", "http://peixun.example.gov.cn", False),
        ("production", "https://peixun.example.gov.cn/verify", False),
        ("production", "https://user@peixun.example.gov.cn", False),
        ("development", "peixun.example.gov.cn", False),
        ("development", "", False),
    ],
)
def test_the_public_address_is_checked_at_start(env, url, ok):
    settings = config.Config()
    settings.ENV_NAME = env
    settings.PUBLIC_BASE_URL = url
    if ok:
        config.check_public_base_url(settings)
    else:
        with pytest.raises(config.ConfigError, match="PUBLIC_BASE_URL"):
            config.check_public_base_url(settings)
