"""Writing and checking the audit log: append under a lock, seal with a key, anchor the head
outside the database, verify both.

**Seals.** Each entry's ``hash`` is an HMAC-SHA256, keyed with a subkey of ``AUDIT_KEY``, of a
canonical JSON encoding of all its other columns, ``prev_hash`` included, so every entry vouches
for the whole log before it. Someone who can write to the database but does not hold the key
cannot edit an entry and re-seal it and everything after it: ``verify()`` names the first entry
whose seal is wrong (``bad_seal``), missing (``missing``) or not linked to the one before
(``broken_link``).

``AUDIT_KEY`` is a setting of its own rather than a subkey of ``DATA_KEY``, for two reasons.
The log must verify for as long as it is kept, while ``DATA_KEY`` protects ID numbers and may
one day be rotated (they can be decrypted and re-encrypted; a sealed log cannot be re-sealed
without blessing whatever it holds at that moment). And the people who check the log (the
audit administrator of the level-3 scheme's separation of duties) can hold ``AUDIT_KEY``
without holding the key that decrypts residents' ID numbers. Production refuses to start
without it, with fewer than 32 characters, or equal to another secret (config.py).

**Entries from before the key.** Entries written before migration c4e6a8b0d2f1 are sealed with
plain SHA-256. They are not re-sealed: re-sealing would bless whatever the table held at the
upgrade and change hashes someone may have written down. They keep verifying instead, each
with its SHA-256, but only in an unbroken run from entry 1 that a keyed entry follows: the
migration appends one (``audit.chain_keyed``, naming how many came before and the last one's
hash), and a keyed entry's ``prev_hash`` cannot be changed without the key, so rewriting the
old entries breaks the link to it. A log whose entries are all unkeyed fails (``unkeyed``), so
cutting the keyed part off does not leave a log that passes.

**Anchors.** The chain alone cannot show that its tail was deleted, nor (to someone holding the
key) that it was rewritten. ``anchor()`` writes the head (seq, hash, time, count) as one JSON
line to the append-only file ``AUDIT_ANCHOR_PATH``, outside the database, fsynced; each line is
sealed with another subkey of ``AUDIT_KEY`` and names the seal of the line before, so a line
cannot be forged or moved without the key. It first checks the chain from the last anchor to
the head and refuses to anchor a log that does not follow from it. It holds an exclusive
``flock`` on the file while it works, and writes nothing when the head has not moved, so any
process may call it at any time (the scheduler does, every ``AUDIT_ANCHOR_S``). ``verify()``
checks every anchor line (``anchor_forged``), then the chain, and compares: an entry at an
anchored seq with another hash is ``rewritten``, a log that ends before the last anchored seq
is ``tail_cut``. In production keep the anchor file where the database's users cannot write
(another host or volume, ``chattr +a``), and copy it to object storage with retention (S3
Object Lock / MinIO retention in compliance mode): that is what makes it a witness.

**Triggers.** On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of the table; on
SQLite two triggers refuse UPDATE and DELETE. They stop accidents and casual edits; the seals
and anchors are what catch someone able to drop them.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, g, has_request_context, request
from flask_login import current_user

from app.audit.models import GENESIS_HASH, AuditEntry
from app.db import utcnow
from app.extensions import db
from app.jobs import schedule

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

# The entry the keyed-chain migration appends after the entries sealed with plain SHA-256.
KEYED_ACTION = "audit.chain_keyed"
# HKDF "info" of the two subkeys of AUDIT_KEY: one seals entries, the other anchor lines, so
# neither seal can be passed off as the other. The migration c4e6a8b0d2f1 derives the first
# the same way.
ENTRY_KEY_PURPOSE = "veriskill audit entry v1"
ANCHOR_KEY_PURPOSE = "veriskill audit anchor v1"
ANCHOR_VERSION = 1
# The prev of the first anchor line.
GENESIS_SEAL = "0" * 64

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


@cache
def _derive(secret: str, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode())


def audit_key(purpose: str) -> bytes:
    """A subkey of AUDIT_KEY for one purpose (ENTRY_KEY_PURPOSE or ANCHOR_KEY_PURPOSE)."""
    secret = current_app.config.get("AUDIT_KEY")
    if not secret:
        raise RuntimeError("AUDIT_KEY is not set: the audit log can be neither sealed nor checked")
    return _derive(secret, purpose)


def _sealed_text(entry: Any) -> bytes:
    fields = {name: getattr(entry, name) for name in SEALED}
    fields["at"] = format_at(fields["at"])
    return canonical_json(fields).encode("utf-8")


def entry_hash(entry: Any, key: bytes | None = None) -> str:
    """The seal of an entry (a model instance or a row with the same attributes): HMAC-SHA256
    with the entry subkey of AUDIT_KEY (or ``key``)."""
    key = key if key is not None else audit_key(ENTRY_KEY_PURPOSE)
    return hmac.new(key, _sealed_text(entry), hashlib.sha256).hexdigest()


def legacy_hash(entry: Any) -> str:
    """The unkeyed SHA-256 seal of the entries written before the chain was keyed."""
    return hashlib.sha256(_sealed_text(entry)).hexdigest()


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
    """What ``verify()`` found; ``code`` names the problem in a stable word (see ``PROBLEMS``)."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    # The hash of the last good entry: the head that ``anchor()`` writes down.
    last_hash: str | None = None
    code: str | None = None
    # Anchor lines read (all with good seals) and the seq of the last one.
    anchors: int = 0
    anchored_seq: int | None = None
    # Entries sealed with plain SHA-256 before the chain was keyed.
    legacy: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Every code a failed verify() or anchor() can give.
