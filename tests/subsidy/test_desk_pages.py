"""The auditors' desk, the standards page and the e-archive, as pages in a signed-in session."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.extensions import db
from app.identity.models import Role
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    csrf_from,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.courses.helpers import OCCUPATION
from tests.study import enrol_face
from tests.subsidy.test_scenarios import SECOND_ID, open_session
from tests.verification.photos import photo
from tests.verification.test_checks import upload_face


def failed_check(study) -> tuple[int, int]:
    """An enrolment whose sign-in check someone else answered: (enrollment id, check id)."""
    enrollment_id = study.enrol()
    check = open_session(study)["check"]
    assert study.fail_check(check["id"], photo("biden_2.jpg"))["code"] == "mismatch"
    return enrollment_id, check["id"]


def staff_client(app, role=Role.AUDITOR, username="auditor1"):
    make_staff(app, role, username)
    browser = app.test_client()
    sign_in_page(browser, username)
    return browser


def test_queue_and_review_show_the_reference_beside_each_snapshot(study, fresh_app):
    enrollment_id, check_id = failed_check(study)
    desk = staff_client(fresh_app)
    queue = desk.get("/audit")
    assert queue.status_code == 200
    assert f"/audit/enrollments/{enrollment_id}" in queue.get_data(as_text=True)
    page = desk.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    images = re.findall(r'src="(/audit/evidence/\d+)"', page)
    assert len(images) == 4  # the reference photo and a snapshot of each of the three tries
    assert f'id="check-{check_id}"' in page and "mismatch" in page
    assert TRAINEE_ID not in page and "110105********1239" in page
    # Opening an image is logged, then redirected to a signed, short-lived link.
    with desk.get(images[1]) as shown:
        assert shown.status_code == 302 and "sig=" in shown.headers["Location"]
    with fresh_app.app_context():
        views = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "evidence.view")
        ).all()
        assert [entry.actor_id is not None for entry in views] == [True]


def test_decisions_from_the_desk_need_a_reason_and_are_recorded(study, fresh_app):
    enrollment_id, check_id = failed_check(study)
    desk = staff_client(fresh_app)
    page = desk.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    token = csrf_from(page)
    bare = desk.post(
        f"/audit/enrollments/{enrollment_id}/decision",
        data={"csrf_token": token, "decision": "reject", "reason": ""},
        follow_redirects=True,
    )
    assert "flash-error" in bare.get_data(as_text=True)
    cleared = desk.post(
        f"/audit/checks/{check_id}/clear",
        data={"csrf_token": token, "enrollment_id": enrollment_id, "reason": "本人，戴了口罩"},
        follow_redirects=True,
    )
    assert "flash-success" in cleared.get_data(as_text=True)
    rejected = desk.post(
        f"/audit/enrollments/{enrollment_id}/decision",
        data={"csrf_token": token, "decision": "reject", "reason": "学习记录不完整且可疑"},
        follow_redirects=True,
    )
    assert "flash-success" in rejected.get_data(as_text=True)
    body = study.enrollment(enrollment_id)
    assert body["subsidy"]["status"] == "ineligible"
    with fresh_app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions[-2:] == ["subsidy.clear_check", "subsidy.reject"]


def test_trainees_and_anonymous_visitors_never_see_the_desk(study, fresh_app, client):
    enrollment_id, _ = failed_check(study)
    anonymous = fresh_app.test_client()
    sent_away = anonymous.get("/audit")
    assert sent_away.status_code == 302 and "/login" in sent_away.headers["Location"]
    trainee = fresh_app.test_client()
    sign_in_page(trainee, TRAINEE_ID, TRAINEE_PASSWORD)
    assert trainee.get("/audit").status_code == 403
    assert trainee.get(f"/audit/enrollments/{enrollment_id}").status_code == 403
    assert trainee.get("/audit/evidence/1").status_code == 403


def test_admin_sets_a_standard_and_bad_amounts_are_refused(fresh_app):
    admin = staff_client(fresh_app, Role.ADMIN, "admin1")
    token = csrf_from(admin.get("/admin/standards").get_data(as_text=True))
    bad = admin.post(
        "/admin/standards",
        data={"csrf_token": token, "occupation_code": "9-99", "amount_yuan": "-5"},
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'id="f-occupation_code"' in text and text.count('class="error"') == 2
    for amount in ("1500", "1800.00"):
        saved = admin.post(
            "/admin/standards",
            data={"csrf_token": token, "occupation_code": OCCUPATION, "amount_yuan": amount},
            follow_redirects=True,
        )
        assert saved.status_code == 200
    listing = admin.get("/admin/standards").get_data(as_text=True)
    assert "1800.00" in listing and "1500.00" not in listing  # changed, not duplicated
    assert f"{OCCUPATION}</span> 电工" in listing  # named as in the catalogue
    with fresh_app.app_context():
        entries = db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "standard.set")
            .order_by(AuditEntry.seq)
        ).all()
        assert [e.detail for e in entries][-1].count("1800.00") == 1


def test_archive_page_lists_training_and_lets_a_rejected_trainee_appeal(study, fresh_app):
    enrollment_id, _ = failed_check(study)
    desk = staff_client(fresh_app)
    token = csrf_from(desk.get("/audit").get_data(as_text=True))
    desk.post(
        f"/audit/enrollments/{enrollment_id}/decision",
        data={"csrf_token": token, "decision": "reject", "reason": "他人代学"},
    )
    trainee = fresh_app.test_client()
    sign_in_page(trainee, TRAINEE_ID, TRAINEE_PASSWORD)
    page = trainee.get("/me/archive").get_data(as_text=True)
    assert f'id="enrollment-{enrollment_id}"' in page and "他人代学" in page
    appealed = trainee.post(
        f"/me/enrollments/{enrollment_id}/appeal",
        data={"csrf_token": csrf_from(page), "message": "是本人学习，请复核"},
        follow_redirects=True,
    )
    assert "flash-success" in appealed.get_data(as_text=True)
    assert study.enrollment(enrollment_id)["subsidy"]["status"] == "needs_review"
    archive = trainee.get("/api/v1/me/archive?download=1")
    assert "attachment" in archive.headers["Content-Disposition"]
    [item] = archive.get_json()["items"]
    assert item["checks"] == {"total": 1, "passed": 0, "failed": 1, "cleared": 0}
    assert [d["action"] for d in item["decisions"]] == ["reject"]
    assert item["appeals"][0]["message"] == "是本人学习，请复核"


def test_identity_questions_wait_on_the_desk_and_are_decided_there(study, fresh_app):
    """A face on two accounts, and a new face after studying: both faces side by side."""
    second = make_trainee(fresh_app, SECOND_ID, phone="13700000000", name="奥巴")
    enrol_face(fresh_app, second, photo("obama_3.jpg"))
    study.enrol()
    study.start()  # a passed check: a new face now needs approval
    changed = upload_face(study.client, study.token, photo("biden_1.jpg"))
    assert changed.get_json()["status"] == "pending_approval"
    desk = staff_client(fresh_app)
    queue = desk.get("/audit").get_data(as_text=True)
    flag_url = re.search(r'href="(/audit/flags/\d+)"', queue).group(1)
    reference_url = re.search(r'href="(/audit/references/\d+)"', queue).group(1)

    page = desk.get(flag_url).get_data(as_text=True)
    assert len(re.findall(r'src="/audit/evidence/\d+"', page)) == 2
    token = csrf_from(page)
    bare = desk.post(
        f"{flag_url}/resolve",
        data={"csrf_token": token, "outcome": "cleared", "reason": " "},
        follow_redirects=True,
    )
    assert "flash-error" in bare.get_data(as_text=True)
    desk.post(
        f"{flag_url}/resolve",
        data={"csrf_token": token, "outcome": "cleared", "reason": "核对身份证原件，确为两人"},
    )
    other = bearer(api_token(study.client, SECOND_ID, "Study2026ok"))
    study.client.post(f"/api/v1/courses/{study.course_id}/enrollments", headers=other)
    opened = study.client.post(f"/api/v1/lessons/{study.lesson_id}/sessions", headers=other)
    assert opened.status_code == 201  # cleared: the second trainee studies

    page = desk.get(reference_url).get_data(as_text=True)
    assert len(re.findall(r'src="/audit/evidence/\d+"', page)) == 2
    desk.post(
        f"{reference_url}/decide",
        data={"csrf_token": csrf_from(page), "outcome": "reject", "reason": "不是同一人"},
    )
    with fresh_app.app_context():
        decided = db.session.scalars(
            sa.select(AuditEntry.action).where(
                AuditEntry.action.in_(["identity_flag.cleared", "face_reference.reject"])
            )
        ).all()
        assert sorted(decided) == ["face_reference.reject", "identity_flag.cleared"]
    assert not re.search(
        r'href="/audit/(flags|references)/', desk.get("/audit").get_data(as_text=True)
    )


def test_desk_shows_words_and_the_bureaus_clock_not_codes_and_utc(study, fresh_app):
    from datetime import UTC, datetime

    from app.verification.models import Check

    enrollment_id, check_id = failed_check(study)
    with fresh_app.app_context():
        check = db.session.get(Check, check_id)
        check.answered_at = datetime(2026, 1, 2, 19, 4, 5, tzinfo=UTC)  # 03:04:05 next day
        db.session.commit()
    desk = staff_client(fresh_app)
    desk.set_cookie("lang", "zh")
    page = desk.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    card = page[page.index(f'id="check-{check_id}"') :].split("</header>", 1)[0]
    assert "2026-01-03 03:04:05" in card and "UTC" not in page
    assert "未通过 · 他人面孔" in card
    assert ">failed" not in card and "mismatch<" not in card and "· mismatch" not in card
    desk.set_cookie("lang", "en")
    page = desk.get(f"/audit/enrollments/{enrollment_id}").get_data(as_text=True)
    card = page[page.index(f'id="check-{check_id}"') :].split("</header>", 1)[0]
    assert "Not passed · Someone else&#39;s face" in card


def test_actions_return_to_the_part_of_the_page_acted_on(study, fresh_app):
    enrollment_id, check_id = failed_check(study)
    desk = staff_client(fresh_app)
    review = f"/audit/enrollments/{enrollment_id}"
    token = csrf_from(desk.get(review).get_data(as_text=True))
    cleared = desk.post(
        f"/audit/checks/{check_id}/clear",
        data={"enrollment_id": enrollment_id, "reason": "光线差，是本人", "csrf_token": token},
    )
    assert cleared.status_code == 302
    assert cleared.headers["Location"].endswith(f"{review}#check-{check_id}")
    refused = desk.post(
        f"{review}/decision", data={"decision": "reject", "reason": "", "csrf_token": token}
    )
    assert refused.headers["Location"].endswith(f"{review}#decision")
    page = desk.get(review).get_data(as_text=True)
    assert 'id="decision"' in page and "data-keep-place" in page
