"""The auditors' queue kept as rows: after every kind of event the rows say what the rules
say when judged from scratch, and the desk reads them in a fixed number of queries.

The events go through the services the app calls (settle after a check closes or a course
completes, decisions, clearing, appeals, identity flags raised and resolved, enrolments);
the study itself (heartbeats, the face model) is stood in for by the rows it leaves.
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import utcnow
from app.errors import AppError
from app.extensions import db
from app.identity.models import Role, User
from app.learning.models import Enrollment, LessonProgress, StudySession
from app.study import workflow
from app.subsidy import queue, rules
from app.subsidy import service as subsidy
from app.subsidy.models import QueueEntry
from app.verification.models import (
    Check,
    CheckKind,
    CheckStatus,
    FlagStatus,
    IdentityFlag,
)
from tests.catalog.helpers import add_course, statements
from tests.conftest import api_token, bearer, make_staff, make_trainee, sign_in_page

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(serial: int) -> str:
    """A valid resident ID number (GB 11643-1999 check digit) for the ``serial``-th trainee."""
    body = f"11010519900307{serial:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    return body + check


def trainees(app, count: int, first: int = 0) -> list[int]:
    return [
        make_trainee(app, id_number(100 + n), phone=f"139{n:08d}", name="学员" + "甲乙丙丁戊"[n])
        for n in range(first, first + count)
    ]


@pytest.fixture
def world(fresh_app):
    """Three trainees, two courses of two lessons, two auditors (four eyes needs two)."""
    people = trainees(fresh_app, 3)
    courses = [add_course(fresh_app, "低压电工作业"), add_course(fresh_app, "高压电工作业")]
    auditors = [make_staff(fresh_app, Role.AUDITOR, name) for name in ("auditor1", "auditor2")]
    return {"trainees": people, "courses": courses, "auditors": auditors}


# --- the from-scratch verdict, and the rows ------------------------------------------------


def judged_from_scratch() -> dict[int, tuple[rules.Assessment, rules.Facts]]:
    enrollments = list(db.session.scalars(sa.select(Enrollment).order_by(Enrollment.id)))
    facts = subsidy.facts_of(enrollments)
    return {e.id: (rules.assess(facts[e.id]), facts[e.id]) for e in enrollments}


def as_stored(assessment: rules.Assessment, facts: rules.Facts) -> dict:
    return json.loads(json.dumps(queue.row_values(assessment, facts)))


def assert_rows_agree() -> None:
    """Every fresh row is the rules' verdict now; every enrolment the rules queue has a row;
    after the desk's bounded refresh the queue read is exactly the from-scratch queue."""
    db.session.flush()
    verdicts = judged_from_scratch()
    rows = {row.enrollment_id: row for row in db.session.scalars(sa.select(QueueEntry))}
    for enrollment_id, (assessment, facts) in verdicts.items():
        row = rows.get(enrollment_id)
        if assessment.status is rules.Status.NEEDS_REVIEW:
            assert row is not None, f"enrolment {enrollment_id} is missing from the queue"
        if row is not None and not row.stale:
            stored = {
                "status": row.status.value,
                "risk": row.risk,
                "priority": row.priority,
                "complete": row.complete,
                "reasons": row.reasons,
                "checks": row.checks,
            }
            assert stored == as_stored(assessment, facts), enrollment_id
    subsidy.refresh_stale(limit=10_000)
    expected = sorted(
        (
            (-assessment.risk, enrollment_id, as_stored(assessment, facts))
            for enrollment_id, (assessment, facts) in verdicts.items()
            if assessment.status is rules.Status.NEEDS_REVIEW
        ),
        key=lambda item: item[:2],
    )
    read = [
        (
            -item.risk,
            item.enrollment.id,
            json.loads(
                json.dumps(
                    {
                        "status": "needs_review",
                        "risk": item.risk,
                        "priority": -item.risk,
                        "complete": item.complete,
                        "reasons": [{"code": r.code, "evidence": r.evidence} for r in item.reasons],
                        "checks": item.checks,
                    }
                )
            ),
        )
        for item in subsidy.review_queue(limit=10_000)
    ]
    assert read == expected


# --- events, as the app causes them ------------------------------------------------------------


def close_check(enrollment: Enrollment, status: CheckStatus, code: str | None) -> Check:
    """A check of a new session closed with ``status``, settled as the workflow does."""
    lesson = enrollment.course.lessons[0]
    now = utcnow()
    session = StudySession(  # ended: one session per trainee is open at a time
        enrollment_id=enrollment.id,
        lesson_id=lesson.id,
        trainee_id=enrollment.trainee_id,
        ended_at=now,
    )
    db.session.add(session)
    db.session.flush()
    check = Check(
        session_id=session.id,
        user_id=enrollment.trainee_id,
        kind=CheckKind.RANDOM,
        status=status,
        code=code,
        score=0.3 if code == "mismatch" else None,
        model="default",
        expires_at=now + timedelta(seconds=60),
        answered_at=now,
    )
    db.session.add(check)
    db.session.flush()
    subsidy.settle(enrollment)
    return check


