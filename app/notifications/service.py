"""Raise, read and mark notifications; send the text messages some of them warrant.

`notify(user_id, kind, **params)` is the one call: the domains place it where the fact is
flushed, inside the same transaction, so a notification exists exactly when its fact does.
Only the kind and the params are stored; `render` turns them into a sentence in the reader's
language when the inbox is read. Where SMS is configured (`app.identity.sms`) the kinds in
`SMS_KINDS` also queue a `send_notification_sms` job in the same transaction; it is woken
once the transaction commits and retried by the job system if the message is lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l

from app.db import rowcount, utcnow
from app.errors import Invalid, NotFound
from app.extensions import db
from app.identity.models import User
from app.notifications.models import Notification

log = logging.getLogger(__name__)

SEND_SMS = "send_notification_sms"
# Kinds worth a text message: decisions about money and identity. A failed check is told in
# the player at once, and again in the inbox.
SMS_KINDS = frozenset(
    {
        "identity_flag",
        "subsidy_decided",
        "appeal_decided",
        "certificate_issued",
        "certificate_revoked",
    }
)
# Subsidy statuses that are a decision the trainee hears of (not "still in review").
DECIDED = ("eligible", "ineligible")

CHECK_REASONS = {
    "mismatch": _l("the photo did not look like the person enrolled"),
    "no_face": _l("no face was seen"),
    "replay": _l("a picture used before was sent"),
    "multiple_faces": _l("more than one face was seen"),
    "liveness_failed": _l("the movement asked for was not seen"),
}

TEXTS = {
    "check_failed": _l(
        "A face check in \u201c%(course)s\u201d did not pass (%(reason)s). The study time since "
        "your last passed check was not counted; an auditor will look at the photos."
    ),
    "check_missed": _l(
        "A face check in \u201c%(course)s\u201d was not answered in time. The study time since "
        "your last passed check was not counted."
    ),
    "duplicate_identity": _l(
        "The face you enrolled matches another trainee's. Studying pauses until an auditor "
        "has compared the two photos."
    ),
    "possible_duplicate": _l(
        "The face you enrolled resembles another trainee's. An auditor will compare the two "
        "photos; you can go on studying."
    ),
    "subsidy_granted": _l("The subsidy for \u201c%(course)s\u201d is granted."),
    "subsidy_granted_amount": _l(
        "The subsidy for \u201c%(course)s\u201d is granted: %(amount)s yuan."
    ),
    "subsidy_rejected": _l(
        "The subsidy for \u201c%(course)s\u201d was rejected. The reason is on the enrolment "
        "page; you may appeal."
    ),
    "appeal_granted": _l(
        "Your appeal for \u201c%(course)s\u201d was accepted: the subsidy is granted."
    ),
    "appeal_rejected": _l(
        "Your appeal for \u201c%(course)s\u201d was turned down: the rejection stands. The "
        "reason is on the enrolment page."
    ),
    "certificate_issued": _l(
        "Your certificate for \u201c%(course)s\u201d is issued, number %(number)s."
    ),
    "certificate_revoked": _l(
        "Your certificate %(number)s for \u201c%(course)s\u201d was revoked. %(why)s"
    ),
}
KINDS = frozenset(
    {
        "check_failed",
        "check_missed",
        "identity_flag",
        "subsidy_decided",
        "appeal_decided",
        "certificate_issued",
        "certificate_revoked",
    }
)
UNKNOWN_COURSE = _l("your course")
PAGE_SIZE = 20


# --- raising ----------------------------------------------------------------------------------


def _course_of(params: dict[str, Any]) -> None:
    """Complete the params with the enrolment and the course's title (kept as it was then)."""
    from app.learning.models import Enrollment, StudySession

    if "enrollment_id" not in params and params.get("session_id") is not None:
        params["enrollment_id"] = db.session.scalar(
            sa.select(StudySession.enrollment_id).where(StudySession.id == params["session_id"])
        )
    if "course" not in params and params.get("enrollment_id") is not None:
        enrollment = db.session.get(Enrollment, params["enrollment_id"])
        if enrollment is not None:
            params["course"] = enrollment.course.title


