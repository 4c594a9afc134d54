"""Playback: signed playlists and segments, captions, and real players (ffprobe, hls.js)."""

import io
import json
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.courses.models import CaptionChange, Course, CourseStatus
from app.extensions import db
from app.identity.models import Role
from app.jobs.service import run_pending
from media_pipeline import video
from media_pipeline.storage import MinioStorage
from tests.browser import chromium, live_server
from tests.conftest import bearer, csrf_from, make_platform, make_staff, sign_in_page
from tests.courses.helpers import CLIP, add_lesson, create_course, upload_whole

SRT = "1\n00:00:00,500 --> 00:00:03,000\n安全第一\n\n2\n00:00:03,500 --> 00:00:06,000\n规范操作\n"


def ready_lesson(client, app) -> tuple[str, int]:
    token = make_platform(app)
    lesson_id = add_lesson(client, token, create_course(client, token))
    upload_whole(client, token, lesson_id, CLIP.read_bytes())
    with app.app_context():
        assert run_pending() == 1
    return token, lesson_id


def lesson_json(client, token, lesson_id):
    return client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_playlists_are_signed_and_every_segment_uri_too(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    url = lesson_json(client, token, lesson_id)["playlist_url"]
    master = client.get(path_of(url))
    assert master.status_code == 200
    assert master.mimetype == "application/vnd.apple.mpegurl"
    assert master.headers["Cache-Control"] == "private, no-store"
    variants = [
        line
        for line in master.get_data(as_text=True).splitlines()
        if line and not line.startswith("#")
    ]
    assert variants and all("sig=" in line for line in variants)
    base = urlsplit(url).path.rsplit("/", 1)[0]
    media = client.get(f"{base}/{variants[0]}").get_data(as_text=True)
    segments = [line for line in media.splitlines() if line and not line.startswith("#")]
    assert len(segments) >= 2
    assert all("/media/o/hls/" in s and "sig=" in s for s in segments)

    segment = client.get(path_of(segments[0]), headers={"Range": "bytes=0-187"})
    assert segment.status_code == 206
    assert segment.mimetype == "video/mp2t"
    assert segment.data[0] == 0x47 and len(segment.data) == 188  # an MPEG-TS packet
    segment.close()

    unsigned = path_of(segments[0]).split("?")[0]
    assert client.get(unsigned).status_code == 403
    assert client.get(path_of(url).split("?")[0]).status_code == 403


def test_tampered_and_expired_signatures_are_refused(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    url = path_of(lesson_json(client, token, lesson_id)["playlist_url"])
    query = parse_qs(urlsplit(url).query)
    path = urlsplit(url).path
    forged = client.get(f"{path}?exp={int(query['exp'][0]) + 999}&sig={query['sig'][0]}")
    assert forged.status_code == 403
    other = client.get(
        path.replace(f"/{lesson_id}/", f"/{lesson_id + 1}/") + "?" + urlsplit(url).query
    )
    assert other.status_code in (403, 404)
    fresh_app.config["MEDIA_URL_TTL_S"] = -100  # every new URL is born expired
    try:
        expired = path_of(lesson_json(client, token, lesson_id)["playlist_url"])
    finally:
        fresh_app.config["MEDIA_URL_TTL_S"] = 900
    assert client.get(expired).status_code == 403


def test_captions_join_the_master_playlist(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/captions",
        data={"language": "zh-CN", "file": (io.BytesIO(SRT.encode()), "lesson.srt")},
        headers=bearer(token),
    )
    assert response.status_code == 201
    assert response.get_json() == {"language": "zh-CN", "label": "简体中文"}
    body = lesson_json(client, token, lesson_id)
    assert body["captions"] == [{"language": "zh-CN", "label": "简体中文"}]
    master = client.get(path_of(body["playlist_url"])).get_data(as_text=True)
    assert "TYPE=SUBTITLES" in master and 'LANGUAGE="zh-CN"' in master
    assert 'SUBTITLES="subs"' in master
    base = urlsplit(body["playlist_url"]).path.rsplit("/", 1)[0]
    sub_uri = master.split("TYPE=SUBTITLES")[1].split('URI="')[1].split('"')[0]
    playlist = client.get(f"{base}/{sub_uri.replace('&amp;', '&')}").get_data(as_text=True)
    vtt_url = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    response = client.get(path_of(vtt_url))
    vtt = response.get_data(as_text=True)
    response.close()
    assert vtt.startswith("WEBVTT") and "X-TIMESTAMP-MAP" in vtt and "安全第一" in vtt


def post_captions(client, token, lesson_id, text: str, language: str = "zh-CN"):
    return client.post(
        f"/api/v1/lessons/{lesson_id}/captions",
        data={"language": language, "file": (io.BytesIO(text.encode()), "lesson.srt")},
        headers=bearer(token),
    )


def served_vtt(client, token, lesson_id) -> str:
    body = lesson_json(client, token, lesson_id)
    master = client.get(path_of(body["playlist_url"])).get_data(as_text=True)
    base = urlsplit(body["playlist_url"]).path.rsplit("/", 1)[0]
    sub_uri = master.split("TYPE=SUBTITLES")[1].split('URI="')[1].split('"')[0]
    playlist = client.get(f"{base}/{sub_uri.replace('&amp;', '&')}").get_data(as_text=True)
    vtt_url = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    response = client.get(path_of(vtt_url))
    try:
        return response.get_data(as_text=True)
    finally:
        response.close()


def test_captions_of_a_submitted_course_are_replaced_and_admins_see_it(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    course_id = lesson_json(client, token, lesson_id)["course_id"]
    assert post_captions(client, token, lesson_id, SRT).status_code == 201
    assert (
        client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token)).status_code == 200
    )
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(CaptionChange.id))) == 0

    fixed = SRT.replace("规范操作", "规范操作，持证上岗")
    assert post_captions(client, token, lesson_id, fixed).status_code == 201
    assert post_captions(client, token, lesson_id, fixed).status_code == 201  # the same again
    course = client.get(f"/api/v1/courses/{course_id}", headers=bearer(token)).get_json()
    assert course["status"] == "in_review"  # no round trip through rejection
    assert "持证上岗" in served_vtt(client, token, lesson_id)
    with fresh_app.app_context():
        changes = db.session.scalars(sa.select(CaptionChange)).all()
        assert len(changes) == 1
        assert changes[0].previous_sha256 and changes[0].sha256 != changes[0].previous_sha256
        assert changes[0].cue_count == 2
        assert changes[0].course_status is CourseStatus.IN_REVIEW
        actions = db.session.scalars(sa.select(AuditEntry.action)).all()
        assert "course.captions_replaced" in actions

    make_staff(fresh_app, Role.ADMIN, "chief")
    sign_in_page(client, "chief")
    listing = client.get("/admin/courses").get_data(as_text=True)
    assert f'data-caption-changes="{course_id}"' in listing
    page = client.get(f"/admin/courses/{course_id}").get_data(as_text=True)
    assert "data-caption-change=" in page and "第一课 安全用电" in page
    acknowledged = client.post(
        f"/admin/courses/{course_id}/caption-changes/acknowledge",
        data={"csrf_token": csrf_from(page)},
    )
    assert acknowledged.status_code == 302
    assert f'data-caption-changes="{course_id}"' not in client.get("/admin/courses").get_data(
        as_text=True
    )
    with fresh_app.app_context():
        change = db.session.scalars(sa.select(CaptionChange)).one()
        assert change.acknowledged_at is not None and change.acknowledged_by_id is not None


