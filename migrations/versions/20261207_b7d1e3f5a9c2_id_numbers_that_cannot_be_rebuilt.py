"""ID numbers that cannot be rebuilt: the birth date is kept only encrypted

Revision ID: b7d1e3f5a9c2
Revises: 9c2e4f6a8b1d
Create Date: 2026-12-07 17:00:00.000000

The masked ID number (first 6 and last 4 digits) and the clear birth date (digits 7 to 14)
stood side by side, so one SQL expression rebuilt every full number. The birth date moves to
`birth_date_cipher`, Fernet-encrypted under a key derived from DATA_KEY for its own purpose
(the same derivation as app/security.py, written out here so this revision keeps working
whatever that module becomes). Rows without a birth date (staff, service accounts) stay NULL.
The downgrade decrypts back into the clear column.
"""
from __future__ import annotations

import base64
from datetime import date

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# revision identifiers, used by Alembic.
revision = 'b7d1e3f5a9c2'
down_revision = '9c2e4f6a8b1d'
branch_labels = None
depends_on = None

PURPOSE = "resident-birth-date-cipher"  # app.identity.models.BIRTH_DATE_CIPHER
user = sa.table(
    "user",
    sa.column("id", sa.Integer),
    sa.column("birth_date", sa.Date),
    sa.column("birth_date_cipher", sa.Text),
)


def fernet() -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE.encode())
    key = hkdf.derive(current_app.config["DATA_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birth_date_cipher', sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(user.c.id, user.c.birth_date).where(user.c.birth_date.is_not(None))
    ).all()
    if rows:
        box = fernet()
        for row in rows:
            born = row.birth_date
            text = born.isoformat() if isinstance(born, date) else str(born)
            bind.execute(
                user.update()
                .where(user.c.id == row.id)
                .values(birth_date_cipher=box.encrypt(text.encode()).decode())
            )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('birth_date')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(user.c.id, user.c.birth_date_cipher).where(
            user.c.birth_date_cipher.is_not(None)
        )
    ).all()
    if rows:
        box = fernet()
        for row in rows:
            born = date.fromisoformat(box.decrypt(row.birth_date_cipher.encode()).decode())
            bind.execute(user.update().where(user.c.id == row.id).values(birth_date=born))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('birth_date_cipher')