class Events:
    """Each method is one event that changes an enrolment's facts; ``pick`` chooses among
    the rows it applies to (so any sequence of draws is a valid history)."""

    CODES = ("mismatch", "replay", "no_face", "expired", "liveness_failed")

    def __init__(self, world: dict) -> None:
        self.trainees = world["trainees"]
        self.courses = world["courses"]
        self.auditors = [db.session.get(User, a) for a in world["auditors"]]

    def enrollments(self) -> list[Enrollment]:
        return list(db.session.scalars(sa.select(Enrollment).order_by(Enrollment.id)))

    def enrol(self, pick: int) -> None:
        trainee = self.trainees[pick % len(self.trainees)]
        course = self.courses[(pick // len(self.trainees)) % len(self.courses)]
        taken = db.session.scalar(
            sa.select(Enrollment.id).where(
                Enrollment.trainee_id == trainee, Enrollment.course_id == course
            )
        )
        if taken is None:
            db.session.add(Enrollment(trainee_id=trainee, course_id=course))
            db.session.flush()

    def check_failed(self, pick: int) -> None:
        enrollments = self.enrollments()
        if enrollments:
            enrollment = enrollments[pick % len(enrollments)]
            close_check(enrollment, CheckStatus.FAILED, self.CODES[pick % len(self.CODES)])

    def check_passed(self, pick: int) -> None:
        enrollments = self.enrollments()
        if enrollments:
            close_check(enrollments[pick % len(enrollments)], CheckStatus.PASSED, None)

    def completed(self, pick: int) -> None:
        """Every lesson complete on confirmed time; the spot check drawn, as on completion."""
        open_ = [e for e in self.enrollments() if e.completed_at is None]
        if not open_:
            return
        enrollment = open_[pick % len(open_)]
        for lesson in enrollment.course.lessons:
            db.session.add(
                LessonProgress(
                    enrollment_id=enrollment.id,
                    lesson_id=lesson.id,
                    credited_s=lesson.duration_s,
                    coverage=1.0,
                    completed_at=utcnow(),
                )
            )
        enrollment.completed_at = utcnow()
        db.session.flush()
        subsidy.on_completed(enrollment)

    def _decide(self, pick: int, decision: str) -> None:
        enrollments = self.enrollments()
        if enrollments:
            enrollment = enrollments[pick % len(enrollments)]
            auditor = self.auditors[pick % 2]
            with suppress(AppError):  # refused before anything was written
                subsidy.decide(enrollment.id, decision, "核对证据后决定", auditor=auditor)

    def approved(self, pick: int) -> None:
        self._decide(pick, "approve")

    def rejected(self, pick: int) -> None:
        self._decide(pick, "reject")

    def cleared(self, pick: int) -> None:
        failed = list(
            db.session.scalars(
                sa.select(Check.id).where(Check.status == CheckStatus.FAILED).order_by(Check.id)
            )
        )
        if failed:
            with suppress(AppError):  # already cleared
                subsidy.clear_check(
                    failed[pick % len(failed)], "光线不足", auditor=self.auditors[0]
                )

    def appealed(self, pick: int) -> None:
        enrollments = self.enrollments()
        if enrollments:
            enrollment = enrollments[pick % len(enrollments)]
            trainee = db.session.get(User, enrollment.trainee_id)
            with suppress(AppError):  # not rejected, or already appealed
                subsidy.appeal(trainee, enrollment.id, "那天是我本人在学习")

    def flagged(self, pick: int) -> None:
        """A face enrolled that resembles another trainee's (what `enrol_face` records)."""
        trainee = self.trainees[pick % len(self.trainees)]
        other = self.trainees[(pick + 1) % len(self.trainees)]
        code = "duplicate_identity" if pick % 2 else "possible_duplicate"
        db.session.add(
            IdentityFlag(
                user_id=trainee, code=code, other_user_id=other, score=0.6, model="default"
            )
        )
        db.session.flush()

    def flag_resolved(self, pick: int) -> None:
        flags = list(
            db.session.scalars(
                sa.select(IdentityFlag.id)
                .where(IdentityFlag.status == FlagStatus.OPEN)
                .order_by(IdentityFlag.id)
            )
        )
        if flags:
            outcome = "confirmed" if pick % 3 == 0 else "cleared"
            workflow.resolve_flag(
                flags[pick % len(flags)], outcome, "核对照片", auditor=self.auditors[0]
            )


EVENTS = [name for name in vars(Events) if not name.startswith("_") and name not in ("CODES",)]
EVENTS.remove("enrollments")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(
        st.tuples(st.sampled_from(EVENTS), st.integers(min_value=0, max_value=50)),
        min_size=1,
        max_size=14,
    ),
    four_eyes=st.booleans(),
)
def test_rows_agree_with_the_rules_after_every_event(fresh_app, world, history, four_eyes):
    fresh_app.config["REJECTION_NEEDS_SECOND_AUDITOR"] = four_eyes
    fresh_app.config["SPOT_CHECK_RATE"] = 0.5
    try:
        with fresh_app.test_request_context():
            events = Events(world)
            for trainee in world["trainees"][:2]:  # some enrolments before anything happens
                events.enrol(world["trainees"].index(trainee))
            assert_rows_agree()
            for name, pick in history:
                getattr(events, name)(pick)
                assert_rows_agree()
            db.session.rollback()
    finally:
        fresh_app.config["REJECTION_NEEDS_SECOND_AUDITOR"] = False
        fresh_app.config["SPOT_CHECK_RATE"] = 0.0


def test_each_kind_of_event_writes_the_row_at_once(fresh_app, world):
    """Checks, completion, decisions, clearing, appeals and resolved flags leave no stale row:
    they write it in their own transaction. A raised flag marks the trainee's rows stale."""
    with fresh_app.test_request_context():
        events = Events(world)
        events.enrol(0)
        enrollment = events.enrollments()[0]

        def stale() -> bool:
            row = db.session.get(QueueEntry, enrollment.id)
            db.session.refresh(row)
            return row.stale

        for step in (
            lambda: events.check_failed(0),
            lambda: events.check_passed(0),
            lambda: events.completed(0),
            lambda: events.rejected(0),
            lambda: events.appealed(0),
            lambda: events.cleared(0),
            lambda: events.approved(0),
        ):
            step()
            db.session.flush()
            assert not stale()
            assert_rows_agree()
        events.flagged(0)
        assert stale()
        assert_rows_agree()  # the desk's refresh recomputed it
        assert not stale()
        events.flag_resolved(1)
        assert not stale()
        assert_rows_agree()
        db.session.rollback()


def test_a_flagged_trainee_who_enrols_again_is_queued_at_once(fresh_app, world):
    with fresh_app.test_request_context():
        events = Events(world)
        events.flagged(0)  # possible_duplicate on the first trainee, before any enrolment
        events.enrol(0)
        enrollment = events.enrollments()[0]
        subsidy.refresh_stale()
        assert [item.enrollment.id for item in subsidy.review_queue()] == [enrollment.id]
        assert_rows_agree()
        # A session opened (the study workflow says so): recomputed by the desk's next look.
        subsidy.mark_stale(enrollment.id)
        row = db.session.get(QueueEntry, enrollment.id)
        db.session.refresh(row)
        assert row.stale
        assert subsidy.refresh_stale() == 1
        db.session.refresh(row)
        assert not row.stale
        db.session.rollback()


def test_facts_list_flags_in_the_order_they_were_raised(fresh_app, world):
    """A row written before a flag changed must equal the verdict recomputed after it: the facts
    list flags by id, not in whatever order the database returns rows it has rewritten
    (PostgreSQL puts an updated row after the others)."""
    with fresh_app.test_request_context():
        events = Events(world)
        events.enrol(0)
        events.flagged(0)
        events.flagged(3)  # the first trainee again, the second flag on them
        first = min(db.session.scalars(sa.select(IdentityFlag.id)))
        workflow.resolve_flag(first, "confirmed", "核对照片", auditor=events.auditors[0])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":  # read the table as it lies, as at scale
            db.session.execute(sa.text("SET LOCAL enable_indexscan = off"))
            db.session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        facts = subsidy.facts_of(events.enrollments())
        flags = [flag.id for fact in facts.values() for flag in fact.flags]
        assert len(flags) == 2 and flags == sorted(flags)
        assert_rows_agree()


def test_the_periodic_task_recomputes_every_stale_row(fresh_app, world):
    with fresh_app.test_request_context():
        events = Events(world)
        for pick in range(3):
            events.enrol(pick)
            events.check_failed(pick)
        db.session.execute(sa.update(QueueEntry).values(stale=True, risk=0, priority=0))
        db.session.commit()
        assert subsidy.refresh_stale_queue() == 3
        assert db.session.scalar(sa.select(sa.func.count()).where(QueueEntry.stale)) == 0
        assert_rows_agree()


def test_rebuild_repairs_every_row(fresh_app, world, runner):
    """After a deploy that changes the rules' inputs (here four eyes turned on) or rows lost,
    `flask subsidy rebuild-queue` makes every row the rules' verdict again."""
    with fresh_app.test_request_context():
        events = Events(world)
        for pick in range(3):
            events.enrol(pick)
            events.check_failed(pick)
        events.rejected(0)  # a single rejection stands while four eyes is off
        lost = events.enrollments()[1].id
        db.session.execute(sa.delete(QueueEntry).where(QueueEntry.enrollment_id == lost))
        db.session.commit()
    fresh_app.config["REJECTION_NEEDS_SECOND_AUDITOR"] = True
    try:
        result = runner.invoke(args=["subsidy", "rebuild-queue", "--batch", "2"])
        assert result.exit_code == 0, result.output
        assert "queue rebuilt: 3 enrolments, 3 waiting for review" in result.output
        with fresh_app.test_request_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(QueueEntry)) == 3
            codes = [[reason.code for reason in item.reasons] for item in subsidy.review_queue()]
            assert any("rejection_proposed" in found for found in codes)
            assert_rows_agree()
    finally:
        fresh_app.config["REJECTION_NEEDS_SECOND_AUDITOR"] = False


