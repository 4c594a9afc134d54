"""keyed audit chain: triggers refuse DELETE too (and UPDATE on SQLite); the entries sealed
with plain SHA-256 are vouched for by one keyed entry

The existing entries are not re-sealed with the key: that would bless whatever the table
holds at this moment and change hashes that may already be written down elsewhere. Instead,
when the log is not empty, one entry sealed with HMAC-SHA256 under AUDIT_KEY is appended
(action ``audit.chain_keyed``): its prev_hash is the last old entry's hash, which nobody
without the key can change, so the old entries keep verifying with their SHA-256 seals and
cannot be rewritten unnoticed from now on (app/audit/service.py). Run ``flask audit verify``
before upgrading: a log already broken stays broken, and the upgrade vouches for the rest.

The upgrade therefore needs AUDIT_KEY in the app's configuration (production refuses to start
without it). The downgrade restores the old triggers and leaves the keyed entries, which the
old code cannot check (it reports the first of them as altered).

Revision ID: c4e6a8b0d2f1
Revises: b7d1e3f5a9c2
Create Date: 2026-12-07 17:00:00.000000
"""
import hashlib
import hmac
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# revision identifiers, used by Alembic.
revision = 'c4e6a8b0d2f1'
down_revision = 'b7d1e3f5a9c2'
branch_labels = None
depends_on = None


# PostgreSQL: the function of 7e0e1f383f6b, now fired by DELETE as well.
PG_TRIGGER = """
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entry
FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()
"""
PG_OLD_TRIGGER = """
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR TRUNCATE ON audit_entry
FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()
"""
# SQLite has no statement triggers and no TRUNCATE (a DELETE without WHERE fires row
# triggers once a table has any).
SQLITE_TRIGGERS = {
    op_name: f"""
CREATE TRIGGER audit_entry_no_{op_name.lower()} BEFORE {op_name} ON audit_entry
BEGIN
    SELECT RAISE(ABORT, 'audit_entry is append-only: {op_name} refused');
END
"""
    for op_name in ("UPDATE", "DELETE")
}

# A frozen copy of the seal in app/audit/service.py (entry_hash), as of this revision.
ENTRY_KEY_PURPOSE = "veriskill audit entry v1"
SEALED = (
    "id", "seq", "at", "actor_id", "actor_label", "action", "subject_type", "subject_id",
    "address", "detail", "prev_hash",
)

audit_entry = sa.table(
    'audit_entry',
    sa.column('id', sa.Integer),
    sa.column('seq', sa.Integer),
    sa.column('at', sa.DateTime(timezone=True)),
    sa.column('actor_id', sa.Integer),
    sa.column('actor_label', sa.String),
    sa.column('action', sa.String),
    sa.column('subject_type', sa.String),
    sa.column('subject_id', sa.String),
    sa.column('address', sa.String),
    sa.column('detail', sa.Text),
    sa.column('prev_hash', sa.String),
    sa.column('hash', sa.String),
)


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def keyed_seal(fields):
    secret = current_app.config.get("AUDIT_KEY")
    if not secret:
        raise RuntimeError("AUDIT_KEY must be set to upgrade the audit log (config.py)")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ENTRY_KEY_PURPOSE.encode())
    key = hkdf.derive(secret.encode())
    text = {name: fields[name] for name in SEALED}
    text["at"] = fields["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return hmac.new(key, canonical_json(text).encode("utf-8"), hashlib.sha256).hexdigest()


def append_keyed_entry(bind):
    last = bind.execute(
        sa.select(audit_entry.c.seq, audit_entry.c.hash).order_by(audit_entry.c.seq.desc()).limit(1)
    ).first()
    if last is None:
        return
    # Stored to the microsecond; SQLite keeps UTC timestamps naive (app/db.py UTCDateTime).
    at = datetime.now(UTC)
    fields = {
        "id": last.seq + 1,
        "seq": last.seq + 1,
        "at": at,
        "actor_id": None,
        "actor_label": "system",
        "action": "audit.chain_keyed",
        "subject_type": "audit_log",
        "subject_id": None,
        "address": None,
        "detail": canonical_json(
            {"legacy_entries": last.seq, "legacy_head": last.hash, "seal": "hmac-sha256"}
        ),
        "prev_hash": last.hash,
    }
    fields["hash"] = keyed_seal(fields)
    if bind.dialect.name == "sqlite":
        fields["at"] = at.replace(tzinfo=None)
    bind.execute(audit_entry.insert().values(fields))


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry')
        op.execute(PG_TRIGGER)
    elif bind.dialect.name == 'sqlite':
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)
    append_keyed_entry(bind)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry')
        op.execute(PG_OLD_TRIGGER)
    elif bind.dialect.name == 'sqlite':
        for op_name in SQLITE_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS audit_entry_no_{op_name.lower()}')
