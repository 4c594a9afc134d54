"""JSON API for a trainee studying: progress, study sessions, heartbeats, face checks."""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from flask import Flask, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from app.courses import playback
from app.errors import Overloaded
from app.extensions import db
from app.http import json_body, uploaded_files
from app.identity.auth import api_auth, current_api_user
from app.identity.models import Role
from app.jobs import service as jobs
from app.learning import service as learning
from app.learning.models import Enrollment
from app.observability import metrics
from app.study import bp, workflow
from app.study.jobs import VERIFY_CHECK
from app.subsidy import service as subsidy
from app.verification import service as verification
from media_pipeline.limits import MAX_BURST_FRAMES, MAX_IMAGE_BYTES

LESSON_FIELDS = (
    "id",
    "title",
    "duration_s",
    "credited_s",
    "verified_s",
    "pending_s",
    "coverage",
    "completed",
    "resume_s",
    "needed_s",
)


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    summary = learning.summarize(enrollment)
    state = subsidy.subsidy_of(enrollment)
    return {
        "id": enrollment.id,
        "course_id": enrollment.course_id,
        "course_title": enrollment.course.title,
        "lessons": [{key: item[key] for key in LESSON_FIELDS} for item in summary["lessons"]],
        "credited_s": summary["credited_s"],
        "verified_s": summary["verified_s"],
        "pending_s": summary["pending_s"],
        "required_s": summary["required_s"],
        "completed": summary["completed"],
        "subsidy": subsidy.subsidy_json(state),
        "certificate_no": state.certificate_no,
    }


@bp.get("/api/v1/me/enrollments")
@api_auth(Role.TRAINEE)
def api_my_enrollments():
    items = [enrollment_json(e) for e in learning.enrollments_of(current_api_user())]
    return jsonify({"items": items})


@bp.get("/api/v1/enrollments/<int:enrollment_id>")
@api_auth()
def api_enrollment(enrollment_id: int):
    return jsonify(enrollment_json(learning.enrollment_for(current_api_user(), enrollment_id)))


@bp.post("/api/v1/lessons/<int:lesson_id>/sessions")
@api_auth(Role.TRAINEE)
def api_start_session(lesson_id: int):
    started = workflow.start_session(
        current_api_user(),
        lesson_id,
        user_agent=request.headers.get("User-Agent", ""),
        address=request.remote_addr or "",
    )
    db.session.commit()
    session, progress = started.session, started.progress
    return jsonify(
        {
            "id": session.id,
            "check": verification.check_json(started.check),
            "heartbeat_s": current_app.config["HEARTBEAT_S"],
            "resume_s": learning.resume_at(progress),
            "furthest_s": progress.furthest_s,
            "playlist_url": playback.playlist_url(session.lesson),
        }
    ), 201


@bp.post("/api/v1/sessions/<int:session_id>/heartbeats")
def api_heartbeat(session_id: int):
    # Admitted (or shed, having touched nothing) before the caller is even looked up.
    with heartbeat_gate().admit(request_start()):
        return _heartbeat(session_id)


@api_auth(Role.TRAINEE)
def _heartbeat(session_id: int):
    beat = workflow.heartbeat(current_api_user(), session_id, json_body())
    outcome = beat.outcome
    progress = outcome.progress
    # Read before the commit, and the commit expires nothing: this request reads no row after
    # it but the caller's id, which the access log would otherwise load again.
    body = {
        "credited_s": outcome.credited_s,
        "reason": outcome.reason,
        "lesson_credited_s": round(progress.credited_s, 3),
        "lesson_verified_s": progress.verified_s,
        "lesson_pending_s": round(progress.pending_s, 3),
        "furthest_s": round(progress.furthest_s, 3),
        "coverage": round(progress.coverage, 4),
        "completed": outcome.completed,
        "check": verification.check_json(beat.check),
    }
    db.session().expire_on_commit = False  # this request's session only: it ends with it
    db.session.commit()
    metrics.heartbeat(outcome.credited_s, outcome.reason)
    return jsonify(body)


# --- overload ---------------------------------------------------------------------------------
#
# Past its capacity a server that queues every heartbeat answers all of them late, and late
# heartbeats are gaps the rules cannot pay. So each process works on at most
# HEARTBEAT_MAX_IN_FLIGHT heartbeats at once (leaving its other threads to pages and face
# checks), and a heartbeat that cannot start within HEARTBEAT_MAX_WAIT_S of arriving is shed:
# 503 `overloaded` with Retry-After, before anything is read or written, so it records nothing.
# The player sends it again after Retry-After (plus up to a second of jitter). The rules pay a
# stretch of up to CAP_HEARTBEATS heartbeats, so a heartbeat that gets through within
# (CAP_HEARTBEATS - 1) x HEARTBEAT_S (7.5 s at 15 s) of when it was due costs the trainee
# nothing: two sheds in a row still fit. The state is per process and per request only:
# nothing that several processes or boxes would have to agree on.

# Heartbeats one process works on at once (gunicorn's default here: 4 threads a process).
HEARTBEAT_MAX_IN_FLIGHT = 3
# The longest a heartbeat may wait to start, counted from its arrival at the front proxy
# (X-Request-Start) where one stamps it, else from reaching the app.
HEARTBEAT_MAX_WAIT_S = 2.0
# What the player is told to wait before sending again (whole seconds, as HTTP has it).
RETRY_AFTER_S = 2