def test_captions_of_a_withdrawn_course_stay_locked(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    course_id = lesson_json(client, token, lesson_id)["course_id"]
    client.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    with fresh_app.app_context():
        course = db.session.get(Course, course_id)
        course.status = CourseStatus.WITHDRAWN
        db.session.commit()
    response = post_captions(client, token, lesson_id, SRT)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "course_locked"
    assert lesson_json(client, token, lesson_id)["captions"] == []
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(CaptionChange.id))) == 0


@pytest.mark.parametrize(
    ("language", "content", "code"),
    [
        ("zh-CN", b"not captions at all", "invalid_captions"),
        ("中文", SRT.encode(), "invalid"),
        ("en", None, "invalid"),
    ],
)
def test_bad_captions_are_422(client, fresh_app, language, content, code):
    token = make_platform(fresh_app)
    lesson_id = add_lesson(client, token, create_course(client, token))
    form = {"language": language}
    if content is not None:
        form["file"] = (io.BytesIO(content), "x.srt")
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/captions", data=form, headers=bearer(token)
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code


def test_refused_captions_name_the_line_at_fault(client, fresh_app):
    token = make_platform(fresh_app)
    lesson_id = add_lesson(client, token, create_course(client, token))
    bad = "1\r\n00:00:01,000 -> 00:00:02,000\r\n第一句\r\n".encode()
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/captions",
        data={"language": "zh-CN", "file": (io.BytesIO(bad), "x.srt")},
        headers=bearer(token),
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_captions"
    assert "2" in error["message"] and "00:00:01,000 --> 00:00:04,000" in error["message"]
    assert lesson_json(client, token, lesson_id)["captions"] == []