PROBLEMS = (
    "unreadable",  # an entry's stored values do not load
    "missing",  # a seq is missing (an entry deleted from the middle)
    "out_of_sequence",
    "broken_link",  # prev_hash is not the hash of the entry before
    "bad_seal",  # the hash is not the keyed seal of the entry's content
    "unkeyed",  # only entries sealed without the key, none keyed after them
    "rewritten",  # an anchored entry has another hash than the anchor wrote down
    "tail_cut",  # the log ends before the last anchored entry
    "anchor_forged",  # an anchor line is not one anchor() wrote (seal, form or order)
    "anchor_unreadable",  # the anchor file exists but cannot be read
    "anchor_unwritable",  # anchor(): the line could not be written (a full disk)
)


_COLUMNS = [getattr(AuditEntry, name) for name in (*SEALED, "hash")]


@dataclass(frozen=True)
class Unreadable:
    """An entry whose stored values do not even load (a hand-edited SQLite row can hold a
    value of the wrong type)."""

    seq: Any
    error: str


_LOAD_ERRORS = (ValueError, TypeError, OverflowError, sa.exc.StatementError)


def _rows(reader: Any, batch: int, after: int | None = None) -> Iterator[Any]:
    """Every entry in seq order (after seq ``after``), ``batch`` rows per query, read through
    ``reader`` (the session or a connection)."""
    while True:
        seqs = sa.select(AuditEntry.seq).order_by(AuditEntry.seq).limit(batch)
        query = sa.select(*_COLUMNS).order_by(AuditEntry.seq).limit(batch)
        if after is not None:
            seqs = seqs.where(AuditEntry.seq > after)
            query = query.where(AuditEntry.seq > after)
        try:
            rows = reader.execute(query).all()
        except _LOAD_ERRORS:
            rows = []
            for seq in reader.scalars(seqs).all():  # find the row that does not load
                try:
                    one = sa.select(*_COLUMNS).where(AuditEntry.seq == seq)
                    rows.append(reader.execute(one).one())
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


def _check_chain(
    reader: Any,
    batch: int,
    anchored: Mapping[int, str],
    after: Anchor | None = None,
) -> VerifyResult:
    """Walk the log in seq order (from the entry after the anchor ``after``, whose hash it
    must name) and stop at the first entry that breaks the chain or differs from an anchor."""
    key = audit_key(ENTRY_KEY_PURPOSE)
    expected_seq = after.seq + 1 if after else 1
    previous = after.hash if after else GENESIS_HASH
    # Unkeyed seals are accepted only in a run from entry 1 (never after an anchor: anchor()
    # anchors only logs that pass, and those end with keyed entries).
    keyed = after is not None
    legacy = 0
    checked = 0

    def broken(seq: Any, code: str, problem: str) -> VerifyResult:
        bad = seq if isinstance(seq, int) else expected_seq
        last = previous if checked or after else None
        return VerifyResult(False, checked, bad, problem, last, code, legacy=legacy)

    for row in _rows(reader, batch, after.seq if after else None):
        if isinstance(row, Unreadable):
            return broken(row.seq, "unreadable", f"entry {row.seq} cannot be read: {row.error}")
        seq = row.seq
        if not isinstance(seq, int) or isinstance(seq, bool):
            return broken(
                expected_seq, "unreadable", f"entry {expected_seq} has a malformed seq {seq!r}"
            )
        if seq > expected_seq:
            return broken(
                expected_seq,
                "missing",
                f"entry {expected_seq} is missing (the next entry is {seq})",
            )
        if seq < expected_seq:
            return broken(
                seq, "out_of_sequence", f"entry {seq} is out of sequence (expected {expected_seq})"
            )
        if row.prev_hash != previous:
            return broken(
                seq,
                "broken_link",
                f"entry {seq} does not follow entry {seq - 1}: prev_hash differs",
            )
        try:
            sealed = entry_hash(row, key)
            old_seal = legacy_hash(row) if not keyed else None
        except (ValueError, TypeError, AttributeError) as error:
            return broken(seq, "unreadable", f"entry {seq} cannot be read: {error}")
        stored = row.hash if isinstance(row.hash, str) else ""
        if hmac.compare_digest(stored, sealed):
            keyed = True
        elif old_seal is not None and hmac.compare_digest(stored, old_seal):
            legacy += 1
        else:
            return broken(
                seq, "bad_seal", f"entry {seq} was altered: its content does not match its seal"
            )
        if seq in anchored and anchored[seq] != row.hash:
            return broken(
                seq,
                "rewritten",
                f"entry {seq} was rewritten: its hash is not the one anchored for it",
            )
        previous = row.hash
        checked += 1
        expected_seq += 1
    if legacy and not keyed:
        return broken(
            1,
            "unkeyed",
            f"entries 1 to {legacy} are sealed without the key and no keyed entry follows them",
        )
    return VerifyResult(
        True, checked, None, None, previous if checked or after else None, legacy=legacy
    )


