"""Every figure, for every period and slice, equals a count made here from the records under
its published definition; the roll-up is idempotent and follows the records when they change.

The data: trainees in two districts (and one in none), enrolments in two programmes (and a
part of one, and none), completions, sessions, checks, decisions and certificates spread over
months, some a few minutes either side of a month's midnight on the bureau's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.bureau.models import Programme
from app.catalog.models import Occupation
from app.certificates.models import Certificate
from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.extensions import db
from app.identity.models import User
from app.learning.models import Enrollment, StudySession
from app.platforms.models import Platform
from app.stats import figures, rollup, service
from app.stats.figures import FIGURES
from app.stats.models import StatValue
from app.subsidy.models import Action, Decision
from app.verification.models import Check, CheckKind, CheckStatus
from tests.conftest import count_rows, make_trainee
from tests.subsidy.test_queue_rows import id_number

A, B = "500101", "500103"
YEAR = 2026
TZ = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int = 12, minute: int = 0, year: int = YEAR) -> datetime:
    """A moment on the bureau's clock, as the aware UTC datetime the records hold."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@dataclass
class World:
    programmes: dict[str, int]
    trainees: dict[str, int]


def build(app) -> World:
    """The known records. Returns the ids the tests name."""
    people = {
        "a1": make_trainee(app, id_number(201), phone="13900000201", name="甲一"),
        "a2": make_trainee(app, id_number(202), phone="13900000202", name="甲二"),
        "b1": make_trainee(app, id_number(203), phone="13900000203", name="乙一"),
        "none": make_trainee(app, id_number(204), phone="13900000204", name="丙一"),
    }
    with app.app_context():
        for key, code in (("a1", A), ("a2", A), ("b1", B)):
            db.session.get(User, people[key]).district_code = code
        p1 = Programme(year=YEAR, name="家政服务人员", target_trainings=35000)
        p2 = Programme(year=YEAR, name="医疗护理员", target_trainings=10000)
        db.session.add_all([p1, p2])
        db.session.flush()
        part = Programme(year=YEAR, name="家政·鲁渝协作", parent_id=p1.id, target_trainings=100)
        db.session.add(part)
        plat_a = Platform(name="万州学堂", district_code=A)
        plat_b = Platform(name="渝中学堂", district_code=B)
        plat_c = Platform(name="无区学堂")
        db.session.add_all([plat_a, plat_b, plat_c])
        db.session.flush()
        codes = list(db.session.scalars(sa.select(Occupation.code).limit(4)))

        def course(platform, occupation, programme, district, published, status=None):
            row = Course(
                platform_id=platform.id,
                occupation_code=occupation,
                title=f"课程{occupation}",
                hours=Decimal("16"),
                status=status or CourseStatus.PUBLISHED,
                published_at=published,
                district_code=district,
                programme_id=programme,
            )
            row.lessons.append(Lesson(position=1, title="第1课", status=LessonStatus.READY))
            db.session.add(row)
            db.session.flush()
            return row

        c1 = course(plat_a, codes[0], p1.id, A, local(1, 5))
        c2 = course(plat_b, codes[1], p2.id, B, local(3, 1, 0, 10))
        c3 = course(plat_a, codes[2], part.id, None, local(2, 28, 23, 50))
        c4 = course(plat_c, codes[0], None, B, local(5, 1))
        course(plat_b, codes[3], p2.id, B, local(4, 1), CourseStatus.WITHDRAWN)

        def enrol(who, c, created, completed=None):
            row = Enrollment(
                trainee_id=people[who],
                course_id=c.id,
                programme_id=c.programme_id,
                created_at=created,
                completed_at=completed,
            )
            db.session.add(row)
            db.session.flush()
            return row

        # Just after the new year on the bureau's clock (still 2025 in UTC): January.
        e1 = enrol("a1", c1, local(1, 1, 0, 30), local(2, 1, 0, 5))
        e2 = enrol("a1", c2, local(1, 20), local(3, 31, 23, 59))
        e3 = enrol("a2", c1, local(2, 3), local(2, 20))
        e4 = enrol("b1", c2, local(2, 28, 23, 55), local(4, 2))
        e5 = enrol("b1", c3, local(3, 2))
        e6 = enrol("none", c1, local(3, 3), local(3, 20))
        e7 = enrol("a2", c4, local(4, 4), local(5, 5))
        # On the bureau's clock already 2027: not this year's.
        enrol("a2", c3, local(1, 1, 0, 10, year=YEAR + 1))
        # Still 2025 on the bureau's clock, though the UTC date... is 2025 too.
        enrol("b1", c1, local(12, 31, 23, 50, year=YEAR - 1))

        lesson_of = {c.id: c.lessons[0].id for c in (c1, c2, c3, c4)}

        def session(e, started, credited_s):
            row = StudySession(
                enrollment_id=e.id,
                lesson_id=lesson_of[e.course_id],
                trainee_id=e.trainee_id,
                started_at=started,
                ended_at=started + timedelta(hours=2),
                credited_s=credited_s,
            )
            db.session.add(row)
            db.session.flush()
            return row

        s1 = session(e1, local(1, 2), 3600.0)
        s2 = session(e2, local(1, 31, 23, 0), 1800.0)
        s3 = session(e3, local(2, 4), 5400.0)
        s4 = session(e4, local(3, 1), 7200.0)
        s5 = session(e5, local(3, 5), 900.0)
        s6 = session(e6, local(3, 10), 2700.0)

        def check(s, status, answered, settled_s=0.0, expires=None):
            row = Check(
                session_id=s.id,
                user_id=s.trainee_id,
                kind=CheckKind.RANDOM,
                status=status,
                created_at=(answered or expires) - timedelta(minutes=1),
                expires_at=expires or answered + timedelta(minutes=1),
                answered_at=answered,
                settled_s=settled_s,
            )
            db.session.add(row)

        check(s1, CheckStatus.PASSED, local(1, 2, 13), 1800.0)
        check(s1, CheckStatus.PASSED, local(1, 31, 23, 59), 1200.0)
        check(s2, CheckStatus.FAILED, local(2, 1, 0, 1))
        check(s3, CheckStatus.PASSED, local(2, 4, 13), 5400.0)
        check(s4, CheckStatus.FAILED, None, expires=local(3, 1, 13))
        check(s4, CheckStatus.PASSED, local(3, 1, 14), 3600.0)
        check(s5, CheckStatus.CANCELLED, None, expires=local(3, 5, 13))
        check(s6, CheckStatus.PASSED, local(3, 10, 13), 2700.0)
        check(s6, CheckStatus.PENDING, None, expires=local(3, 10, 14))

        def decide(e, action, at, amount=None):
            db.session.add(
                Decision(
                    enrollment_id=e.id,
                    action=action,
                    reason="测试",
                    amount_yuan=Decimal(amount) if amount else None,
                    decided_at=at,
                )
            )
            db.session.flush()

        decide(e1, Action.ELIGIBLE, local(2, 1, 0, 10), "800.00")
        decide(e2, Action.REJECT, local(4, 1))
        decide(e2, Action.APPROVE, local(4, 20), "600.50")  # after an appeal
        decide(e3, Action.ELIGIBLE, local(2, 21), "800.00")
        decide(e3, Action.REJECT, local(5, 1))  # a grant taken back
        decide(e4, Action.APPROVE, local(4, 3), "600.50")
        decide(e4, Action.CLEAR_CHECK, local(4, 4))  # not a verdict: the grant stands
        decide(e6, Action.ELIGIBLE, local(3, 21), "800.00")
        decide(e7, Action.APPROVE, local(5, 6))  # no standard: no amount

        def certificate(e, issued, revoked=None):
            db.session.add(
                Certificate(
                    number=f"VS{YEAR}-T{e.id:04d}",
                    verify_code="ABCD1234",
                    enrollment_id=e.id,
                    user_id=e.trainee_id,
                    holder_name="学员",
                    occupation_code="x",
                    occupation_name="x",
                    course_title="x",
                    hours=Decimal("1"),
                    issued_at=issued,
                    revoked_at=revoked,
                )
            )

        certificate(e1, local(2, 1, 0, 10))
        certificate(e3, local(2, 21), revoked=local(5, 1))
        certificate(e4, local(4, 3))
        certificate(e6, local(3, 31, 23, 59))
        db.session.commit()
        return World({"p1": p1.id, "p2": p2.id, "part": part.id}, people)


