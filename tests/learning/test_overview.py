"""The learning overview (`/learn`): every enrolment with progress, verified time, the subsidy
status in words and what to do next, in a fixed number of queries."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.certificates.models import Certificate
from app.courses.models import Lesson
from app.db import utcnow
from app.extensions import db
from app.identity.models import Role, User
from app.learning.models import Enrollment, LessonProgress
from app.subsidy import service as subsidy
from app.subsidy.models import SpotCheck
from tests.browser import (
    LAPTOP,
    PHONE,
    chromium,
    live_server,
    screenshot_dir,
    sideways_overflow,
    sign_in,
)
from tests.catalog.helpers import ELECTRICIAN, add_course, statements
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, make_staff, make_trainee, sign_in_page
from tests.study import enrol_face
from tests.verification.photos import photo


def enrol(app, trainee_id: int, title: str, **course) -> int:
    course_id = add_course(app, title, **course)
    with app.app_context():
        enrollment = Enrollment(trainee_id=trainee_id, course_id=course_id)
        db.session.add(enrollment)
        db.session.commit()
        return enrollment.id


def lessons_of(enrollment_id: int) -> list[Lesson]:
    enrollment = db.session.get(Enrollment, enrollment_id)
    return list(enrollment.course.lessons)


def studied(app, enrollment_id: int, verified_s: float, *, pending_s: float = 0.0) -> None:
    """Confirmed time (and time waiting for a check) on the first lesson, not complete."""
    with app.app_context():
        lesson = lessons_of(enrollment_id)[0]
        db.session.add(
            LessonProgress(
                enrollment_id=enrollment_id,
                lesson_id=lesson.id,
                credited_s=verified_s + pending_s,
                pending_s=pending_s,
                coverage=0.5,
            )
        )
        db.session.commit()


def completed(app, enrollment_id: int, *, spot_check: bool = False) -> None:
    """Every lesson complete on confirmed time; the subsidy settled as the workflow does."""
    with app.test_request_context():
        for lesson in lessons_of(enrollment_id):
            db.session.add(
                LessonProgress(
                    enrollment_id=enrollment_id,
                    lesson_id=lesson.id,
                    credited_s=lesson.duration_s,
                    coverage=1.0,
                    completed_at=utcnow(),
                )
            )
        enrollment = db.session.get(Enrollment, enrollment_id)
        enrollment.completed_at = utcnow()
        db.session.add(SpotCheck(enrollment_id=enrollment_id, selected=spot_check, rate=1.0))
        db.session.flush()
        subsidy.settle(enrollment)
        db.session.commit()


def rejected(app, enrollment_id: int, reason: str, *, appeal: str | None = None) -> None:
    with app.test_request_context():
        auditor = db.session.scalar(sa.select(User).where(User.role == Role.AUDITOR))
        subsidy.decide(enrollment_id, "reject", reason, auditor=auditor)
        if appeal:
            trainee = db.session.get(Enrollment, enrollment_id).trainee_id
            subsidy.appeal(db.session.get(User, trainee), enrollment_id, appeal)
        db.session.commit()


def cards(html: str) -> dict[int, str]:
    """Each enrolment's card on the page, by enrolment id."""
    found = re.findall(
        r'<li class="card overview-item" id="enrollment-(\d+)">(.*?)</li>', html, re.S
    )
    return {int(number): body for number, body in found}


def next_kind(card: str) -> str:
    match = re.search(r'data-next="([a-z_]+)"', card)
    assert match, card
    return match.group(1)


@pytest.fixture
def trainee(fresh_app, client) -> int:
    """A signed-in trainee with an enrolled face, reading in English; an auditor exists."""
    user_id = make_trainee(fresh_app)
    enrol_face(fresh_app, user_id, photo("obama_1.jpg"))
    make_staff(fresh_app)
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    client.get("/lang/en")
    return user_id


def test_every_enrolment_with_progress_subsidy_and_next_step(client, fresh_app, trainee):
    with fresh_app.test_request_context():
        subsidy.set_standard(ELECTRICIAN, None, "1200", staff=None)
        db.session.commit()
    fresh = enrol(fresh_app, trainee, "低压电工作业")
    started = enrol(fresh_app, trainee, "高压电工作业")
    studied(fresh_app, started, 6.0, pending_s=3.0)
    refused = enrol(fresh_app, trainee, "电工基础")
    rejected(fresh_app, refused, "两次人脸核验均非本人")
    appealed = enrol(fresh_app, trainee, "电工安全")
    rejected(fresh_app, appealed, "学习时段存疑", appeal="那天是我本人在学习")
    certified = enrol(fresh_app, trainee, "电工进阶")
    completed(fresh_app, certified)
    reviewed = enrol(fresh_app, trainee, "电工实操")
    completed(fresh_app, reviewed, spot_check=True)

    response = client.get("/learn")
    assert response.status_code == 200
    found = cards(response.get_data(as_text=True))
    assert set(found) == {fresh, started, refused, appealed, certified, reviewed}

    with fresh_app.app_context():
        first = {e: lessons_of(e)[0].id for e in found}
        number = db.session.scalar(
            sa.select(Certificate.number).where(Certificate.enrollment_id == certified)
        )

    card = found[fresh]
    assert "低压电工作业" in card and f'href="/learn/{fresh}"' in card
    assert "0:00 confirmed of 0:18 needed" in card  # two 10 s lessons, 90% of each
    assert "0 of 2 lessons complete" in card
    assert "Not yet eligible" in card
    assert next_kind(card) == "start" and f'href="/learn/lessons/{first[fresh]}"' in card

    card = found[started]
    assert "0:06 confirmed of 0:18 needed" in card
    assert "0:03 more waits for your next face check" in card
    assert next_kind(card) == "continue" and f'href="/learn/lessons/{first[started]}"' in card
    assert "Continue: 第1课" in card

    card = found[refused]
    assert "Not eligible. The auditor&#39;s reason: 两次人脸核验均非本人" in card
    assert next_kind(card) == "appeal" and f'href="/learn/{refused}#subsidy"' in card

    card = found[appealed]
    assert "Appeal pending" in card and next_kind(card) == "appeal_pending"

    card = found[certified]
    assert "Eligible: a subsidy of 1,200.00 yuan." in card
    assert "2 of 2 lessons complete" in card
    assert next_kind(card) == "certificate" and f'href="/certificates/{number}"' in card

    card = found[reviewed]
    assert "Waiting for review" in card and next_kind(card) == "waiting_auditor"


