"""A savepoint that is a transaction's first write is undone by the transaction's rollback,
on SQLite as on PostgreSQL (pysqlite would commit it on release)."""

import sqlalchemy as sa

from app.db import savepoint
from app.extensions import db
from app.jobs.models import ScheduleRun


def test_a_first_write_in_a_savepoint_rolls_back_with_its_transaction(ctx):
    db.session.commit()
    with savepoint(db.session):
        db.session.add(ScheduleRun(name="only-in-this-transaction", last_run_at=None))
    db.session.rollback()
    names = db.session.scalars(sa.select(ScheduleRun.name)).all()
    assert "only-in-this-transaction" not in names


def test_a_savepoint_rolled_back_leaves_the_outer_transaction_whole(ctx):
    db.session.add(ScheduleRun(name="outer", last_run_at=None))
    db.session.flush()
    try:
        with savepoint(db.session):
            db.session.add(ScheduleRun(name="outer", last_run_at=None))  # the same key
    except sa.exc.IntegrityError:
        pass
    db.session.commit()
    assert db.session.scalars(sa.select(ScheduleRun.name)).all() == ["outer"]