# --- the definitions, counted here from the records ---------------------------------------------


@dataclass(frozen=True)
class Fact:
    when: datetime
    district: str | None
    programme: int | None
    item: Any = None  # what a distinct count counts
    amount: float = 1.0


def _district(user_id: int) -> str | None:
    return db.session.get(User, user_id).district_code


def facts(key: str) -> tuple[list[Fact], str]:
    """The records a figure counts, each with its time and slice, and how they are combined
    ("count", "distinct", "sum", or "stock" for a distinct count of what exists by then)."""
    enrolments = list(db.session.scalars(sa.select(Enrollment)))
    if key == "enrolments":
        return [Fact(e.created_at, _district(e.trainee_id), e.programme_id) for e in enrolments], (
            "count"
        )
    if key == "trainees":
        return [
            Fact(e.created_at, _district(e.trainee_id), e.programme_id, e.trainee_id)
            for e in enrolments
        ], "distinct"
    if key == "online_trainings":
        return [
            Fact(e.completed_at, _district(e.trainee_id), e.programme_id)
            for e in enrolments
            if e.completed_at
        ], "count"
    if key in ("subsidised_trainings", "subsidy_yuan"):
        latest: dict[int, Decision] = {}
        for d in db.session.scalars(sa.select(Decision).order_by(Decision.id)):
            if d.action is not Action.CLEAR_CHECK:
                latest[d.enrollment_id] = d
        found = []
        for e in enrolments:
            d = latest.get(e.id)
            if d is not None and d.action in (Action.APPROVE, Action.ELIGIBLE):
                amount = float(d.amount_yuan or 0)
                found.append(
                    Fact(d.decided_at, _district(e.trainee_id), e.programme_id, e.id, amount)
                )
        return found, ("distinct" if key == "subsidised_trainings" else "sum")
    by_id = {e.id: e for e in enrolments}
    sessions = {s.id: s for s in db.session.scalars(sa.select(StudySession))}
    if key == "class_hours":
        return [
            Fact(
                s.started_at,
                _district(s.trainee_id),
                by_id[s.enrollment_id].programme_id,
                amount=s.credited_s / 3600,
            )
            for s in sessions.values()
        ], "sum"
    checks = list(db.session.scalars(sa.select(Check)))

    def check_fact(c: Check, when: datetime, amount: float = 1.0) -> Fact:
        enrolment = by_id[sessions[c.session_id].enrollment_id]
        return Fact(when, _district(c.user_id), enrolment.programme_id, amount=amount)

    if key == "verified_hours":
        return [
            check_fact(c, c.answered_at, c.settled_s / 3600)
            for c in checks
            if c.status is CheckStatus.PASSED
        ], "sum"
    if key == "face_checks_passed":
        return [check_fact(c, c.answered_at) for c in checks if c.status is CheckStatus.PASSED], (
            "count"
        )
    if key == "face_checks_failed":
        return [
            check_fact(c, c.answered_at or c.expires_at)
            for c in checks
            if c.status is CheckStatus.FAILED
        ], "count"
    if key == "certificates":
        return [
            Fact(c.issued_at, _district(c.user_id), by_id[c.enrollment_id].programme_id)
            for c in db.session.scalars(sa.select(Certificate))
            if c.revoked_at is None
        ], "count"
    courses = {c.id: c for c in db.session.scalars(sa.select(Course))}
    if key == "active_platforms":
        platforms = {p.id: p for p in db.session.scalars(sa.select(Platform))}
        found = []
        for e in enrolments:
            platform = platforms[courses[e.course_id].platform_id]
            found.append(Fact(e.created_at, platform.district_code, e.programme_id, platform.id))
        return found, "distinct"
    if key == "occupations_with_courses":
        return [
            Fact(c.published_at, c.district_code, c.programme_id, c.occupation_code)
            for c in courses.values()
            if c.status is CourseStatus.PUBLISHED
        ], "stock"
    raise AssertionError(f"no count for {key}")