# --- reading the queue ---------------------------------------------------------------------------


def queued(app, count: int, trainee: int = 0) -> list[int]:
    """``count`` enrolments of the ``trainee``-th trainee, each with a failed check: all in
    the queue."""
    trainee = trainees(app, 1, first=trainee)[0]
    courses = [add_course(app, f"课程{n}") for n in range(count)]
    ids = []
    with app.test_request_context():
        for n, course in enumerate(courses):
            enrollment = Enrollment(trainee_id=trainee, course_id=course)
            db.session.add(enrollment)
            db.session.flush()
            close_check(enrollment, CheckStatus.FAILED, "mismatch" if n % 2 else "expired")
            ids.append(enrollment.id)
        db.session.commit()
    return ids


def desk_statements(app, client, headers, path: str) -> int:
    with statements(app) as seen:
        response = client.get(path, headers=headers)
    assert response.status_code == 200
    return len(seen)


def test_desk_reads_the_queue_in_a_fixed_number_of_queries(fresh_app):
    make_staff(fresh_app)
    page = fresh_app.test_client()
    sign_in_page(page, "auditor1")
    api = fresh_app.test_client()
    headers = bearer(api_token(api, "auditor1", "Audit2026ok"))
    ids = queued(fresh_app, 3)
    review = f"/audit/enrollments/{ids[0]}"
    api.get("/api/v1/audit/reviews", headers=headers)  # the token's first use is recorded
    few = [
        desk_statements(fresh_app, page, {}, "/audit"),
        desk_statements(fresh_app, api, headers, "/api/v1/audit/reviews"),
        desk_statements(fresh_app, page, {}, review),
    ]
    queued(fresh_app, 12, trainee=1)
    many = [
        desk_statements(fresh_app, page, {}, "/audit"),
        desk_statements(fresh_app, api, headers, "/api/v1/audit/reviews"),
        desk_statements(fresh_app, page, {}, review),
    ]
    assert many == few
    assert len(api.get("/api/v1/audit/reviews", headers=headers).get_json()["items"]) == 15


