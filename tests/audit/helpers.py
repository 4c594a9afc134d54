"""Getting around the audit log's append-only triggers, as the test suite's cleanup and an
intruder with database access both can."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def append_only_lifted(conn: sa.Connection) -> Iterator[None]:
    """Let ``conn`` delete and update audit entries until the block ends.

    PostgreSQL: ``session_replication_role = replica`` for this transaction only, which skips
    ordinary triggers without locking the table (a superuser setting, as the tests have).
    SQLite cannot switch a trigger off: drop the table's triggers and create them again, from
    the text SQLite kept of them, when the block ends.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        yield
        return
    triggers = conn.execute(
        sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": "audit_entry"},
    ).all()
    for name, _ in triggers:
        conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
    try:
        yield
    finally:
        for _, sql in triggers:
            conn.execute(sa.text(sql))
