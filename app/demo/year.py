"""A labelled demo year for `flask demo seed`: this year's programmes and targets from the work
plan, and a year of activity across districts, platforms and occupations, so the bureau's
dashboard shows something real-looking on a fresh clone (development databases only).

Rows are inserted in bulk, not through the study workflow: no video exists, lessons have no
media, and seeding takes seconds. Every platform's name ends in （演示）, every course's title
says 演示课程 and its description says it is demo data. Running it again adds nothing.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import insert

from app import security
from app.bureau import programmes as bureau_programmes
from app.bureau import service as bureau
from app.bureau.models import GroupSource, Programme, TraineeGroup, TraineeGroupKind
from app.catalog.models import Occupation
from app.certificates import service as certificates
from app.certificates.models import Certificate
from app.courses.models import Course, CourseLevel, CourseStatus, Lesson, LessonStatus
from app.extensions import db
from app.identity import resident_id
from app.identity import service as identity
from app.identity.models import BIRTH_DATE_CIPHER, Role, Sex, User
from app.learning.models import Enrollment, LessonProgress, SessionEnd, StudySession
from app.platforms.models import Platform
from app.subsidy.models import Action, Decision
from app.verification.models import Check, CheckKind, CheckStatus

MARK = "（演示）"
COURSE_MARK = "（演示课程）"
DESCRIPTION = "演示数据：此课程由 flask demo seed 生成，仅用于开发环境展示统计，没有视频。"

# The work plan's special programmes: name, target trainings, key groups, occupation codes.
PROGRAMMES: tuple[tuple[str, int, tuple[str, ...], tuple[str, ...]], ...] = (
    ("高危行业企业职工", 30_000, ("enterprise_staff",), ("6-29-02-07", "6-18-02-04", "6-31-01-03")),
    ("医疗护理员", 10_000, (), ("4-14-01-02", "4-14-01-03")),
    ("贫困村创业致富带头人", 5_000, ("poor_labourer",), ("5-05-01-02", "4-07-03-03")),
    ("人力资源服务业从业人员", 10_000, (), ("4-07-03-04",)),
    (
        "新职业从业人员",
        5_000,
        (),
        ("4-04-05-05", "4-04-05-06", "4-02-04-06", "4-10-08-01", "6-25-04-09"),
    ),
    ("家政服务人员", 35_000, (), ("4-10-01-06", "4-10-01-05", "4-10-01-03")),
    ("企业新型学徒", 50_000, ("enterprise_staff",), ()),
    ("贫困劳动力", 15_000, ("poor_labourer",), ()),
)
PART = ("鲁渝协作", 3_500, "贫困劳动力")  # a part of a programme: name, target, its programme
BUDGET_PER_TRAINING = Decimal("800")
CITY_TARGETS = {"online_trainings": 100_000, "subsidised_trainings": 500_000}
# Districts with more people get a larger share of targets and trainees.
LARGER = {
    "500101": 3,  # 万州区
    "500102": 2,  # 涪陵区
    "500103": 2,  # 渝中区
    "500105": 3,  # 江北区
    "500106": 3,  # 沙坪坝区
    "500107": 3,  # 九龙坡区
    "500108": 3,  # 南岸区
    "500109": 2,  # 北碚区
    "500112": 4,  # 渝北区
    "500113": 2,  # 巴南区
}

PLATFORMS = (
    "巴渝职教云",
    "山城技能学堂",
    "两江数字工匠",
    "渝州家政学院",
    "三峡职业培训网",
    "嘉陵江在线学",
    "长江技工课堂",
    "重庆护理培训中心",
    "缙云云课堂",
    "乌江创业学院",
    "武陵山乡村振兴学堂",
    "大足智造实训",
)
OCCUPATIONS = 120  # occupations with a published demo course
TRAINEES = 3_000
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美娟平刚桂兰文辉力健鑫雪梅玉兵红霞"


@dataclass(frozen=True)
class Seeded:
    programmes: int
    targets: int
    platforms: int
    courses: int
    trainees: int
    enrollments: int
    certificates: int


def seed(year: int, *, today: date, rng_seed: int = 2026) -> Seeded:
    """Everything of the demo year that is not there yet; flushes, the caller commits."""
    made_programmes = seed_programmes(year)
    made_targets = seed_targets(year)
    activity = seed_activity(year, today=today, rng=random.Random(rng_seed))  # noqa: S311  (demo data)
    return Seeded(made_programmes, made_targets, *activity)


# --------------------------------------------------------------------------- plan


def seed_programmes(year: int) -> int:
    """The work plan's programmes of `year` that are missing, through the checked service."""
    have = {p.name: p for p in bureau_programmes.programmes(year)}
    made = 0
    for name, target, groups, codes in PROGRAMMES:
        if name not in have:
            have[name] = bureau_programmes.create_programme(
                {
                    "name": name,
                    "year": str(year),
                    "target_trainings": str(target),
                    "target_groups": list(groups),
                    "occupation_codes": list(codes),
                    "budget_yuan": str(target * BUDGET_PER_TRAINING),
                },
                staff=None,
            )
            made += 1
    name, target, parent = PART
    if name not in have:
        bureau_programmes.create_programme(
            {
                "name": name,
                "year": str(year),
                "parent_id": str(have[parent].id),
                "target_trainings": str(target),
                "target_groups": ["poor_labourer"],
                "budget_yuan": str(target * BUDGET_PER_TRAINING),
            },
            staff=None,
        )
        made += 1
    return made