def test_pages_of_the_queue_are_stable_and_do_not_overlap(fresh_app, client):
    make_staff(fresh_app)
    headers = bearer(api_token(client, "auditor1", "Audit2026ok"))
    queued(fresh_app, 7)
    whole = client.get("/api/v1/audit/reviews", headers=headers).get_json()["items"]
    order = [(-item["risk"], item["enrollment_id"]) for item in whole]
    assert order == sorted(order) and len(order) == 7
    walked = []
    for offset in range(0, 8, 3):
        url = f"/api/v1/audit/reviews?limit=3&offset={offset}"
        walked += client.get(url, headers=headers).get_json()["items"]
    assert walked == whole
    bad = client.get("/api/v1/audit/reviews?offset=-1", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid"


def test_queue_page_shows_its_pages(fresh_app, monkeypatch):
    from app.subsidy import views

    monkeypatch.setattr(views, "QUEUE_PAGE", 2)
    make_staff(fresh_app)
    page = fresh_app.test_client()
    sign_in_page(page, "auditor1")
    ids = queued(fresh_app, 5)
    seen = []
    for number in (1, 2, 3):
        html = page.get(f"/audit?page={number}").get_data(as_text=True)
        seen += [i for i in ids if f'data-href="/audit/enrollments/{i}"' in html]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    last = page.get("/audit?page=99").get_data(as_text=True)  # past the end: the last page
    assert "?page=2" in last and "?page=4" not in last
