"""The Courses and Lessons operations of the API document: what platforms push in, and uploads."""

from __future__ import annotations

from app.courses.models import LEVEL_NAMES_ZH, CourseLevel, CourseStatus, LessonStatus
from app.identity.models import Role
from app.openapi.spec import (
    PLATFORM,
    Endpoint,
    Schema,
    array,
    header,
    integer,
    json_request,
    json_response,
    nullable,
    obj,
    one_of,
    ref,
    string,
)
from media_pipeline.limits import MAX_CAPTION_BYTES, MIB

LEVEL_INPUTS = [*LEVEL_NAMES_ZH.values(), *(level.value for level in CourseLevel)]

UPLOAD_PROTOCOL = """\
Send the video as raw bytes, in order, one `PUT` per chunk, each with
`Content-Range: bytes <first>-<last>/<total>` (inclusive byte positions, as in
`bytes 0-1048575/73400320`) and a `Content-Length` equal to the chunk's size. A small file may
go in one request without `Content-Range`.

- Chunks may be at most `UPLOAD_CHUNK_MAX_BYTES` (64 MiB by default); the whole video at most
`VIDEO_MAX_BYTES` (4 GiB by default), else `too_large`.
- The answer says how many bytes the server holds (`received_bytes`): `200` while more are
expected, `202` once the last byte is in and processing has been queued.
- After a broken connection, `GET /api/v1/lessons/{lesson_id}/upload` and continue at
`received_bytes`. A chunk sent again is acknowledged (`200`) and ignored; a chunk at any other
offset is refused with `409 wrong_offset` and `expected_offset`.
- The first bytes must look like a video container (MP4, MOV, WebM, MKV, AVI, FLV, MPEG-TS...),
else `415 not_a_video`; the full check runs during processing (see the lesson's `error`).
- Once the lesson is `ready` or `failed`, a new upload starting at byte 0 replaces the video.
- While the lesson is `queued` or `processing`, uploads are refused with `409 processing`."""