def shares(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, summing exactly (largest remainders)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def seed_targets(year: int) -> int:
    """The city's targets and the districts' shares, where the year has none yet."""
    if bureau_programmes.targets(year):
        return 0
    codes = [d.code for d in bureau.districts()]
    weights = [LARGER.get(code, 1) for code in codes]
    cells: dict[tuple[str, str], Any] = {}
    for key, total in CITY_TARGETS.items():
        cells[(bureau_programmes.CITY, key)] = total
        for code, part in zip(codes, shares(total, weights), strict=True):
            cells[(code, key)] = part
    return bureau_programmes.set_targets(year, cells, staff=None).set


# --------------------------------------------------------------------------- activity


def seed_activity(year: int, *, today: date, rng: random.Random) -> tuple[int, ...]:
    """Platforms, courses, trainees and a year of their study, unless the demo platforms exist."""
    if db.session.scalar(sa.select(Platform.id).where(Platform.name == PLATFORMS[0] + MARK)):
        return (0, 0, 0, 0, 0)
    districts = [d.code for d in bureau.districts()]
    weights = [LARGER.get(code, 1) for code in districts]
    platform_ids = _platforms(districts, rng)
    courses = _courses(year, platform_ids, rng)
    trainees = _trainees(districts, weights, today, rng)
    enrolled, certified = _study(year, today, courses, trainees, rng)
    return (len(platform_ids), len(courses), len(trainees), enrolled, certified)


def _platforms(districts: list[str], rng: random.Random) -> dict[int, str]:
    """{platform id: its district}; service accounts as the platforms' own, never signed in."""
    homes = ["500112", "500106", "500105", *rng.sample(districts, len(PLATFORMS))]
    rows = [
        {
            "name": name + MARK,
            "contact_name": "演示联系人",
            "contact_phone": f"023-6{n:03d}0000",
            "district_code": homes[n],
        }
        for n, name in enumerate(PLATFORMS)
    ]
    ids = list(
        db.session.scalars(
            insert(Platform).returning(Platform.id, sort_by_parameter_order=True), rows
        )
    )
    unusable = identity.password_hasher().hash(secrets.token_urlsafe(24))
    db.session.execute(
        insert(User),
        [
            {
                "role": Role.PLATFORM,
                "name": row["name"],
                "password_hash": unusable,
                "platform_id": pid,
            }
            for pid, row in zip(ids, rows, strict=True)
        ],
    )
    return {pid: row["district_code"] for pid, row in zip(ids, rows, strict=True)}


@dataclass(frozen=True)
class DemoCourse:
    id: int
    hours: int
    programme_id: int | None
    lessons: tuple[int, ...]
    amount: Decimal


def _occupations(programmes: list[Programme]) -> list[str]:
    """The programmes' occupations first, then others spread over groups 4 to 6 of the book."""
    wanted = [code for p in programmes for code in p.occupation_codes]
    pool = list(
        db.session.scalars(
            sa.select(Occupation.code)
            .where(
                Occupation.level == 4,
                sa.or_(
                    Occupation.code.like("4-%"),
                    Occupation.code.like("5-%"),
                    Occupation.code.like("6-%"),
                ),
            )
            .order_by(Occupation.code)
        )
    )
    step = max(1, len(pool) // OCCUPATIONS)
    for code in pool[::step]:
        if len(wanted) >= OCCUPATIONS:
            break
        if code not in wanted:
            wanted.append(code)
    return wanted


def _courses(year: int, platforms: dict[int, str], rng: random.Random) -> list[DemoCourse]:
    programmes = bureau_programmes.programmes(year)
    codes = _occupations(programmes)
    names = dict(
        db.session.execute(
            sa.select(Occupation.code, Occupation.name).where(Occupation.code.in_(codes))
        ).all()
    )
    covering = {code: p.id for p in programmes for code in p.occupation_codes}
    open_to_all = [p.id for p in programmes if not p.occupation_codes]
    platform_ids = list(platforms)
    published = datetime(year, 1, 2, 1, 0, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for n, code in enumerate(codes):
        platform_id = platform_ids[n % len(platform_ids)]
        programme = covering.get(code)
        if programme is None and rng.random() < 0.4:
            programme = rng.choice(open_to_all)
        rows.append(
            {
                "platform_id": platform_id,
                "occupation_code": code,
                "title": f"{names[code]}{COURSE_MARK}",
                "level": rng.choice([CourseLevel.JUNIOR, CourseLevel.INTERMEDIATE, None]),
                "hours": Decimal(rng.choice([8, 12, 16, 24, 32])),
                "description": DESCRIPTION,
                "status": CourseStatus.PUBLISHED,
                "created_at": published,
                "submitted_at": published,
                "published_at": published,
                "district_code": platforms[platform_id],
                "programme_id": programme,
            }
        )
    ids = list(
        db.session.scalars(insert(Course).returning(Course.id, sort_by_parameter_order=True), rows)
    )
    lesson_rows = [
        {
            "course_id": course_id,
            "position": position,
            "title": f"第{position}课（演示，无视频）",
            "status": LessonStatus.READY,
            "progress": 1.0,
            "duration_s": float(row["hours"]) * 3600 / 2,
            "created_at": published,
        }
        for course_id, row in zip(ids, rows, strict=True)
        for position in (1, 2)
    ]
    lesson_ids = list(
        db.session.scalars(
            insert(Lesson).returning(Lesson.id, sort_by_parameter_order=True), lesson_rows
        )
    )
    return [
        DemoCourse(
            id=course_id,
            hours=int(row["hours"]),
            programme_id=row["programme_id"],
            lessons=(lesson_ids[2 * n], lesson_ids[2 * n + 1]),
            amount=Decimal(int(row["hours"]) * 50),
        )
        for n, (course_id, row) in enumerate(zip(ids, rows, strict=True))
    ]


def resident_number(area: str, born: date, serial: int) -> str:
    """A valid resident ID number (GB 11643-1999 check digit)."""
    body = f"{area}{born:%Y%m%d}{serial % 1000:03d}"
    return body + resident_id.check_digit(body)


def _trainees(
    districts: list[str], weights: list[int], today: date, rng: random.Random
) -> list[tuple[int, str]]:
    """[(user id, district)]: trainees with valid ID numbers and unique phone numbers."""
    unusable = identity.password_hasher().hash(secrets.token_urlsafe(24))
    rows: list[dict[str, Any]] = []
    homes: list[str] = []
    for code, count in zip(districts, shares(TRAINEES, weights), strict=True):
        homes.extend([code] * count)
    taken_phones = set(db.session.scalars(sa.select(User.phone).where(User.phone.like("166%"))))
    used: set[str] = set()
    for n, home in enumerate(homes):
        number = ""
        while not number or number in used:
            born = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 365 * 34))
            number = resident_number(home, born, rng.randrange(1000))
        used.add(number)
        male = int(number[16]) % 2 == 1
        phone = f"166{n:08d}"
        if phone in taken_phones:
            continue
        created = datetime.combine(date(today.year, 1, 1), time(2), UTC) - timedelta(
            days=rng.randrange(0, 400)
        )
        rows.append(
            {
                "role": Role.TRAINEE,
                "name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
                "id_number_digest": identity.id_digest(number),
                "id_number_cipher": security.encrypt(identity.ID_CIPHER, number),
                "id_number_masked": resident_id.mask(number),
                "phone": phone,
                "birth_date_cipher": security.encrypt(BIRTH_DATE_CIPHER, born.isoformat()),
                "sex": Sex.MALE if male else Sex.FEMALE,
                "password_hash": unusable,
                "district_code": home,
                "created_at": created,
            }
        )
    ids = list(
        db.session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), rows)
    )
    kinds = list(TraineeGroupKind)
    groups = []
    for user_id in ids:
        if rng.random() < 0.45:
            groups.append(
                {
                    "user_id": user_id,
                    "kind": rng.choices(kinds, weights=(4, 6, 2, 3, 1, 5, 1))[0],
                    "source": rng.choice([GroupSource.IMPORTED, GroupSource.SELF_DECLARED]),
                }
            )
    if groups:
        db.session.execute(insert(TraineeGroup), groups)
    return [(user_id, row["district_code"]) for user_id, row in zip(ids, rows, strict=True)]


