"""Large exports as jobs: a district's roster of enrolments, written in batches by a worker.

A request to export is an audit entry (`stats.export_requested`, detail: district, format):
that row is the export's durable record and its parameters, and its id is the job's subject,
so the job takes an id and nothing else. The worker reads the roster narrowed to that
district (`scope.narrowed_to`: it runs outside the request, and a district officer's request
names their own district whatever they asked for), writes it batch by batch to a temporary
file with progress, and stores it in private storage under a key made from the entry's id: a
run that is taken back and run again writes the same object again. The file is fetched only
through a short-lived link signed for the account that asked, and every download is logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.bureau import scope
from app.bureau.models import Programme
from app.catalog.models import Occupation
from app.courses.models import Course
from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.identity.models import Role, User
from app.jobs import schedule
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.labels import label
from app.learning.models import Enrollment, StudySession
from app.media import service as media
from app.stats import export, service
from app.stats.figures import bureau_tz
from app.subsidy.models import Action, Decision
from app.verification.models import Check, CheckStatus

KIND = "stats_export"
REQUESTED = "stats.export_requested"
FORMATS = ("csv", "xlsx")
# Enrolments read and written per batch: memory stays flat, progress moves.
BATCH = 500
KEY_PREFIX = "exports/stats/"
VERDICTS = (Action.APPROVE, Action.ELIGIBLE, Action.REJECT)


def columns() -> list[str]:
    return [
        _("Name"),
        _("Resident ID number"),
        _("District"),
        _("Course"),
        _("Occupation"),
        _("Programme"),
        _("Enrolled"),
        _("Completed"),
        _("Verified hours"),
        _("Subsidy decision"),
    ]


def object_key(export_id: int, fmt: str) -> str:
    return f"{KEY_PREFIX}{export_id}/roster.{fmt}"


def file_name(export_id: int, district: str, fmt: str) -> str:
    return f"roster-{district or 'city'}-{export_id}.{fmt}"


@dataclass
class ExportItem:
    id: int
    district: str
    format: str
    requested_at: datetime
    requested_by: int | None
    job: Job | None

    @property
    def status(self) -> str:
        return self.job.status.value if self.job is not None else JobStatus.QUEUED.value

    @property
    def progress(self) -> float:
        return self.job.progress if self.job is not None else 0.0

    @property
    def done(self) -> bool:
        return self.job is not None and self.job.status is JobStatus.DONE


def _params(entry: AuditEntry) -> tuple[str, str]:
    detail = audit_detail(entry)
    return str(detail.get("district") or ""), str(detail.get("format") or "csv")


def audit_detail(entry: AuditEntry) -> dict[str, Any]:
    value = json.loads(entry.detail or "{}")
    return value if isinstance(value, dict) else {}


def request_export(user: User, district: str | None, fmt: str) -> Job:
    """Queue a roster export for `user`; flushes. A district officer always gets their own
    district (asking for another is refused by `check_district`); city staff must name one."""
    if fmt not in FORMATS:
        raise Invalid(fields={"format": _l("Choose CSV or XLSX.")})
    code = service.check_district(user, district)
    if not code:
        raise Invalid(fields={"district": _l("Choose a district.")})
    entry = audit.record(
        REQUESTED,
        actor=user,
        subject_type="stats_export",
        subject_id=None,
        detail={"district": code, "format": fmt},
    )
    return jobs.enqueue(KIND, entry.id)


def _entry(export_id: int) -> AuditEntry | None:
    entry = db.session.get(AuditEntry, export_id)
    return entry if entry is not None and entry.action == REQUESTED else None


def mine(user: User, limit: int = 50) -> list[ExportItem]:
    """The user's exports, newest first, each with its job."""
    entries = list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == REQUESTED, AuditEntry.actor_id == user.id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
    found: dict[int, Job] = {}
    if entries:
        for job in db.session.scalars(
            sa.select(Job)
            .where(Job.kind == KIND, Job.subject_id.in_([e.id for e in entries]))
            .order_by(Job.id)
        ):
            found[job.subject_id] = job  # the newest run of each
    items = []
    for entry in entries:
        district, fmt = _params(entry)
        items.append(
            ExportItem(entry.id, district, fmt, entry.at, entry.actor_id, found.get(entry.id))
        )
    return items


