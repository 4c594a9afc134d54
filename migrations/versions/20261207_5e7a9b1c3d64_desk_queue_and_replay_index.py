"""Desk queue rows and the replay index

`desk_queue`: each enrolment's standing in the auditors' queue as the subsidy rules last found
it, written when its facts change, so the desk no longer judges every flagged enrolment on
every view. Existing enrolments get a stale row: the desk recomputes stale rows a batch per
view; run `flask subsidy rebuild-queue` after this migration to recompute them all at once.

`evidence.dhash_0..3`: the 64-bit perceptual hash in four indexed 16-bit pieces, so replay
candidates are found by look-ups instead of a pass over every stored hash. Filled here from
`evidence.dhash` for the rows already stored.

Revision ID: 5e7a9b1c3d64
Revises: 4d6f8a0b2c53
Create Date: 2026-12-07 23:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e7a9b1c3d64"
down_revision = "4d6f8a0b2c53"
branch_labels = None
depends_on = None

CHUNKS = 4
CHUNK_BITS = 16
BACKFILL_BATCH = 5000


def _chunks(hex_value):
    """As app.verification.models.dhash_chunks, frozen here as this revision wrote them."""
    value = int(hex_value, 16)
    mask = (1 << CHUNK_BITS) - 1
    return [(value >> (CHUNK_BITS * (CHUNKS - 1 - i))) & mask for i in range(CHUNKS)]


def _backfill_chunks():
    bind = op.get_bind()
    evidence = sa.table(
        "evidence",
        sa.column("id", sa.Integer),
        sa.column("dhash", sa.String),
        *(sa.column(f"dhash_{i}", sa.Integer) for i in range(CHUNKS)),
    )
    after = 0
    while True:
        rows = bind.execute(
            sa.select(evidence.c.id, evidence.c.dhash)
            .where(evidence.c.id > after, evidence.c.dhash.is_not(None))
            .order_by(evidence.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        values = []
        for row_id, dhash in rows:
            chunks = _chunks(dhash)
            values.append({"row_id": row_id, **{f"c{i}": chunks[i] for i in range(CHUNKS)}})
        bind.execute(
            evidence.update()
            .where(evidence.c.id == sa.bindparam("row_id"))
            .values({f"dhash_{i}": sa.bindparam(f"c{i}") for i in range(CHUNKS)}),
            values,
        )
        after = rows[-1][0]


def _stale_rows_for_every_enrolment():
    columns = ("enrollment_id", "status", "risk", "priority", "complete", "reasons", "checks")
    desk = sa.table("desk_queue", *(sa.column(name) for name in (*columns, "stale", "updated_at")))
    enrollment = sa.table("enrollment", sa.column("id"))
    empty = sa.literal([], sa.JSON)
    op.execute(
        desk.insert().from_select(
            [*columns, "stale", "updated_at"],
            sa.select(
                enrollment.c.id,
                sa.literal("in_progress", sa.String),
                sa.literal(0, sa.Integer),
                sa.literal(0, sa.Integer),
                sa.false(),
                empty,
                empty,
                sa.true(),
                sa.func.current_timestamp(),
            ),
        )
    )


def upgrade():
    op.create_table(
        "desk_queue",
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
            name=op.f("fk_desk_queue_enrollment_id_enrollment"),
        ),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_desk_queue")),
    )
    with op.batch_alter_table("desk_queue", schema=None) as batch_op:
        batch_op.create_index("ix_desk_queue_order", ["status", "priority", "enrollment_id"])
        batch_op.create_index(batch_op.f("ix_desk_queue_stale"), ["stale"])
    _stale_rows_for_every_enrolment()

    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for i in range(CHUNKS):
            batch_op.add_column(sa.Column(f"dhash_{i}", sa.Integer(), nullable=True))
    _backfill_chunks()
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for i in range(CHUNKS):
            batch_op.create_index(batch_op.f(f"ix_evidence_dhash_{i}"), [f"dhash_{i}"])


def downgrade():
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for i in range(CHUNKS):
            batch_op.drop_index(batch_op.f(f"ix_evidence_dhash_{i}"))
        for i in range(CHUNKS):
            batch_op.drop_column(f"dhash_{i}")
    with op.batch_alter_table("desk_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_queue_stale"))
        batch_op.drop_index("ix_desk_queue_order")
    op.drop_table("desk_queue")
