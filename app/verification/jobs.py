"""The `reencode_faces` job: move every reference face to the configured face model."""

from __future__ import annotations

import logging

from app.jobs.service import Progress, handler
from app.verification import service

log = logging.getLogger(__name__)


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
