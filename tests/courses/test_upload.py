"""Resumable uploads and validation by content: every bad input gets its own clear error."""

import contextlib
import http.client
import socket
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.courses.models import Lesson, UploadPart
from app.extensions import db
from app.jobs.service import run_pending
from media_pipeline import video
from tests.browser import live_server
from tests.conftest import bearer, make_platform
from tests.courses.helpers import CLIP, add_lesson, create_course, put_chunk, upload_whole
from tests.full_disk import fill, small_disk


@pytest.fixture
def lesson(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    return token, add_lesson(client, token, course_id)


def stored_files(app) -> list[str]:
    from pathlib import Path

    root = Path(app.config["STORAGE_ROOT"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload_state(client, token, lesson_id):
    return client.get(f"/api/v1/lessons/{lesson_id}/upload", headers=bearer(token)).get_json()


def send_partial_chunk(
    base: str, token: str, lesson_id: int, data: bytes, start: int, total: int, sent: int
) -> None:
    """Announce a whole chunk, send only `sent` bytes of it, and drop the connection."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port)) as conn:
        head = (
            f"PUT /api/v1/lessons/{lesson_id}/video HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
            f"Content-Range: bytes {start}-{start + len(data) - 1}/{total}\r\n\r\n"
        )
        conn.sendall(head.encode() + data[:sent])
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            conn.recv(1024)


def test_upload_resumes_after_a_dropped_connection_and_ends_ready(client, fresh_app, lesson):
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    third = len(data) // 3 + 1
    assert put_chunk(client, token, lesson_id, data[:third], 0, len(data)).status_code == 200
    with live_server(fresh_app) as base:
        send_partial_chunk(
            base, token, lesson_id, data[third : 2 * third], third, len(data), sent=third // 2
        )
    # The broken chunk left nothing behind; the server says where to resume.
    assert upload_state(client, token, lesson_id) == {
        "received_bytes": third,
        "total_bytes": len(data),
        "status": "uploading",
    }
    assert len([f for f in stored_files(fresh_app) if f.startswith("uploads/")]) == 1
    for start in (third, 2 * third):
        response = put_chunk(
            client, token, lesson_id, data[start : start + third], start, len(data)
        )
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    with fresh_app.app_context():
        assert run_pending() == 1
    body = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()
    assert body["status"] == "ready" and body["progress"] == 100
    assert body["error"] is None
    assert abs(body["duration_s"] - 10.0) < 0.6
    assert [r["height"] for r in body["renditions"]] == [360]  # never above the source
    with fresh_app.app_context():
        row = db.session.get(Lesson, lesson_id)
        import hashlib

        assert row.source_sha256 == hashlib.sha256(data).hexdigest()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UploadPart)) == 0
    files = stored_files(fresh_app)
    assert not [f for f in files if f.startswith("uploads/")]  # parts are gone once assembled
    assert any(f.endswith("master.m3u8") for f in files)
    assert any(f.startswith("posters/") for f in files)


def test_chunk_sent_twice_is_harmless(client, lesson):
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    half = len(data) // 2
    first = put_chunk(client, token, lesson_id, data[:half], 0, len(data))
    again = put_chunk(client, token, lesson_id, data[:half], 0, len(data))
    assert first.get_json() == again.get_json()
    assert again.status_code == 200 and again.get_json()["received_bytes"] == half


def test_chunk_at_the_wrong_offset_is_409_with_expected_offset(client, lesson):
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    put_chunk(client, token, lesson_id, data[:1000], 0, len(data))
    response = put_chunk(client, token, lesson_id, data[5000:6000], 5000, len(data))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "wrong_offset" and error["expected_offset"] == 1000


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ("text", 415, "not_a_video"),
        ("jpeg", 415, "not_a_video"),
        ("empty", 422, "empty_upload"),
    ],
)
def test_non_videos_are_refused_at_upload_and_nothing_is_stored(
    client, fresh_app, lesson, tmp_path, data, status, code
):
    token, lesson_id = lesson
    if data == "text":
        body = "这不是视频，是一个文本文件。\n".encode() * 50
    elif data == "jpeg":
        body = make_jpeg(tmp_path)
    else:
        body = b""
    response = client.put(
        f"/api/v1/lessons/{lesson_id}/video",
        data=body,
        headers={**bearer(token), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert stored_files(fresh_app) == []
    assert upload_state(client, token, lesson_id)["received_bytes"] == 0


def make_jpeg(tmp_path) -> bytes:
    import subprocess

    out = tmp_path / "photo.jpg"
    subprocess.run(
        [
            video.ffmpeg_path(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def test_range_past_the_size_cap_is_413(client, fresh_app, lesson):
    token, lesson_id = lesson
    fresh_app.config["VIDEO_MAX_BYTES"] = 1000
    try:
        response = put_chunk(client, token, lesson_id, CLIP.read_bytes()[:500], 0, 5000)
    finally:
        fresh_app.config["VIDEO_MAX_BYTES"] = 4 * 1024**3
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert stored_files(fresh_app) == []


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("bytes 0-99/50", "bad_content_range"),
        ("bytes=0-9/10", "bad_content_range"),
        ("bytes 10-5/100", "bad_content_range"),
        ("bytes 0-9/100", "length_mismatch"),
    ],
)
def test_malformed_content_range_is_400(client, lesson, header, code):
    token, lesson_id = lesson
    response = client.put(
        f"/api/v1/lessons/{lesson_id}/video",
        data=b"\x00" * 20,
        headers={**bearer(token), "Content-Range": header},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_truncated_mp4_ends_failed_as_truncated_and_leaves_nothing(client, fresh_app, lesson):
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    upload_whole(client, token, lesson_id, data[: len(data) // 2], chunks=2)
    with fresh_app.app_context():
        run_pending()
    body = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "truncated"
    assert body["playlist_url"] is None
    assert stored_files(fresh_app) == []  # neither parts nor the assembled source remain
    # A corrected upload starts again at byte 0 and succeeds.
    upload_whole(client, token, lesson_id, data)
    with fresh_app.app_context():
        run_pending()
    assert (
        client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()["status"]
        == "ready"
    )


def test_audio_only_file_fails_as_no_video_stream(client, fresh_app, lesson, tmp_path):
    import subprocess

    token, lesson_id = lesson
    out = tmp_path / "talk.m4a"
    subprocess.run(
        [
            video.ffmpeg_path(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:a",
            "aac",
            str(out),
        ],
        check=True,
    )
    upload_whole(client, token, lesson_id, out.read_bytes(), chunks=1)
    with fresh_app.app_context():
        run_pending()
    error = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()["error"]
    assert error["code"] == "no_video_stream"


def test_http_client_upload_over_a_real_socket(fresh_app, lesson):
    """The body streams from the socket to storage (no test-client buffering)."""
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    with live_server(fresh_app) as base:
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request(
            "PUT",
            f"/api/v1/lessons/{lesson_id}/video",
            body=data,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
        )
        response = conn.getresponse()
        assert response.status == 202, response.read()
        conn.close()


# --- a full or unwritable store, captions that cannot be kept ---------------------------------


def use_storage(app, monkeypatch, root):
    """Serve the app from a real local store at root (on a small file system of the test's)."""
    from media_pipeline.storage import LocalStorage

    monkeypatch.setitem(app.extensions, "veriskill.storage", LocalStorage(root))


def test_full_disk_answers_507_storage_full_and_the_upload_resumes_after(
    client, fresh_app, lesson, tmp_path, monkeypatch
):
    token, lesson_id = lesson
    data = CLIP.read_bytes()
    half = len(data) // 2
    with small_disk(tmp_path / "disk", "2m") as disk:
        use_storage(fresh_app, monkeypatch, disk / "store")
        assert put_chunk(client, token, lesson_id, data[:half], 0, len(data)).status_code == 200
        fill(disk)
        client.set_cookie("lang", "en")
        response = put_chunk(client, token, lesson_id, data[half:], half, len(data))
        assert response.status_code == 507
        error = response.get_json()["error"]
        assert error["code"] == "storage_full"
        assert "Storage is full" in error["message"]
        # Nothing of the refused chunk is kept; the first one is, so the upload resumes.
        assert upload_state(client, token, lesson_id)["received_bytes"] == half
        assert [p.name for p in (disk / "store").rglob("*") if p.is_file()] == [f"{0:016d}"]
        (disk / ".filler").unlink()
        response = put_chunk(client, token, lesson_id, data[half:], half, len(data))
        assert response.status_code == 202, response.get_json()


def test_read_only_storage_answers_503_storage_unavailable(
    client, fresh_app, lesson, tmp_path, monkeypatch
):
    token, lesson_id = lesson
    with small_disk(tmp_path / "disk", "1m", read_only=True) as disk:
        use_storage(fresh_app, monkeypatch, disk)
        data = CLIP.read_bytes()
        response = put_chunk(client, token, lesson_id, data[:1000], 0, len(data))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"]
    assert upload_state(client, token, lesson_id)["received_bytes"] == 0


def test_full_disk_while_transcoding_keeps_the_upload_for_a_retry(
    client, fresh_app, lesson, tmp_path, monkeypatch
):
    import tempfile

    from app.jobs.models import Job

    token, lesson_id = lesson
    data = CLIP.read_bytes()
    upload_whole(client, token, lesson_id, data)
    stored_before = stored_files(fresh_app)
    # The worker's temporary disk holds the source, but not the renditions made from it.
    with small_disk(tmp_path / "scratch", "800k") as scratch:
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        with fresh_app.app_context():
            run_pending()
            job = db.session.scalars(sa.select(Job)).one()
            assert (job.status.value, job.error_code) == ("failed", "storage_full"), (
                job.error_message
            )
            assert job.attempts == 1  # not retried at once into the same full disk
        monkeypatch.setattr(tempfile, "tempdir", None)
    body = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "storage_full"
    assert body["upload"] == {"received_bytes": len(data), "total_bytes": len(data)}
    assert set(stored_before) <= set(stored_files(fresh_app))  # every part is still there
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UploadPart)) == 3

    # Sending a chunk of it again (not the first, which would start over) processes it again.
    size = -(-len(data) // 3)
    response = put_chunk(client, token, lesson_id, data[2 * size :], 2 * size, len(data))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "queued"
    with fresh_app.app_context():
        run_pending()
    body = client.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)).get_json()
    assert body["status"] == "ready" and body["error"] is None


def test_caption_language_tag_too_long_is_422_and_stores_nothing(client, fresh_app, lesson):
    from app.courses.models import Caption
    from tests.conftest import count_rows, multipart

    token, lesson_id = lesson
    srt = "1\n00:00:00,500 --> 00:00:02,000\n安全第一\n".encode()
    language = "zh-abcdefgh-abcdefgh"  # a well-formed tag of 20 characters; 16 are kept
    body, content_type = multipart([("file", "zh.srt", srt)], {"language": language})
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/captions",
        data=body,
        content_type=content_type,
        headers=bearer(token),
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert set(response.get_json()["error"]["fields"]) == {"language"}
    assert stored_files(fresh_app) == []
    assert count_rows(fresh_app, Caption) == 0
