"""Writing and checking the audit log: append under a lock, verify the hash chain.

Each entry's ``hash`` is the SHA-256 of a canonical JSON encoding of all its other columns,
``prev_hash`` included, so every entry vouches for the whole log before it. Editing any stored
field, or deleting an entry in the middle, breaks the chain at that entry and
``verify()`` names it. There are no functions to change or remove entries; on PostgreSQL a
trigger also refuses UPDATE and TRUNCATE of the table, which stops accidents, while the hash
chain is what catches deliberate edits made by someone who can get around the trigger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import g, has_request_context, request
from flask_login import current_user

from app.audit.models import GENESIS_HASH, AuditEntry
from app.db import utcnow
from app.extensions import db

if TYPE_CHECKING:
    from app.identity.models import User

# Key of the PostgreSQL advisory lock that serializes appends ("vsaudit1" as a big-endian int).
APPEND_LOCK_KEY = int.from_bytes(b"vsaudit1", "big")
VERIFY_BATCH = 1000
CLI_LABEL = "cli"
SYSTEM_LABEL = "system"
# What the columns hold at most; longer values are cut before hashing so every database
# gives back exactly what was sealed.
MAX_LABEL = 128
MAX_ACTION = 64
MAX_SUBJECT_TYPE = 32
MAX_SUBJECT_ID = 64
MAX_ADDRESS = 64

# The sealed columns, in the order the hash encodes them (every column but ``hash``).
SEALED = (
    "id",
    "seq",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "subject_type",
    "subject_id",
    "address",
    "detail",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, characters as they are."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_at(at: datetime) -> str:
    """The fixed form of a timestamp inside the hash: UTC, to the microsecond."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: Any) -> str:
    """The seal of an entry (a model instance or a row with the same attributes)."""
    fields = {name: getattr(entry, name) for name in SEALED}
    fields["at"] = format_at(fields["at"])
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- writing


def actor_label_of(user: User) -> str:
    """How a person is named in the log: staff by username, trainees by their masked ID."""
    label = user.username or user.id_number_masked or f"user {user.id}"
    return label[:MAX_LABEL]


def _take_append_lock() -> None:
    """Make this transaction the only one appending until it ends.

    PostgreSQL: a transaction-level advisory lock, released by commit or rollback. SQLite has
    one writer at a time; a write that matches no row takes the write lock now (waiting for
    busy_timeout if another connection holds it), so the last entry read next is still the
    last when ours is inserted. Either way the unique ``seq`` refuses a fork outright.
    """
    bind = db.session.get_bind(mapper=sa.inspect(AuditEntry))
    if bind.dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
    elif bind.dialect.name == "sqlite":
        db.session.execute(sa.update(AuditEntry).where(sa.false()).values(seq=AuditEntry.seq))


def record(
    action: str,
    *,
    actor: User | None,
    subject_type: str,
    subject_id: int | str | None,
    detail: Mapping[str, Any] | None = None,
    address: str | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Append one entry within the caller's transaction (flushed, not committed).

    ``actor`` is the person acting, or None for the system and the command line (then
    ``actor_label`` says which, "system" by default). The entry is kept only if the caller
    commits, so a refused decision leaves no trace of having been made. The append lock is
    held until that commit or rollback: keep the transaction short after recording.
    """
    if not action or len(action) > MAX_ACTION:
        raise ValueError(f"audit action must be 1 to {MAX_ACTION} characters: {action!r}")
    if not subject_type or len(subject_type) > MAX_SUBJECT_TYPE:
        raise ValueError(
            f"audit subject_type must be 1 to {MAX_SUBJECT_TYPE} characters: {subject_type!r}"
        )
    if actor is not None and actor.id is None:
        db.session.flush()
    if actor_label is None:
        actor_label = actor_label_of(actor) if actor is not None else SYSTEM_LABEL
    _take_append_lock()
    last = db.session.execute(
        sa.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq = last.seq + 1 if last else 1
    entry = AuditEntry(
        id=seq,
        seq=seq,
        at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label[:MAX_LABEL],
        action=action,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id)[:MAX_SUBJECT_ID],
        address=address[:MAX_ADDRESS] if address else None,
        detail=canonical_json(dict(detail or {})),
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    entry.hash = entry_hash(entry)
    db.session.add(entry)
    db.session.flush()
    return entry


def request_actor() -> User | None:
    """The person behind the current request: the API caller (token or session), or the
    signed-in page visitor; None when nobody is signed in."""
    if not has_request_context():
        return None
    user = g.get("api_user")
    if user is not None:
        return user
    if current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def record_request(
    action: str,
    *,
    subject_type: str,
    subject_id: int | str | None,
    detail: Mapping[str, Any] | None = None,
    actor: User | None = None,
) -> AuditEntry:
    """Record a person's act where it happens: in a request, by its user from its address;
    in a ``flask ...`` command, labelled "cli" (commands have no account behind them).

    The address is ``request.remote_addr``, which the app's ProxyFix (``PROXY_COUNT``) has
    already set to the client's own address when the app runs behind proxies.
    """
    in_request = has_request_context()
    actor = actor if actor is not None else request_actor()
    return record(
        action,
        actor=actor,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
        address=request.remote_addr if in_request else None,
        actor_label=CLI_LABEL if actor is None and not in_request else None,
    )


# --------------------------------------------------------------------------- reading


def entries(
    subject_type: str | None = None,
    subject_id: int | str | None = None,
    *,
    limit: int = 50,
    action: str | None = None,
) -> list[AuditEntry]:
    """The latest entries first, optionally about one subject (or kind of subject)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(max(1, limit))
    if subject_type is not None:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEntry.subject_id == str(subject_id))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def describe(entry: AuditEntry) -> dict[str, Any]:
    """An entry as plain data (detail decoded), for the command line and pages."""
    return {
        "seq": entry.seq,
        "at": format_at(entry.at),
        "actor_id": entry.actor_id,
        "actor": entry.actor_label,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "address": entry.address,
        "detail": json.loads(entry.detail),
        "hash": entry.hash,
    }


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    # The hash of the last good entry: written down outside the database, it lets a later
    # run show that nothing was cut from the end or rewritten wholesale since.
    last_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = [getattr(AuditEntry, name) for name in (*SEALED, "hash")]


