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