def get_mine(user: User, export_id: int) -> ExportItem:
    for item in mine(user, limit=1000):
        if item.id == export_id:
            return item
    raise NotFound(_l("No such export."))


# --- the roster -------------------------------------------------------------------------------


def _rows(ids: list[int]) -> Iterator[list[Any]]:
    """The roster rows of these enrolments, in id order (narrowed by the caller's scope)."""
    verified = (
        sa.select(
            StudySession.enrollment_id.label("enrollment_id"),
            (sa.func.coalesce(sa.func.sum(Check.settled_s), 0) / 3600.0).label("hours"),
        )
        .join(Check, Check.session_id == StudySession.id)
        .where(Check.status == CheckStatus.PASSED, StudySession.enrollment_id.in_(ids))
        .group_by(StudySession.enrollment_id)
    )
    hours = {row.enrollment_id: row.hours for row in db.session.execute(verified)}
    latest = aliased(Decision)
    newest = (
        sa.select(sa.func.max(latest.id))
        .where(latest.enrollment_id.in_(ids), latest.action.in_(VERDICTS))
        .group_by(latest.enrollment_id)
    )
    decisions = {
        d.enrollment_id: d
        for d in db.session.scalars(sa.select(Decision).where(Decision.id.in_(newest)))
    }
    query = (
        sa.select(Enrollment, User, Course, Occupation.name, Programme.name)
        .join(User, User.id == Enrollment.trainee_id)
        .join(Course, Course.id == Enrollment.course_id)
        .outerjoin(Occupation, Occupation.code == Course.occupation_code)
        .outerjoin(Programme, Programme.id == Enrollment.programme_id)
        .where(Enrollment.id.in_(ids))
        .order_by(Enrollment.id)
    )
    for enrollment, trainee, course, occupation, programme in db.session.execute(query):
        decision = decisions.get(enrollment.id)
        yield [
            trainee.name_masked,
            trainee.id_number_masked or "",
            service.district_label(trainee.district_code),
            course.title,
            occupation or course.occupation_code,
            programme or "",
            _date(enrollment.created_at),
            _date(enrollment.completed_at),
            round(float(hours.get(enrollment.id, 0) or 0), 2),
            label(decision.action, "action") if decision is not None else _("Not decided"),
        ]


def _date(at: datetime | None) -> str:
    """A date on the bureau's clock (stored times are UTC; SQLite hands them back naive)."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(bureau_tz()).date().isoformat()


def _roster(district: str, report: jobs.Progress) -> Iterator[list[Any]]:
    """Every enrolment of the district's trainees, batch by batch, reporting progress."""
    ids_query = (
        sa.select(Enrollment.id)
        .join(User, User.id == Enrollment.trainee_id)
        .where(User.district_code == district)
        .order_by(Enrollment.id)
    )
    ids = list(db.session.scalars(ids_query))
    total = len(ids)
    for start in range(0, total, BATCH):
        yield from _rows(ids[start : start + BATCH])
        db.session.expunge_all()  # a batch's rows are written: let them go
        report(min(99.0, 100.0 * (start + BATCH) / total))