class HeartbeatGate:
    """A per-process bound on heartbeat work, with a deadline for waiting on it."""

    def __init__(self, slots: int, max_wait_s: float) -> None:
        self.slots = threading.BoundedSemaphore(slots)
        self.max_wait_s = max_wait_s

    @contextlib.contextmanager
    def admit(self, arrived_at: float | None) -> Iterator[None]:
        """Run the block in a slot, or raise `Overloaded` when none frees up in time."""
        waited = max(0.0, time.time() - arrived_at) if arrived_at is not None else 0.0
        budget = self.max_wait_s - waited
        if budget <= 0 or not self.slots.acquire(timeout=budget):
            raise Overloaded(headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self.slots.release()


def heartbeat_gate() -> HeartbeatGate:
    """This process's gate (settings HEARTBEAT_MAX_IN_FLIGHT / HEARTBEAT_MAX_WAIT_S override
    the defaults, for tests and operators)."""
    gate = current_app.extensions.get("veriskill.heartbeat_gate")
    if gate is None:
        config = current_app.config
        gate = current_app.extensions.setdefault(
            "veriskill.heartbeat_gate",
            HeartbeatGate(
                int(config.get("HEARTBEAT_MAX_IN_FLIGHT", HEARTBEAT_MAX_IN_FLIGHT)),
                float(config.get("HEARTBEAT_MAX_WAIT_S", HEARTBEAT_MAX_WAIT_S)),
            ),
        )
    return gate


def request_start() -> float | None:
    """When the front proxy received the request (`X-Request-Start: t=<epoch>` in seconds, as
    nginx's $msec gives it, or in milli- or microseconds), or None. Not a secret: a client that
    forges it can only get its own heartbeat shed, or waited for like any other."""
    return parse_request_start(request.headers.get("X-Request-Start", ""))


def parse_request_start(header: str) -> float | None:
    raw = header.strip().removeprefix("t=")
    try:
        value = float(raw)
    except ValueError:
        return None
    if value > 1e14:
        value /= 1e6  # microseconds
    elif value > 1e11:
        value /= 1e3  # milliseconds
    return value if math.isfinite(value) else None


@bp.post("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_answer_check(check_id: int):
    user = current_api_user()
    frames = uploaded_files(
        "image",
        "frames",
        max_files=MAX_BURST_FRAMES,
        max_bytes=MAX_IMAGE_BYTES,
        too_large=verification.too_large(),
    )
    workflow.expire_check_if_due(user, check_id)
    db.session.commit()  # an expiry stands even though the late answer is refused
    answered = workflow.answer_check(user, check_id, [frame for frame in frames if frame])
    if answered.queued is not None:
        # The face model runs in a worker; the player polls GET until the verdict is in.
        job = jobs.enqueue(VERIFY_CHECK, answered.queued.id)
        db.session.commit()
        jobs.dispatch(job.id)
        return jsonify(verification.check_state(answered.check)), 202
    db.session.commit()
    verdict = answered.verdict
    if verdict is None:  # an answer not queued for a worker was judged here
        raise RuntimeError(f"check {check_id}: answer neither judged nor queued")
    return jsonify(
        {
            **verification.check_state(answered.check),
            "passed": verdict.passed,
            "code": verdict.code,
            "score": verdict.score,
            "retry": verdict.retry,
            "voided_s": round(answered.voided_s, 3),
        }
    )


@bp.get("/api/v1/checks/<int:check_id>")
@api_auth(Role.TRAINEE)
def api_check_state(check_id: int):
    return jsonify(verification.check_state(verification.check_for(current_api_user(), check_id)))


# A heartbeat already too late when it reaches the app is answered before Flask dispatches it
# (no session, no caller, no access line): under overload a shed must cost a small fraction of
# a heartbeat, or shedding itself fills the queue that made heartbeats late.
HEARTBEAT_PATH = re.compile(r"/api/v1/sessions/[0-9]+/heartbeats\Z")


class ShedLateHeartbeats:
    """WSGI middleware: 503 `overloaded` for a heartbeat that waited past HEARTBEAT_MAX_WAIT_S
    in front of the app; everything else passes through untouched."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.max_wait_s = float(app.config.get("HEARTBEAT_MAX_WAIT_S", HEARTBEAT_MAX_WAIT_S))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and HEARTBEAT_PATH.match(
            environ.get("PATH_INFO", "")
        ):
            arrived = parse_request_start(environ.get("HTTP_X_REQUEST_START", ""))
            if arrived is not None and time.time() - arrived > self.max_wait_s:
                return self.shed(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def shed(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The same answer as the route's, in the caller's language (app.i18n decides)."""
        with self.app.request_context(environ):
            error = Overloaded(headers={"Retry-After": str(RETRY_AFTER_S)})
            response = self.app.response_class(
                json.dumps({"error": error.to_dict()}, ensure_ascii=False),
                status=error.status,
                headers=error.headers,
                mimetype="application/json",
            )
            return response(environ, start_response)


@bp.record_once
def _shed_before_dispatch(state: BlueprintSetupState) -> None:
    """Wrap the app that registers this blueprint (its WSGI entry, outside Flask)."""
    app = cast(Flask, state.app)
    app.wsgi_app = ShedLateHeartbeats(app, app.wsgi_app)  # type: ignore[method-assign]