def notify(user_id: int, kind: str, **params: Any) -> Notification | None:
    """Put a notification in the account's inbox (flushed), and queue its text message where
    one is warranted and SMS is configured. None when the fact is not worth telling (a
    subsidy still in review)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if kind in ("subsidy_decided", "appeal_decided") and params.get("status") not in DECIDED:
        return None
    params = {name: value for name, value in params.items() if value is not None}
    _course_of(params)
    notification = Notification(user_id=user_id, kind=kind, params=json.dumps(params, default=str))
    db.session.add(notification)
    db.session.flush()
    if kind in SMS_KINDS and _sms_enabled(kind):
        from app.jobs import service as jobs

        job = jobs.enqueue(SEND_SMS, notification.id)
        db.session.info.setdefault(WAKE_AFTER_COMMIT, []).append(job.id)
    return notification


def _sms_enabled(kind: str) -> bool:
    from app.identity import sms

    return sms.enabled(sms_kind(kind))


def sms_kind(kind: str) -> str:
    """The message template a kind is sent with (a template code in SMS_ALIYUN_TEMPLATES)."""
    return f"notice_{kind}"


# Jobs queued in a transaction: their workers are woken once it commits (see `wake_workers`).
WAKE_AFTER_COMMIT = "veriskill.notifications.wake"


@sa.event.listens_for(db.session, "after_commit")
def wake_workers(session: Any) -> None:
    """The transaction that queued SMS jobs committed: wake workers for them now. A wake-up
    that fails only delays the job until the sweeper wakes one (`jobs.service.sweep`)."""
    waiting = session.info.pop(WAKE_AFTER_COMMIT, None)
    if not waiting:
        return
    from app.jobs import service as jobs

    for job_id in waiting:
        jobs.dispatch(job_id)


@sa.event.listens_for(db.session, "after_rollback")
def forget_wakeups(session: Any) -> None:
    session.info.pop(WAKE_AFTER_COMMIT, None)


# --- reading ----------------------------------------------------------------------------------


def params_of(notification: Notification) -> dict[str, Any]:
    try:
        params = json.loads(notification.params or "{}")
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def _text_key(kind: str, params: dict[str, Any]) -> str:
    status = params.get("status")
    if kind == "identity_flag":
        return (
            "duplicate_identity"
            if params.get("code") == "duplicate_identity"
            else ("possible_duplicate")
        )
    if kind == "subsidy_decided":
        if status == "ineligible":
            return "subsidy_rejected"
        return "subsidy_granted_amount" if params.get("amount") else "subsidy_granted"
    if kind == "appeal_decided":
        return "appeal_rejected" if status == "ineligible" else "appeal_granted"
    return kind


def render(notification: Notification) -> str:
    """The notification as a sentence in the current language."""
    params = params_of(notification)
    values = {
        "course": params.get("course") or str(UNKNOWN_COURSE),
        "amount": params.get("amount", ""),
        "number": params.get("number", ""),
        "reason": str(CHECK_REASONS.get(params.get("code", ""), CHECK_REASONS["mismatch"])),
        "why": "",
    }
    if notification.kind == "certificate_revoked":
        from app.subsidy.service import revoke_message  # the holder's words for each reason

        values["why"] = revoke_message(params.get("reason"))
    template = TEXTS.get(_text_key(notification.kind, params))
    if template is None:
        return notification.kind
    return (str(template) % values).strip()


def link(notification: Notification) -> str | None:
    """Where the reader acts on it."""
    params = params_of(notification)
    if notification.kind.startswith("certificate_"):
        return url_for("certificates.mine")
    if notification.kind == "identity_flag":
        return url_for("verification.enrol_page")
    if params.get("enrollment_id"):
        return url_for("learning.enrollment", enrollment_id=params["enrollment_id"])
    return None


def item_json(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "text": render(notification),
        "link": link(notification),
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


def unread_count(user: User) -> int:
    query = sa.select(sa.func.count()).select_from(Notification)
    query = query.where(Notification.user_id == user.id, Notification.read_at.is_(None))
    return int(db.session.scalar(query) or 0)


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    unread: int
    next_before: int | None  # the cursor of the next (older) page


def inbox(user: User, *, before: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """The newest notifications first, ``limit`` at a time; ``before`` is a page's cursor."""
    query = sa.select(Notification).where(Notification.user_id == user.id)
    if before is not None:
        query = query.where(Notification.id < before)
    rows = list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, unread_count(user), rows[-1].id if more and rows else None)


def mark_read(user: User, notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        raise NotFound(_l("No such notification."), code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()
    return notification


def mark_all_read(user: User) -> int:
    marked = db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return rowcount(marked)


def parse_cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise Invalid(fields={"before": _l("Use the cursor of a page (a whole number).")})
    return int(raw)


def when(moment: datetime) -> str:
    return format_datetime(moment, "yyyy-MM-dd HH:mm")


# --- text messages ----------------------------------------------------------------------------


def sms_params(notification: Notification) -> dict[str, str]:
    """The template's variables: short, and nothing about the person but the course."""
    params = params_of(notification)
    values = {"course": str(params.get("course") or "")[:30]}
    if params.get("number"):
        values["number"] = str(params["number"])
    if notification.kind in ("subsidy_decided", "appeal_decided"):
        values["result"] = str(
            _l("approved") if params.get("status") == "eligible" else _l("not approved")
        )
    return values