def _run(export_id: int, report: jobs.Progress) -> None:
    entry = _entry(export_id)
    if entry is None:
        raise jobs.JobFailed("not_found", f"no export request {export_id}")
    district, fmt = _params(entry)
    if not district or fmt not in FORMATS:
        raise jobs.JobFailed("invalid", f"export {export_id}: bad parameters")
    handle, path = tempfile.mkstemp(suffix="." + fmt)
    os.close(handle)
    try:
        with scope.narrowed_to(district):
            rows = _roster(district, report)
            if fmt == "csv":
                with open(path, "wb") as out:
                    for chunk in export.stream_csv(columns(), rows):
                        out.write(chunk)
            else:
                export.write_xlsx_file(path, _("Roster"), columns(), rows)
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
        content_type = export.CSV_MEDIA_TYPE if fmt == "csv" else export.XLSX_MEDIA_TYPE
        media.storage().put_file(object_key(export_id, fmt), path, content_type)
    finally:
        os.unlink(path)
    audit.record(
        "stats.export_written",
        actor=None,
        subject_type="stats_export",
        subject_id=export_id,
        detail={"district": district, "format": fmt, "sha256": digest.hexdigest()},
    )
    db.session.commit()
    report(100.0)


@jobs.handler(KIND)
def run_export(export_id: int, report: jobs.Progress) -> None:
    _run(export_id, report)


# --- the link -----------------------------------------------------------------------------------


def _link_scope(export_id: int, viewer_id: int) -> str:
    return f"stats-export:{export_id}|viewer:{viewer_id}"


def download_url(item: ExportItem, viewer: User) -> str:
    """A link to the finished file, for `viewer` only, for STATS_EXPORT_LINK_TTL_S."""
    ttl = int(current_app.config["STATS_EXPORT_LINK_TTL_S"])
    query = media.signed_query(_link_scope(item.id, viewer.id), ttl)
    return url_for("stats.export_file", export_id=item.id, exp=query["exp"], sig=query["sig"])


def open_for(
    viewer: User, export_id: int, exp: str | None, sig: str | None
) -> tuple[Any, str, str]:
    """The file behind a signed link (object key, file name, content type), logged; 403 when the
    link is not this viewer's, is forged or has expired."""
    if not media.check_signature(_link_scope(export_id, viewer.id), exp, sig):
        raise Forbidden(_l("This download link has expired. Open the exports page for a new one."))
    item = get_mine(viewer, export_id)
    if not item.done:
        raise NotFound(_l("This export is not finished."))
    if viewer.role is Role.DISTRICT_OFFICER and item.district != (viewer.district_code or ""):
        raise Forbidden(
            _l("You can see the figures of your own district only."), code="out_of_scope"
        )
    key = object_key(item.id, item.format)
    if not media.storage().exists(key):
        raise NotFound(_l("This export's file is gone. Start the export again."))
    audit.record(
        "stats.export_downloaded",
        actor=viewer,
        subject_type="stats_export",
        subject_id=item.id,
        detail={"district": item.district, "format": item.format},
    )
    content_type = export.CSV_MEDIA_TYPE if item.format == "csv" else export.XLSX_MEDIA_TYPE
    return key, file_name(item.id, item.district, item.format), content_type


# --- retention ----------------------------------------------------------------------------------


@schedule.register("purge_stats_exports", "EXPIRY_SWEEP_S")
def purge_old_exports() -> int:
    """Delete export files requested more than STATS_EXPORT_KEEP_S ago: a roster names
    people, so it is kept only as long as staff need to fetch it. How many exports went."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["STATS_EXPORT_KEEP_S"])
    store = media.storage()
    ids = {
        int(part)
        for key in store.list(KEY_PREFIX)
        if (part := key[len(KEY_PREFIX) :].split("/", 1)[0]).isdigit()
    }
    purged = 0
    for export_id in sorted(ids):
        entry = _entry(export_id)
        if entry is not None and entry.at >= cutoff:
            continue
        store.delete_prefix(f"{KEY_PREFIX}{export_id}/")
        audit.record(
            "stats.export_purged",
            actor=None,
            subject_type="stats_export",
            subject_id=export_id,
            detail={"requested_at": entry.at.isoformat() if entry is not None else None},
        )
        db.session.commit()
        purged += 1
    return purged
