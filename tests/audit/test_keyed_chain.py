"""The keyed chain and its anchors (issue 12): cutting the log's tail or rewriting and re-hashing
it, done as an intruder with database access would, fails `flask audit verify`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from app.audit import service as audit
from app.audit.models import GENESIS_HASH, AuditEntry
from app.extensions import db
from tests.audit.test_audit_log import TABLE, add_entries, stored, tamper, verify
from tests.conftest import make_app, reset_postgres

BASE_DIR = Path(__file__).resolve().parents[2]


def anchor(app) -> audit.AnchorResult:
    with app.app_context():
        return audit.anchor()


def anchor_lines(app) -> list[dict]:
    path = Path(app.config["AUDIT_ANCHOR_PATH"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reseal_from(app, seq: int, seal, *, until: int | None = None, **changes) -> None:
    """Change entry ``seq`` and give it and every later entry (up to ``until``) a fresh hash
    with ``seal`` (a function of the entry), linking each to the one before: a rewritten
    chain."""
    rows = stored(app)
    previous = rows[seq - 2]["hash"] if seq > 1 else GENESIS_HASH
    statements = []
    for row in rows[seq - 1 : until]:
        forged = {**row, **(changes if row["seq"] == seq else {}), "prev_hash": previous}
        forged["hash"] = seal(SimpleNamespace(**forged))
        statements.append(
            sa.update(TABLE)
            .where(TABLE.c.seq == row["seq"])
            .values({key: value for key, value in forged.items() if key != "seq"})
        )
        previous = forged["hash"]
    tamper(app, *statements)


def sha256_seal(entry) -> str:
    """What an intruder without the key computes: plain SHA-256 of the canonical encoding."""
    fields = {name: getattr(entry, name) for name in audit.SEALED}
    fields["at"] = audit.format_at(fields["at"])
    return hashlib.sha256(audit.canonical_json(fields).encode("utf-8")).hexdigest()


def hmac_seal_with(secret: str):
    def seal(entry) -> str:
        return audit.entry_hash(entry, audit._derive(secret, audit.ENTRY_KEY_PURPOSE))

    return seal


# --------------------------------------------------------------------------- the key


def test_entries_are_sealed_with_the_audit_key_not_plain_sha256(fresh_app):
    add_entries(fresh_app, 2)
    first = stored(fresh_app)[0]
    entry = SimpleNamespace(**first)
    assert first["hash"] != hashlib.sha256(audit._sealed_text(entry)).hexdigest()
    subkey = audit._derive("test-audit-key", audit.ENTRY_KEY_PURPOSE)
    expected = hmac.new(subkey, audit._sealed_text(entry), hashlib.sha256).hexdigest()
    assert first["hash"] == expected


def test_a_log_checked_with_another_key_fails_at_its_first_entry(fresh_app, database_url):
    add_entries(fresh_app, 3)
    other = make_app(database_url, AUDIT_KEY="another-key-altogether")
    try:
        result = verify(other)
        assert (result.ok, result.code, result.first_bad_seq, result.checked) == (
            False,
            "bad_seal",
            1,
            0,
        )
    finally:
        with other.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- the attacks


@pytest.mark.parametrize(
    "seal",
    [sha256_seal, hmac_seal_with("test-audit-key-guess")],
    ids=["plain-sha256", "wrong-key"],
)
def test_an_entry_edited_and_the_chain_rehashed_without_the_key_fails(fresh_app, seal, runner):
    """The finding: edit an entry, recompute every later hash. Without the key the seals are
    wrong from the edited entry on, anchors or not."""
    add_entries(fresh_app, 6)
    reseal_from(fresh_app, 3, seal, action="enrollment.reject")
    rows = stored(fresh_app)
    assert rows[2]["action"] == "enrollment.reject"
    assert [row["prev_hash"] for row in rows[1:]] == [row["hash"] for row in rows[:-1]]

    result = verify(fresh_app)
    assert not result.ok, result
    assert (result.ok, result.code, result.first_bad_seq, result.checked) == (
        False,
        "bad_seal",
        3,
        2,
    )
    cli = runner.invoke(args=["audit", "verify"])
    assert cli.exit_code == 1
    report = json.loads(cli.stdout)
    assert (report["code"], report["first_bad_seq"]) == ("bad_seal", 3)
    assert "entry 3" in report["problem"]


@pytest.mark.parametrize("cut_from", [1, 3, 5])
def test_a_tail_cut_after_an_anchor_fails(fresh_app, runner, cut_from):
    """The finding: delete every entry from some seq on. The chain left is whole, but shorter
    than the anchor written down outside the database."""
    add_entries(fresh_app, 5)
    assert anchor(fresh_app).written
    tamper(fresh_app, sa.delete(TABLE).where(TABLE.c.seq >= cut_from))
    assert len(stored(fresh_app)) == cut_from - 1

    result = verify(fresh_app)
    assert not result.ok, result
    assert (result.ok, result.code, result.first_bad_seq, result.checked) == (
        False,
        "tail_cut",
        cut_from,
        cut_from - 1,
    )
    assert result.anchored_seq == 5
    cli = runner.invoke(args=["audit", "verify"])
    assert cli.exit_code == 1
    report = json.loads(cli.stdout)
    assert (report["ok"], report["code"], report["first_bad_seq"]) == (False, "tail_cut", cut_from)
    assert "entry 5 was anchored" in report["problem"]


def test_a_tail_cut_and_new_entries_in_its_place_fail(fresh_app):
    """Entries written after a cut take the cut seqs; the anchored one no longer matches."""
    add_entries(fresh_app, 4)
    anchor(fresh_app)
    tamper(fresh_app, sa.delete(TABLE).where(TABLE.c.seq >= 3))
    add_entries(fresh_app, 3)
    result = verify(fresh_app)
    assert (result.ok, result.code, result.first_bad_seq) == (False, "rewritten", 4)
    refused = anchor(fresh_app)
    assert (refused.ok, refused.written, refused.code, refused.seq) == (
        False,
        False,
        "rewritten",
        4,
    )
    assert len(anchor_lines(fresh_app)) == 1


def test_a_chain_rewritten_with_the_key_fails_at_the_anchored_entry(fresh_app):
    """Someone holding the key can re-seal an edited chain; the anchor still names the head."""
    add_entries(fresh_app, 5)
    anchor(fresh_app)
    reseal_from(fresh_app, 2, hmac_seal_with("test-audit-key"), subject_id="999")
    result = verify(fresh_app)
    assert (result.ok, result.code, result.first_bad_seq) == (False, "rewritten", 5)


def test_anchor_refuses_to_bless_a_cut_or_broken_log(fresh_app):
    add_entries(fresh_app, 4)
    anchor(fresh_app)
    before = Path(fresh_app.config["AUDIT_ANCHOR_PATH"]).read_bytes()
    tamper(fresh_app, sa.delete(TABLE).where(TABLE.c.seq >= 2))
    refused = anchor(fresh_app)
    assert (refused.ok, refused.written, refused.code, refused.seq) == (False, False, "tail_cut", 4)
    assert Path(fresh_app.config["AUDIT_ANCHOR_PATH"]).read_bytes() == before


def test_anchor_checks_the_entries_since_the_last_anchor(fresh_app):
    add_entries(fresh_app, 3)
    anchor(fresh_app)
    add_entries(fresh_app, 3)
    tamper(fresh_app, sa.update(TABLE).where(TABLE.c.seq == 5).values(address="10.9.9.9"))
    refused = anchor(fresh_app)
    assert (refused.ok, refused.code, refused.seq) == (False, "bad_seal", 5)
    assert len(anchor_lines(fresh_app)) == 1


# --------------------------------------------------------------------------- the anchors


def test_an_honest_log_with_anchors_verifies(fresh_app, runner):
    add_entries(fresh_app, 3)
    first = anchor(fresh_app)
    assert (first.ok, first.written, first.seq, first.count) == (True, True, 3, 3)
    add_entries(fresh_app, 2)
    cli = runner.invoke(args=["audit", "anchor"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["seq"] == 5
    add_entries(fresh_app, 1)  # entries after the last anchor are fine

    result = verify(fresh_app)
    rows = stored(fresh_app)
    assert result == audit.VerifyResult(
        True, 6, None, None, rows[-1]["hash"], None, anchors=2, anchored_seq=5
    )
    lines = anchor_lines(fresh_app)
    assert [(line["seq"], line["hash"], line["count"]) for line in lines] == [
        (3, rows[2]["hash"], 3),
        (5, rows[4]["hash"], 5),
    ]
    assert lines[0]["prev"] == audit.GENESIS_SEAL and lines[1]["prev"] == lines[0]["seal"]
    assert lines[1]["at"] == audit.format_at(rows[4]["at"])
    report = json.loads(runner.invoke(args=["audit", "verify"]).stdout)
    assert (report["ok"], report["anchors"], report["anchored_seq"]) == (True, 2, 5)


def test_anchoring_an_unmoved_head_adds_nothing(fresh_app):
    assert anchor(fresh_app) == audit.AnchorResult(
        True, False, None, None, 0, fresh_app.config["AUDIT_ANCHOR_PATH"]
    )
    add_entries(fresh_app, 2)
    assert anchor(fresh_app).written
    path = Path(fresh_app.config["AUDIT_ANCHOR_PATH"])
    content = path.read_bytes()
    again = anchor(fresh_app)
    assert (again.ok, again.written, again.seq) == (True, False, 2)
    assert path.read_bytes() == content
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "forgery",
    [
        "edited_hash",
        "wrong_key",
        "line_removed",
        "not_json",
    ],
)
def test_a_forged_anchor_file_fails(fresh_app, forgery):
    add_entries(fresh_app, 2)
    anchor(fresh_app)
    add_entries(fresh_app, 1)
    anchor(fresh_app)
    path = Path(fresh_app.config["AUDIT_ANCHOR_PATH"])
    lines = path.read_text().splitlines()
    if forgery == "edited_hash":
        data = json.loads(lines[1])
        data["hash"] = "a" * 64
        lines[1] = json.dumps(data)
    elif forgery == "wrong_key":
        data = json.loads(lines[1])
        del data["seal"]
        text = audit.canonical_json(data).encode()
        data["seal"] = hmac.new(b"guessed", text, hashlib.sha256).hexdigest()
        lines[1] = json.dumps(data)
    elif forgery == "line_removed":
        del lines[0]
    else:
        lines[1] = lines[1][:40]
    path.write_text("\n".join(lines) + "\n")

    result = verify(fresh_app)
    assert (result.ok, result.code) == (False, "anchor_forged")
    assert "anchor file" in result.problem
    if forgery != "line_removed":  # anchor() reads the last line only, verify() every line
        refused = anchor(fresh_app)
        assert (refused.ok, refused.written, refused.code) == (False, False, "anchor_forged")


_ANCHOR_LOOP = """
import sys
from app.audit import service
from tests.conftest import make_app
app = make_app(sys.argv[1], AUDIT_ANCHOR_PATH=sys.argv[2])
with app.app_context():
    for _ in range(int(sys.argv[3])):
        result = service.anchor()
        assert result.ok, result
    from app.extensions import db
    db.engine.dispose()