def expected_values(world: World) -> dict[tuple[str, str, str, int], Decimal]:
    """Every (figure, period, district, programme) with records, and the city's totals."""
    tz = TZ
    periods: list[tuple[str, datetime, datetime]] = [
        (str(YEAR), datetime(YEAR, 1, 1, tzinfo=tz), datetime(YEAR + 1, 1, 1, tzinfo=tz))
    ]
    for m in range(1, 13):
        end = datetime(YEAR + (m == 12), m % 12 + 1, 1, tzinfo=tz)
        periods.append((f"{YEAR}-{m:02d}", datetime(YEAR, m, 1, tzinfo=tz), end))
    p1, part = world.programmes["p1"], world.programmes["part"]
    # A programme's slice takes its own records and its parts'.
    programme_slices: dict[int, set[int | None]] = {0: set()}
    for programme in world.programmes.values():
        programme_slices[programme] = {programme}
    programme_slices[p1] = {p1, part}
    expected: dict[tuple[str, str, str, int], Decimal] = {}
    for key, figure in FIGURES.items():
        found, how = facts(key)
        for period, start, end in periods:
            for district in ("", A, B):
                for programme, members in programme_slices.items():
                    chosen = [
                        f
                        for f in found
                        if f.when < end
                        and (how == "stock" or f.when >= start)
                        and (district == "" or f.district == district)
                        and (programme == 0 or f.programme in members)
                    ]
                    if how == "count":
                        value: float = len(chosen)
                    elif how in ("distinct", "stock"):
                        value = len({f.item for f in chosen})
                    else:
                        value = sum(f.amount for f in chosen)
                    places = Decimal(1).scaleb(-figure.places)
                    if chosen or (district == "" and programme == 0):
                        expected[(key, period, district, programme)] = Decimal(
                            str(round(value, 6))
                        ).quantize(places)
    return expected


