"""The demo year (`flask demo seed` in development): this year's programmes and targets from
the work plan, a labelled year of activity over the districts, added once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app import security
from app.bureau.models import Programme, Target, TraineeGroup
from app.certificates.models import Certificate
from app.courses.models import Course, CourseStatus
from app.demo import year as demo_year
from app.extensions import db
from app.identity import resident_id
from app.identity import service as identity
from app.identity.models import Role, User
from app.learning.models import Enrollment, StudySession
from app.platforms.models import Platform
from app.stats import rollup
from app.stats.models import StatValue
from app.subsidy.models import Action, Decision
from app.timeutil import today_local
from app.verification.models import Check, CheckStatus
from tests.conftest import count_rows

MODELS = (Programme, Target, Platform, Course, User, TraineeGroup, Enrollment, StudySession)
MODELS += (Check, Decision, Certificate)


@pytest.fixture
def year_on(fresh_app) -> Iterator[None]:
    fresh_app.config["DEMO_YEAR"] = True
    yield
    fresh_app.config["DEMO_YEAR"] = False
    with fresh_app.app_context():  # parts refer to their programme: unlink before the cleanup
        db.session.execute(sa.update(Programme).values(parent_id=None))
        db.session.commit()


def seed_year(app) -> int:
    """The year as `flask demo seed` makes it, without the demo course's video (slow)."""
    with app.app_context():
        year = today_local().year
        demo_year.seed(year, today=today_local())
        db.session.commit()
        return year


def counts(app) -> dict[str, int]:
    return {model.__name__: count_rows(app, model) for model in MODELS}


def test_the_work_plans_programmes_and_targets(fresh_app, year_on):
    year = seed_year(fresh_app)
    with fresh_app.app_context():
        rows = {p.name: p for p in db.session.scalars(sa.select(Programme))}
        assert len(rows) == 9 and {p.year for p in rows.values()} == {year}
        assert rows["家政服务人员"].target_trainings == 35_000
        assert rows["企业新型学徒"].target_trainings == 50_000
        assert rows["鲁渝协作"].parent_id == rows["贫困劳动力"].id
        assert rows["鲁渝协作"].target_trainings == 3_500
        for key, city in (("online_trainings", 100_000), ("subsidised_trainings", 500_000)):
            values = dict(
                db.session.execute(
                    sa.select(Target.district_code, Target.value).where(
                        Target.year == year, Target.figure_key == key
                    )
                ).all()
            )
            assert values.pop("") == city
            assert len(values) == 41 and sum(values.values()) == city
            assert min(values.values()) > 0


def test_a_labelled_year_of_activity_over_many_districts(fresh_app, year_on):
    year = seed_year(fresh_app)
    with fresh_app.app_context():
        platforms = list(db.session.scalars(sa.select(Platform)))
        assert len(platforms) >= 10
        assert all(p.name.endswith("（演示）") and p.district_code for p in platforms)
        courses = list(db.session.scalars(sa.select(Course)))
        assert all("演示" in c.title and "演示数据" in c.description for c in courses)
        assert {c.status for c in courses} == {CourseStatus.PUBLISHED}
        assert len({c.occupation_code for c in courses}) >= 100
        trainees = list(db.session.scalars(sa.select(User).where(User.role == Role.TRAINEE)))
        assert len(trainees) >= 2_000
        assert len({t.phone for t in trainees}) == len(trainees)
        assert len({t.district_code for t in trainees}) == 41
        months = set(
            db.session.scalars(
                sa.select(Enrollment.created_at).where(Enrollment.completed_at.is_not(None))
            )
        )
        assert {m.month for m in months} >= set(range(1, max(2, today_local().month)))
        assert {m.year for m in months} == {year}
        statuses = set(db.session.scalars(sa.select(Check.status)))
        assert {CheckStatus.PASSED, CheckStatus.FAILED} <= statuses
        actions = set(db.session.scalars(sa.select(Decision.action)))
        assert {Action.ELIGIBLE, Action.APPROVE, Action.REJECT} <= actions
        assert (
            db.session.scalar(
                sa.select(sa.func.min(Decision.amount_yuan)).where(
                    Decision.action.in_([Action.ELIGIBLE, Action.APPROVE])
                )
            )
            > 0
        )
        # A certificate for every granted enrolment, none for a rejected one.
        granted = db.session.scalar(
            sa.select(sa.func.count()).where(Decision.action.in_([Action.ELIGIBLE, Action.APPROVE]))
        )
        assert count_rows(fresh_app, Certificate) == granted > 1_000
        # Valid resident ID numbers, decrypted as the staff pages that need them do.
        ciphers = db.session.scalars(
            sa.select(User.id_number_cipher).where(User.role == Role.TRAINEE).limit(50)
        )
        for cipher in ciphers:
            number = security.decrypt(identity.ID_CIPHER, cipher)
            assert resident_id.parse(number, today=today_local()).number == number


def test_seeding_again_adds_nothing(fresh_app, year_on, runner):
    seed_year(fresh_app)
    first = counts(fresh_app)
    assert first["Enrollment"] > 3_000
    seed_year(fresh_app)
    assert counts(fresh_app) == first


def test_the_seed_command_seeds_the_year_only_when_the_setting_is_on(fresh_app, runner):
    with fresh_app.app_context():  # the accounts exist: the command skips the demo course
        from app.demo.cli import DEMO_STAFF, DEMO_TRAINEE

        for role, username, password, name in DEMO_STAFF:
            identity.create_staff(role, username, password, name)
        identity.register_trainee(dict(DEMO_TRAINEE), today=today_local())
        db.session.commit()
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert count_rows(fresh_app, Enrollment) == 0
    fresh_app.config["DEMO_YEAR"] = True
    try:
        result = runner.invoke(args=["demo", "seed"])
    finally:
        fresh_app.config["DEMO_YEAR"] = False
        with fresh_app.app_context():
            db.session.execute(sa.update(Programme).values(parent_id=None))
            db.session.commit()
    assert result.exit_code == 0, result.output
    assert count_rows(fresh_app, Enrollment) > 3_000


def test_the_roll_up_shows_online_trainings_in_several_districts(fresh_app, year_on):
    year = seed_year(fresh_app)
    with fresh_app.app_context():
        rollup.roll_up(year)
        db.session.commit()
        rows = db.session.execute(
            sa.select(StatValue.district_code, StatValue.value).where(
                StatValue.figure_key == "online_trainings",
                StatValue.period == str(year),
                StatValue.programme_id == 0,
                StatValue.district_code != "",
            )
        ).all()
        assert len([code for code, value in rows if value > 0]) >= 10