"""


@pytest.mark.slow
def test_concurrent_anchors_from_threads_and_processes_leave_a_valid_file(fresh_app, database_url):
    """Two processes and three threads anchor over and over while entries are appended."""
    add_entries(fresh_app, 1)
    path = fresh_app.config["AUDIT_ANCHOR_PATH"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _ANCHOR_LOOP, database_url, path, "15"],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(15):
                assert anchor(fresh_app).ok
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        add_entries(fresh_app, 1)
    for thread in threads:
        thread.join(60)
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()[-2000:]
    assert not errors, errors
    anchor(fresh_app)

    lines = anchor_lines(fresh_app)
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(set(seqs)), seqs  # one line per head, in order
    assert seqs[-1] == 11
    result = verify(fresh_app)
    assert (result.ok, result.checked, result.anchors, result.anchored_seq) == (
        True,
        11,
        len(lines),
        11,
    )


# --------------------------------------------------------------------------- before the key


def legacy_database(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'legacy.db'}"
    base = re.sub(r"^postgresql\+psycopg://", "postgresql://", database_url)
    reset_postgres(base, "audit_legacy")
    return database_url + "?options=-csearch_path%3Daudit_legacy"


def test_entries_sealed_before_the_key_keep_verifying_and_stay_protected(database_url, tmp_path):
    """An old log (plain SHA-256) is upgraded: the migration appends one keyed entry that
    vouches for it; rewriting the old entries, or cutting the keyed ones off, then fails."""
    app = make_app(
        legacy_database(database_url, tmp_path),
        AUDIT_ANCHOR_PATH=str(tmp_path / "anchors.jsonl"),
    )
    try:
        with app.app_context():
            upgrade(revision="b7d1e3f5a9c2")  # the revision before the keyed chain
            previous = GENESIS_HASH
            for seq in (1, 2, 3):
                fields = {
                    "id": seq,
                    "seq": seq,
                    "at": audit.utcnow(),
                    "actor_id": None,
                    "actor_label": "cli",
                    "action": "evidence.view",
                    "subject_type": "evidence",
                    "subject_id": str(seq),
                    "address": None,
                    "detail": "{}",
                    "prev_hash": previous,
                }
                fields["hash"] = previous = audit.legacy_hash(SimpleNamespace(**fields))
                db.session.execute(sa.insert(AuditEntry).values(fields))
            db.session.commit()
            upgrade()

        result = verify(app)
        assert (result.ok, result.checked, result.legacy) == (True, 4, 3), result
        bridge = stored(app)[-1]
        assert (bridge["seq"], bridge["action"], bridge["prev_hash"]) == (
            4,
            "audit.chain_keyed",
            previous,
        )
        assert json.loads(bridge["detail"])["legacy_entries"] == 3
        add_entries(app, 1)
        assert anchor(app).written
        assert verify(app).ok

        # The old entries rewritten and re-hashed: the keyed entry no longer follows them.
        reseal_from(app, 2, sha256_seal, until=3, subject_id="999")
        result = verify(app)
        assert (result.ok, result.code, result.first_bad_seq) == (False, "broken_link", 4)
        # The keyed ones re-hashed too: the anchor names another head.
        reseal_from(app, 2, sha256_seal, subject_id="999")
        result = verify(app)
        assert (result.ok, result.code, result.first_bad_seq) == (False, "rewritten", 5)
        # And without the anchor, a log of unkeyed entries only is refused as such.
        Path(app.config["AUDIT_ANCHOR_PATH"]).unlink()
        result = verify(app)
        assert (result.ok, result.code, result.first_bad_seq) == (False, "unkeyed", 1)
        tamper(app, sa.delete(TABLE).where(TABLE.c.seq >= 4))
        assert (verify(app).ok, verify(app).code) == (False, "unkeyed")
    finally:
        with app.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- configuration


def test_production_needs_an_audit_key_of_its_own(monkeypatch):
    monkeypatch.setenv("VERISKILL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * config.MIN_SECRET_CHARS)
    monkeypatch.setenv("DATA_KEY", "d" * config.MIN_SECRET_CHARS)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/veriskill")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://peixun.example.gov.cn")
    monkeypatch.delenv("AUDIT_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="AUDIT_KEY must be set in production"):
        config.load_config()
    monkeypatch.setenv("AUDIT_KEY", "a")
    with pytest.raises(config.ConfigError, match="AUDIT_KEY must be at least 32"):
        config.load_config()
    monkeypatch.setenv("AUDIT_KEY", "d" * config.MIN_SECRET_CHARS)
    with pytest.raises(config.ConfigError, match="AUDIT_KEY must be a secret of its own"):
        config.load_config()
    monkeypatch.setenv("AUDIT_KEY", "a" * config.MIN_SECRET_CHARS)
    settings = config.load_config()
    assert settings.AUDIT_KEY == "a" * config.MIN_SECRET_CHARS
    assert settings.AUDIT_ANCHOR_S == 300
    settings.AUDIT_ANCHOR_S = 0
    with pytest.raises(config.ConfigError, match="AUDIT_ANCHOR_S must be more than 0"):
        config.check_settings(settings)
