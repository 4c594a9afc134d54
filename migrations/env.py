"""Alembic environment: migrations run against the Flask app's database and models."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from app.db import UTCDateTime

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def render_item(type_, obj, autogen_context):
    """Write our column types as plain SQLAlchemy types, so migrations never import the app."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=db.metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _dangling(connection) -> set[tuple]:
    """SQLite rows whose foreign key points nowhere: (table, rowid, referred table)."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return {(table, rowid, parent) for table, rowid, parent, _ in rows}


def run_migrations_online():
    def skip_empty(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logging.getLogger("alembic.env").info("No changes in schema detected.")

    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a SQLite table to change its constraints: with foreign keys
            # enforced, dropping the old copy of a table other rows refer to (course, user)
            # fails. Off for the migration (the pragma only takes effect outside a
            # transaction, hence before it begins), checked afterwards, then on again.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # ends SQLAlchemy's autobegun block; alembic begins its own
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            process_revision_directives=skip_empty,
            render_as_batch=True,
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            before = _dangling(connection) if sqlite else set()
            context.run_migrations()
            broken = (_dangling(connection) if sqlite else set()) - before
            if broken:
                raise RuntimeError(
                    f"the migration left rows pointing nowhere: {sorted(broken)[:5]}"
                )
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
