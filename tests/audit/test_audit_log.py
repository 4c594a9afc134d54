"""The tamper-evident audit log: the hash chain, `flask audit verify|list`, and the decisions
that write to it. Tampering is done the way an intruder would: SQL straight to the table."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask_login import login_user

from app.audit import service as audit
from app.audit.models import GENESIS_HASH, AuditEntry
from app.courses.models import Course, CourseStatus
from app.db import utcnow
from app.extensions import db
from app.identity.models import Role, User
from app.platforms.models import Platform
from app.verification import service as verification
from app.verification.cli import evidence_cli
from app.verification.models import EvidenceKind, PurgeRun
from tests.audit.helpers import append_only_lifted
from tests.conftest import (
    csrf_from,
    make_app,
    make_platform,
    make_staff,
    make_trainee,
    sign_in_page,
)
from tests.courses.helpers import create_course
from tests.verification.photos import photo

TABLE = AuditEntry.__table__


def add_entries(app, count: int = 3, *, actor_id: int | None = None) -> None:
    """``count`` committed entries; the even ones by the given person, from an address."""
    with app.app_context():
        actor = db.session.get(User, actor_id) if actor_id else None
        for number in range(1, count + 1):
            audit.record(
                "evidence.view" if number % 2 else "enrollment.approve",
                actor=actor if number % 2 == 0 else None,
                actor_label=None if number % 2 == 0 else "cli",
                subject_type="evidence",
                subject_id=number * 10,
                detail={"note": f"第{number}条", "count": number, "nested": {"b": 1, "a": [2]}},
                address="198.51.100.23" if number % 2 == 0 else None,
            )
        db.session.commit()


def verify(app) -> audit.VerifyResult:
    with app.app_context():
        db.session.remove()  # read what is stored, nothing cached
        return audit.verify()


def tamper(app, *statements) -> None:
    """Run SQL against the table itself, as someone with database access would. That someone
    first gets the append-only triggers out of the way: on PostgreSQL disables them (which only
    a table owner can do), on SQLite drops them (and puts them back afterwards)."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(
                    sa.text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
                )
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    sa.text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
                )
            else:
                with append_only_lifted(conn):
                    for statement in statements:
                        conn.execute(statement)


def stored(app) -> list[dict]:
    with app.app_context():
        rows = db.session.execute(sa.select(TABLE).order_by(TABLE.c.seq)).mappings()
        return [dict(row) for row in rows]


# --------------------------------------------------------------------------- the chain