def _study(
    year: int,
    today: date,
    courses: list[DemoCourse],
    trainees: list[tuple[int, str]],
    rng: random.Random,
) -> tuple[int, int]:
    """Enrolments across the months so far, with sittings, face checks, decisions and
    certificates as the workflow leaves them; (enrolments, certificates)."""
    start = datetime(year, 1, 1, 1, tzinfo=UTC)
    now = datetime.combine(today, time(1), UTC)
    span_s = max(86_400, int((now - start).total_seconds()) - 86_400)
    auditor = db.session.scalar(sa.select(User.id).where(User.role == Role.AUDITOR).limit(1))
    plan: list[dict[str, Any]] = []
    for user_id, _home in trainees:
        for chosen in rng.sample(courses, rng.choice((1, 1, 2, 2, 3))):
            # Later months busier: the power leans the draw towards the year's end.
            enrolled = start + timedelta(seconds=int(span_s * rng.random() ** 0.7))
            finished = enrolled + timedelta(days=rng.randrange(3, 45), hours=rng.randrange(0, 10))
            done = finished < now and rng.random() < 0.85
            plan.append(
                {
                    "trainee_id": user_id,
                    "course": chosen,
                    "created_at": enrolled,
                    "completed_at": finished if done else None,
                    "failed_check": rng.random() < 0.06,
                }
            )
    enrollment_ids = list(
        db.session.scalars(
            insert(Enrollment).returning(Enrollment.id, sort_by_parameter_order=True),
            [
                {
                    "trainee_id": p["trainee_id"],
                    "course_id": p["course"].id,
                    "created_at": p["created_at"],
                    "completed_at": p["completed_at"],
                    "programme_id": p["course"].programme_id,
                }
                for p in plan
            ],
        )
    )
    sessions, progress = [], []
    for enrollment_id, p in zip(enrollment_ids, plan, strict=True):
        p["id"] = enrollment_id
        taken: DemoCourse = p["course"]
        lesson_s = taken.hours * 3600 / 2
        studied = 2 if p["completed_at"] else rng.choice((0, 1, 1, 2))
        p["lessons"] = studied
        for index, lesson_id in enumerate(taken.lessons):
            share = 1.0 if p["completed_at"] or index < studied - 1 else rng.uniform(0.1, 0.9)
            if index >= max(studied, 1):
                break
            sat = p["created_at"] + timedelta(days=index + 1)
            ended = sat + timedelta(seconds=lesson_s * share)
            if p["completed_at"] and ended > p["completed_at"]:
                ended = p["completed_at"]
            credited = round(lesson_s * share, 1)
            sessions.append(
                {
                    "enrollment_id": enrollment_id,
                    "lesson_id": lesson_id,
                    "trainee_id": p["trainee_id"],
                    "started_at": sat,
                    "ended_at": ended,
                    "end_reason": SessionEnd.CLOSED,
                    "opened_at": sat.timestamp(),
                    "last_at": ended.timestamp(),
                    "last_position_s": credited,
                    "credited_spans": f"[[0, {credited}]]",
                    "credited_s": credited,
                    "user_agent": "demo",
                }
            )
            progress.append(
                {
                    "enrollment_id": enrollment_id,
                    "lesson_id": lesson_id,
                    "credited_s": credited,
                    "furthest_s": credited,
                    "position_s": credited,
                    "covered": f"[[0, {credited}]]",
                    "coverage": round(share, 4),
                    # A failed check takes back the half of the sitting it was to confirm.
                    "voided_s": credited / 2 if p["failed_check"] and index == 0 else 0.0,
                    "completed_at": ended if share >= 1.0 else None,
                    "updated_at": ended,
                }
            )
    session_ids = list(
        db.session.scalars(
            insert(StudySession).returning(StudySession.id, sort_by_parameter_order=True),
            sessions,
        )
    )
    db.session.execute(insert(LessonProgress), progress)
    by_enrollment = {p["id"]: p for p in plan}
    checks = []
    for session_id, sitting in zip(session_ids, sessions, strict=True):
        p = by_enrollment[sitting["enrollment_id"]]
        fails = p["failed_check"] and sitting["lesson_id"] == p["course"].lessons[0]
        half = sitting["credited_s"] / 2  # each later check confirms (or voids) a half
        for kind, at, failed, settled in (
            (CheckKind.SIGN_IN, sitting["started_at"], False, 0.0),
            (
                CheckKind.RANDOM,
                sitting["started_at"] + (sitting["ended_at"] - sitting["started_at"]) / 2,
                fails,
                half,
            ),
            (CheckKind.CLOSING, sitting["ended_at"], False, half),
        ):
            checks.append(
                {
                    "session_id": session_id,
                    "user_id": sitting["trainee_id"],
                    "kind": kind,
                    "status": CheckStatus.FAILED if failed else CheckStatus.PASSED,
                    "code": "mismatch" if failed else None,
                    "score": 0.71 if failed else 0.32,
                    "threshold": 0.5,
                    "model": "demo",
                    "attempts": 1,
                    "created_at": at,
                    "expires_at": at + timedelta(minutes=2),
                    "answered_at": at + timedelta(seconds=20),
                    "settled_s": settled,
                }
            )
    db.session.execute(insert(Check), checks)
    decisions, issued = [], []
    names = dict(
        db.session.execute(
            sa.select(User.id, User.name).where(User.id.in_([t for t, _ in trainees]))
        ).all()
    )
    course_rows = {
        c.id: c
        for c in db.session.scalars(sa.select(Course).where(Course.id.in_([c.id for c in courses])))
    }
    occupation_names = dict(db.session.execute(sa.select(Occupation.code, Occupation.name)).all())
    for p in plan:
        done = p["completed_at"]
        if done is None:
            continue
        course = p["course"]
        if p["failed_check"]:
            approve = rng.random() < 0.6
            decisions.append(
                {
                    "enrollment_id": p["id"],
                    "action": Action.APPROVE if approve else Action.REJECT,
                    "reason": "演示：审核员复核了人脸比对记录。"
                    if approve
                    else "演示：人脸比对未通过，认定非本人学习。",
                    "amount_yuan": course.amount if approve else None,
                    "decided_by": auditor,
                    "decided_at": done + timedelta(days=rng.randrange(1, 6)),
                }
            )
            if not approve:
                continue
        else:
            decisions.append(
                {
                    "enrollment_id": p["id"],
                    "action": Action.ELIGIBLE,
                    "reason": "complete, every face check passed or cleared",
                    "amount_yuan": course.amount,
                    "decided_at": done,
                }
            )
        row = course_rows[course.id]
        issued.append(
            {
                "number": certificates.new_number(done.year),
                "verify_code": certificates.new_verify_code(),
                "enrollment_id": p["id"],
                "user_id": p["trainee_id"],
                "holder_name": names[p["trainee_id"]],
                "occupation_code": row.occupation_code,
                "occupation_name": occupation_names[row.occupation_code],
                "course_title": row.title,
                "level": row.level,
                "hours": Decimal(course.hours),
                "issued_at": done,
            }
        )
    db.session.execute(insert(Decision), decisions)
    db.session.execute(insert(Certificate), issued)
    db.session.flush()
    return len(plan), len(issued)
