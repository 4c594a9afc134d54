"""Roster exports run as jobs: one district's enrolments only, whoever asks and however;
written with progress to private storage; fetched through a short-lived link signed for the
one account that asked; every request, file and download in the audit log."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import sqlalchemy as sa
from openpyxl import load_workbook

from app.audit.models import AuditEntry
from app.extensions import db
from app.identity.models import Role, User
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.stats import exports_jobs
from tests.conftest import csrf_from, make_staff, sign_in_page
from tests.stats.test_reports import A, B, build


def officer(app, code: str, username: str) -> int:
    return make_staff(app, Role.DISTRICT_OFFICER, username, district=code)


def masked(app, *user_ids: int) -> dict[int, tuple[str, str]]:
    with app.app_context():
        return {
            uid: (u.name_masked, u.id_number_masked or "")
            for uid in user_ids
            if (u := db.session.get(User, uid)) is not None
        }


def start(client, **form: str):
    token = csrf_from(client.get("/stats/exports").get_data(as_text=True))
    return client.post("/stats/exports", data={"csrf_token": token, **form})


def run_jobs(app) -> None:
    with app.app_context():
        jobs.run_pending()


def download_link(client) -> str:
    html = client.get("/stats/exports").get_data(as_text=True)
    links = re.findall(r'href="(/stats/exports/\d+/file\?[^"]+)"', html)
    assert links, html
    return links[0].replace("&amp;", "&")


def jobs_of(app) -> list[Job]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Job).where(Job.kind == exports_jobs.KIND)))


def test_officer_export_holds_only_their_district(fresh_app, client):
    world = build(fresh_app)
    people = masked(fresh_app, world["a1"], world["a2"], world["b1"])
    officer(fresh_app, A, "officer-a")
    sign_in_page(client, "officer-a")

    # Asking for another district is refused and queues nothing.
    refused = start(client, district=B, format="csv")
    assert refused.status_code == 302
    assert jobs_of(fresh_app) == []
    # Asking for no district (the whole city) gets their own.
    assert start(client, format="csv").status_code == 302
    [job] = jobs_of(fresh_app)
    assert job.status is JobStatus.QUEUED
    page = client.get("/stats/exports").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page  # the page follows the job without a script

    run_jobs(fresh_app)
    [job] = jobs_of(fresh_app)
    assert job.status is JobStatus.DONE and job.progress == 100.0

    response = client.get(download_link(client))
    assert response.status_code == 200
    text = response.get_data().decode("utf-8-sig")
    response.close()
    lines = text.strip().splitlines()
    assert len(lines) == 3  # a header and A's two enrolments
    for uid in (world["a1"], world["a2"]):
        name, id_masked = people[uid]
        assert name in text and id_masked in text
    assert people[world["b1"]][0] not in text and people[world["b1"]][1] not in text
    assert "家政课程" in text

    with fresh_app.app_context():
        actions = [
            e.action
            for e in db.session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.action.like("stats.export_%"))
                .order_by(AuditEntry.id)
            )
        ]
    assert actions == ["stats.export_requested", "stats.export_written", "stats.export_downloaded"]


def test_xlsx_keeps_the_id_number_as_text_and_the_link_expires(fresh_app, client, monkeypatch):
    world = build(fresh_app)
    people = masked(fresh_app, world["a1"], world["a2"], world["b1"])
    make_staff(fresh_app, Role.ADMIN, "admin1")
    sign_in_page(client, "admin1")
    # City staff must name a district.
    start(client, format="xlsx")
    assert jobs_of(fresh_app) == []
    start(client, district=B, format="xlsx")
    run_jobs(fresh_app)
    [job] = jobs_of(fresh_app)
    assert job.status is JobStatus.DONE and job.progress == 100.0

    link = download_link(client)
    first = client.get(link)
    assert first.status_code == 200 and first.data[:2] == b"PK"
    first.close()
    sheet = load_workbook(io.BytesIO(first.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2
    name, id_masked = people[world["b1"]]
    assert rows[1][0] == name
    assert rows[1][1] == id_masked and isinstance(rows[1][1], str) and len(id_masked) == 18

    # Another account cannot use the link.
    other = fresh_app.test_client()
    make_staff(fresh_app, Role.ADMIN, "admin2")
    sign_in_page(other, "admin2")
    assert other.get(link).status_code == 403

    # After the link's lifetime, the same link is refused.
    real = time.time
    ttl = fresh_app.config["STATS_EXPORT_LINK_TTL_S"]
    monkeypatch.setattr(time, "time", lambda: real() + ttl + 5)
    assert client.get(link).status_code == 403


def test_job_is_safe_to_rerun_and_writes_in_batches(fresh_app, monkeypatch):
    world = build(fresh_app)
    monkeypatch.setattr(exports_jobs, "BATCH", 1)
    with fresh_app.test_request_context():
        admin = db.session.get(User, make_staff(fresh_app, Role.ADMIN, "admin1"))
        job = exports_jobs.request_export(admin, A, "csv")
        db.session.commit()
        export_id = job.subject_id
    seen: list[float] = []
    with fresh_app.app_context():
        exports_jobs.run_export(export_id, seen.append)
        exports_jobs.run_export(export_id, seen.append)  # a second run: the same object
        key = exports_jobs.object_key(export_id, "csv")
        with exports_jobs.media.storage().open(key) as stored:
            data = stored.read()
    assert seen[-1] == 100.0 and 50.0 in seen
    text = data.decode("utf-8-sig")
    assert len(text.strip().splitlines()) == 3
    assert masked(fresh_app, world["b1"])[world["b1"]][0] not in text


def test_export_files_are_deleted_after_the_keeping_period(fresh_app, monkeypatch):
    """Rosters name people: the schedule deletes each file once STATS_EXPORT_KEEP_S (7 days)
    has passed since it was requested, and records that; a download then says it is gone."""
    build(fresh_app)
    with fresh_app.test_request_context():
        admin = db.session.get(User, make_staff(fresh_app, Role.ADMIN, "admin1"))
        ids = [exports_jobs.request_export(admin, A, fmt).subject_id for fmt in ("csv", "xlsx")]
        db.session.commit()
    with fresh_app.app_context():
        for export_id in ids:
            exports_jobs.run_export(export_id, lambda _: None)
        requested = db.session.get(AuditEntry, ids[0]).at
        keys = [exports_jobs.object_key(i, f) for i, f in zip(ids, ("csv", "xlsx"), strict=True)]
        store = exports_jobs.media.storage()
        monkeypatch.setattr(exports_jobs, "utcnow", lambda: requested + timedelta(days=6))
        assert exports_jobs.purge_old_exports() == 0
        assert all(store.exists(key) for key in keys)
        monkeypatch.setattr(exports_jobs, "utcnow", lambda: requested + timedelta(days=8))
        assert exports_jobs.purge_old_exports() == 2
        assert not any(store.exists(key) for key in keys)
        purged = db.session.scalars(
            sa.select(AuditEntry.subject_id).where(AuditEntry.action == "stats.export_purged")
        ).all()
        assert sorted(purged) == sorted(str(i) for i in ids)
        assert exports_jobs.purge_old_exports() == 0  # nothing left to delete