def test_entries_form_a_chain_that_verifies(fresh_app):
    staff_id = make_staff(fresh_app, Role.ADMIN, "chief")
    add_entries(fresh_app, 4, actor_id=staff_id)
    rows = stored(fresh_app)
    assert [row["seq"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert [row["prev_hash"] for row in rows[1:]] == [row["hash"] for row in rows[:-1]]
    assert len({row["hash"] for row in rows}) == 4
    second = rows[1]
    assert (second["actor_id"], second["actor_label"], second["address"]) == (
        staff_id,
        "chief",
        "198.51.100.23",
    )
    assert (rows[0]["actor_id"], rows[0]["actor_label"]) == (None, "cli")
    assert second["subject_id"] == "20"
    # Canonical JSON: sorted keys, no spaces, Chinese kept as characters.
    assert second["detail"] == '{"count":2,"nested":{"a":[2],"b":1},"note":"第2条"}'
    assert verify(fresh_app) == audit.VerifyResult(True, 4, None, None, rows[-1]["hash"])


def test_an_empty_log_verifies(fresh_app):
    assert verify(fresh_app) == audit.VerifyResult(True, 0, None, None, None)


def test_timestamps_come_back_exactly_as_hashed(fresh_app, monkeypatch):
    """A time in another zone with microseconds is stored in UTC and hashes the same after the
    database gives it back."""
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2026, 11, 27, 20, 5, 6, 999_999, tzinfo=shanghai)
    monkeypatch.setattr(audit, "utcnow", lambda: moment)
    add_entries(fresh_app, 2)
    rows = stored(fresh_app)
    assert rows[0]["at"] == datetime(2026, 11, 27, 12, 5, 6, 999_999, tzinfo=UTC)
    assert audit.format_at(rows[0]["at"]) == "2026-11-27T12:05:06.999999Z"
    assert verify(fresh_app).ok


# For every column: a change made straight in the database, as SQL values.
TAMPERING = {
    "id": lambda row: 1000,
    "seq": lambda row: 1000,
    "at": lambda row: row["at"] + timedelta(microseconds=1),
    "actor_id": lambda row: None,
    "actor_label": lambda row: "someone-else",
    "action": lambda row: "enrollment.reject",
    "subject_type": lambda row: "course",
    "subject_id": lambda row: "21",
    "address": lambda row: "203.0.113.99",
    # The same data, only spaced differently, is still an edit.
    "detail": lambda row: json.dumps(json.loads(row["detail"])),
    "prev_hash": lambda row: "f" * 64,
    "hash": lambda row: "0" * 64,
}


def test_every_column_is_covered_by_the_tampering_test():
    assert set(TAMPERING) == set(TABLE.columns.keys())


@pytest.mark.parametrize("column", sorted(TAMPERING))
def test_changing_any_column_in_the_database_breaks_the_chain_at_that_entry(fresh_app, column):
    staff_id = make_staff(fresh_app, Role.ADMIN, "chief")
    add_entries(fresh_app, 3, actor_id=staff_id)
    middle = stored(fresh_app)[1]
    new_value = TAMPERING[column](middle)
    assert new_value != middle[column]
    tamper(fresh_app, sa.update(TABLE).where(TABLE.c.seq == 2).values({column: new_value}))

    result = verify(fresh_app)
    assert not result.ok
    assert result.first_bad_seq == 2, result
    assert result.checked == 1
    assert "entry 2" in result.problem


def test_deleting_a_middle_entry_is_caught(fresh_app):
    add_entries(fresh_app, 4)
    tamper(fresh_app, sa.delete(TABLE).where(TABLE.c.seq == 3))
    result = verify(fresh_app)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert "missing" in result.problem


def test_changing_the_last_entrys_hash_is_caught(fresh_app):
    add_entries(fresh_app, 3)
    last = stored(fresh_app)[-1]
    tamper(fresh_app, sa.update(TABLE).where(TABLE.c.seq == 3).values(hash="a" * 64))
    result = verify(fresh_app)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert result.last_hash == stored(fresh_app)[1]["hash"] != last["hash"]


def test_rewriting_an_entry_with_a_fresh_hash_is_caught_by_the_next(fresh_app):
    """Resealing the edited entry does not help: the one after it still names the old hash."""
    add_entries(fresh_app, 3)
    with fresh_app.app_context():
        row = db.session.execute(sa.select(TABLE).where(TABLE.c.seq == 2)).one()
        forged = {**row._mapping, "action": "enrollment.reject"}
        forged_hash = audit.entry_hash(type("Forged", (), forged))
    tamper(
        fresh_app,
        sa.update(TABLE)
        .where(TABLE.c.seq == 2)
        .values(action="enrollment.reject", hash=forged_hash),
    )
    result = verify(fresh_app)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash" in result.problem


def test_verify_reads_in_batches_and_finds_a_break_in_a_later_batch(fresh_app):
    add_entries(fresh_app, 7)
    with fresh_app.app_context():
        assert audit.verify(batch=2) == audit.verify(batch=1000)
        assert audit.verify(batch=2).checked == 7
    tamper(fresh_app, sa.update(TABLE).where(TABLE.c.seq == 6).values(address="10.0.0.1"))
    with fresh_app.app_context():
        result = audit.verify(batch=2)
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 5, 6)


def test_a_value_the_column_cannot_hold_is_named_not_a_crash(fresh_app):
    """SQLite stores anything anywhere; an unreadable timestamp still names its entry."""
    add_entries(fresh_app, 3)
    with fresh_app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("only SQLite lets a column hold a value of another type")
    tamper(fresh_app, sa.text("UPDATE audit_entry SET at = 'yesterday' WHERE seq = 2"))
    result = verify(fresh_app)
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 1, 2)
    assert "cannot be read" in result.problem


