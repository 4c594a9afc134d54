"""The lesson pipeline job: assemble the upload, check it, transcode to HLS, publish outputs.

Each stage commits, and each is safe to run again after a crash: assembly rewrites the
same source object, the HLS output replaces the lesson's whole prefix, and a lesson that is
already ready is left alone. So a job cut off by a restart ends `ready`, once.

Only a fault of the file itself (not a video, truncated, too long...) throws the upload away.
When the machine fails instead (a full or unreachable disk or store, a job given up after its
retries) the lesson ends `failed` with that code and keeps its upload; sending any chunk of it
but the first again processes it again (app/courses/upload.py).
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import tempfile
from pathlib import Path

from flask import current_app

from app.courses.models import Lesson, LessonStatus
from app.extensions import db
from app.jobs.service import JobFailed, Progress, handler
from app.media.service import storage
from media_pipeline import video
from media_pipeline.storage import (
    StorageError,
    StorageFull,
    StorageUnavailable,
    content_type_for,
    storage_error_from_os,
)

log = logging.getLogger(__name__)
KIND = "transcode_lesson"
# Share of the progress bar given to each stage; transcoding is most of the work.
ASSEMBLE_SHARE, PROBE_SHARE, TRANSCODE_SHARE = 5.0, 5.0, 80.0


# ffmpeg's words for a disk that is full, as they end its stderr.
_FULL_DISK_MESSAGES = ("No space left on device", "Disk quota exceeded", "File too large")
# Failures of the machine, not of the file: the lesson keeps its upload for another try.
KEEPS_UPLOAD = frozenset({"storage_full", "storage_unavailable", "processing_error"})
NEARLY_FULL_BYTES = 4 * 1024 * 1024
_DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)


def _fail_lesson(lesson_id: int, code: str, message: str) -> None:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        return
    lesson.status = LessonStatus.FAILED
    lesson.error_code = code
    lesson.error_message = message[:2000]
    if code in KEEPS_UPLOAD:
        return  # the platform's upload is sound: keep every part for the retry
    # Nothing half-stored: the parts and the assembled source go; a new upload starts at 0.
    store = storage()
    for part in lesson.parts:
        store.delete(part.key)
    lesson.parts.clear()
    lesson.upload_received = 0
    lesson.upload_total = None
    store.delete(lesson.source_key)


def _disk_nearly_full(path: Path) -> bool:
    # ffmpeg's HLS muxer can drop a failed write and exit 0, leaving a playlist short: a
    # failure with the work disk all but full is taken for the full disk it most likely is.
    return shutil.disk_usage(path).free < NEARLY_FULL_BYTES


def _machine_fault(error: BaseException) -> StorageError | None:
    """The storage fault behind an error of a stage, or None when it is something else."""
    if isinstance(error, StorageFull | StorageUnavailable):
        return error
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        return storage_error_from_os(error, "the worker's disk")
    if isinstance(error, video.VideoError) and any(
        words in error.message for words in _FULL_DISK_MESSAGES
    ):
        return StorageFull(f"the worker's disk: {error.message}")
    return None


@handler(KIND, on_give_up=_fail_lesson)
def transcode_lesson(lesson_id: int, report: Progress) -> None:
    try:
        _transcode(lesson_id, report)
    except Exception as error:
        fault = _machine_fault(error)
        if fault is None:
            raise
        # Retrying at once would meet the same full or missing disk: the job ends with the
        # code, the upload stays, and the platform (or an operator) starts it again later.
        db.session.rollback()
        code = "storage_full" if isinstance(fault, StorageFull) else "storage_unavailable"
        log.error("lesson %s: %s, upload kept: %s", lesson_id, code, fault)
        _fail_lesson(lesson_id, code, str(fault))
        db.session.commit()
        raise JobFailed(code, str(fault)) from error


def _transcode(lesson_id: int, report: Progress) -> None:
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
            if _machine_fault(error) is not None:
                raise
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
            if error.code != "timeout" and _disk_nearly_full(Path(work)):
                raise StorageFull(f"the worker's disk is full: {error.message}") from error
            if error.code == "timeout" or _machine_fault(error) is not None:
                raise  # an overloaded worker: retried, then given up; a full disk: kept
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
