"""Every figure the bureau publishes, defined once: its words (口径), its version and its query.

A figure's query counts the records of one period [start, end) on the bureau's clock (the
bounds are passed in as aware datetimes) and groups them by the slice asked for: district,
programme, both, or neither (the whole city). Figures that count distinct people, platforms or
occupations are not sums of their slices, so the roll-up runs each grouping as its own query.

Attribution, the same for every figure unless its definition says otherwise:
- a trainee's records count towards the trainee's district as it is now (`User.district_code`);
- an enrolment's records count towards `Enrollment.programme_id` (the course's programme when
  the trainee enrolled), and checks and sessions towards their enrolment's programme;
- platform and course figures count towards the course's district (or, for platforms, the
  platform's district) and the course's programme.
Records with no district (or no programme) count only in the whole-city (all-programme) slice.
Change a definition: change its text and its query together and raise its version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased

from app.certificates.models import Certificate
from app.courses.models import Course, CourseStatus
from app.identity.models import User
from app.learning.models import Enrollment, StudySession
from app.platforms.models import Platform
from app.subsidy.models import Action, Decision
from app.verification.models import Check, CheckStatus

# The slices a figure can be grouped by.
DISTRICT, PROGRAMME = "district", "programme"
GROUPINGS: tuple[tuple[str, ...], ...] = ((), (DISTRICT,), (PROGRAMME,), (DISTRICT, PROGRAMME))
GRANTS = (Action.APPROVE, Action.ELIGIBLE)
# Decisions that settle whether an enrolment is paid (a cleared check does not).
VERDICTS = (Action.APPROVE, Action.ELIGIBLE, Action.REJECT)


@dataclass(frozen=True)
class Source:
    """Where a figure's records come from and how they are attributed."""

    from_: Any  # a FromClause (a join)
    when: Any  # the column whose time puts a record in a period
    value: Any  # the aggregate
    # A trainee's records: the trainee's district now, the enrolment's programme (the joins
    # of such a source bring in User and Enrollment).
    district: Any = field(default_factory=lambda: User.district_code)
    programme: Any = field(default_factory=lambda: Enrollment.programme_id)
    where: tuple[Any, ...] = ()
    # A stock (how many exist at the end of the period) rather than a flow within it.
    stock: bool = False


@dataclass(frozen=True)
class Figure:
    key: str
    label: Any  # lazy string
    definition: Any  # lazy string: the 口径
    version: int
    unit: str  # "count" | "hours" | "yuan"
    source: Callable[[], Source] = field(repr=False, compare=False)
    # How a count made in SQL becomes the stored number.
    places: int = 0
    # A count or sum of records each in one period and slice: a wider slice or a year is the
    # sum of its parts, so one query grouped by district, programme and month serves them all.
    additive: bool = False

    def select(
        self,
        start: datetime,
        end: datetime,
        by: Sequence[str] = (),
        *,
        months: Sequence[datetime] | None = None,
        programme_ids: Sequence[int] | None = None,
        nulls: bool = False,
    ) -> sa.Select[Any]:
        """The figure over [start, end) grouped by `by`; with `months` (the bounds of each
        month, start first and end last) also by month, labelled 1..12. `programme_ids`
        keeps only enrolments of those programmes (a programme with its parts). With `nulls`,
        records with no district or programme form groups of their own (None)."""
        src = self.source()
        columns: list[Any] = []
        if DISTRICT in by:
            columns.append(src.district.label("district"))
        if PROGRAMME in by:
            columns.append(src.programme.label("programme"))
        if months is not None:
            if src.stock:
                raise ValueError(f"{self.key} is a stock: select each month on its own")
            month = sa.case(
                *((src.when < bound, number) for number, bound in enumerate(months[1:], 1))
            )
            columns.append(month.label("month"))
        conditions: list[Any] = [src.when < end, *src.where]
        if not src.stock:
            conditions.append(src.when >= start)
        if DISTRICT in by and not nulls:
            conditions.append(src.district.is_not(None))
        if PROGRAMME in by and not nulls:
            conditions.append(src.programme.is_not(None))
        if programme_ids is not None:
            conditions.append(src.programme.in_(programme_ids))
        query = sa.select(*columns, src.value.label("value")).select_from(src.from_)
        query = query.where(*conditions)
        if columns:
            query = query.group_by(*columns)
        return query


# --- sources ---------------------------------------------------------------------------------


def _trainee_join(base: Any, trainee_id: Any) -> Any:
    return base.join(User, User.id == trainee_id)


def _enrolments() -> Source:
    return Source(
        from_=_trainee_join(Enrollment.__table__, Enrollment.trainee_id),
        when=Enrollment.created_at,
        value=sa.func.count(Enrollment.id),
    )


