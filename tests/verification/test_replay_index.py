"""Replay candidates come from the indexed pieces of the perceptual hash, and are exactly the
stored images a comparison with every stored hash finds, at the threshold in use."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import sqlalchemy as sa
from flask_migrate import upgrade
from hypothesis import given
from hypothesis import strategies as st

from app.db import utcnow
from app.extensions import db
from app.verification import service as verification
from app.verification.models import (
    CHUNK_BITS,
    DHASH_CHUNKS,
    Evidence,
    EvidenceKind,
    dhash_chunks,
)
from media_pipeline import faces
from tests.conftest import make_app, make_trainee

BITS = faces.NEAR_DUPLICATE_MAX_BITS
hashes = st.integers(min_value=0, max_value=2**64 - 1)


def flipped(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


@given(hashes, st.lists(st.integers(0, 63), max_size=BITS, unique=True))
def test_a_near_hash_shares_a_piece_within_the_probe_radius(value, bits):
    """The pigeonhole behind the index: within BITS, some piece is within BITS // CHUNKS."""
    other = flipped(value, bits)
    radius = BITS // DHASH_CHUNKS
    assert any(
        theirs in verification._neighbours(mine, radius)
        for mine, theirs in zip(dhash_chunks(value), dhash_chunks(other), strict=True)
    )


def test_pieces_rebuild_the_hash():
    value = 0x0123_4567_89AB_CDEF
    assert dhash_chunks(value) == (0x0123, 0x4567, 0x89AB, 0xCDEF)
    assert CHUNK_BITS * DHASH_CHUNKS == 64
    row = Evidence(dhash=f"{value:016x}")
    assert (row.dhash_0, row.dhash_1, row.dhash_2, row.dhash_3) == dhash_chunks(value)
    row.dhash = None
    assert row.dhash_0 is None and row.dhash_3 is None


def full_scan(probes: list[int], check_id: int) -> set[tuple[str, int]]:
    """What the old pass over every stored hash found."""
    rows = db.session.execute(
        sa.select(Evidence.key, Evidence.dhash).where(
            Evidence.dhash.is_not(None),
            Evidence.key.is_not(None),
            sa.or_(Evidence.check_id.is_(None), Evidence.check_id != check_id),
        )
    )
    return {
        (key, int(value, 16))
        for key, value in rows
        if any(faces.is_near_duplicate(probe, int(value, 16)) for probe in probes)
    }


def test_index_finds_exactly_what_the_full_scan_finds(fresh_app):
    """Random hashes, near-duplicates of the probes at every distance from 0 to BITS + 3
    bits, hashes a few bits off in every piece, and purged images among them."""
    rng = random.Random(14)  # noqa: S311 - reproducible hashes, not crypto
    trainee = make_trainee(fresh_app)
    probes = [rng.getrandbits(64) for _ in range(6)]
    with fresh_app.app_context():
        stored = [rng.getrandbits(64) for _ in range(1500)]
        for probe in probes:
            for distance in range(BITS + 4):
                for _ in range(3):
                    stored.append(flipped(probe, rng.sample(range(64), distance)))
        # Hashes that agree with a probe in no piece but differ in few bits per piece.
        stored.append(flipped(probes[0], [0, 16, 32, 48]))
        stored.append(flipped(probes[0], [0, 1, 16, 17, 32, 33]))
        now = utcnow()
        for n, value in enumerate(stored):
            db.session.add(
                Evidence(
                    user_id=trainee,
                    kind=EvidenceKind.SNAPSHOT,
                    key=None if n % 97 == 0 else f"faces/{n}.jpg",  # some purged
                    content_type="image/jpeg",
                    sha256=f"{n:064x}",
                    dhash=f"{value:016x}",
                    purge_after=now + timedelta(days=1),
                )
            )
        db.session.commit()
        for burst in ([probes[0]], probes[:3], probes, [rng.getrandbits(64)], []):
            earlier = verification._earlier_than(check_id=0)
            found = verification.replay_candidates(burst, earlier=earlier)
            assert len(found) == len(set(found))
            assert set(found) == full_scan(burst, 0)
        assert len(verification.replay_candidates(probes)) > 6 * 3 * (BITS + 1) - 10


def test_migration_fills_the_pieces_of_hashes_stored_before_it(tmp_path):
    """Rows stored before the index existed get their pieces, and enrolments a stale row in
    the auditors' queue (which the desk then recomputes)."""
    path = tmp_path / "before.db"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade(revision="4d6f8a0b2c53")
        db.engine.dispose()
    value = 0xFEDC_BA98_7654_3210
    raw = sqlite3.connect(path)  # no foreign keys enforced: the rows stand alone
    with raw:
        raw.execute(
            "INSERT INTO evidence (id, user_id, kind, content_type, sha256, dhash, captured_at,"
            " purge_after) VALUES (7, 1, 'snapshot', 'image/jpeg', 'x', ?, '2026-01-01',"
            " '2027-01-01')",
            (f"{value:016x}",),
        )
        raw.execute(
            "INSERT INTO enrollment (id, trainee_id, course_id, created_at)"
            " VALUES (3, 1, 1, '2026-01-01')"
        )
    raw.close()
    with app.app_context():
        upgrade()
        row = db.session.execute(
            sa.text("SELECT dhash_0, dhash_1, dhash_2, dhash_3 FROM evidence WHERE id = 7")
        ).one()
        assert tuple(row) == dhash_chunks(value)
        queued = db.session.execute(sa.text("SELECT enrollment_id, stale FROM desk_queue")).all()
        assert [tuple(r) for r in queued] == [(3, 1)]
        db.session.remove()
        db.engine.dispose()
