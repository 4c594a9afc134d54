"""Waiting for a worker in another process to write a job's outcome.

A job's work commits first (a lesson turns ready, a check's verdict shows) and the worker marks
the job done a moment later: a test that stops the worker as soon as it sees the work can catch
the job still 'running'. Stop it only once this returns.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.jobs.models import Job, JobStatus


def job_done(app: Flask, *criteria: Any, timeout_s: float = 30) -> None:
    """Wait until the job matching `criteria` says done (or the time is up: the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    with app.app_context():
        while time.monotonic() < deadline:
            job = db.session.scalars(sa.select(Job).where(*criteria)).first()
            if job is not None and job.status is JobStatus.DONE:
                break
            db.session.remove()
            time.sleep(0.1)
        db.session.remove()
