"""The `verify_check` job: a worker judges a face check's answer exactly as a request would.

With CHECKS_IN_WORKER the answer endpoint only stores the frames and queues this job; the
face model then runs here, in a worker process, through the same `service.judge`. Safe to run
again: the answer is taken (queued -> judged) in the same transaction that settles its check,
so a second run finds it judged and only removes frames a crash may have left behind.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from app.errors import AppError
from app.extensions import db
from app.identity.models import User
from app.jobs.service import Progress, handler
from app.learning import service as learning
from app.learning.models import StudySession
from app.verification import service
from app.verification.models import Check, CheckAnswer

log = logging.getLogger(__name__)
KIND = "verify_check"


def _give_up(answer_id: int, code: str, message: str) -> None:
    """The job crashed too often: free the check for another answer (or its expiry)."""
    answer = service.abandon_answer(answer_id)
    if answer is not None:
        log.warning("answer %s to check %s not judged: %s", answer_id, answer.check_id, message)
        service.discard_frames(answer)


@handler(KIND, on_give_up=_give_up)
def verify_check(answer_id: int, report: Progress) -> None:
    """Judge one queued answer; `report` goes unused: judging takes about a second."""
    answer = service.take_answer(answer_id)
    if answer is None:  # judged by an earlier run, or abandoned
        leftover = db.session.get(CheckAnswer, answer_id)
        if leftover is not None:
            service.discard_frames(leftover)
        db.session.commit()
        return
    check = db.session.get(Check, answer.check_id)
    # Heartbeats of the session wait while its check is settled, as they wait for each other.
    db.session.execute(
        sa.select(StudySession.id).where(StudySession.id == check.session_id).with_for_update()
    )
    session = db.session.get(StudySession, check.session_id)
    user = db.session.get(User, check.user_id)
    frames = service.answer_frames(answer)
    try:
        verdict = service.judge(user, check, frames, session=session)
    except AppError as refusal:  # raised before judge changed anything
        service.record_refusal(answer, check, refusal)
    else:
        service.record_verdict(answer, verdict)
        learning.record_void(session, verdict.voided_s)
    db.session.commit()
    # Only once the verdict is kept: a crash before it leaves the frames for the next run.
    service.discard_frames(answer)


REENCODE_KIND = "reencode_faces"
REENCODE_BATCH = 100


@handler(REENCODE_KIND)
def reencode_faces(_subject_id: int, report: Progress) -> None:
    """Move every reference to the configured face model, a committed batch at a time, so a
    restarted job goes on where it stopped. References that cannot be re-encoded (photo gone,
    no single face) keep their model; `flask faces reencode` lists them."""
    failed = service.reencode_all(
        service.model(),
        batch=REENCODE_BATCH,
        report=lambda done, total, failed: report(
            100.0 * (done + len(failed)) / max(total, done + len(failed))
        ),
    )
    if failed:
        log.warning("%d reference(s) could not be re-encoded: %s", len(failed), sorted(failed))