def verify(batch: int = VERIFY_BATCH) -> VerifyResult:
    """Check every anchor line, then walk the whole log in seq order with the key, and compare
    the two: stop at the first thing wrong and name it (``code``, ``first_bad_seq``)."""
    try:
        anchors = read_anchors(anchor_path())
    except AnchorProblem as problem:
        return VerifyResult(False, 0, problem.seq, problem.message, code=problem.code)
    last = anchors[-1] if anchors else None
    result = _check_chain(db.session, batch, {anchor.seq: anchor.hash for anchor in anchors})
    if result.ok and last is not None and result.checked < last.seq:
        result = replace(
            result,
            ok=False,
            first_bad_seq=result.checked + 1,
            code="tail_cut",
            problem=(
                f"entries from {result.checked + 1} on are missing: the log ends at entry "
                f"{result.checked} but entry {last.seq} was anchored at {last.anchored_at}"
            ),
        )
    return replace(result, anchors=len(anchors), anchored_seq=last.seq if last else None)


# --------------------------------------------------------------------------- anchoring


@dataclass(frozen=True)
class Anchor:
    """One line of the anchor file: the head of the log at ``anchored_at``."""

    seq: int
    hash: str
    at: str  # when the head entry was recorded
    count: int  # how many entries the log held
    anchored_at: str
    prev: str  # the seal of the line before (GENESIS_SEAL for the first)
    seal: str

    def unsealed(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["seal"]
        return {"v": ANCHOR_VERSION, **fields}


class AnchorProblem(Exception):
    def __init__(self, code: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.seq = code, message, seq


def anchor_path() -> Path:
    return Path(current_app.config["AUDIT_ANCHOR_PATH"])


def anchor_seal(fields: Mapping[str, Any]) -> str:
    text = canonical_json(dict(fields)).encode("utf-8")
    return hmac.new(audit_key(ANCHOR_KEY_PURPOSE), text, hashlib.sha256).hexdigest()


def _parse_anchor(line: bytes, where: str, prev: str) -> Anchor:
    """One line, checked: its form, its seal, and that it follows the line before."""

    def forged(why: str, seq: int | None = None) -> AnchorProblem:
        return AnchorProblem("anchor_forged", f"{where} of the anchor file {why}", seq)

    try:
        data = json.loads(line.decode("utf-8"))
        anchor = Anchor(**{name: data[name] for name in Anchor.__dataclass_fields__})
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise forged("is not an anchor") from None
    if not isinstance(anchor.seq, int) or not isinstance(anchor.seal, str):
        raise forged("is not an anchor")
    if data != {**anchor.unsealed(), "seal": anchor.seal}:
        raise forged("is not an anchor", anchor.seq)
    if not hmac.compare_digest(anchor.seal, anchor_seal(anchor.unsealed())):
        raise forged(f"(entry {anchor.seq}) has a wrong seal", anchor.seq)
    if anchor.prev != prev:
        raise forged(f"(entry {anchor.seq}) does not follow the line before it", anchor.seq)
    return anchor


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor line of the file, checked; none when there is no file yet."""
    try:
        with path.open("rb") as file:
            lines = file.read().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise AnchorProblem(
            "anchor_unreadable", f"the anchor file cannot be read: {error}"
        ) from None
    anchors: list[Anchor] = []
    prev = GENESIS_SEAL
    for number, line in enumerate(lines, start=1):
        if line.strip():
            anchors.append(_parse_anchor(line, f"line {number}", prev))
            prev = anchors[-1].seal
    return anchors


def _last_line(file: IO[bytes]) -> bytes | None:
    """The last non-empty line of the file, read from the end in blocks."""
    data, position = b"", file.seek(0, os.SEEK_END)
    while position > 0 and b"\n" not in data.rstrip(b"\n"):
        step = min(8192, position)
        position -= step
        file.seek(position)
        data = file.read(step) + data
    tail = data.rstrip(b"\n")
    return tail.rsplit(b"\n", 1)[-1] if tail.strip() else None


@dataclass(frozen=True)
class AnchorResult:
    """What ``anchor()`` did: ``written`` a new line, or not (the head had not moved, the log
    is empty, or it was refused: then ``ok`` is False and ``code`` says why)."""

    ok: bool
    written: bool
    seq: int | None
    hash: str | None
    count: int | None
    path: str
    code: str | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def anchor(batch: int = VERIFY_BATCH) -> AnchorResult:
    """Write the log's current head to the anchor file, if it moved since the last line.

    Safe from any process at any time: an exclusive ``flock`` on the file serializes callers
    (threads and processes alike), and a head already anchored writes nothing. The log from
    the last anchor to the head is checked first; a log that does not follow from the last
    anchor (cut, rewritten, a bad seal) is never anchored, so the evidence stays as it was.
    Reads through a connection of its own: the caller's session and transaction are untouched.
    """
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)

    def refused(code: str, problem: str, seq: int | None = None) -> AnchorResult:
        current_app.logger.error("audit anchor refused (%s): %s", code, problem)
        return AnchorResult(False, False, seq, None, None, str(path), code, problem)

    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "r+b") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # released when the file closes
        try:
            last = _parse_last(_last_line(file))
        except AnchorProblem as problem:
            return refused(problem.code, problem.message, problem.seq)
        with db.engine.connect() as conn:
            head = conn.execute(
                sa.select(AuditEntry.seq, AuditEntry.hash, AuditEntry.at)
                .order_by(AuditEntry.seq.desc())
                .limit(1)
            ).first()
            if last is not None:
                if head is not None and (head.seq, head.hash) == (last.seq, last.hash):
                    return AnchorResult(True, False, last.seq, last.hash, last.count, str(path))
                anchored_hash = conn.scalar(
                    sa.select(AuditEntry.hash).where(AuditEntry.seq == last.seq)
                )
                if anchored_hash is None:
                    return refused(
                        "tail_cut", f"entry {last.seq} was anchored but is gone", last.seq
                    )
                if anchored_hash != last.hash:
                    return refused(
                        "rewritten",
                        f"entry {last.seq} was rewritten: its hash is not the one anchored",
                        last.seq,
                    )
            if head is None:
                return AnchorResult(True, False, None, None, 0, str(path))
            checked = _check_chain(conn, batch, {}, after=last)
        if not checked.ok:
            return refused(checked.code or "bad_seal", checked.problem or "", checked.first_bad_seq)
        fields = {
            "v": ANCHOR_VERSION,
            "seq": head.seq,
            "hash": head.hash,
            "at": format_at(head.at),
            "count": head.seq,  # the chain was checked to be gapless from entry 1
            "anchored_at": format_at(utcnow()),
            "prev": last.seal if last else GENESIS_SEAL,
        }
        line = canonical_json({**fields, "seal": anchor_seal(fields)}).encode("utf-8") + b"\n"
        size = file.seek(0, os.SEEK_END)
        try:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
        except OSError as error:
            file.truncate(size)  # never leave half a line behind (a full disk)
            return refused("anchor_unwritable", f"the anchor could not be written: {error}")
        if size == 0:  # a new file: make its directory entry durable too
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    return AnchorResult(True, True, head.seq, head.hash, head.seq, str(path))


def _parse_last(line: bytes | None) -> Anchor | None:
    """The last anchor line, its seal checked (not its link: verify() checks the whole file)."""
    if line is None:
        return None
    try:
        data = json.loads(line.decode("utf-8"))
        prev = data.get("prev") if isinstance(data, dict) else None
    except (UnicodeDecodeError, ValueError):
        prev = None
    if not isinstance(prev, str):
        raise AnchorProblem("anchor_forged", "the last line of the anchor file is not an anchor")
    return _parse_anchor(line, "the last line", prev)


# Every worker's timer writes the head down every AUDIT_ANCHOR_S (one process per interval).
schedule.register("audit_anchor", "AUDIT_ANCHOR_S", anchor)