def _trainees() -> Source:
    return Source(
        from_=_trainee_join(Enrollment.__table__, Enrollment.trainee_id),
        when=Enrollment.created_at,
        value=sa.func.count(sa.distinct(Enrollment.trainee_id)),
    )


def _online_trainings() -> Source:
    return Source(
        from_=_trainee_join(Enrollment.__table__, Enrollment.trainee_id),
        when=Enrollment.completed_at,
        value=sa.func.count(Enrollment.id),
    )


def _standing_grant() -> tuple[Any, tuple[Any, ...]]:
    """Grant decisions that still stand: no later approval, rules' grant or rejection."""
    later = aliased(Decision)
    newer = (
        sa.select(later.id)
        .where(
            later.enrollment_id == Decision.enrollment_id,
            later.id > Decision.id,
            later.action.in_(VERDICTS),
        )
        .exists()
    )
    base = Decision.__table__.join(Enrollment, Enrollment.id == Decision.enrollment_id)
    return _trainee_join(base, Enrollment.trainee_id), (Decision.action.in_(GRANTS), ~newer)


def _subsidised_trainings() -> Source:
    from_, where = _standing_grant()
    return Source(
        from_=from_,
        when=Decision.decided_at,
        value=sa.func.count(sa.distinct(Decision.enrollment_id)),
        where=where,
    )


def _subsidy_yuan() -> Source:
    from_, where = _standing_grant()
    return Source(
        from_=from_,
        when=Decision.decided_at,
        value=sa.func.coalesce(sa.func.sum(Decision.amount_yuan), 0),
        where=where,
    )


def _session_join() -> Any:
    base = StudySession.__table__.join(Enrollment, Enrollment.id == StudySession.enrollment_id)
    return _trainee_join(base, StudySession.trainee_id)


def _class_hours() -> Source:
    return Source(
        from_=_session_join(),
        when=StudySession.started_at,
        value=sa.func.coalesce(sa.func.sum(StudySession.credited_s), 0) / 3600.0,
    )


def _check_join() -> Any:
    base = Check.__table__.join(StudySession, StudySession.id == Check.session_id).join(
        Enrollment, Enrollment.id == StudySession.enrollment_id
    )
    return _trainee_join(base, Check.user_id)


def _verified_hours() -> Source:
    return Source(
        from_=_check_join(),
        when=Check.answered_at,
        value=sa.func.coalesce(sa.func.sum(Check.settled_s), 0) / 3600.0,
        where=(Check.status == CheckStatus.PASSED,),
    )


def _checks(status: CheckStatus) -> Callable[[], Source]:
    def source() -> Source:
        return Source(
            from_=_check_join(),
            # An unanswered check fails when it expires.
            when=sa.func.coalesce(Check.answered_at, Check.expires_at),
            value=sa.func.count(Check.id),
            where=(Check.status == status,),
        )

    return source


def _certificates() -> Source:
    base = Certificate.__table__.join(Enrollment, Enrollment.id == Certificate.enrollment_id)
    return Source(
        from_=_trainee_join(base, Certificate.user_id),
        when=Certificate.issued_at,
        value=sa.func.count(Certificate.id),
        where=(Certificate.revoked_at.is_(None),),
    )


def _active_platforms() -> Source:
    base = Enrollment.__table__.join(Course, Course.id == Enrollment.course_id).join(
        Platform, Platform.id == Course.platform_id
    )
    return Source(
        from_=base,
        when=Enrollment.created_at,
        district=Platform.district_code,
        programme=Enrollment.programme_id,
        value=sa.func.count(sa.distinct(Platform.id)),
    )


def _occupations_with_courses() -> Source:
    return Source(
        from_=Course.__table__,
        when=Course.published_at,
        district=Course.district_code,
        programme=Course.programme_id,
        value=sa.func.count(sa.distinct(Course.occupation_code)),
        where=(Course.status == CourseStatus.PUBLISHED,),
        stock=True,
    )


