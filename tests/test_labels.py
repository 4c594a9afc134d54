"""Every stored code a person can read has one translated label (app/labels.py)."""

from __future__ import annotations

import enum
import importlib
import inspect
from pathlib import Path

import pytest
from flask_babel import force_locale

from app.labels import BY_KIND, LABELS, label
from app.learning.rules import Reason as HeldReason
from app.subsidy.rules import RISK
from app.subsidy.rules import Status as SubsidyStatus
from app.subsidy.service import REASON_MESSAGES, REVOKE_MESSAGES
from app.verification.views import FACE_MESSAGES

ROOT = Path(__file__).resolve().parent.parent


def model_enums() -> list[type[enum.Enum]]:
    """Every enum declared in an app/*/models.py, found by walking the files: a new domain or
    a new state is covered without touching this test."""
    found = []
    for path in sorted((ROOT / "app").glob("*/models.py")):
        module = importlib.import_module(f"app.{path.parent.name}.models")
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, enum.Enum) and member.__module__ == module.__name__:
                found.append(member)
    return found


def test_the_walk_finds_the_state_enums():
    names = {e.__name__ for e in model_enums()}
    assert {"CourseStatus", "LessonStatus", "CheckStatus", "FlagStatus", "JobStatus"} <= names


@pytest.mark.parametrize(
    "kind", [*model_enums(), SubsidyStatus, HeldReason], ids=lambda kind: kind.__name__
)
def test_every_enum_value_has_a_label(kind):
    missing = [member.value for member in kind if member.value not in LABELS]
    assert not missing, f"add labels to app/labels.py for {kind.__name__}: {missing}"


def test_every_reason_and_result_code_has_a_label():
    codes = set(RISK) | set(REASON_MESSAGES) | set(REVOKE_MESSAGES)
    # Results of a face check as the desk shows them (Check.code, Evidence.result).
    face_results = set(FACE_MESSAGES) - {
        "checking",
        "get_ready",
        "capturing",
        "tries_left",
        "failed_final",
        "continue",
        "no_camera",
    }
    missing = sorted(
        code for code in codes | face_results | {"match", "no_match"} if code not in LABELS
    )
    assert not missing, f"add labels to app/labels.py: {missing}"


def test_labels_are_translated_and_never_the_code(fresh_app):
    with fresh_app.test_request_context():
        for locale in ("zh", "en"):
            with force_locale(locale):
                for code in LABELS:
                    text = label(code)
                    assert text and text != code, (locale, code)
                for kind, table in BY_KIND.items():
                    for code in table:
                        assert label(code, kind) != code, (locale, kind, code)
        with force_locale("zh"):
            assert label("in_review") == "审核中"
            assert label("failed", "lesson") != label("failed", "check")
            assert label(None) == ""
            assert label("something_new") == "something_new"  # shown, and logged


def test_flash_after_a_course_decision_names_the_status_in_words(seeded, fresh_app):
    from app.courses.models import Course, CourseStatus
    from app.extensions import db
    from tests.conftest import csrf_from, sign_in_page

    with fresh_app.app_context():
        course = db.session.get(Course, seeded["course_id"])
        course.status = CourseStatus.IN_REVIEW
        db.session.commit()
    client = fresh_app.test_client()
    sign_in_page(client, "demo-admin", "DemoAdmin2026")
    page = client.get(f"/admin/courses/{seeded['course_id']}").get_data(as_text=True)
    response = client.post(
        f"/admin/courses/{seeded['course_id']}/decision",
        data={"action": "publish", "csrf_token": csrf_from(page)},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "已发布" in html
    assert "published" not in html.split("<main", 1)[-1].split("</main>")[0].replace(
        'badge-published"', ""
    )


def test_locked_course_message_names_the_status_in_the_callers_language(fresh_app):
    from app.courses.models import Course, CourseStatus
    from app.extensions import db
    from tests.conftest import bearer, make_platform
    from tests.courses.helpers import create_course

    token = make_platform(fresh_app)
    client = fresh_app.test_client()
    course_id = create_course(client, token)
    with fresh_app.app_context():
        db.session.get(Course, course_id).status = CourseStatus.IN_REVIEW
        db.session.commit()
    answers = {}
    for language in ("zh-CN,zh;q=0.9", "en-US,en;q=0.8"):
        response = client.post(
            f"/api/v1/courses/{course_id}/lessons",
            json={"title": "第二课"},
            headers={**bearer(token), "Accept-Language": language},
        )
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["code"] == "course_locked"  # the machine code stays
        assert "in_review" not in error["message"]
        answers[language[:2]] = error["message"]
    assert "审核中" in answers["zh"]
    assert "in review" in answers["en"].lower()


def test_one_filter_puts_every_time_on_the_bureaus_clock(fresh_app):
    from datetime import UTC, datetime

    from flask import render_template_string

    moment = datetime(2026, 1, 1, 17, 30, 5, tzinfo=UTC)  # 01:30 on 2 January in Shanghai
    naive = moment.replace(tzinfo=None)  # SQLite gives stored UTC back without a zone
    template = (
        "{{ t | when }}|{{ t | when('second') }}|{{ t | when('date') }}|{{ t | when('day') }}"
        "|{{ n | when }}|{{ s | when }}|{{ none | when }}"
    )
    values = {"t": moment, "n": naive, "s": moment.isoformat(), "none": None}
    with fresh_app.test_request_context(), force_locale("zh"):
        shown = render_template_string(template, **values).split("|")
    assert shown == [
        "2026-01-02 01:30",
        "2026-01-02 01:30:05",
        "2026-01-02",
        "2026年1月2日",
        "2026-01-02 01:30",
        "2026-01-02 01:30",
        "",
    ]
    with fresh_app.test_request_context(), force_locale("en"):
        assert render_template_string("{{ t | when('day') }}", t=moment) == "January 2, 2026"
