"""Resumable video uploads: raw bytes in chunks with Content-Range, each chunk its own object.

The protocol: `PUT` chunk after chunk with `Content-Range: bytes a-b/total`, in order. The
server answers how many bytes it holds; after a broken connection the client asks
(`GET .../upload`) and resumes there. A chunk sent twice is acknowledged and ignored; a chunk
at any other offset is refused with the offset expected. The body streams to storage, hashed
on the way; the whole file is assembled (and hashed as a whole) by the pipeline.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from app.courses.models import Lesson, LessonStatus, UploadPart
from app.courses.pipeline import KEEPS_UPLOAD
from app.courses.service import require_editable
from app.db import lock_row, utcnow
from app.errors import BadRequest, Conflict, Invalid, PayloadTooLarge, UnsupportedMediaType
from app.extensions import db
from app.jobs import schedule
from app.media.service import storage
from media_pipeline.storage import Readable, StorageError, StorageFull, StorageUnavailable

RANGE_PATTERN = re.compile(r"^bytes (\d{1,15})-(\d{1,15})/(\d{1,15})$")
SNIFF_BYTES = 64


@dataclass(frozen=True)
class ChunkRange:
    start: int
    end: int  # inclusive
    total: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class UploadState:
    received: int
    total: int | None
    complete: bool


def parse_range(header: str | None, content_length: int | None) -> ChunkRange:
    """The chunk a request carries; without Content-Range the body is the whole file."""
    if content_length is None:
        raise BadRequest(_l("Send Content-Length with every chunk."), code="length_required")
    if header is None:
        if content_length == 0:
            raise Invalid(_l("The upload is empty."), code="empty_upload")
        return ChunkRange(0, content_length - 1, content_length)
    match = RANGE_PATTERN.match(header.strip())
    if not match:
        raise BadRequest(
            _l("Content-Range must look like 'bytes 0-1048575/73400320'."),
            code="bad_content_range",
        )
    start, end, total = (int(group) for group in match.groups())
    if total == 0:
        raise Invalid(_l("The upload is empty."), code="empty_upload")
    if end < start or end >= total:
        raise BadRequest(
            _l("The range does not fit inside the total size."), code="bad_content_range"
        )
    if content_length != end - start + 1:
        raise BadRequest(
            _l("The body length does not match Content-Range."), code="length_mismatch"
        )
    return ChunkRange(start, end, total)


def looks_like_video(head: bytes) -> bool:
    """A first look at the magic bytes of common video containers; ffprobe decides later."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return True  # ISO BMFF: MP4, MOV, 3GP
    return (
        head.startswith(
            (
                b"\x1a\x45\xdf\xa3",  # Matroska, WebM
                b"RIFF",  # AVI (checked by ffprobe later)
                b"FLV",
                b"\x00\x00\x01\xba",  # MPEG program stream
                b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF, WMV
                b"OggS",
            )
        )
        or head[:1] == b"\x47"
    )  # MPEG-TS sync byte


def state(lesson: Lesson) -> UploadState:
    total = lesson.upload_total
    return UploadState(
        received=lesson.upload_received,
        total=total,
        complete=total is not None and lesson.upload_received == total,
    )


def _kept_for_retry(lesson: Lesson, chunk: ChunkRange) -> bool:
    return (
        lesson.error_code in KEEPS_UPLOAD
        and bool(lesson.parts)
        and lesson.upload_total == chunk.total
        and lesson.upload_received == lesson.upload_total
        and chunk.start > 0
        and chunk.end < lesson.upload_received
    )


def _reset(lesson: Lesson) -> None:
    """Forget a previous upload or failure, so a new file starts from byte 0."""
    store = storage()
    for part in lesson.parts:
        store.delete(part.key)
    lesson.parts.clear()
    lesson.upload_received = 0
    lesson.upload_total = None
    lesson.source_sha256 = None
    lesson.error_code = lesson.error_message = None
    lesson.progress = 0.0
    db.session.flush()


