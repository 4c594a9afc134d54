"""The lesson pipeline job: assemble the upload, check it, transcode to HLS, publish outputs.

Each stage commits, and each is safe to run again after a crash: assembly rewrites the
same source object, the HLS output replaces the lesson's whole prefix, and a lesson that is
already ready is left alone. So a job cut off by a restart ends `ready`, once.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from flask import current_app

from app.courses.models import Lesson, LessonStatus
from app.extensions import db
from app.jobs.service import JobFailed, Progress, handler
from app.media.service import storage
from media_pipeline import video
from media_pipeline.storage import content_type_for

log = logging.getLogger(__name__)
KIND = "transcode_lesson"
# Share of the progress bar given to each stage; transcoding is most of the work.
ASSEMBLE_SHARE, PROBE_SHARE, TRANSCODE_SHARE = 5.0, 5.0, 80.0


def _fail_lesson(lesson_id: int, code: str, message: str) -> None:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        return
    lesson.status = LessonStatus.FAILED
    lesson.error_code = code
    lesson.error_message = message[:2000]
    # Nothing half-stored: the parts and the assembled source go; a new upload starts at 0.
    store = storage()
    for part in lesson.parts:
        store.delete(part.key)
    lesson.parts.clear()
    lesson.upload_received = 0
    lesson.upload_total = None
    store.delete(lesson.source_key)


@handler(KIND, on_give_up=_fail_lesson)
def transcode_lesson(lesson_id: int, report: Progress) -> None:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.status is LessonStatus.READY:
        return
    if lesson.upload_total is None or lesson.upload_received != lesson.upload_total:
        raise JobFailed("upload_incomplete", "the upload is not complete")
    lesson.status = LessonStatus.PROCESSING
    lesson.progress = 0.0
    db.session.commit()

    shown = [0.0]

    def progress(percent: float) -> None:
        report(percent)
        if percent - shown[0] >= 1:  # a commit per visible step, not per ffmpeg line
            shown[0] = percent
            lesson.progress = round(percent, 1)
            db.session.commit()

    store = storage()
    keys = [part.key for part in lesson.parts]
    assembled = store.concat(keys, lesson.source_key, "application/octet-stream")
    lesson.source_sha256 = assembled.sha256
    progress(ASSEMBLE_SHARE)

    with tempfile.TemporaryDirectory(prefix="veriskill-transcode-") as work:
        source = Path(work) / "source"
        store.download_to(lesson.source_key, source)
        try:
            info = video.probe(source, max_duration_s=current_app.config["VIDEO_MAX_DURATION_S"])
        except video.VideoError as error:
            _fail_lesson(lesson_id, error.code, error.message)
            db.session.commit()
            raise JobFailed(error.code, error.message) from None
        progress(ASSEMBLE_SHARE + PROBE_SHARE)

        out = Path(work) / "hls"
        base = ASSEMBLE_SHARE + PROBE_SHARE
        try:
            result = video.transcode_hls(
                source,
                out,
                segment_s=current_app.config["HLS_SEGMENT_S"],
                timeout_s=video.default_transcode_timeout_s(info.duration_s),
                preset=current_app.config["TRANSCODE_PRESET"],
                on_progress=lambda pct: progress(base + pct * TRANSCODE_SHARE / 100),
            )
            poster = video.make_poster(source, Path(work) / "poster.jpg")
        except video.VideoError as error:
            if error.code == "timeout":
                raise  # an overloaded worker: retried, then given up
            _fail_lesson(lesson_id, error.code, error.message)
            db.session.commit()
            raise JobFailed(error.code, error.message) from None
        progress(base + TRANSCODE_SHARE)

        # Replace the whole output, so a re-run never leaves two sets of segments.
        store.delete_prefix(lesson.hls_prefix)
        store.upload_dir(lesson.hls_prefix, result.out_dir, content_type_for)
        store.put_file(lesson.poster_key, poster, "image/jpeg")

    lesson.duration_s = round(result.duration_s, 3)
    lesson.width, lesson.height = info.width, info.height
    lesson.mpegts_start_pts = result.mpegts_start_pts
    lesson.renditions = json.dumps(
        [
            {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth}
            for r in result.renditions
        ]
    )
    lesson.status = LessonStatus.READY
    lesson.progress = 100.0
    lesson.error_code = lesson.error_message = None
    for part in lesson.parts:
        store.delete(part.key)
    lesson.parts.clear()
    db.session.commit()
    log.info(
        "lesson %s ready: %.1f s, %d renditions",
        lesson_id,
        lesson.duration_s,
        len(result.renditions),
    )