SCHEMAS: dict[str, Schema] = {
    "CourseStatus": one_of(
        CourseStatus,
        "`draft` and `rejected` courses can change; `in_review`, `published` and `withdrawn` "
        "are locked (`course_locked`), except that captions may be replaced in review and "
        "after publication.",
    ),
    "LessonStatus": one_of(
        LessonStatus,
        "`awaiting_upload` → `uploading` → `queued` → `processing` → `ready`, or `failed` "
        "(see `error`); a new upload from byte 0 starts over.",
    ),
    "NewCourse": obj(
        {
            "occupation_code": string(
                "A detailed occupation (level 4), e.g. `6-31-01-03`.", examples=["6-31-01-03"]
            ),
            "title": string("At most 200 characters.", minLength=1, maxLength=200),
            "hours": {
                "type": ["number", "string"],
                "description": "Nominal class hours from 0.5 to 2000, kept to one decimal; "
                "a numeric string is accepted.",
                "minimum": 0.5,
                "maximum": 2000,
                "examples": [16],
            },
        },
        {
            "level": nullable(
                one_of(
                    [*LEVEL_INPUTS, ""], "Qualification level, by Chinese name or code; optional."
                )
            ),
            "description": string("At most 20,000 characters.", maxLength=20_000),
            "district": nullable(
                string(
                    "Code of the district where the course is offered, from "
                    "`GET /api/v1/districts`; default: the platform's district."
                )
            ),
            "programme_id": nullable(
                integer("The special programme the course serves; it must cover the occupation.")
            ),
        },
        closed=False,
    ),
    "CourseCreated": obj({"id": integer(), "status": ref("CourseStatus")}),
    "CourseSubmitted": obj({"id": integer(), "status": ref("CourseStatus")}),
    "CoverSet": obj({"id": integer(), "cover": {"const": True}}),
    "LessonSummary": obj(
        {
            "id": integer(),
            "position": integer(minimum=1),
            "title": string(),
            "status": ref("LessonStatus"),
        }
    ),
    "Course": obj(
        {
            "id": integer(),
            "status": ref("CourseStatus"),
            "title": string(),
            "occupation_code": string(),
            "occupation_name": string(),
            "level": nullable(one_of(CourseLevel)),
            "level_name": nullable(one_of(LEVEL_NAMES_ZH.values(), "The level's Chinese name.")),
            "hours": {"type": "number", "description": "Nominal class hours."},
            "description": string(),
            "district": nullable(string("District code; null: offered city-wide.")),
            "programme_id": nullable(integer("The special programme it serves.")),
            "reject_reason": nullable(string("Why the bureau rejected it, when it did.")),
            "lessons": array(ref("LessonSummary"), "In order of position."),
        }
    ),
    "CourseList": obj({"items": array(ref("Course"), "The platform's courses, oldest first.")}),
    "NewLesson": obj(
        {"title": string("At most 200 characters.", minLength=1, maxLength=200)},
        {
            "position": integer(
                "1 to (number of lessons + 1); later lessons move down. Default: last.", minimum=1
            )
        },
        closed=False,
    ),
    "LessonCreated": obj({"id": integer(), "position": integer(minimum=1)}),
    "Rendition": obj(
        {
            "name": string("e.g. `360p`."),
            "width": integer(),
            "height": integer(),
            "bandwidth": integer("Peak bit rate, bits per second."),
        }
    ),
    "CaptionTrack": obj(
        {
            "language": string("BCP 47 tag, e.g. `zh-CN`."),
            "label": string("Shown in the player's menu."),
        }
    ),
    "Lesson": obj(
        {
            "id": integer(),
            "course_id": integer(),
            "position": integer(minimum=1),
            "title": string(),
            "status": ref("LessonStatus"),
            "progress": {"type": "number", "minimum": 0, "maximum": 100, "description": "Percent."},
            "duration_s": nullable({"type": "number", "description": "Once processed."}),
            "error": nullable(
                obj(
                    {"code": string(), "message": string()},
                    description="Why processing failed, e.g. `not_a_video`, `truncated`, "
                    "`unsupported_codec`, `too_long`; upload a new file from byte 0.",
                )
            ),
            "playlist_url": nullable(
                string("Signed HLS master playlist, short-lived; `ready` only.", format="uri")
            ),
            "poster_url": nullable(string("Signed poster image; `ready` only.", format="uri")),
            "renditions": array(ref("Rendition")),
            "captions": array(ref("CaptionTrack")),
            "upload": obj(
                {
                    "received_bytes": integer(minimum=0),
                    "total_bytes": nullable(integer(minimum=1)),
                }
            ),
        }
    ),
    "UploadState": obj(
        {
            "received_bytes": integer(
                "Bytes stored so far: the offset the next chunk starts at.", minimum=0
            ),
            "total_bytes": nullable(integer("Total size announced by Content-Range.", minimum=1)),
            "status": ref("LessonStatus"),
        }
    ),
    "CaptionUpload": obj(
        {
            "file": string(
                f"SRT or WebVTT, UTF-8, at most {MAX_CAPTION_BYTES // MIB} MB; stored as WebVTT.",
                contentMediaType="text/vtt",
            ),
            "language": string("BCP 47 tag such as `zh-CN` or `en`; replaces that language."),
        },
        closed=False,
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "post",
        "/api/v1/courses",
        "Courses",
        "Create a course",
        "The course starts as a `draft` of the calling platform.",
        roles=PLATFORM,
        body=json_request(
            "NewCourse",
            {
                "occupation_code": "6-31-01-03",
                "title": "低压电工作业",
                "hours": 16,
                "level": "初级",
            },
        ),
        responses={201: json_response("CourseCreated", "Created.")},
        errors=("invalid",),
    ),
    Endpoint(
        "get",
        "/api/v1/courses",
        "Courses",
        "List the platform's courses",
        roles=PLATFORM,
        responses={200: json_response("CourseList", "Every course of the calling platform.")},
    ),
    Endpoint(
        "get",
        "/api/v1/courses/{course_id}",
        "Courses",
        "One course with its lessons",
        roles=PLATFORM,
        responses={200: json_response("Course", "The course.")},
    ),
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/submit",
        "Courses",
        "Submit a course for review",
        "A `draft` or `rejected` course goes `in_review` once every lesson is `ready`. "
        "It is locked until the bureau decides.",
        roles=PLATFORM,
        responses={200: json_response("CourseSubmitted", "In review.")},
        errors=("course_locked", "no_lessons", "lessons_not_ready"),
    ),
    Endpoint(
        "put",
        "/api/v1/courses/{course_id}/cover",
        "Courses",
        "Set the cover image",
        "The raw JPEG or PNG bytes, at most 5 MB; the content decides, not the Content-Type.",
        roles=PLATFORM,
        body={
            "required": True,
            "content": {
                kind: {"schema": string(contentMediaType=kind)}
                for kind in ("image/jpeg", "image/png")
            },
        },
        responses={200: json_response("CoverSet", "Stored.")},
        errors=("course_locked", "too_large", "not_an_image"),
        storage=True,
    ),
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/lessons",
        "Lessons",
        "Add a lesson",
        "The lesson waits for its video (`awaiting_upload`).",
        roles=PLATFORM,
        body=json_request("NewLesson", {"title": "第一课 安全用电"}),
        responses={201: json_response("LessonCreated", "Created.")},
        errors=("invalid", "course_locked"),
    ),
    Endpoint(
        "get",
        "/api/v1/lessons/{lesson_id}",
        "Lessons",
        "One lesson: processing state, playback and captions",
        "Platforms see their own lessons; auditors and admins every lesson. Poll this while "
        "the lesson is `queued` or `processing`.",
        roles=(Role.PLATFORM, Role.AUDITOR, Role.ADMIN),
        responses={200: json_response("Lesson", "The lesson.")},
        storage=True,
    ),
    Endpoint(
        "put",
        "/api/v1/lessons/{lesson_id}/video",
        "Lessons",
        "Upload the video, resumably, in chunks",
        UPLOAD_PROTOCOL,
        roles=PLATFORM,
        parameters=(
            header(
                "Content-Range",
                string(pattern=r"^bytes \d+-\d+/\d+$"),
                "`bytes <first>-<last>/<total>`, inclusive. Leave out to send the whole file.",
            ),
            header(
                "Content-Length",
                integer(minimum=0),
                "The chunk's size in bytes; must equal `<last> - <first> + 1`.",
                required=True,
            ),
        ),
        body={
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": string(
                        "The chunk's raw bytes.", contentMediaType="application/octet-stream"
                    )
                }
            },
        },
        responses={
            200: json_response("UploadState", "Stored; send the chunk at `received_bytes`."),
            202: json_response("UploadState", "The whole file is in; processing is queued."),
        },
        errors=(
            "length_required",
            "bad_content_range",
            "length_mismatch",
            "incomplete_chunk",
            "course_locked",
            "wrong_offset",
            "total_changed",
            "processing",
            "too_large",
            "not_a_video",
            "empty_upload",
        ),
        storage=True,
    ),
    Endpoint(
        "get",
        "/api/v1/lessons/{lesson_id}/upload",
        "Lessons",
        "Where an upload stands",
        "Ask after a broken connection, then resume at `received_bytes`.",
        roles=PLATFORM,
        responses={200: json_response("UploadState", "The upload's state.")},
    ),
    Endpoint(
        "post",
        "/api/v1/lessons/{lesson_id}/captions",
        "Lessons",
        "Add captions",
        "SRT or WebVTT as multipart field `file`, with `language`. Stored as WebVTT and served "
        "with the HLS playlist; a second file in the same language replaces the first. "
        "Captions are an accessibility fix: unlike the rest of a course they can be replaced "
        "while it is in review or published (the course keeps its status and the admins see "
        "the change); only a withdrawn course refuses them (`course_locked`).",
        roles=PLATFORM,
        body={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": ref("CaptionUpload"),
                    "encoding": {"file": {"contentType": "text/vtt, application/x-subrip"}},
                }
            },
        },
        responses={201: json_response("CaptionTrack", "Stored.")},
        errors=("invalid", "invalid_captions", "too_large", "course_locked"),
        storage=True,
    ),
]
