"""A dump of the database, read without DATA_KEY, rebuilds no resident ID number.

The masked form (first 6 and last 4 digits) may be stored in clear; the birth date (digits 7 to
14) may not, in any form, or the full number is one expression away. The dump is a real one
(pg_dump; SQLite's own iterdump) plus every column of every table read back typed, so a birth
date in a Date column is caught too.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from datetime import date

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app import security
from app.extensions import db
from app.identity import resident_id
from app.identity.models import BIRTH_DATE_CIPHER, User
from tests.conftest import TEST_DATABASE_URL, csrf_from, make_app, reset_postgres

PASSWORD = "Study2026ok"


def number(region: str, born: str, serial: str) -> str:
    first17 = f"{region}{born}{serial}"
    return first17 + resident_id.check_digit(first17)


TRAINEES = [
    number("110105", "19900307", "123"),
    number("320102", "19851129", "045"),
    number("440305", "20010615", "217"),
    number("500103", "19770921", "998"),
]


def forms_of(value: date) -> list[str]:
    return [
        value.strftime("%Y%m%d"),
        value.isoformat(),
        value.strftime("%Y/%m/%d"),
        value.strftime("%Y.%m.%d"),
        f"{value.year}-{value.month}-{value.day}",
    ]


def text_dump(url: str) -> str:
    """The whole database as SQL text, made by the database's own dump tool."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return "\n".join(conn.iterdump())
    plain = re.sub(r"^postgresql\+psycopg://", "postgresql://", url)
    result = subprocess.run(
        ["pg_dump", "--schema=public", "--data-only", "--inserts", plain],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def typed_values(app) -> list[tuple[str, str, object]]:
    """(table, column, value) for every value of every column of every table."""
    found = []
    with app.app_context(), db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table_name in inspector.get_table_names():
            table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    if value is not None:
                        found.append((table_name, column, value))
    return found


def register_everyone(app) -> None:
    """Trainees through the API and the page, with sign-ins right and wrong (which land in the
    audit log and the throttle) and a look at the profile."""
    api = app.test_client()
    for n, id_number in enumerate(TRAINEES[:3]):
        body = {"name": "王小明", "id_number": id_number, "phone": f"1380013800{n}"}
        response = api.post("/api/v1/auth/register", json={**body, "password": PASSWORD})
        assert response.status_code == 201, response.get_json()
    browser = app.test_client()
    token = csrf_from(browser.get("/register").get_data(as_text=True))
    form = {"name": "李四", "id_number": TRAINEES[3], "phone": "13912345600", "district": "500103"}
    page = browser.post(
        "/register",
        data={**form, "password": PASSWORD, "password_confirm": PASSWORD, "csrf_token": token},
    )
    assert page.status_code == 302
    for id_number in TRAINEES:
        wrong = api.post("/api/v1/auth/token", json={"login": id_number, "password": "Wrong2026x"})
        assert wrong.status_code == 401
        right = api.post("/api/v1/auth/token", json={"login": id_number, "password": PASSWORD})
        assert right.status_code == 200
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {right.get_json()['token']}"})
    assert me.get_json()["birth_date"] == "1977-09-21"  # its owner still sees it
    assert me.get_json()["id_number"] == "500103********" + TRAINEES[3][-4:]


def test_a_database_dump_rebuilds_no_id_number(fresh_app, database_url):
    register_everyone(fresh_app)
    births = {n: date(int(n[6:10]), int(n[10:12]), int(n[12:14])) for n in TRAINEES}

    dump = text_dump(database_url)
    assert "王小明" in dump and "500103********" in dump  # the dump does hold the accounts
    for id_number, born in births.items():
        assert id_number not in dump and id_number.lower() not in dump
        for form in forms_of(born):
            assert form not in dump, f"birth date {form} of a trainee is in the dump"

    values = typed_values(fresh_app)
    assert values
    for table, column, value in values:
        text = str(value)
        for id_number, born in births.items():
            assert id_number not in text, f"{table}.{column} holds a full ID number"
            assert value != born, f"{table}.{column} holds a birth date"
            assert not any(form in text for form in forms_of(born)), f"{table}.{column}"


def test_the_birth_date_is_stored_encrypted_under_its_own_key(fresh_app):
    register_everyone(fresh_app)
    with fresh_app.app_context():
        user = db.session.scalar(sa.select(User).where(User.id_number_masked.like("110105%")))
        assert user.birth_date == date(1990, 3, 7)
        assert security.decrypt(BIRTH_DATE_CIPHER, user.birth_date_cipher) == "1990-03-07"
        assert "birth_date" not in {c["name"] for c in sa.inspect(db.engine).get_columns("user")}


def migration_app(database_url, tmp_path):
    """An app on a database of its own, so the migration can be run down and up."""
    if database_url.startswith("sqlite"):
        return make_app(f"sqlite:///{tmp_path / 'ids.db'}")
    reset_postgres(TEST_DATABASE_URL, "ids")
    return make_app(database_url + "?options=-csearch_path%3Dids")


def test_the_migration_encrypts_existing_birth_dates_and_the_downgrade_restores_them(
    database_url, tmp_path
):
    app = migration_app(database_url, tmp_path)
    insert = sa.text(
        'INSERT INTO "user" (id, role, name, password_hash, active, created_at, session_epoch,'
        " birth_date) VALUES (:id, :role, :name, 'x', true, CURRENT_TIMESTAMP, 0, :born)"
    )
    with app.app_context():
        upgrade(revision="9c2e4f6a8b1d")
        with db.engine.begin() as conn:
            conn.execute(
                insert, {"id": 1, "role": "trainee", "name": "王小明", "born": "1990-03-07"}
            )
            conn.execute(insert, {"id": 2, "role": "auditor", "name": "auditor1", "born": None})
        upgrade(revision="b7d1e3f5a9c2")
        with db.engine.connect() as conn:
            rows = dict(conn.execute(sa.text('SELECT id, birth_date_cipher FROM "user"')).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("user")}
        assert "birth_date" not in columns
        assert rows[2] is None  # staff have no birth date
        assert security.decrypt(BIRTH_DATE_CIPHER, rows[1]) == "1990-03-07"

        downgrade(revision="9c2e4f6a8b1d")
        with db.engine.connect() as conn:
            restored = dict(conn.execute(sa.text('SELECT id, birth_date FROM "user"')).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("user")}
        assert "birth_date_cipher" not in columns
        assert restored[2] is None
        assert str(restored[1]) == "1990-03-07"
        db.engine.dispose()