_FIGURES = (
    Figure(
        "online_trainings",
        _l("Online trainings"),
        _l(
            "Enrolments completed on verified study time: an enrolment counts in the period "
            "in which it was completed (its completion time, on the bureau's clock), towards "
            "the trainee's current district and the enrolment's programme. One trainee "
            "completing two courses is two trainings."
        ),
        1,
        "count",
        _online_trainings,
        additive=True,
    ),
    Figure(
        "subsidised_trainings",
        _l("Subsidised trainings"),
        _l(
            "Enrolments whose subsidy is granted: the latest decision on the enrolment (an "
            "auditor's approval or rejection, or the rules' finding it eligible) is a grant. "
            "It counts in the period of that granting decision, towards the trainee's current "
            "district and the enrolment's programme. A grant later rejected no longer counts."
        ),
        1,
        "count",
        _subsidised_trainings,
        additive=True,
    ),
    Figure(
        "enrolments",
        _l("Enrolments"),
        _l(
            "Enrolments made: every enrolment counts in the period in which the trainee "
            "enrolled, towards the trainee's current district and the enrolment's programme."
        ),
        1,
        "count",
        _enrolments,
        additive=True,
    ),
    Figure(
        "trainees",
        _l("Trainees"),
        _l(
            "Distinct trainees who enrolled in at least one course in the period, in the "
            "trainee's current district; in a programme's figure, those who enrolled in one "
            "of its courses. A person is counted once per period however many courses they "
            "took, so this figure is not the sum of its months, districts or programmes."
        ),
        1,
        "count",
        _trainees,
    ),
    Figure(
        "class_hours",
        _l("Class hours studied"),
        _l(
            "Hours of study time the server credited from the player's heartbeats, counting "
            "each study session in the period in which it started, including time later "
            "taken back by a failed face check; towards the trainee's current district and "
            "the session's enrolment's programme."
        ),
        1,
        "hours",
        _class_hours,
        places=2,
        additive=True,
    ),
    Figure(
        "verified_hours",
        _l("Verified hours"),
        _l(
            "Hours of credited study time confirmed by a passed face check: each passed "
            "check counts the time it settled, in the period in which it was answered, "
            "towards the trainee's current district and the session's enrolment's programme."
        ),
        1,
        "hours",
        _verified_hours,
        places=2,
        additive=True,
    ),
    Figure(
        "certificates",
        _l("Certificates"),
        _l(
            "Training certificates issued in the period and not revoked since, towards the "
            "holder's current district and the certified enrolment's programme."
        ),
        1,
        "count",
        _certificates,
        additive=True,
    ),
    Figure(
        "face_checks_passed",
        _l("Face checks passed"),
        _l(
            "Face checks during study that passed, counted in the period in which they were "
            "answered, towards the trainee's current district and the enrolment's programme."
        ),
        1,
        "count",
        _checks(CheckStatus.PASSED),
        additive=True,
    ),
    Figure(
        "face_checks_failed",
        _l("Face checks failed"),
        _l(
            "Face checks during study that failed (the face did not match, or no answer came "
            "in time), counted in the period in which they were answered or, unanswered, "
            "expired; towards the trainee's current district and the enrolment's programme. "
            "A check an auditor later cleared still counts as failed; cancelled checks do not "
            "count."
        ),
        1,
        "count",
        _checks(CheckStatus.FAILED),
        additive=True,
    ),
    Figure(
        "active_platforms",
        _l("Active platforms"),
        _l(
            "Distinct training platforms on whose courses at least one trainee enrolled in "
            "the period; towards the platform's district and, for a programme, platforms "
            "with an enrolment in that programme."
        ),
        1,
        "count",
        _active_platforms,
    ),
    Figure(
        "occupations_with_courses",
        _l("Occupations with courses"),
        _l(
            "Distinct occupations with at least one course published by the end of the "
            "period and still published when the figure was computed; towards the course's "
            "district and programme (courses offered city-wide count only for the whole "
            "city)."
        ),
        1,
        "count",
        _occupations_with_courses,
    ),
    Figure(
        "subsidy_yuan",
        _l("Subsidies granted (yuan)"),
        _l(
            "The amounts of the subsidised trainings: for each enrolment whose latest "
            "decision is a grant, the amount that grant fixed, in the period of that "
            "decision, towards the trainee's current district and the enrolment's programme."
        ),
        1,
        "yuan",
        _subsidy_yuan,
        places=2,
        additive=True,
    ),
)
FIGURES: dict[str, Figure] = {figure.key: figure for figure in _FIGURES}


# --- periods on the bureau's clock -------------------------------------------------------------


def bureau_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def month_bounds(year: int) -> list[datetime]:
    """The start of each month of `year` and the start of the next year, on the bureau's
    clock (13 aware datetimes)."""
    tz = bureau_tz()
    bounds = [datetime(year, month, 1, tzinfo=tz) for month in range(1, 13)]
    return [*bounds, datetime(year + 1, 1, 1, tzinfo=tz)]


def period_key(year: int, month: int | None = None) -> str:
    return str(year) if month is None else f"{year}-{month:02d}"


def parse_period(period: str) -> tuple[date, date]:
    """The first day of a period and of the one after it."""
    if len(period) == 4:
        year = int(period)
        return date(year, 1, 1), date(year + 1, 1, 1)
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1), date(year + (month == 12), month % 12 + 1, 1)
