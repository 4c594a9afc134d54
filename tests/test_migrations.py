"""The schema comes only from migrations, and the migrations match the models."""

import re

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db
from tests.conftest import make_app, reset_postgres


def schema_diff(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgraded_database_matches_the_models(app):
    assert schema_diff(app) == []


def test_downgrade_to_empty_and_upgrade_again(database_url, tmp_path):
    """Run on a separate database (or schema) so the shared one keeps its data."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    else:
        base = re.sub(r"^postgresql\+psycopg://", "postgresql://", database_url)
        reset_postgres(base, "roundtrip")
        url = database_url + "?options=-csearch_path%3Droundtrip"
    app = make_app(url)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
    assert schema_diff(app) == []
    with app.app_context():
        db.engine.dispose()


def test_a_sqlite_database_with_rows_upgrades_with_its_rows(tmp_path):
    """`make run` on an earlier instance/ database: the district migration rebuilds SQLite
    tables other rows refer to (user, course), which failed while foreign keys were enforced."""
    import sqlite3

    path = tmp_path / "earlier.db"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade(revision="6f8b0c2d4e75")
        db.engine.dispose()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA foreign_keys=ON")
    with raw:
        raw.execute(
            "INSERT INTO occupation (code, gb_code, name, level, position)"
            " VALUES ('6-31-01-03', '60301', '电工', 4, 0)"
        )
        raw.execute(
            "INSERT INTO platform (id, name, contact_name, contact_phone, contact_email, status,"
            " created_at) VALUES (1, '鲁班学堂', '', '', '', 'active', '2026-01-01')"
        )
        raw.execute(
            "INSERT INTO user (id, role, name, password_hash, active, created_at, session_epoch,"
            " password_change_required) VALUES (1, 'trainee', '张三', 'x', 1, '2026-01-01', 0, 0)"
        )
        raw.execute(
            "INSERT INTO course (id, platform_id, occupation_code, title, hours, description,"
            " status, created_at, updated_at) VALUES (1, 1, '6-31-01-03', '低压电工', 8, '',"
            " 'published', '2026-01-01', '2026-01-01')"
        )
        raw.execute(
            "INSERT INTO enrollment (id, trainee_id, course_id, created_at)"
            " VALUES (3, 1, 1, '2026-01-01')"
        )
    raw.close()
    with app.app_context():
        upgrade()
        counts = db.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM user), (SELECT count(*) FROM course),"
                " (SELECT count(*) FROM enrollment)"
            )
        ).one()
        assert tuple(counts) == (1, 1, 1)
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        db.session.remove()
        db.engine.dispose()
