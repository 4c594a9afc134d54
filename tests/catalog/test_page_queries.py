"""The pages that list courses cost a fixed number of queries however many courses, lessons,
occupations and platforms there are: the home page, `/courses` (anonymous and signed in,
searched, a later page, within an occupation) and the occupation pages above them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.catalog.models import Occupation
from app.extensions import db
from tests.catalog.helpers import add_course, statements
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, make_trainee, sign_in_page

GROUP = "6-31"  # every occupation below it gets courses of its own


def occupations(app, count: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Occupation.code)
                .where(Occupation.level == 4, Occupation.code.startswith(f"{GROUP}-"))
                .order_by(Occupation.code)
                .limit(count)
            )
        )


def add_courses(app, codes: list[str], first: int, count: int) -> None:
    """Courses each of another occupation and platform, with 1 to 4 lessons."""
    for n in range(first, first + count):
        add_course(
            app,
            f"电工课程{n}",
            occupation=codes[n % len(codes)],
            platform=f"平台{n}",
            lessons=1 + n % 4,
        )


PAGES = ["/", "/courses", "/courses?q=课程", "/courses?page=2", f"/courses?occupation={GROUP}"]


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "trainee"])
def test_course_pages_take_the_same_queries_for_few_or_many(client, fresh_app, signed_in):
    codes = occupations(fresh_app, 20)
    assert len(codes) >= 10
    if signed_in:
        make_trainee(fresh_app)
        sign_in_page(client, TRAINEE_ID, TRAINEE_PASSWORD)
    paths = [*PAGES, f"/catalog/{GROUP}", f"/catalog/{GROUP[0]}", f"/catalog/{codes[0]}"]

    def counts() -> list[int]:
        found = []
        for path in paths:
            with statements(fresh_app) as seen:
                assert client.get(path).status_code == 200, path
            found.append(len(seen))
        return found

    add_courses(fresh_app, codes, 0, 3)
    counts()  # warm up whatever is loaded once per process
    few = counts()
    add_courses(fresh_app, codes, 3, 40)  # more than a page, over 20 occupations and platforms
    many = counts()
    assert min(few[1:]) > 0  # the home page lists no courses: it may need none
    assert dict(zip(paths, many, strict=True)) == dict(zip(paths, few, strict=True))