def stored(app) -> dict[tuple[str, str, str, int], Decimal]:
    with app.app_context():
        return {
            (v.figure_key, v.period, v.district_code, v.programme_id): v.value
            for v in db.session.scalars(sa.select(StatValue))
        }


@pytest.fixture
def world(fresh_app) -> Iterator[World]:
    yield build(fresh_app)
    with fresh_app.app_context():
        # Parts cut loose first: the emptying of the tables deletes programmes in no order,
        # and SQLite refuses (RESTRICT) to delete a parent before its parts.
        db.session.rollback()
        db.session.execute(sa.update(Programme).values(parent_id=None))
        db.session.commit()


def roll(app, year: int = YEAR) -> int:
    with app.app_context():
        written = rollup.roll_up(year)
        db.session.commit()
        return written


def test_every_figure_of_every_slice_equals_the_records_counted_under_its_definition(
    fresh_app, world
):
    roll(fresh_app)
    with fresh_app.app_context():
        expected = expected_values(world)
    got = stored(fresh_app)
    # Slices the test's districts and programmes do not name (none here) would show as extra.
    assert {k: v for k, v in got.items() if v != 0 or k[2:] == ("", 0)} == {
        k: v for k, v in expected.items() if v != 0 or k[2:] == ("", 0)
    }
    # The figures the story of the data makes obvious, so a shared mistake cannot hide.
    assert got[("enrolments", "2026-01", "", 0)] == 2  # 00:30 on 1 January counts in January
    assert got[("enrolments", "2026", "", 0)] == 7  # neither the 2025 nor the 2027 one
    assert got[("trainees", "2026", A, 0)] == 2
    assert got[("trainees", "2026", "", 0)] == 4  # the trainee with no district counts here
    assert got[("online_trainings", "2026-02", "", 0)] == 2  # 00:05 on 1 February
    assert got[("subsidised_trainings", "2026", "", 0)] == 5  # e3's grant was taken back
    assert got[("subsidy_yuan", "2026", "", 0)] == Decimal("2801.00")
    assert got[("face_checks_failed", "2026-03", "", 0)] == 1  # unanswered, expired
    assert got[("certificates", "2026", "", 0)] == 3  # one revoked
    assert got[("occupations_with_courses", "2026-02", "", 0)] == 2
    assert got[("occupations_with_courses", "2026-03", "", 0)] == 3
    assert got[("active_platforms", "2026", "", 0)] == 3


def test_a_programme_counts_its_parts_and_people_once(fresh_app, world):
    roll(fresh_app)
    got = stored(fresh_app)
    p1, part = world.programmes["p1"], world.programmes["part"]
    assert got[("enrolments", "2026", "", part)] == 1
    assert got[("enrolments", "2026", "", p1)] == 4  # e1, e3, e6 and the part's e5
    # a1 is in p1 and p2, counted once in the city's figure; b1 in p2 and the part.
    assert got[("trainees", "2026", "", world.programmes["p2"])] == 2
    assert got[("trainees", "2026", "", 0)] == 4
    assert got[("trainees", "2026", A, 0)] == 2