@dataclass(frozen=True)
class Unreadable:
    """An entry whose stored values do not even load (a hand-edited SQLite row can hold a
    value of the wrong type)."""

    seq: Any
    error: str


_LOAD_ERRORS = (ValueError, TypeError, OverflowError, sa.exc.StatementError)


def _rows(batch: int) -> Iterator[Any]:
    """Every entry in seq order, ``batch`` rows per query."""
    after: Any = None
    while True:
        seqs = sa.select(AuditEntry.seq).order_by(AuditEntry.seq).limit(batch)
        query = sa.select(*_COLUMNS).order_by(AuditEntry.seq).limit(batch)
        if after is not None:
            seqs = seqs.where(AuditEntry.seq > after)
            query = query.where(AuditEntry.seq > after)
        try:
            rows = db.session.execute(query).all()
        except _LOAD_ERRORS:
            rows = []
            for seq in db.session.scalars(seqs).all():  # find the row that does not load
                try:
                    one = sa.select(*_COLUMNS).where(AuditEntry.seq == seq)
                    rows.append(db.session.execute(one).one())
                except _LOAD_ERRORS as error:
                    yield from rows
                    yield Unreadable(seq, str(error).splitlines()[0])
                    return
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        if len(rows) < batch:
            return


def verify(batch: int = VERIFY_BATCH) -> VerifyResult:
    """Walk the whole log in seq order and stop at the first entry that breaks the chain."""
    expected_seq = 1
    previous = GENESIS_HASH
    checked = 0

    def broken(seq: Any, problem: str) -> VerifyResult:
        bad = seq if isinstance(seq, int) else expected_seq
        return VerifyResult(False, checked, bad, problem, previous if checked else None)

    for row in _rows(batch):
        if isinstance(row, Unreadable):
            return broken(row.seq, f"entry {row.seq} cannot be read: {row.error}")
        seq = row.seq
        if not isinstance(seq, int) or isinstance(seq, bool):
            return broken(expected_seq, f"entry {expected_seq} has a malformed seq {seq!r}")
        if seq > expected_seq:
            return broken(
                expected_seq, f"entry {expected_seq} is missing (the next entry is {seq})"
            )
        if seq < expected_seq:
            return broken(seq, f"entry {seq} is out of sequence (expected {expected_seq})")
        if row.prev_hash != previous:
            return broken(seq, f"entry {seq} does not follow entry {seq - 1}: prev_hash differs")
        try:
            sealed = entry_hash(row)
        except (ValueError, TypeError, AttributeError) as error:
            return broken(seq, f"entry {seq} cannot be read: {error}")
        if row.hash != sealed:
            return broken(seq, f"entry {seq} was altered: its content does not match its hash")
        previous = row.hash
        checked += 1
        expected_seq += 1
    return VerifyResult(True, checked, None, None, previous if checked else None)