def test_no_face_yet_comes_before_studying(client, fresh_app):
    user_id = make_trainee(fresh_app)
    enrollment = enrol(fresh_app, user_id, "低压电工作业")
    sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    html = client.get("/learn").get_data(as_text=True)
    card = cards(html)[enrollment]
    assert next_kind(card) == "face" and 'href="/me/face"' in card
    assert 'lang="zh-CN"' in html and "我的课程" in html  # Chinese unless asked otherwise


def test_eligible_without_a_standard_says_the_amount_is_not_set(client, fresh_app, trainee):
    enrollment = enrol(fresh_app, trainee, "低压电工作业")
    completed(fresh_app, enrollment)
    card = cards(client.get("/learn").get_data(as_text=True))[enrollment]
    assert "has not yet set the subsidy amount" in card
    assert next_kind(card) == "certificate"


def test_shows_only_the_trainees_own_enrolments(client, fresh_app, trainee):
    other = make_trainee(fresh_app, "11010519491231002X", phone="13912345679")
    mine = enrol(fresh_app, trainee, "我的课程")
    theirs = enrol(fresh_app, other, "别人的课程")
    found = cards(client.get("/learn").get_data(as_text=True))
    assert mine in found and theirs not in found


def test_staff_see_an_empty_overview(client, fresh_app):
    make_staff(fresh_app, username="auditor9")
    sign_in_page(client, "auditor9")
    assert client.get("/learn").status_code == 200


def test_signing_in_is_needed(client):
    response = client.get("/learn")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_queries_do_not_grow_with_the_number_of_enrolments(client, fresh_app, trainee):
    def count() -> int:
        with statements(fresh_app) as seen:
            assert client.get("/learn").status_code == 200
        return len(seen)

    def variety(n: int) -> None:  # one of each state, so every kind of look-up runs
        studied(fresh_app, enrol(fresh_app, trainee, f"课程{n}a"), 4.0)
        rejected(fresh_app, enrol(fresh_app, trainee, f"课程{n}b"), "存疑")
        completed(fresh_app, enrol(fresh_app, trainee, f"课程{n}c"))
        enrol(fresh_app, trainee, f"课程{n}d", occupation="6-18-02-04", lessons=3)

    variety(0)
    client.get("/learn")  # warm up what is loaded once per process
    few = count()
    for n in range(1, 5):
        variety(n)
    many = count()
    assert len(cards(client.get("/learn").get_data(as_text=True))) == 20
    assert few > 0
    assert many == few, f"{few} statements for 4 enrolments, {many} for 20"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_overview_fits_a_phone(fresh_app, database_url, viewport):
    if not database_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database; runs on SQLite")
    user_id = make_trainee(fresh_app)
    enrol_face(fresh_app, user_id, photo("obama_1.jpg"))
    make_staff(fresh_app)
    long_title = "电工作业人员安全技术培训（低压电工作业初训）理论与实操综合课程第一期"
    platform = "非常长名称的职业技能培训平台"
    studied(fresh_app, enrol(fresh_app, user_id, long_title, platform=platform), 5.0)
    rejected(fresh_app, enrol(fresh_app, user_id, "电工基础"), "人脸核验" * 40)
    completed(fresh_app, enrol(fresh_app, user_id, "电工进阶"))
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        sign_in(page, base, TRAINEE_ID, TRAINEE_PASSWORD)
        for lang in ("zh", "en"):
            page.goto(f"{base}/lang/{lang}?next=/learn")
            assert page.locator(".overview-item").count() == 3
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"/learn is {overflow}px too wide at {viewport['width']}px"
            # Each next step's link is a comfortable tap target.
            for box in (b.bounding_box() for b in page.locator(".overview-next a").all()):
                assert box is not None and box["height"] >= 40, box
            if shots:
                page.screenshot(
                    path=shots / f"overview-{lang}-{viewport['width']}.png", full_page=True
                )
        context.close()