def test_the_database_refuses_updates_deletes_and_truncation(fresh_app):
    add_entries(fresh_app, 3)
    with fresh_app.app_context():
        statements = [
            sa.update(TABLE).where(TABLE.c.seq == 1).values(actor_label="x"),
            sa.text("UPDATE audit_entry SET address = '10.0.0.1'"),
            sa.delete(TABLE).where(TABLE.c.seq >= 2),
            sa.text("DELETE FROM audit_entry"),
        ]
        if db.engine.dialect.name == "postgresql":
            statements.append(sa.text("TRUNCATE audit_entry"))
        for statement in statements:
            with (
                pytest.raises(sa.exc.DBAPIError, match="append-only"),
                db.engine.begin() as conn,
            ):
                conn.execute(statement)
    assert len(stored(fresh_app)) == 3
    assert verify(fresh_app).ok


def test_record_refuses_an_action_it_could_not_store(ctx):
    with pytest.raises(ValueError, match="action"):
        audit.record("x" * 65, actor=None, subject_type="course", subject_id=1)
    with pytest.raises(ValueError, match="subject_type"):
        audit.record("course.publish", actor=None, subject_type="", subject_id=1)


def test_long_labels_and_addresses_are_cut_before_sealing(fresh_app):
    with fresh_app.app_context():
        entry = audit.record(
            "course.publish",
            actor=None,
            actor_label="l" * 500,
            subject_type="course",
            subject_id="9" * 100,
            address="a" * 100,
        )
        db.session.commit()
        assert (len(entry.actor_label), len(entry.subject_id), len(entry.address)) == (128, 64, 64)
    assert verify(fresh_app).ok


# --------------------------------------------------------------------------- concurrency


