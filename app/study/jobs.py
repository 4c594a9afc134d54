"""The `verify_check` job: a worker judges a face check's answer exactly as a request would.

With CHECKS_IN_WORKER the answer endpoint only stores the frames and queues this job; the face
model then runs here, in a worker process, through `workflow.judge_queued_answer`. Safe to run
again: the answer is taken (queued -> judged) in the same transaction that settles its check,
so a second run finds it judged and only removes frames a crash may have left behind.

No answer is left "judging" for good: one still queued after CHECK_JUDGE_MAX_WAIT_S (every
worker busy, the broker down, the job given up) is handed back by a periodic task as
`not_judged`, and its check opens afresh for another answer.
"""

from __future__ import annotations

import logging

from flask import current_app

from app.extensions import db
from app.jobs import schedule
from app.jobs.service import Progress, handler
from app.study import workflow
from app.verification import service as verification

log = logging.getLogger(__name__)
VERIFY_CHECK = "verify_check"


def _give_up(answer_id: int, code: str, message: str) -> None:
    """The job crashed too often: free the check for another answer."""
    answer = verification.abandon_answer(answer_id)
    if answer is not None:
        log.warning("answer %s to check %s not judged: %s", answer_id, answer.check_id, message)
        db.session.commit()
        verification.discard_frames(answer)


@handler(VERIFY_CHECK, on_give_up=_give_up)
def verify_check(answer_id: int, report: Progress) -> None:
    """Judge one queued answer; `report` goes unused: judging takes about a second."""
    answer = workflow.judge_queued_answer(answer_id)
    db.session.commit()
    # Only once the verdict is kept: a crash before it leaves the frames for the next run.
    if answer is not None:
        verification.discard_frames(answer)


@schedule.register("hand_back_late_answers", "JOB_SWEEP_S")
def hand_back_late_answers() -> None:
    """Answers waiting longer than CHECK_JUDGE_MAX_WAIT_S go back to their trainees, each in
    its own transaction; a worker that takes one first keeps it."""
    for answer_id in verification.late_answers(current_app.config["CHECK_JUDGE_MAX_WAIT_S"]):
        answer = verification.abandon_answer(answer_id)
        db.session.commit()
        if answer is not None:
            log.warning(
                "answer %s to check %s waited too long for a worker: handed back",
                answer_id,
                answer.check_id,
            )
            verification.discard_frames(answer)
