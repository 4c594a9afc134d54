"""Small clients for the platform API, shared by the course tests."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import bearer

CLIP = Path(__file__).parent.parent / "data" / "media" / "short_hamilton_clip.mp4"
OCCUPATION = "6-31-01-03"  # 电工


def create_course(client, token: str, **changes) -> int:
    body = {"occupation_code": OCCUPATION, "title": "低压电工作业", "hours": 16, "level": "初级"}
    body.update(changes)
    response = client.post("/api/v1/courses", json=body, headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def add_lesson(client, token: str, course_id: int, title: str = "第一课 安全用电") -> int:
    response = client.post(
        f"/api/v1/courses/{course_id}/lessons", json={"title": title}, headers=bearer(token)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def put_chunk(client, token: str, lesson_id: int, data: bytes, start: int, total: int):
    return client.put(
        f"/api/v1/lessons/{lesson_id}/video",
        data=data,
        headers={
            **bearer(token),
            "Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}",
            "Content-Type": "application/octet-stream",
        },
    )


def upload_whole(client, token: str, lesson_id: int, data: bytes, chunks: int = 3):
    size = -(-len(data) // chunks)
    response = None
    for start in range(0, len(data), size):
        response = put_chunk(client, token, lesson_id, data[start : start + size], start, len(data))
        assert response.status_code in (200, 202), response.get_json()
    return response