@pytest.mark.slow
def test_ffprobe_plays_the_signed_playlist(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    with live_server(fresh_app) as base:
        url = base + path_of(lesson_json(client, token, lesson_id)["playlist_url"])
        result = subprocess.run(
            [
                video.ffprobe_path(),
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=codec_name",
                "-of",
                "json",
                url,
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
    info = json.loads(result.stdout)
    assert abs(float(info["format"]["duration"]) - 10.0) < 0.7
    assert {s["codec_name"] for s in info["streams"]} >= {"h264", "aac"}


@pytest.mark.slow
def test_minio_backend_serves_segments_by_presigned_url(client, fresh_app, moto):
    store = MinioStorage(
        moto.endpoint,
        "testing",
        "testing",
        f"play-{time.time_ns()}",
        secure=False,
        region="us-east-1",
    )
    local = fresh_app.extensions["veriskill.storage"]
    fresh_app.extensions["veriskill.storage"] = store
    try:
        token, lesson_id = ready_lesson(client, fresh_app)
        url = lesson_json(client, token, lesson_id)["playlist_url"]
        master = client.get(path_of(url)).get_data(as_text=True)
        variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
        base = urlsplit(url).path.rsplit("/", 1)[0]
        media = client.get(f"{base}/{variant}").get_data(as_text=True)
        segment = next(line for line in media.splitlines() if line and not line.startswith("#"))
        assert segment.startswith(f"http://{moto.endpoint}/") and "X-Amz-Signature=" in segment
        import urllib.request

        with urllib.request.urlopen(segment, timeout=10) as response:  # noqa: S310 - loopback
            assert response.read(1) == b"\x47"
    finally:
        fresh_app.extensions["veriskill.storage"] = local


@pytest.mark.browser
@pytest.mark.slow
def test_hls_js_plays_the_lesson_in_chromium(client, fresh_app):
    _token, lesson_id = ready_lesson(client, fresh_app)
    make_staff(fresh_app, Role.ADMIN, "chief")
    with chromium() as browser, live_server(fresh_app) as base:
        page = browser.new_page(viewport={"width": 360, "height": 740})
        page.goto(f"{base}/login")
        page.fill("#f-login", "chief")
        page.fill("#f-password", "Audit2026ok")
        page.click("button[type=submit].wide")
        page.goto(f"{base}/admin/lessons/{lesson_id}/preview")
        page.evaluate(
            "() => { const v = document.querySelector('video'); v.muted = true; "
            "return v.play().catch(() => null); }"
        )
        page.wait_for_function(
            "() => document.querySelector('video').currentTime > 2", timeout=30_000
        )
        assert page.evaluate("window.Hls && Hls.isSupported()")
        assert page.locator("#preview-error").is_hidden()