def receive_chunk(lesson: Lesson, chunk: ChunkRange, body: Readable) -> UploadState:
    """Store one chunk; the caller commits, then dispatches the pipeline if it completed."""
    require_editable(lesson.course)
    cap = current_app.config["VIDEO_MAX_BYTES"]
    if chunk.total > cap:
        raise PayloadTooLarge(_l("Videos may be at most %(mb)d MB.", mb=cap // (1024 * 1024)))
    # Serialise chunks of one lesson.
    lock_row(db.session, Lesson, lesson.id)
    db.session.refresh(lesson)
    if lesson.status in (LessonStatus.QUEUED, LessonStatus.PROCESSING):
        raise Conflict(_l("The video is being processed."), code="processing")
    if lesson.status is LessonStatus.FAILED and _kept_for_retry(lesson, chunk):
        # Processing failed for want of storage and kept the upload: a chunk of it sent
        # again (any but the first, which starts a new upload) asks to process it again.
        lesson.status = LessonStatus.QUEUED
        lesson.error_code = lesson.error_message = None
        lesson.progress = 0.0
        db.session.flush()
        return state(lesson)
    if lesson.status in (LessonStatus.READY, LessonStatus.FAILED):
        if chunk.start != 0:
            raise Conflict(
                _l("Start a new upload at byte 0."), code="wrong_offset", expected_offset=0
            )
        _reset(lesson)
    current = state(lesson)
    if current.total is not None and current.received > 0 and chunk.total != current.total:
        raise Conflict(
            _l(
                "The total size differs from the upload in progress (%(total)d bytes).",
                total=current.total,
            ),
            code="total_changed",
            expected_total=current.total,
        )
    if chunk.end < current.received:
        return current  # a chunk sent again: we have it already
    if chunk.start != current.received:
        raise Conflict(
            _l("Send the chunk starting at byte %(offset)d.", offset=current.received),
            code="wrong_offset",
            expected_offset=current.received,
        )
    if chunk.start == 0:
        head = body.read(SNIFF_BYTES)
        if not looks_like_video(head):
            raise UnsupportedMediaType(
                _l("This is not a video file (MP4, MOV, WebM, MKV, AVI, FLV...)."),
                code="not_a_video",
            )
        body = _Prefixed(head, body)
    key = f"uploads/{lesson.media_id}/{chunk.start:016d}"
    try:
        stored = storage().put_stream(
            key, body, content_type="application/octet-stream", length=chunk.size
        )
    except (StorageFull, StorageUnavailable):
        # The store's fault, not the sender's: 507 or 503 (app.errors); nothing was stored
        # under key, and the chunks already held stay for the resume.
        raise
    except StorageError:
        storage().delete(key)
        raise BadRequest(
            _l("The chunk arrived incomplete; send it again."), code="incomplete_chunk"
        ) from None
    lesson.parts.append(
        UploadPart(offset=chunk.start, size=stored.size, sha256=stored.sha256, key=key)
    )
    lesson.upload_total = chunk.total
    lesson.upload_received = chunk.end + 1
    lesson.status = LessonStatus.UPLOADING
    done = lesson.upload_received == chunk.total
    if done:
        lesson.status = LessonStatus.QUEUED
    db.session.flush()
    return state(lesson)


# Abandoned uploads dropped per run, each in its own transaction (a lesson may hold hundreds
# of chunks); the rest go at the next turn.
ABANDONED_PER_RUN = 50


def _abandoned(cutoff: datetime) -> sa.ColumnElement[bool]:
    """An upload left unfinished (or kept after a failure for a retry that never came) and not
    touched since `cutoff`: it holds chunks nobody will assemble."""
    return sa.and_(
        Lesson.status.in_([LessonStatus.UPLOADING, LessonStatus.FAILED]),
        Lesson.updated_at < cutoff,
        sa.exists().where(UploadPart.lesson_id == Lesson.id),
    )


@schedule.register("drop_abandoned_uploads", "EXPIRY_SWEEP_S")
def drop_abandoned() -> int:
    """Delete the stored chunks of uploads not continued for UPLOAD_ABANDONED_S; the lesson
    awaits a new upload from byte 0. Returns how many uploads went."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["UPLOAD_ABANDONED_S"])
    ids = list(
        db.session.scalars(
            sa.select(Lesson.id)
            .where(_abandoned(cutoff))
            .order_by(Lesson.id)
            .limit(ABANDONED_PER_RUN)
        )
    )
    dropped = 0
    for lesson_id in ids:
        lock_row(db.session, Lesson, lesson_id)  # a chunk arriving now waits, or wins first
        if db.session.scalar(
            sa.select(Lesson.id).where(Lesson.id == lesson_id, _abandoned(cutoff))
        ):
            lesson = db.session.get(Lesson, lesson_id, populate_existing=True)
            assert lesson is not None
            _reset(lesson)
            lesson.status = LessonStatus.AWAITING_UPLOAD
            dropped += 1
        db.session.commit()
    return dropped


class _Prefixed(io.RawIOBase):
    """The sniffed bytes followed by the rest of the body, read as one stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0 or size >= len(self.head):
                data, self.head = self.head, b""
                more = self.rest.read(-1 if size < 0 else size - len(data))
                return data + (more or b"")
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)