def _append_in_thread(app, results: dict, name: str, *, hold_s: float = 0.0, count: int = 1):
    def run() -> None:
        try:
            with app.app_context():
                for _ in range(count):
                    entry = audit.record(
                        "evidence.view", actor=None, subject_type="evidence", subject_id=name
                    )
                    results.setdefault(f"{name}_recorded_at", time.monotonic())
                    if hold_s:
                        results[f"{name}_holding"].set()
                        time.sleep(hold_s)
                    seq = entry.seq
                    # Stamped before the commit: the lock may pass to the other writer as soon
                    # as the server commits, before this thread runs again.
                    results.setdefault(f"{name}_committing_at", time.monotonic())
                    db.session.commit()
                    results.setdefault(name, []).append(seq)
        except Exception as error:  # reported by the test
            results[f"{name}_error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_second_writer_waits_for_the_first_to_commit(fresh_app):
    """Without the append lock the second writer would read the same last entry and collide
    on its seq; with it, the second waits and follows the first."""
    add_entries(fresh_app, 1)
    results: dict = {"first_holding": threading.Event()}
    first = _append_in_thread(fresh_app, results, "first", hold_s=0.6)
    assert results["first_holding"].wait(10)
    second = _append_in_thread(fresh_app, results, "second")
    first.join(20)
    second.join(20)
    assert "first_error" not in results and "second_error" not in results, results
    assert results["first"] == [2] and results["second"] == [3]
    assert results["second_recorded_at"] >= results["first_committing_at"]
    assert verify(fresh_app) == audit.VerifyResult(
        True, 3, None, None, stored(fresh_app)[-1]["hash"]
    )


def test_concurrent_appends_make_one_gapless_chain(fresh_app):
    threads_results: dict = {}
    threads = [
        _append_in_thread(fresh_app, threads_results, name, count=15) for name in ("a", "b", "c")
    ]
    for thread in threads:
        thread.join(60)
    errors = {key: value for key, value in threads_results.items() if key.endswith("_error")}
    assert not errors
    seqs = sorted(threads_results["a"] + threads_results["b"] + threads_results["c"])
    assert seqs == list(range(1, 46))
    result = verify(fresh_app)
    assert (result.ok, result.checked) == (True, 45)


# --------------------------------------------------------------------------- requests


def test_record_request_takes_the_signed_in_user_and_the_client_address(fresh_app):
    make_trainee(fresh_app)
    with fresh_app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.44"}):
        user = db.session.scalar(sa.select(User).where(User.role == Role.TRAINEE))
        login_user(user)
        entry = audit.record_request(
            "evidence.view", subject_type="evidence", subject_id=5, detail={"kind": "snapshot"}
        )
        db.session.commit()
        assert (entry.actor_id, entry.address) == (user.id, "192.0.2.44")
        assert entry.actor_label == user.id_number_masked == "110105********1239"
    with fresh_app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.45"}):
        anonymous = audit.record_request("evidence.view", subject_type="evidence", subject_id=6)
        db.session.commit()
        assert (anonymous.actor_id, anonymous.actor_label) == (None, "system")
    assert verify(fresh_app).ok


def test_record_request_honours_the_proxy_setting(fresh_app, database_url):
    """Behind PROXY_COUNT proxies the address is the client's, taken from X-Forwarded-For."""
    proxied = make_app(database_url, PROXY_COUNT=1)

    @proxied.get("/_test/audit-probe")
    def probe():
        entry = audit.record_request("evidence.view", subject_type="evidence", subject_id=1)
        address = entry.address
        db.session.commit()
        return {"address": address}

    try:
        response = proxied.test_client().get(
            "/_test/audit-probe",
            headers={"X-Forwarded-For": "198.51.100.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert response.get_json() == {"address": "198.51.100.7"}
    finally:
        with proxied.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- the commands


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_cli_verify_exits_0_when_intact_and_1_naming_the_entry_when_not(runner, fresh_app):
    add_entries(fresh_app, 3)
    intact = runner.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    [report] = lines(intact)
    assert report["ok"] is True and report["checked"] == 3
    assert report["first_bad_seq"] is None and report["problem"] is None

    tamper(fresh_app, sa.update(TABLE).where(TABLE.c.seq == 2).values(subject_id="999"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    [report] = lines(broken)
    assert report["ok"] is False and report["first_bad_seq"] == 2 and report["checked"] == 1
    assert "entry 2" in report["problem"]


def test_cli_list_shows_the_latest_entries_about_a_subject(runner, fresh_app):
    add_entries(fresh_app, 4)
    everything = lines(runner.invoke(args=["audit", "list"]))
    assert [entry["seq"] for entry in everything] == [4, 3, 2, 1]
    assert everything[0]["detail"]["note"] == "第4条"
    one = lines(runner.invoke(args=["audit", "list", "--subject", "evidence:20"]))
    assert [(entry["seq"], entry["subject_id"]) for entry in one] == [(2, "20")]
    latest = lines(runner.invoke(args=["audit", "list", "--limit", "2"]))
    assert [entry["seq"] for entry in latest] == [4, 3]
    approvals = lines(runner.invoke(args=["audit", "list", "--action", "enrollment.approve"]))
    assert [entry["seq"] for entry in approvals] == [4, 2]
    bad = runner.invoke(args=["audit", "list", "--subject", ":3"])
    assert bad.exit_code == 2 and "TYPE" in bad.output


# --------------------------------------------------------------------------- decisions logged


def audit_rows(app, action: str | None = None) -> list[AuditEntry]:
    """Oldest first; `action` ending in a dot matches every action it begins."""
    with app.app_context():
        prefix = action if action and action.endswith(".") else None
        rows = audit.entries(limit=100, action=None if prefix else action)
        if prefix:
            rows = [row for row in rows if row.action.startswith(prefix)]
        for row in rows:
            db.session.expunge(row)
        return rows[::-1]


def course_in_review(app, client) -> int:
    course_id = create_course(client, make_platform(app))
    with app.app_context():
        db.session.get(Course, course_id).status = CourseStatus.IN_REVIEW
        db.session.commit()
    return course_id


def test_course_decisions_from_the_command_line_are_logged(runner, client, fresh_app):
    course_id = course_in_review(fresh_app, client)
    assert runner.invoke(args=["courses", "publish", str(course_id)]).exit_code == 0
    assert runner.invoke(args=["courses", "withdraw", str(course_id)]).exit_code == 0
    rows = audit_rows(fresh_app, "course.")
    assert [(row.action, row.subject_type, row.subject_id) for row in rows] == [
        ("course.publish", "course", str(course_id)),
        ("course.withdraw", "course", str(course_id)),
    ]
    assert all(row.actor_id is None and row.actor_label == "cli" for row in rows)
    assert json.loads(rows[0].detail) == {"from": "in_review", "to": "published"}
    # A refused decision changes nothing and logs nothing.
    again = runner.invoke(args=["courses", "publish", str(course_id)])
    assert again.exit_code != 0
    assert len(audit_rows(fresh_app, "course.")) == 2
    assert verify(fresh_app).ok


def test_course_rejection_is_logged_with_its_reason(runner, client, fresh_app):
    course_id = course_in_review(fresh_app, client)
    result = runner.invoke(args=["courses", "reject", str(course_id), "--reason", " 视频模糊 "])
    assert result.exit_code == 0, result.output
    [row] = audit_rows(fresh_app, "course.reject")
    assert json.loads(row.detail) == {"from": "in_review", "to": "rejected", "reason": "视频模糊"}


def test_platform_decisions_from_the_command_line_are_logged(runner, fresh_app):
    created = runner.invoke(args=["platforms", "create", "匠心学院"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    for args in (
        ["suspend", "匠心学院"],
        ["activate", "匠心学院"],
        ["token", "匠心学院", "--label", "备用"],
    ):
        assert runner.invoke(args=["platforms", *args]).exit_code == 0
    with fresh_app.app_context():
        platform = db.session.scalar(sa.select(Platform))
        platform_id = str(platform.id)
    tokens = runner.invoke(args=["platforms", "tokens", "匠心学院"]).stdout.splitlines()
    second_token_id = int(tokens[-1].split("\t")[0])
    assert (
        runner.invoke(args=["platforms", "revoke", "匠心学院", str(second_token_id)]).exit_code == 0
    )
    rows = audit_rows(fresh_app)
    assert [row.action for row in rows] == [
        "platform.create",
        "platform.token_issue",  # the first token, issued with the platform
        "platform.suspend",
        "platform.activate",
        "platform.token_issue",
        "platform.token_revoke",
    ]
    assert {row.subject_id for row in rows} == {platform_id}
    assert json.loads(rows[2].detail) == {"from": "active", "to": "suspended"}
    assert json.loads(rows[5].detail) == {"token_id": second_token_id}
    assert all(token not in row.detail for row in rows)  # the secret never goes in the log
    assert verify(fresh_app).ok


def expired_snapshot(app, user_id: int) -> None:
    with app.test_request_context():
        evidence = verification.store_evidence(
            db.session.get(User, user_id),
            photo("obama_1.jpg"),
            EvidenceKind.SNAPSHOT,
            dhash=None,
            result="match",
        )
        evidence.purge_after = utcnow() - timedelta(days=1)
        db.session.commit()


def test_evidence_purge_logs_one_entry_per_run_with_its_counts(runner, fresh_app):
    if "evidence" not in fresh_app.cli.commands:
        fresh_app.cli.add_command(evidence_cli)
    trainee_id = make_trainee(fresh_app)
    expired_snapshot(fresh_app, trainee_id)
    expired_snapshot(fresh_app, trainee_id)
    assert runner.invoke(args=["evidence", "purge", "--dry-run"]).exit_code == 0
    assert audit_rows(fresh_app) == []  # a dry run decides nothing
    assert runner.invoke(args=["evidence", "purge"]).exit_code == 0
    assert runner.invoke(args=["evidence", "purge"]).exit_code == 0
    first, second = audit_rows(fresh_app)
    assert (first.action, first.subject_type, first.actor_label) == (
        "evidence.purge",
        "purge_run",
        "cli",
    )
    with fresh_app.app_context():
        runs = db.session.scalars(sa.select(PurgeRun.id).order_by(PurgeRun.id)).all()
    assert [first.subject_id, second.subject_id] == [str(run) for run in runs]
    assert json.loads(first.detail) == {"by_kind": {"snapshot": 2}, "kept": 0, "purged": 2}
    assert json.loads(second.detail) == {"by_kind": {}, "kept": 0, "purged": 0}
    assert verify(fresh_app).ok


def test_course_decisions_on_the_admin_page_are_logged_with_the_admin_and_address(
    client, fresh_app
):
    course_id = course_in_review(fresh_app, client)
    admin_id = make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    page = client.get(f"/admin/courses/{course_id}").get_data(as_text=True)
    client.post(
        f"/admin/courses/{course_id}/decision",
        data={"csrf_token": csrf_from(page), "action": "publish"},
    )
    [row] = audit_rows(fresh_app, "course.")
    assert (row.action, row.actor_id, row.address) == ("course.publish", admin_id, "127.0.0.1")