def test_summary_and_breakdown_read_the_rolled_up_values(fresh_app, world):
    roll(fresh_app)
    with fresh_app.test_request_context():
        expected = expected_values(world)
        city = service.summary(YEAR)
        assert [f["key"] for f in city["figures"]] == list(FIGURES)
        for item in city["figures"]:
            assert Decimal(str(item["value"])) == expected[(item["key"], str(YEAR), "", 0)]
            assert item["definition_version"] == FIGURES[item["key"]].version
        p1 = world.programmes["p1"]
        scoped = service.summary(YEAR, A, p1)
        assert scoped["district"] == A
        for item in scoped["figures"]:
            want = expected.get((item["key"], str(YEAR), A, p1), Decimal(0))
            assert Decimal(str(item["value"])) == want
        # A programme's own number of trainings is the target of its subsidised trainings.
        targets = service.summary(YEAR, programme=p1)["targets"]
        assert targets == [
            {
                "key": "subsidised_trainings",
                "target": 35000,
                "value": int(expected[("subsidised_trainings", str(YEAR), "", p1)]),
            }
        ]
        months = service.breakdown(YEAR, "month", ["enrolments", "trainees"], district=A)
        assert [row["slice"] for row in months] == [f"{YEAR}-{m:02d}" for m in range(1, 13)]
        assert [row["enrolments"] for row in months] == [
            int(expected.get(("enrolments", f"{YEAR}-{m:02d}", A, 0), 0)) for m in range(1, 13)
        ]
        districts = {row["slice"]: row for row in service.breakdown(YEAR, "district", ["trainees"])}
        assert districts[A]["trainees"] == 2 and districts[B]["trainees"] == 1
        assert districts["500102"]["trainees"] == 0
        programmes = service.breakdown(YEAR, "programme", ["enrolments"], district=B)
        assert {row["slice"]: row["enrolments"] for row in programmes} == {
            p: int(expected.get(("enrolments", str(YEAR), B, p), 0))
            for p in world.programmes.values()
        }


def test_rolling_up_again_writes_the_same_rows_and_follows_changed_records(fresh_app, world):
    first = roll(fresh_app)
    before = stored(fresh_app)
    assert roll(fresh_app) == first
    assert stored(fresh_app) == before
    with fresh_app.app_context():
        # The trainee moves district: their figures follow them at the next roll-up.
        db.session.get(User, world.trainees["b1"]).district_code = A
        db.session.commit()
    roll(fresh_app)
    after = stored(fresh_app)
    assert after[("trainees", "2026", A, 0)] == 3
    assert ("trainees", "2026", B, 0) not in after
    # Another year's roll-up leaves this one alone.
    roll(fresh_app, YEAR - 1)
    assert {k: v for k, v in stored(fresh_app).items() if k[1].startswith(str(YEAR))} == after


def test_the_command_and_the_schedule_task_roll_up(fresh_app, world, runner, monkeypatch):
    result = runner.invoke(args=["stats", "rollup", "--year", str(YEAR)])
    assert result.exit_code == 0, result.output
    for bad in ("99999", "abc"):  # a usage error naming the option, not a traceback
        refused = runner.invoke(args=["stats", "rollup", "--year", bad])
        assert refused.exit_code == 2 and "--year" in refused.output, refused.output
    assert stored(fresh_app)[("enrolments", "2026", "", 0)] == 7
    from app.jobs import schedule

    assert schedule.TASKS["stats_rollup"].setting == "STATS_ROLLUP_S"
    assert fresh_app.config["STATS_ROLLUP_S"] == 600
    monkeypatch.setattr(rollup, "today_local", lambda: datetime(YEAR + 1, 1, 15).date())
    with fresh_app.app_context():
        db.session.execute(sa.delete(StatValue))
        db.session.commit()
        rollup.roll_up_current()
    periods = {k[1] for k in stored(fresh_app)}
    assert str(YEAR) in periods and str(YEAR + 1) in periods  # January: last year too


def test_month_bounds_follow_the_bureaus_clock(ctx):
    bounds = figures.month_bounds(YEAR)
    assert bounds[0] == datetime(YEAR - 1, 12, 31, 16, tzinfo=UTC)
    assert bounds[12] == datetime(YEAR, 12, 31, 16, tzinfo=UTC)
    assert len(bounds) == 13


def test_every_figure_has_words_a_version_and_a_unit(ctx):
    required = {
        "online_trainings",
        "subsidised_trainings",
        "enrolments",
        "trainees",
        "class_hours",
        "verified_hours",
        "certificates",
        "face_checks_passed",
        "face_checks_failed",
        "active_platforms",
        "occupations_with_courses",
        "subsidy_yuan",
    }
    assert required <= set(FIGURES)
    for figure in FIGURES.values():
        assert str(figure.label) and len(str(figure.definition)) > 40
        assert figure.version >= 1 and figure.unit in ("count", "hours", "yuan")


def test_two_roll_ups_of_a_year_at_once_leave_one_set_of_rows(fresh_app, world):
    import threading

    single = roll(fresh_app)
    before = stored(fresh_app)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            roll(fresh_app)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stored(fresh_app) == before
    assert count_rows(fresh_app, StatValue) == single
