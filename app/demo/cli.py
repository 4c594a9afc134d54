"""`flask demo seed`: demo accounts and a demo course on an empty database, for newcomers.

The demo course's two lessons are test-pattern videos made with ffmpeg on first start and run
through the real upload path and pipeline, so what a newcomer watches is what production does.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app

from app.consent import service as consent
from app.consent import texts as consent_texts
from app.courses import service as courses
from app.courses import upload
from app.courses.pipeline import KIND as TRANSCODE
from app.demo import bp
from app.demo import year as demo_year
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role, User
from app.jobs import service as jobs
from app.platforms import service as platforms
from app.subsidy import service as subsidy
from app.timeutil import today_local
from media_pipeline import video

# Fixed, documented credentials: demo content exists only in development databases.
DEMO_STAFF = (
    (Role.ADMIN, "demo-admin", "DemoAdmin2026", "演示管理员"),
    (Role.AUDITOR, "demo-auditor", "DemoAudit2026", "演示审核员"),
)
DEMO_TRAINEE = {
    "name": "王小明",
    "id_number": "110105199003071239",
    "phone": "13800138000",
    "password": "DemoTrainee2026",
}
DEMO_COURSE: dict[str, Any] = {  # the JSON a platform would send
    "occupation_code": "6-31-01-03",
    "title": "低压电工安全作业（演示课程）",
    "hours": 2,
    "level": "初级",
    "description": "演示课程：两节短课，用来体验报名、观看、学时认定的完整流程。",
}
DEMO_LESSONS = (("第一课 安全用电常识", 16), ("第二课 个人防护用品", 12))
DEMO_SUBSIDY_YUAN = "800.00"


@bp.cli.command("seed")
def seed() -> None:
    """Create demo accounts and a published demo course if the database has no accounts yet."""
    if not current_app.config["DEMO_CONTENT"]:
        click.echo("demo content is off (DEMO_CONTENT=off or production); nothing created")
        return
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0:
        for role, username, password, name in DEMO_STAFF:
            identity.create_staff(role, username, password, name)
        trainee = identity.register_trainee(DEMO_TRAINEE, today=today_local())
        # The demo trainee has read and accepted the consent text, so face enrolment works
        # at once; /me/consent shows it and lets a developer try withdrawing.
        face = consent_texts.FACE
        consent.give(trainee, face, consent_texts.CURRENT[face])
        db.session.commit()
        click.echo("demo: accounts created")
        _demo_course()
    elif identity.find_by_login(DEMO_TRAINEE["id_number"]) is None:
        click.echo("demo: database already has accounts; no demo content added")
        return
    if current_app.config["DEMO_YEAR"]:
        _demo_year()
    click.echo("Demo accounts (development only):")
    for role, username, password, _ in DEMO_STAFF:
        click.echo(f"  {role.value:<8} login {username:<20} password {password}")
    click.echo(
        f"  trainee  login {DEMO_TRAINEE['id_number']:<20} password {DEMO_TRAINEE['password']}"
    )


def _demo_year() -> None:
    """This year's programmes, targets and a labelled year of activity (app/demo/year.py),
    then the statistics rolled up; adds nothing the second time."""
    year = today_local().year
    made = demo_year.seed(year, today=today_local())
    db.session.commit()
    click.echo(
        f"demo: {year}: {made.programmes} programmes, {made.targets} targets, "
        f"{made.platforms} platforms, {made.courses} courses, {made.trainees} trainees, "
        f"{made.enrollments} enrolments, {made.certificates} certificates added"
    )
    try:  # stats-core's roll-up, once it is there
        rollup = importlib.import_module("app.stats.rollup")
    except ImportError:
        return
    rows = rollup.roll_up(year)
    db.session.commit()
    click.echo(f"demo: statistics of {year} rolled up ({rows} figures)")


def _demo_course() -> None:
    platform = platforms.create("演示培训平台", contact_name="演示")
    course = courses.create_course(platform, DEMO_COURSE)
    course_id = course.id
    with tempfile.TemporaryDirectory(prefix="veriskill-demo-") as work:
        for number, (title, seconds) in enumerate(DEMO_LESSONS, start=1):
            lesson = courses.add_lesson(course, {"title": title})
            source = Path(work) / f"lesson-{number}.mp4"
            click.echo(f"demo: making lesson {number} ({seconds} s test pattern) with ffmpeg")
            video.make_test_pattern(source, seconds=seconds, title=title)
            size = source.stat().st_size
            with source.open("rb") as body:
                upload.receive_chunk(lesson, upload.ChunkRange(0, size - 1, size), body)
            jobs.enqueue(TRANSCODE, lesson.id)
            db.session.commit()
    click.echo("demo: transcoding the lessons to HLS")
    jobs.run_pending()  # ends the session: load the course again
    course = courses.get_course(course_id)
    courses.submit(course)
    courses.publish(course)
    subsidy.set_standard(DEMO_COURSE["occupation_code"], None, DEMO_SUBSIDY_YUAN, staff=None)
    db.session.commit()
    click.echo(f"demo: course {course.id} {course.title!r} published")
